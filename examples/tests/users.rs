//! The user service: unit tests with a mocked calculator, and the real call path.

use nameko::prelude::*;
use nameko::testing::{RpcProxyMock, TestCluster, worker_factory};
use nameko_examples::{Calculator, UserService};

#[tokio::test]
async fn the_score_comes_from_calculator_multiply() {
    let calculator = RpcProxyMock::new().reply("multiply", 12.5);
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
    let calculator = RpcProxyMock::new().fail(
        "multiply",
        RemoteError::new(
            "OverflowError",
            "builtins.OverflowError",
            ["too big"],
            "too big",
        ),
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
    let score: Value = proxy
        .service("user_service")
        .call("calculate_user_score", (42, 10.0, 1.5))
        .await
        .unwrap();
    assert_eq!(score, json!({"user_id": 42, "score": 15.0}));
    cluster.shutdown().await;
}
