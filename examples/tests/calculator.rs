//! The calculator: unit tests with `worker_factory`, and its error as callers see it.

use nameko::prelude::*;
use nameko::testing::{TestCluster, worker_factory};
use nameko_examples::Calculator;
use nameko_examples::calculator::ValueError;

#[tokio::test]
async fn arithmetic() {
    let calculator = worker_factory::<Calculator>().build().unwrap();
    assert_eq!(calculator.add(2.0, 3.5).await, 5.5);
    assert_eq!(calculator.multiply(2.0, 3.5).await, 7.0);
    assert_eq!(calculator.divide(7.0, 2.0).await, Ok(3.5));
}

#[tokio::test]
async fn division_by_zero_is_an_expected_value_error() {
    let calculator = worker_factory::<Calculator>().build().unwrap();
    let error = calculator.divide(1.0, 0.0).await.unwrap_err();
    assert_eq!(error, ValueError("Division by zero".to_owned()));
    let remote = nameko::errors::IntoRemoteError::into_remote_error(error);
    assert_eq!(remote.exc_type, "ValueError");
    assert_eq!(remote.exc_path, "builtins.ValueError");
    assert_eq!(remote.value, "Division by zero");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_get_the_value_error_back() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Calculator>().await;
    let proxy = cluster.proxy().await;
    let calculator = proxy.service("calculator");
    assert_eq!(calculator.call::<f64>("add", (1, 2)).await.unwrap(), 3.0);
    let error = calculator.call::<f64>("divide", (1, 0)).await.unwrap_err();
    assert_eq!(error.remote().unwrap().exc_type, "ValueError");
    assert_eq!(
        error.decode::<ValueError>(),
        Some(ValueError("Division by zero".to_owned()))
    );
    match calculator.call::<f64>("add", (1,)).await.unwrap_err() {
        RpcError::IncorrectSignature(message) => {
            assert_eq!(message, "add() missing 1 required positional argument: 'b'")
        }
        other => panic!("{other:?}"),
    }
    cluster.shutdown().await;
}
