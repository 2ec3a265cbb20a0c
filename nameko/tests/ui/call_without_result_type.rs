use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc {
    calculator: RpcProxy,
}

#[service(name = "svc")]
impl Svc {
    #[rpc]
    async fn double(&self, a: f64) -> Result<(), RpcError> {
        // The result type is not named anywhere: the compiler cannot know what the reply holds.
        self.calculator.call("multiply", (a, 2.0)).await?;
        Ok(())
    }
}

fn main() {}
