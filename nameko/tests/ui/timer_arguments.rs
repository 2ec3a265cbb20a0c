use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[timer(interval = 5)]
    async fn tick(&self, n: u32) {}
}

fn main() {}
