//! `/metrics`: nameko-prometheus's names, labels and buckets, counting every worker of
//! every entrypoint kind, outgoing calls by outcome and settled messages; with a
//! `Metrics` field and with the `instrument` container hook.

mod common;

use std::net::SocketAddr;

use common::{sample, until};
use nameko::extension::ContainerHooks;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::transport::{Message, Properties, PublishOptions};
use nameko_prometheus::{LATENCY_BUCKETS, Metrics, MetricsRegistry};
use serde_json::json;

#[derive(Debug, Dependencies)]
struct Calculator {
    metrics: Metrics,
}

#[service(name = "calculator")]
impl Calculator {
    #[rpc]
    async fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }

    #[rpc]
    async fn prefix(&self) -> String {
        self.metrics.prefix().to_owned()
    }

    #[http("GET", "/double/<int:x>")]
    async fn double(&self, x: i64) -> String {
        (2 * x).to_string()
    }

    #[event_handler("payments", "paid")]
    async fn on_paid(&self, payload: Value) {
        let _ = payload;
    }
}

/// No `Metrics` field: measured through the container hook.
#[derive(Debug, Dependencies)]
struct Frontend {
    calculator: RpcProxy,
    nowhere: RpcProxy,
}

#[service(name = "frontend")]
impl Frontend {
    #[rpc]
    async fn sum(&self, x: i64, y: i64) -> Result<i64, RpcError> {
        self.calculator.call("add", (x, y)).await
    }

    #[rpc]
    async fn ghost(&self) -> Result<Value, RpcError> {
        self.nowhere.call("anything", ()).await
    }
}

fn metrics_addr(cluster_scope: &nameko::extension::SharedExtensions) -> SocketAddr {
    MetricsRegistry::in_scope(cluster_scope)
        .and_then(|registry| registry.local_addr())
        .expect("the metrics routes are served")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_worker_and_every_call_is_counted() {
    let mut cluster =
        TestCluster::memory().with_state(ContainerHooks::new().with(nameko_prometheus::instrument));
    let calculator = cluster.start::<Calculator>().await;
    cluster.start::<Frontend>().await;
    let addr = metrics_addr(calculator.context().process_scope());
    let proxy = cluster.proxy().await;

    const N: i64 = 7;
    for i in 0..N {
        let sum: i64 = proxy
            .service("calculator")
            .call("add", (i, 1))
            .await
            .unwrap();
        assert_eq!(sum, i + 1);
    }
    for x in [1, 2] {
        let (status, body) = common::get(addr, &format!("/double/{x}")).await;
        assert_eq!((status, body), (200, (2 * x).to_string()));
    }
    for n in 0..3 {
        cluster.dispatch("payments", "paid", json!({"n": n})).await;
    }
    for _ in 0..2 {
        let sum: i64 = proxy.service("frontend").call("sum", (1, 2)).await.unwrap();
        assert_eq!(sum, 3);
    }
    let ghost = proxy
        .service("frontend")
        .call::<Value>("ghost", ())
        .await
        .unwrap_err();
    assert!(ghost.to_string().contains("UnknownService"), "{ghost}");
    cluster.run_until_idle().await.unwrap();

    let add = r#"{method_name="add"}"#;
    let (_, text) = until(addr, "/metrics", "the counts", |_, text| {
        sample(text, &format!("calculator_rpc_requests_total{add}")) == Some((N + 2) as f64)
            && sample(text, "frontend_rpc_outgoing_calls_total{service=\"nowhere\",method=\"anything\",outcome=\"unknown_service\"}") == Some(1.0)
    })
    .await;

    // N calls from the test and 2 from `frontend.sum`, each counted once although
    // `calculator` has both the field and the hook.
    let calls = (N + 2) as f64;
    assert_eq!(
        sample(
            &text,
            &format!("calculator_rpc_request_latency_seconds_count{add}")
        ),
        Some(calls)
    );
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("calculator_rpc_request_latency_seconds_bucket{")
                && l.contains(r#"method_name="add""#)
        })
        .collect();
    assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1, "{buckets:#?}");
    for bound in ["0.005", "0.075", "7.5", "10.0", "+Inf"] {
        assert!(
            buckets
                .iter()
                .any(|l| l.contains(&format!("le=\"{bound}\""))),
            "no bucket {bound}: {buckets:#?}"
        );
    }
    assert!(
        text.contains("# TYPE calculator_rpc_requests counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE calculator_rpc_request_latency_seconds histogram"),
        "{text}"
    );

    let http = r#"{http_method="GET",endpoint="/double/<int:x>",status_code="200"}"#;
    assert_eq!(
        sample(&text, &format!("calculator_http_requests_total{http}")),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("calculator_http_request_latency_seconds_count{http}")
        ),
        Some(2.0)
    );
    let event = r#"{source_service="payments",event_type="paid"}"#;
    assert_eq!(
        sample(&text, &format!("calculator_events_total{event}")),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("calculator_events_latency_seconds_count{event}")
        ),
        Some(3.0)
    );

    // The hook measures a service without a field.
    assert_eq!(
        sample(&text, r#"frontend_rpc_requests_total{method_name="sum"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"frontend_rpc_outgoing_calls_total{service="calculator",method="add",outcome="ok"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"frontend_rpc_outgoing_calls_total{service="calculator",method="add",outcome="timeout"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"frontend_rpc_outgoing_call_latency_seconds_count{service="calculator",method="add"}"#
        ),
        Some(2.0)
    );

    // The pool and the broker.
    assert_eq!(sample(&text, "calculator_service_max_workers"), Some(10.0));
    assert_eq!(
        sample(&text, "calculator_service_running_workers"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "calculator_broker_connected"), Some(1.0));
    assert_eq!(
        sample(&text, "calculator_broker_reconnects_total"),
        Some(0.0)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("calculator_service_info{service_version=")),
        "{text}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_no_worker_can_read_is_counted_as_rejected() {
    let mut cluster = TestCluster::memory();
    let calculator = cluster.start::<Calculator>().await;
    let addr = metrics_addr(calculator.context().process_scope());
    let transport = cluster.connect().await;
    transport
        .publish(
            "payments.events",
            "paid",
            Message::new(
                "not json",
                Properties::default().with_content_type("text/plain"),
            ),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    cluster.run_until_idle().await.unwrap();
    let series =
        r#"calculator_messages_rejected_total{queue="evt-payments-paid--calculator.on_paid"}"#;
    until(addr, "/metrics", "the rejected message", |_, text| {
        sample(text, series) == Some(1.0)
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prefix_comes_from_the_configuration() {
    let mut cluster =
        TestCluster::memory().with_config("PROMETHEUS", json!({"calculator": {"prefix": "calc"}}));
    let calculator = cluster.start::<Calculator>().await;
    let addr = metrics_addr(calculator.context().process_scope());
    let proxy = cluster.proxy().await;
    let _: i64 = proxy
        .service("calculator")
        .call("add", (1, 1))
        .await
        .unwrap();
    cluster.run_until_idle().await.unwrap();
    let prefix: String = proxy
        .service("calculator")
        .call("prefix", ())
        .await
        .unwrap();
    assert_eq!(prefix, "calc");
    let (_, text) = until(addr, "/metrics", "the prefixed count", |_, text| {
        sample(text, r#"calc_rpc_requests_total{method_name="add"}"#) == Some(1.0)
    })
    .await;
    assert!(!text.contains("calculator_rpc_requests_total"), "{text}");
    cluster.shutdown().await;
}
