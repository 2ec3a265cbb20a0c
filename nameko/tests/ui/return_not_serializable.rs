use nameko::prelude::*;

struct Receipt;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc]
    async fn pay(&self) -> Receipt {
        Receipt
    }

    #[rpc]
    async fn pay_or_fail(&self) -> Result<Receipt, ServiceError> {
        Ok(Receipt)
    }
}

fn main() {}
