use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc]
    async fn ping(&mut self) {}
}

fn main() {}
