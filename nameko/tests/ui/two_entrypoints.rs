use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc]
    #[timer(interval = 1)]
    async fn ping(&self) {}
}

fn main() {}
