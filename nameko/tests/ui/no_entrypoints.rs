use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    async fn helper(&self) {}
}

fn main() {}
