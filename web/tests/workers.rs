//! HTTP workers are workers: bounded by `max_workers`, with a new call id stack and the
//! context data of the request's hook, both carried on by the RPC calls they make.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::{WebConfig, json_dumps};

/// Workers running now, and the most that ran at once.
#[derive(Clone, Default)]
struct Gauge {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

#[derive(Dependencies)]
struct Busy {
    gauge: State<Gauge>,
}

#[service(name = "busy")]
impl Busy {
    #[http("GET", "/work")]
    async fn work(&self) -> String {
        let now = self.gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.gauge.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.gauge.now.fetch_sub(1, Ordering::SeqCst);
        "done".to_owned()
    }
}

#[tokio::test]
async fn http_workers_count_against_max_workers() {
    let gauge = Gauge::default();
    let cluster = TestCluster::memory()
        .with_config("max_workers", 2)
        .with_state(gauge.clone());
    let (cluster, web) = common::serve_with::<Busy>(cluster).await;
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let client = nameko::testing::WebSession::new(web.addr());
            tokio::spawn(async move { client.get("/work").send().await.unwrap().text().await })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap(), "done");
    }
    assert_eq!(gauge.most.load(Ordering::SeqCst), 2);
    cluster.shutdown().await;
}

#[derive(Dependencies)]
struct Inner {
    worker: Arc<WorkerContext>,
}

#[service(name = "inner")]
impl Inner {
    #[rpc]
    async fn describe(&self) -> Value {
        json!({
            "stack": self.worker.call_id_stack(),
            "user_id": self.worker.context().get("user_id"),
        })
    }
}

fn user_from_headers(request: &Request) -> ContextData {
    let mut data = ContextData::new();
    if let Some(user) = request.header("X-User-Id") {
        data.set("user_id", user);
    }
    data
}

#[derive(Dependencies)]
struct Relay {
    inner: RpcProxy,
    worker: Arc<WorkerContext>,
}

#[service(name = "relay")]
impl Relay {
    #[http("GET", "/relay", context_data_from_headers = user_from_headers)]
    async fn relay(&self) -> Result<String, RpcError> {
        let inner: Value = self.inner.call("describe", ()).await?;
        Ok(json_dumps(
            &json!({"own": self.worker.call_id(), "inner": inner}),
        ))
    }

    #[http("GET", "/relay_default")]
    async fn relay_default(&self) -> Result<String, RpcError> {
        let inner: Value = self.inner.call("describe", ()).await?;
        Ok(json_dumps(&inner))
    }
}

async fn call_relay(cluster: TestCluster) {
    let mut cluster = cluster;
    cluster.start::<Inner>().await;
    cluster.start::<Relay>().await;
    let web = cluster.web_session();
    let body: Value = serde_json::from_str(
        &web.get("/relay")
            .header("X-User-Id", "42")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let own = body["own"].as_str().unwrap();
    assert!(own.starts_with("relay.relay."), "{own}");
    assert_eq!(own.len(), "relay.relay.".len() + 36, "a uuid: {own}");
    let stack = body["inner"]["stack"].as_array().unwrap();
    assert_eq!(stack.len(), 2, "{stack:?}");
    assert_eq!(stack[0], own);
    assert!(stack[1].as_str().unwrap().starts_with("inner.describe."));
    assert_eq!(body["inner"]["user_id"], "42");
    cluster.shutdown().await;
}

#[tokio::test]
async fn the_call_id_stack_and_context_data_go_on_with_rpc_calls() {
    call_relay(TestCluster::memory()).await;
}

#[tokio::test]
async fn the_call_id_stack_and_context_data_go_on_with_rpc_calls_on_rabbitmq() {
    if let Some(cluster) = TestCluster::rabbitmq().await {
        call_relay(cluster).await;
    }
}

#[tokio::test]
async fn the_server_wide_hook_applies_to_entrypoints_without_one() {
    let config = WebConfig::new().context_data_from_headers(|request| {
        ContextData::new().with("user_id", request.header("Authorization").unwrap_or("none"))
    });
    let mut cluster = TestCluster::memory().with_state(config);
    cluster.start::<Inner>().await;
    cluster.start::<Relay>().await;
    let web = cluster.web_session();
    let text = web
        .get("/relay_default")
        .header("Authorization", "Bearer t0k3n")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["user_id"], "Bearer t0k3n");
    cluster.shutdown().await;
}

#[tokio::test]
async fn without_a_hook_the_context_data_is_empty_as_in_nameko() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Inner>().await;
    cluster.start::<Relay>().await;
    let web = cluster.web_session();
    let text = web
        .get("/relay_default")
        .header("X-User-Id", "42")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["user_id"], Value::Null);
    cluster.shutdown().await;
}
