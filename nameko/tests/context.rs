//! Context propagation, on the in-memory broker and on RabbitMQ: call id stacks grow over
//! RPC hops and are truncated at `parent_calls_tracked`; context data reaches every
//! downstream worker.

use std::sync::Arc;

use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};

fn describe(worker: &WorkerContext, context: &ContextData) -> Value {
    json!({
        "stack": worker.call_id_stack(),
        "origin": worker.origin_call_id(),
        "parent": worker.immediate_parent_call_id(),
        "context": context.to_map(),
    })
}

#[derive(Dependencies)]
struct Hop1 {
    hop2: RpcProxy,
    worker: Arc<WorkerContext>,
    context: ContextData,
}

#[service(name = "hop1")]
impl Hop1 {
    #[rpc]
    async fn call(&self) -> Result<Value, RpcError> {
        let down: Value = self.hop2.call("call", ()).await?;
        Ok(json!({"me": describe(&self.worker, &self.context), "down": down}))
    }
}

#[derive(Dependencies)]
struct Hop2 {
    hop3: RpcProxy,
    worker: Arc<WorkerContext>,
    context: ContextData,
}

#[service(name = "hop2")]
impl Hop2 {
    #[rpc]
    async fn call(&self) -> Result<Value, RpcError> {
        let down: Value = self.hop3.call("call", ()).await?;
        Ok(json!({"me": describe(&self.worker, &self.context), "down": down}))
    }
}

#[derive(Dependencies)]
struct Hop3 {
    worker: Arc<WorkerContext>,
    context: ContextData,
}

#[service(name = "hop3")]
impl Hop3 {
    #[rpc]
    async fn call(&self) -> Value {
        json!({"me": describe(&self.worker, &self.context)})
    }
}

async fn start_chain(cluster: &mut TestCluster) {
    cluster.start::<Hop3>().await;
    cluster.start::<Hop2>().await;
    cluster.start::<Hop1>().await;
}

cluster_tests! {
    async fn call_id_stack_grows_over_three_hops(cluster: TestCluster) {
        let mut cluster = cluster.predictable_call_ids();
        start_chain(&mut cluster).await;
        let proxy = cluster.proxy().await;
        let root = proxy.root_call_id().to_owned();
        assert!(root.starts_with("standalone_rpc_proxy.call."), "{root}");
        let out: Value = proxy.service("hop1").call("call", ()).await.unwrap();
        assert_eq!(out["me"]["stack"], json!([root, "hop1.call.0"]));
        assert_eq!(out["down"]["me"]["stack"], json!([root, "hop1.call.0", "hop2.call.1"]));
        let hop3 = &out["down"]["down"]["me"];
        assert_eq!(hop3["stack"], json!([root, "hop1.call.0", "hop2.call.1", "hop3.call.2"]));
        assert_eq!(hop3["origin"], json!(root));
        assert_eq!(hop3["parent"], json!("hop2.call.1"));
        assert_eq!(out["me"]["parent"], json!(root));
        cluster.shutdown().await;
    }

    async fn call_id_stack_is_truncated_at_parent_calls_tracked(cluster: TestCluster) {
        let mut cluster = cluster.predictable_call_ids().with_config("parent_calls_tracked", 1);
        start_chain(&mut cluster).await;
        let proxy = cluster.proxy().await;
        let out: Value = proxy.service("hop1").call("call", ()).await.unwrap();
        assert_eq!(out["down"]["down"]["me"]["stack"], json!(["hop2.call.1", "hop3.call.2"]));
        // hop2 sent its own truncated stack, so hop3 sees hop1 as the origin.
        assert_eq!(out["down"]["down"]["me"]["origin"], json!("hop1.call.0"));
        cluster.shutdown().await;
    }

    async fn context_data_reaches_every_downstream_worker(cluster: TestCluster) {
        let mut cluster = cluster;
        start_chain(&mut cluster).await;
        let context = ContextData::new()
            .with("language", "de")
            .with("user_id", 42)
            .with("auth_token", "s3cret")
            .with("user_agent", "tests/1.0")
            .with("custom_key", json!({"nested": [1, "two"]}));
        let proxy = cluster.proxy_with_context(context.clone()).await;
        let out: Value = proxy.service("hop1").call("call", ()).await.unwrap();
        let expected = Value::Object(context.to_map());
        assert_eq!(out["me"]["context"], expected);
        assert_eq!(out["down"]["down"]["me"]["context"], expected, "context survives two more hops");
        cluster.shutdown().await;
    }
}
