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

async fn caller(proxy: ClusterRpcProxy) -> Result<f64, RpcError> {
    let calculator: CalculatorClient = proxy.client();
    calculator.multiplie(6.0, 7.0).await
}

fn main() {}
