use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service]
impl Svc {
    #[rpc]
    async fn ping(&self) {}
}

fn main() {}
