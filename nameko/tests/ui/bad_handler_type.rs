use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[event_handler("orders", "placed", handler_type = everyone)]
    async fn on_placed(&self, _order: Value) {}
}

fn main() {}
