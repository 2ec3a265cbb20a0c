use nameko::prelude::*;

struct Order {
    id: u64,
}

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc]
    async fn place(&self, order: Order) -> u64 {
        order.id
    }
}

fn main() {}
