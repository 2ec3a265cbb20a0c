//! `/health/live` and `/health/ready`: ready while every container runs with its broker
//! connection up; 503 with a reason during a broker outage (the in-memory broker's
//! fault injection) and as soon as a graceful stop begins (the runner's SIGTERM path).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{WITHIN, get, sample, until};
use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::rpc::ClusterRpcProxy;
use nameko::serve::{Signal, serve_with};
use nameko::testing::TestCluster;
use nameko_prometheus::{Metrics, MetricsRegistry};
use tokio::sync::Notify;

#[derive(Debug, Dependencies)]
struct Calculator {
    metrics: Metrics,
}

#[service(name = "calculator")]
impl Calculator {
    #[rpc]
    async fn add(&self, x: i64, y: i64) -> i64 {
        assert_eq!(self.metrics.prefix(), "calculator");
        x + y
    }
}

/// Holds a call until the test lets it go.
#[derive(Debug, Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

#[derive(Debug, Dependencies)]
struct Slow {
    metrics: Metrics,
    gate: State<Arc<Gate>>,
}

#[service(name = "slow")]
impl Slow {
    #[rpc]
    async fn wait(&self) -> &'static str {
        assert_eq!(self.metrics.prefix(), "slow");
        self.gate.entered.notify_one();
        self.gate.release.notified().await;
        "done"
    }
}

fn reason(body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_goes_503_during_a_broker_outage_and_back_to_200_after_it() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone());
    let calculator = cluster.start::<Calculator>().await;
    let addr = MetricsRegistry::in_scope(calculator.context().process_scope())
        .and_then(|r| r.local_addr())
        .expect("the routes are served");

    assert_eq!(
        get(addr, "/health/live").await,
        (200, r#"{"status":"live"}"#.to_owned())
    );
    let (status, body) = get(addr, "/health/ready").await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ready");
    assert_eq!(json["services"]["calculator"]["state"], "running");
    assert_eq!(json["services"]["calculator"]["broker"], "connected");

    broker.set_available(false);
    broker.drop_all_connections();
    let (_, body) = until(
        addr,
        "/health/ready",
        "readiness in the outage",
        |status, _| status == 503,
    )
    .await;
    assert_eq!(reason(&body), "calculator: broker connection reconnecting");
    // The process itself is fine.
    assert_eq!(get(addr, "/health/live").await.0, 200);

    broker.set_available(true);
    until(
        addr,
        "/health/ready",
        "readiness after the outage",
        |status, _| status == 200,
    )
    .await;
    let (_, text) = until(addr, "/metrics", "the reconnect", |_, text| {
        sample(text, "calculator_broker_reconnects_total") == Some(1.0)
    })
    .await;
    assert_eq!(
        sample(&text, "calculator_broker_disconnects_total"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "calculator_broker_connected"), Some(1.0));

    // And it serves again.
    let proxy = cluster.proxy().await;
    let sum: i64 = proxy
        .service("calculator")
        .call("add", (2, 3))
        .await
        .unwrap();
    assert_eq!(sum, 5);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_goes_503_as_soon_as_sigterm_starts_a_graceful_stop() {
    let broker = MemoryBroker::new();
    let config = Config::new()
        .with("METRICS_ADDRESS", "127.0.0.1:0")
        .with("SHUTDOWN_TIMEOUT", 30);
    let gate = Arc::new(Gate::default());
    let runner =
        ServiceRunner::new(config.clone(), Arc::new(broker.connect())).with_state(gate.clone());
    runner.add::<Slow>().unwrap();
    runner.start().await.unwrap();
    let addr = MetricsRegistry::in_scope(runner.shared_extensions())
        .and_then(|r| r.local_addr())
        .expect("the routes are served at METRICS_ADDRESS");
    let (signals, received) = tokio::sync::mpsc::channel(2);
    let serving = tokio::spawn({
        let runner = runner.clone();
        async move { serve_with(&runner, received).await }
    });
    assert_eq!(get(addr, "/health/ready").await.0, 200);

    let proxy = ClusterRpcProxy::start(Arc::new(broker.connect()), &config)
        .await
        .unwrap();
    let call = tokio::spawn(async move { proxy.service("slow").call::<String>("wait", ()).await });
    tokio::time::timeout(WITHIN, gate.entered.notified())
        .await
        .expect("the call reached its worker");

    signals.send(Signal::Terminate).await.unwrap();
    let (_, body) = until(
        addr,
        "/health/ready",
        "readiness once stopping",
        |status, _| status == 503,
    )
    .await;
    assert_eq!(reason(&body), "slow: stopping");
    // The worker in flight is still running: the stop waits for it.
    assert!(!serving.is_finished());
    assert_eq!(get(addr, "/health/live").await.0, 200);

    gate.release.notify_one();
    let answer = tokio::time::timeout(WITHIN, call).await.unwrap().unwrap();
    assert_eq!(answer.unwrap(), "done");
    let served = tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(served.is_clean(), "{served}");
}
