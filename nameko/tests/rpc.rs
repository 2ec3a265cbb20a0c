//! RPC behaviour, on the in-memory broker and on RabbitMQ: arguments, results, the
//! standard errors, user errors, calls in flight, unknown services, timeouts and the
//! worker pool.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nameko::errors::{INCORRECT_SIGNATURE, METHOD_NOT_FOUND};
use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};

#[derive(Debug, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
struct ValueError(String);

#[derive(Dependencies)]
struct Api;

#[service(name = "api")]
impl Api {
    #[rpc]
    async fn mixed(&self, a: i64, b: String, c: Option<Value>) -> Value {
        json!({"a": a, "b": b, "c": c})
    }

    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }

    #[rpc]
    async fn nothing(&self) {}

    #[rpc(expected_exceptions = [ValueError])]
    async fn divide(&self, a: f64, b: f64) -> Result<f64, ValueError> {
        if b == 0.0 {
            return Err(ValueError("Division by zero".to_owned()));
        }
        Ok(a / b)
    }

    #[rpc]
    async fn boom(&self) -> Result<(), ServiceError> {
        Err(ServiceError::new(
            "KeyError",
            "builtins.KeyError",
            "missing",
        ))
    }

    #[rpc]
    async fn parse(&self, text: String) -> Result<i64, ServiceError> {
        Ok(text.parse::<i64>()?)
    }

    #[rpc]
    async fn panics(&self) -> i32 {
        panic!("kaboom")
    }

    #[rpc]
    async fn unserializable(&self) -> HashMap<(i32, i32), i32> {
        HashMap::from([((1, 2), 3)])
    }

    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

#[derive(Dependencies)]
struct Pool;

#[service(name = "pool")]
impl Pool {
    #[rpc]
    async fn work(&self) {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_RUNNING.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

cluster_tests! {
    async fn positional_keyword_and_mixed_arguments(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let api = proxy.service("api");
        let positional: Value = api.call("mixed", (1, "two", json!([3]))).await.unwrap();
        assert_eq!(positional, json!({"a": 1, "b": "two", "c": [3]}));
        let keywords: Value = api
            .call("mixed", CallArgs::new().kwarg("b", "x").kwarg("a", 5).kwarg("c", json!({"k": null})))
            .await
            .unwrap();
        assert_eq!(keywords, json!({"a": 5, "b": "x", "c": {"k": null}}));
        let mixed: Value = api.call("mixed", CallArgs::new().arg(7).kwarg("b", "y")).await.unwrap();
        assert_eq!(mixed, json!({"a": 7, "b": "y", "c": null}), "an Option parameter may be left out");
        let unicode = json!({"text": "héllo wörld ✓ 😀", "nested": [{"deep": [1, 2.5, true, null]}]});
        let back: Value = api.call("echo", (unicode.clone(),)).await.unwrap();
        assert_eq!(back, unicode);
        let nothing: Value = api.call("nothing", ()).await.unwrap();
        assert_eq!(nothing, Value::Null);
        cluster.shutdown().await;
    }

    async fn standard_errors_are_typed(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let api = proxy.service("api");
        match api.call::<Value>("no_such_method", ()).await.unwrap_err() {
            RpcError::MethodNotFound(name) => assert_eq!(name, "no_such_method"),
            other => panic!("expected MethodNotFound, got {other:?}"),
        }
        match api.call::<Value>("mixed", (1, "two", 3, 4)).await.unwrap_err() {
            RpcError::IncorrectSignature(message) => {
                assert_eq!(message, "mixed() takes from 3 to 4 positional arguments but 5 were given");
            }
            other => panic!("expected IncorrectSignature, got {other:?}"),
        }
        match api.call::<Value>("mixed", CallArgs::new().kwarg("b", "x")).await.unwrap_err() {
            RpcError::IncorrectSignature(message) => assert_eq!(message, "mixed() missing 1 required positional argument: 'a'"),
            other => panic!("expected IncorrectSignature, got {other:?}"),
        }
        let wrong_type = api.call::<Value>("mixed", ("one", "two")).await.unwrap_err();
        let remote = wrong_type.remote().expect("a TypeError is a remote error");
        assert_eq!((remote.exc_type.as_str(), remote.exc_path.as_str()), ("TypeError", "builtins.TypeError"));
        assert!(remote.value.starts_with("mixed() argument 'a' got a string"), "{}", remote.value);
        match proxy.service("never_ran").call::<Value>("anything", ()).await.unwrap_err() {
            RpcError::UnknownService(name) => assert_eq!(name, "never_ran"),
            other => panic!("expected UnknownService, got {other:?}"),
        }
        // The standard errors carry nameko's exact paths, for Python callers.
        assert_eq!(RemoteError::method_not_found("x").exc_path, METHOD_NOT_FOUND);
        assert_eq!(RemoteError::incorrect_signature("x").exc_path, INCORRECT_SIGNATURE);
        cluster.shutdown().await;
    }

    async fn user_errors_keep_their_error_dict(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let api = proxy.service("api");
        let expected = api.call::<f64>("divide", (1.0, 0.0)).await.unwrap_err();
        let remote = expected.remote().expect("remote error");
        assert_eq!(remote.exc_type, "ValueError");
        assert_eq!(remote.exc_path, "builtins.ValueError");
        assert_eq!(remote.exc_args, vec![json!("Division by zero")]);
        assert_eq!(remote.value, "Division by zero");
        let typed: ValueError = expected.decode().expect("decodes into the user type");
        assert_eq!(typed.0, "Division by zero");
        assert_eq!(api.call::<f64>("divide", (1.0, 4.0)).await.unwrap(), 0.25);

        let unexpected = api.call::<Value>("boom", ()).await.unwrap_err();
        let remote = unexpected.remote().unwrap();
        assert_eq!((remote.exc_type.as_str(), remote.exc_path.as_str(), remote.value.as_str()), ("KeyError", "builtins.KeyError", "missing"));
        assert!(matches!(unexpected, RpcError::Remote(_)));

        let converted = api.call::<i64>("parse", ("x1",)).await.unwrap_err();
        assert_eq!(converted.remote().unwrap().exc_type, "ParseIntError");
        assert_eq!(api.call::<i64>("parse", ("41",)).await.unwrap(), 41);
        cluster.shutdown().await;
    }

    async fn panics_and_unserializable_results_fail_the_call_not_the_service(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let api = proxy.service("api");
        let panicked = api.call::<Value>("panics", ()).await.unwrap_err();
        let remote = panicked.remote().unwrap();
        assert_eq!(remote.exc_type, "WorkerPanic");
        assert!(remote.value.contains("kaboom"), "{}", remote.value);
        let unserializable = api.call::<Value>("unserializable", ()).await.unwrap_err();
        let remote = unserializable.remote().unwrap();
        assert_eq!(remote.exc_type, "UnserializableValueError");
        assert_eq!(remote.exc_path, "nameko.exceptions.UnserializableValueError");
        assert!(remote.exc_args.is_empty());
        assert!(remote.value.starts_with("Unserializable value: `"), "{}", remote.value);
        assert_eq!(api.call::<Value>("echo", (1,)).await.unwrap(), json!(1), "the service still serves");
        cluster.shutdown().await;
    }

    async fn a_hundred_calls_in_flight_resolve_out_of_order(cluster: TestCluster) {
        let mut cluster = cluster.with_config("max_workers", 100).with_config("PREFETCH_COUNT", 100);
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let api = proxy.service("api");
        // The first calls sleep longest, so replies come back in reverse. The requests go
        // out together: sent one after the other, each awaiting its confirm, they would
        // spread over more than the 2 ms between two sleeps on a loaded machine.
        let sent = futures_util::future::join_all(
            (0..100_u64).map(|i| api.call_async::<u64>("sleep", (200 - 2 * i,))),
        )
        .await;
        let mut order = Vec::new();
        let mut results = futures_util::stream::FuturesUnordered::new();
        for (i, reply) in (0..100_u64).zip(sent) {
            let reply = reply.unwrap();
            results.push(async move { (i, reply.result().await) });
        }
        while let Some((i, result)) = futures_util::StreamExt::next(&mut results).await {
            assert_eq!(result.unwrap(), 200 - 2 * i);
            order.push(i);
        }
        assert_eq!(order.len(), 100);
        assert_ne!(order, (0..100).collect::<Vec<_>>(), "replies arrived out of call order");
        cluster.shutdown().await;
    }

    async fn timeouts_per_call_and_from_config(cluster: TestCluster) {
        let mut cluster = cluster.with_config("RPC_TIMEOUT", 0.3);
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let api = proxy.service("api");
        assert_eq!(api.timeout(), Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = api.call::<u64>("sleep", (3000,)).await.unwrap_err();
        assert!(matches!(err, RpcError::Timeout(d) if d == Duration::from_millis(300)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let err = api.with_timeout(Duration::from_millis(100)).call::<u64>("sleep", (3000,)).await.unwrap_err();
        assert!(matches!(err, RpcError::Timeout(d) if d == Duration::from_millis(100)), "{err:?}");
        let fine: u64 = api.with_timeout(Duration::from_secs(5)).call("sleep", (10,)).await.unwrap();
        assert_eq!(fine, 10);
        cluster.shutdown().await;
    }

    async fn max_workers_bounds_concurrency(cluster: TestCluster) {
        let mut cluster = cluster.with_config("max_workers", 2).with_config("PREFETCH_COUNT", 10);
        cluster.start::<Pool>().await;
        let proxy = cluster.proxy().await;
        let pool = proxy.service("pool");
        let mut replies = Vec::new();
        for _ in 0..8 {
            replies.push(pool.call_async::<Value>("work", ()).await.unwrap());
        }
        for reply in replies {
            reply.result().await.unwrap();
        }
        assert_eq!(MOST_RUNNING.load(Ordering::SeqCst), 2, "never more than max_workers at once");
        cluster.shutdown().await;
    }
}

/// Timeouts under tokio's paused clock: the call fails after exactly the timeout, with
/// no real waiting.
#[tokio::test(start_paused = true)]
async fn timeouts_under_a_paused_clock() {
    let mut cluster = TestCluster::memory().with_config("RPC_TIMEOUT", 5);
    cluster.start::<Api>().await;
    let proxy = cluster.proxy().await;
    let api = proxy.service("api");
    let started = tokio::time::Instant::now();
    let err = api.call::<u64>("sleep", (60_000,)).await.unwrap_err();
    assert!(
        matches!(err, RpcError::Timeout(d) if d == Duration::from_secs(5)),
        "{err:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let started = tokio::time::Instant::now();
    let err = api
        .with_timeout(Duration::from_millis(1500))
        .call::<u64>("sleep", (60_000,))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
    let slow: u64 = api
        .with_timeout(Duration::from_secs(120))
        .call("sleep", (60_000,))
        .await
        .unwrap();
    assert_eq!(slow, 60_000);
    cluster.shutdown().await;
}

/// `RPC_RETRY_POLICY` retries requests (and replies) whose publish fails on the
/// transport; past the policy, the call fails with the transport error.
#[tokio::test(start_paused = true)]
async fn publishes_that_fail_are_retried_per_rpc_retry_policy() {
    let broker = nameko::memory::MemoryBroker::new();
    let policy =
        json!({"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 1});
    let mut cluster =
        TestCluster::on_broker(broker.clone()).with_config("RPC_RETRY_POLICY", policy);
    cluster.start::<Api>().await;
    let proxy = cluster.proxy().await;
    let api = proxy.service("api");

    broker.fail_next_publishes(2);
    let started = tokio::time::Instant::now();
    let out: Value = api.call("echo", ("again",)).await.unwrap();
    assert_eq!(out, json!("again"));
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(1500),
        "waited 0.5 s, then 1 s"
    );

    broker.fail_next_publishes(3);
    let err = api.call::<Value>("echo", ("never",)).await.unwrap_err();
    assert!(
        matches!(
            &err,
            RpcError::Transport(nameko::transport::TransportError::Injected(_))
        ),
        "{err:?}"
    );
    cluster.shutdown().await;
}
