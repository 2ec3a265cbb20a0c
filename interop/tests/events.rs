//! Events between Python and Rust, both ways, for the three handler types (service pool,
//! singleton, broadcast), dispatched by services (carrying context and call id stacks)
//! and by the standalone dispatchers (carrying none).

use std::sync::Arc;
use std::time::Duration;

use nameko::prelude::*;
use nameko_interop::{Interop, Recorder, describe, run};

#[derive(Dependencies)]
struct Source {
    events: EventDispatcher,
}

#[service(name = "rs_src")]
impl Source {
    #[rpc]
    async fn emit(&self, event_type: String, payload: Value) -> Result<(), EventError> {
        self.events.dispatch(&event_type, payload).await
    }
}

/// Handles `py_src` events with each handler type, as `services.Listener` handles
/// `rs_src` events.
#[derive(Dependencies)]
struct Listener {
    records: Recorder,
    worker: Arc<WorkerContext>,
}

impl Listener {
    fn record(&self, handler: &str, payload: Value) {
        self.records.record(json!({
            "handler": handler,
            "payload": payload,
            "worker": describe(&self.worker),
        }));
    }
}

#[service(name = "rs_listener")]
impl Listener {
    #[event_handler("py_src", "pooled")]
    async fn on_pooled(&self, payload: Value) {
        self.record("service_pool", payload);
    }

    #[event_handler("py_src", "single", handler_type = singleton)]
    async fn on_single(&self, payload: Value) {
        self.record("singleton", payload);
    }

    #[event_handler("py_src", "broadcast", handler_type = broadcast, reliable_delivery = false)]
    async fn on_broadcast(&self, payload: Value) {
        self.record("broadcast", payload);
    }
}

/// A second service listening to `rs_src` broadcasts, next to Python's `py_listener`.
#[derive(Dependencies)]
struct Broadcasts {
    records: Recorder,
}

#[service(name = "rs_broadcasts")]
impl Broadcasts {
    #[event_handler("rs_src", "broadcast", handler_type = broadcast, reliable_delivery = false)]
    async fn on_broadcast(&self, payload: Value) {
        self.records.record(payload);
    }
}

const HANDLERS: [(&str, &str, &str); 3] = [
    ("pooled", "service_pool", "on_pooled"),
    ("single", "singleton", "on_single"),
    ("broadcast", "broadcast", "on_broadcast"),
];

const WAIT: Duration = Duration::from_secs(10);

/// Records sorted by payload index `i`.
fn by_index(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| r["payload"]["i"].as_u64());
    records
}

/// Checks that event `i` of `HANDLERS` reached its handler once, with `data` as
/// context and a call id stack of the handler's own id under parents that start with
/// `parents` (the dispatch's ancestry).
fn assert_handled(records: &[Value], service: &str, parents: &[&str], data: &Value) {
    assert_eq!(
        records.len(),
        HANDLERS.len(),
        "one record per event: {records:#?}"
    );
    for (i, (record, (_, handler, method))) in records.iter().zip(HANDLERS).enumerate() {
        assert_eq!(record["payload"], json!({"i": i, "text": "héllo ✓"}));
        assert_eq!(record["handler"], handler);
        let worker = &record["worker"];
        let own = worker["call_id"].as_str().unwrap();
        assert!(own.starts_with(&format!("{service}.{method}.")), "{own}");
        let stack: Vec<String> = serde_json::from_value(worker["stack"].clone()).unwrap();
        assert_eq!(stack.len(), parents.len() + 1, "{handler}: {stack:?}");
        for (id, prefix) in stack.iter().zip(parents) {
            assert!(id.starts_with(prefix), "{handler}: {stack:?}");
        }
        assert_eq!(stack.last().map(String::as_str), Some(own), "{handler}");
        assert_eq!(worker["data"], *data, "{handler}");
    }
}

async fn emit_from_rust_service(env: &mut Interop, context: &ContextData) -> String {
    env.start_rust::<Source>().await;
    let proxy = env.cluster().proxy_with_context(context.clone()).await;
    for (i, (event_type, ..)) in HANDLERS.iter().enumerate() {
        proxy
            .service("rs_src")
            .call::<Value>("emit", (event_type, json!({"i": i, "text": "héllo ✓"})))
            .await
            .unwrap();
    }
    proxy.root_call_id().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_service_events_reach_python_handlers_of_all_three_types() {
    run(async |mut env| {
        env.start_python(&["services:Listener"]).await;
        let context = ContextData::new().with("user_id", 5).with("language", "nl");
        let root = emit_from_rust_service(&mut env, &context).await;
        let records = by_index(env.python_records("py_listener", 3).await);
        let data = Value::Object(context.to_map());
        assert_handled(&records, "py_listener", &[&root, "rs_src.emit."], &data);
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_standalone_dispatcher_events_reach_python_handlers_of_all_three_types() {
    run(async |mut env| {
        env.start_python(&["services:Listener"]).await;
        let dispatcher = env.cluster().dispatcher().await;
        for (i, (event_type, ..)) in HANDLERS.iter().enumerate() {
            dispatcher
                .dispatch("rs_src", event_type, json!({"i": i, "text": "héllo ✓"}))
                .await
                .unwrap();
        }
        let records = by_index(env.python_records("py_listener", 3).await);
        assert_handled(&records, "py_listener", &[], &json!({}));
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_service_events_reach_rust_handlers_of_all_three_types() {
    run(async |mut env| {
        let records = Recorder::new();
        env.start_rust_recording::<Listener>(&records).await;
        env.start_python(&["services:Source"]).await;
        let context = json!({"user_id": 5, "language": "nl"});
        for (i, (event_type, ..)) in HANDLERS.iter().enumerate() {
            let emit = json!({"service": "py_src", "method": "emit", "context_data": context,
                              "args": [event_type, {"i": i, "text": "héllo ✓"}]});
            env.python("call", emit).await.unwrap();
        }
        let records = by_index(records.wait_for(3, WAIT).await);
        let parents = ["standalone_rpc_proxy.call.", "py_src.emit."];
        assert_handled(&records, "rs_listener", &parents, &context);
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_standalone_dispatcher_events_reach_rust_handlers_of_all_three_types() {
    run(async |mut env| {
        let records = Recorder::new();
        env.start_rust_recording::<Listener>(&records).await;
        for (i, (event_type, ..)) in HANDLERS.iter().enumerate() {
            let dispatch = json!({"source": "py_src", "event_type": event_type,
                                  "payload": {"i": i, "text": "héllo ✓"}});
            env.python("dispatch", dispatch).await.unwrap();
        }
        let records = by_index(records.wait_for(3, WAIT).await);
        assert_handled(&records, "rs_listener", &[], &json!({}));
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_one_instance_per_pool_and_every_broadcast_instance_in_both_languages() {
    run(async |mut env| {
        // Two Python instances of `py_listener`, two Rust instances of `rs_broadcasts`.
        env.start_python(&["services:Listener"]).await;
        env.start_python(&["services:Listener"]).await;
        let (first, second) = (Recorder::new(), Recorder::new());
        env.start_rust_recording::<Broadcasts>(&first).await;
        env.start_rust_recording::<Broadcasts>(&second).await;
        for i in 0..4 {
            for event_type in ["pooled", "broadcast"] {
                let dispatch =
                    json!({"source": "rs_src", "event_type": event_type, "payload": {"i": i}});
                env.python("dispatch", dispatch).await.unwrap();
            }
        }
        for rust in [&first, &second] {
            let payloads = rust.wait_for(4, WAIT).await;
            assert_eq!(
                payloads.len(),
                4,
                "every Rust instance gets every broadcast"
            );
        }
        let records = env.python_records("py_listener", 12).await;
        let count = |handler: &str| records.iter().filter(|r| r["handler"] == handler).count();
        assert_eq!(
            count("broadcast"),
            8,
            "both Python instances get every broadcast"
        );
        // Give a stray second delivery time to show up before counting the pool.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let records = env.python_records("py_listener", 12).await;
        let pooled: Vec<_> = records
            .iter()
            .filter(|r| r["handler"] == "service_pool")
            .collect();
        assert_eq!(
            pooled.len(),
            4,
            "each pooled event reaches one Python instance"
        );
        env.shutdown().await;
    })
    .await;
}
