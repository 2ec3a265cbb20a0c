use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[timer(interval = 0)]
    async fn tick(&self) {}
}

fn main() {}
