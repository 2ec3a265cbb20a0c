use nameko::prelude::*;

#[derive(Dependencies)]
struct Calculator;

#[service(name = "calculator")]
impl Calculator {
    #[rpc]
    async fn multiply(&self, a: f64, b: f64) -> f64 {
        a * b
    }
}

async fn caller(proxy: ClusterRpcProxy) -> Result<String, RpcError> {
    let calculator: CalculatorClient = proxy.client();
    let product: String = calculator.multiply(6.0, 7.0).await?;
    Ok(product)
}

fn main() {}
