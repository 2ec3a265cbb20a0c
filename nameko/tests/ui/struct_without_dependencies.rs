use nameko::prelude::*;

struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc]
    async fn ping(&self) {}
}

fn main() {}
