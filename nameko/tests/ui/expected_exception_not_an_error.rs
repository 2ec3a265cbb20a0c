use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc(expected_exceptions = [String])]
    async fn ping(&self) {}
}

fn main() {}
