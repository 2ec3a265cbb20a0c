//! Call id stacks and context data across chains of calls that switch between Python
//! and Rust at every hop: each hop appends its own call id, sees its caller as the
//! immediate parent, and truncates the stack at its own `parent_calls_tracked`.

use std::sync::Arc;

use nameko::prelude::*;
use nameko_interop::{Interop, describe, run};

#[derive(Dependencies)]
struct Relay {
    next: RpcProxy,
    worker: Arc<WorkerContext>,
}

#[service(name = "rs_relay")]
impl Relay {
    /// Calls `relay` on the next service of `path` with the rest of it; returns every
    /// hop's view, this one's first.
    #[rpc]
    async fn relay(&self, path: Vec<String>) -> Result<Vec<Value>, RpcError> {
        let mut hops = vec![describe(&self.worker)];
        if let Some((next, rest)) = path.split_first() {
            let down: Vec<Value> = self
                .next
                .to_service(next.as_str())
                .call("relay", (rest,))
                .await?;
            hops.extend(down);
        }
        Ok(hops)
    }
}

async fn start_relays(env: &mut Interop, python_config: Value) {
    env.start_rust::<Relay>().await;
    env.start_python_with(&["services:Relay"], python_config)
        .await;
}

fn call_ids(hops: &[Value]) -> Vec<String> {
    hops.iter()
        .map(|hop| hop["call_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every hop's call id is `<service>.relay.<uuid>`, in path order.
fn assert_services(ids: &[String], services: &[&str]) {
    assert_eq!(ids.len(), services.len(), "{ids:?}");
    for (id, service) in ids.iter().zip(services) {
        let uuid = id
            .strip_prefix(&format!("{service}.relay."))
            .unwrap_or_else(|| panic!("{id} is not a call id of {service}.relay"));
        assert!(uuid.parse::<uuid::Uuid>().is_ok(), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_id_stack_grows_across_python_rust_python_rust_hops() {
    run(async |mut env| {
        start_relays(&mut env, json!({})).await;
        let context = json!({"user_id": 7, "language": "fr", "custom_key": "carried"});
        let hops = env
            .python(
                "call",
                json!({"service": "rs_relay", "method": "relay",
                       "args": [["py_relay", "rs_relay"]], "context_data": context}),
            )
            .await
            .unwrap();
        let hops = hops.as_array().unwrap();
        let ids = call_ids(hops);
        assert_services(&ids, &["rs_relay", "py_relay", "rs_relay"]);
        let root = hops[0]["stack"][0].as_str().unwrap().to_owned();
        assert!(root.starts_with("standalone_rpc_proxy.call."), "{root}");
        for (i, hop) in hops.iter().enumerate() {
            let mut expected = vec![root.clone()];
            expected.extend_from_slice(&ids[..=i]);
            assert_eq!(hop["stack"], json!(expected), "hop {i}");
            assert_eq!(hop["origin"], json!(root), "hop {i}");
            let parent = if i == 0 { &root } else { &ids[i - 1] };
            assert_eq!(hop["parent"], json!(parent), "hop {i}");
            assert_eq!(hop["data"], context, "hop {i} sees the caller's context");
        }
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_id_stack_grows_across_rust_python_rust_python_hops() {
    run(async |mut env| {
        start_relays(&mut env, json!({})).await;
        let context = ContextData::new()
            .with("user_id", 7)
            .with("custom_key", "carried");
        let proxy = env.cluster().proxy_with_context(context.clone()).await;
        let root = proxy.root_call_id().to_owned();
        let hops: Vec<Value> = proxy
            .service("py_relay")
            .call("relay", (["rs_relay", "py_relay"],))
            .await
            .unwrap();
        let ids = call_ids(&hops);
        assert_services(&ids, &["py_relay", "rs_relay", "py_relay"]);
        for (i, hop) in hops.iter().enumerate() {
            let mut expected = vec![root.clone()];
            expected.extend_from_slice(&ids[..=i]);
            assert_eq!(hop["stack"], json!(expected), "hop {i}");
            assert_eq!(hop["data"], Value::Object(context.to_map()), "hop {i}");
        }
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_id_stack_is_truncated_at_each_sides_parent_calls_tracked() {
    run(async |env| {
        // Rust keeps two parents, Python one.
        let mut env = env.with_config("parent_calls_tracked", 2);
        start_relays(&mut env, json!({"parent_calls_tracked": 1})).await;
        let hops = env
            .python(
                "call",
                json!({"service": "rs_relay", "method": "relay",
                       "args": [["py_relay", "rs_relay", "py_relay", "rs_relay"]]}),
            )
            .await
            .unwrap();
        let hops = hops.as_array().unwrap();
        let ids = call_ids(hops);
        assert_services(
            &ids,
            &["rs_relay", "py_relay", "rs_relay", "py_relay", "rs_relay"],
        );
        let root = hops[0]["stack"][0].clone();
        let stacks: Vec<&Value> = hops.iter().map(|hop| &hop["stack"]).collect();
        assert_eq!(*stacks[0], json!([root, ids[0]]));
        assert_eq!(
            *stacks[1],
            json!([ids[0], ids[1]]),
            "Python keeps one parent"
        );
        assert_eq!(
            *stacks[2],
            json!([ids[0], ids[1], ids[2]]),
            "Rust keeps two"
        );
        assert_eq!(*stacks[3], json!([ids[2], ids[3]]));
        assert_eq!(*stacks[4], json!([ids[2], ids[3], ids[4]]));
        // What a hop cut is gone downstream: the origin is the oldest id it received.
        assert_eq!(hops[4]["origin"], json!(ids[2]));
        assert_eq!(
            hops[3]["origin"],
            json!(ids[0]),
            "the origin is the first id received"
        );
        env.shutdown().await;
    })
    .await;
}
