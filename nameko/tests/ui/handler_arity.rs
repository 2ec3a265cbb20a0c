use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[event_handler("orders", "placed")]
    async fn on_placed(&self, order: Value, extra: Value) {}
}

fn main() {}
