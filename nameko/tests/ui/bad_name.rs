use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "my.service")]
impl Svc {
    #[rpc]
    async fn ping(&self) {}
}

fn main() {}
