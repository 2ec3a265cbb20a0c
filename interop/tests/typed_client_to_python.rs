//! A Rust typed client (`#[nameko::client]` on a trait declaring the Python service's
//! methods) calling a Python nameko service: arguments by keyword under the Python
//! parameter names, results typed, Python's exceptions rebuilt as the declared error
//! types, deferred calls, and a Rust service holding the client as a field.

use std::time::{Duration, Instant};

use nameko::prelude::*;
use nameko_interop::{InsufficientFunds, ValueError, run};

/// `services.Api` (`py_api`), as Rust sees it.
#[nameko::client(name = "py_api")]
trait PyApi {
    /// `def mixed(self, a, b, c=None)`.
    async fn mixed(&self, a: i64, b: String, c: Option<Value>) -> Value;
    /// `def three(self, a, b, c)`: `[a, b, c]`.
    async fn three(&self, a: i64, b: i64, c: i64) -> Vec<i64>;
    /// `def signature(self, *args, **kwargs)`.
    async fn signature(&self, first: i64, second: String) -> Value;
    /// `def divide(self, a, b)`: Python's `ValueError` on zero.
    async fn divide(&self, a: f64, b: f64) -> Result<f64, ValueError>;
    /// `def withdraw(self, balance, amount)`: `interop_errors.InsufficientFunds`.
    async fn withdraw(&self, balance: i64, amount: i64) -> Result<i64, InsufficientFunds>;
    /// `def sleep(self, seconds)`.
    async fn sleep(&self, seconds: f64) -> f64;
    /// `def nothing(self)`: `None`.
    async fn nothing(&self);
}

/// The same service, declared with a parameter name Python does not have.
#[nameko::client(name = "py_api")]
trait MisdeclaredPyApi {
    async fn three(&self, a: i64, b: i64, see: i64) -> Vec<i64>;
}

#[derive(Dependencies)]
struct Frontend {
    python: PyApiClient,
}

#[service(name = "rs_frontend")]
impl Frontend {
    /// `py_api.three(a, b, c)` through the client field.
    #[rpc]
    async fn ordered(&self, a: i64, b: i64, c: i64) -> Result<Vec<i64>, RpcError> {
        self.python.three(a, b, c).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typed_rust_client_calls_a_python_service_by_keyword() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        let proxy = env.cluster().proxy().await;
        let api: PyApiClient = proxy.client();

        assert_eq!(
            api.mixed(5, "x".to_owned(), None).await.unwrap(),
            json!({"a": 5, "b": "x", "c": null})
        );
        assert_eq!(
            api.mixed(7, "y".to_owned(), Some(json!([true, 2.5])))
                .await
                .unwrap(),
            json!({"a": 7, "b": "y", "c": [true, 2.5]})
        );
        assert_eq!(api.three(1, 2, 3).await.unwrap(), vec![1, 2, 3]);
        // What Python received: every argument by keyword, none by position.
        assert_eq!(
            api.signature(1, "two".to_owned()).await.unwrap(),
            json!({"args": [], "kwargs": {"first": 1, "second": "two"}})
        );
        api.nothing().await.unwrap();
        assert!((api.divide(1.0, 4.0).await.unwrap() - 0.25).abs() < f64::EPSILON);

        // Python's exceptions come back as the declared error types.
        match api.divide(1.0, 0.0).await {
            Err(CallError::Service(ValueError(message))) => assert_eq!(message, "Division by zero"),
            other => panic!("expected ValueError, got {other:?}"),
        }
        match api.withdraw(100, 150).await {
            Err(CallError::Service(funds)) => {
                assert_eq!((funds.balance, funds.amount), (100, 150));
            }
            other => panic!("expected InsufficientFunds, got {other:?}"),
        }
        assert_eq!(api.withdraw(100, 30).await.unwrap(), 70);

        // A parameter name Python does not know is Python's IncorrectSignature.
        let misdeclared: MisdeclaredPyApiClient = proxy.client();
        let error = misdeclared.three(1, 2, 3).await.unwrap_err();
        assert!(
            matches!(error, RpcError::IncorrectSignature(_)),
            "{error:?}"
        );

        // Deferred calls are in flight together.
        let started = Instant::now();
        let mut pending = Vec::new();
        for _ in 0..5 {
            pending.push(api.call_async().sleep(0.3).await.unwrap());
        }
        for reply in pending {
            assert!((reply.result().await.unwrap() - 0.3).abs() < f64::EPSILON);
        }
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "five 0.3 s calls took {:?}",
            started.elapsed()
        );
        proxy.stop().await;
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_service_calls_python_through_a_client_field() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        env.start_rust::<Frontend>().await;
        let proxy = env.cluster().proxy().await;
        let frontend: FrontendClient = proxy.client();
        assert_eq!(frontend.ordered(3, 2, 1).await.unwrap(), vec![3, 2, 1]);
        proxy.stop().await;
        env.shutdown().await;
    })
    .await;
}
