//! The user service: unit tests with a mocked calculator, and the real call path.

use nameko::prelude::*;
use nameko::testing::{TestCluster, worker_factory};
use nameko_examples::{Calculator, CalculatorClient, UserService, UserServiceClient};

#[tokio::test]
async fn the_score_comes_from_calculator_multiply() {
    let calculator = CalculatorClient::mock().multiply(|a, b| a * b);
    let users = worker_factory::<UserService>()
        .with("calculator", calculator.clone())
        .build()
        .unwrap();
    let score = users
        .calculate_user_score(json!(7), 2.5, 5.0)
        .await
        .unwrap();
    assert_eq!(score, json!({"user_id": 7, "score": 12.5}));
    calculator.assert_called_once_with("multiply", (2.5, 5.0));
}

#[tokio::test]
async fn a_failing_calculator_fails_the_call() {
    let calculator = CalculatorClient::mock().fail_with(
        "multiply",
        RpcError::from_remote(RemoteError::new(
            "OverflowError",
            "builtins.OverflowError",
            ["too big"],
            "too big",
        )),
    );
    let users = worker_factory::<UserService>()
        .with("calculator", calculator)
        .build()
        .unwrap();
    let error = users
        .calculate_user_score(json!(1), 1.0, 1.0)
        .await
        .unwrap_err();
    assert_eq!(error.remote().unwrap().exc_type, "OverflowError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_through_the_real_calculator() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Calculator>().await;
    cluster.start::<UserService>().await;
    let proxy = cluster.proxy().await;
    let users: UserServiceClient = proxy.client();
    let score = users
        .calculate_user_score(json!(42), 10.0, 1.5)
        .await
        .unwrap();
    assert_eq!(score, json!({"user_id": 42, "score": 15.0}));
    cluster.shutdown().await;
}
