//! Generic messaging between Python and Rust: nameko's `Publisher` dependency and
//! `@consume` entrypoint on one shared topic exchange, both ways, with the publishing
//! worker's context and call id stack carried to the consumer.

use std::sync::Arc;
use std::time::Duration;

use nameko::messaging::ExchangeDef;
use nameko::messaging::PublisherProvider;
use nameko::prelude::*;
use nameko::transport::ExchangeKind;
use nameko_interop::{Recorder, describe, run};

/// The Rust side of `services.Audit`: publishes `rs.<action>` to `audit`, consumes
/// `py.#` from it.
#[derive(Dependencies)]
struct Audit {
    #[dependency(PublisherProvider::new(ExchangeDef::new("audit", ExchangeKind::Topic)))]
    publisher: Publisher,
    records: Recorder,
    worker: Arc<WorkerContext>,
}

#[service(name = "rs_audit")]
impl Audit {
    #[rpc]
    async fn record(&self, action: String) -> Result<(), EventError> {
        let routing_key = format!("rs.{action}");
        self.publisher
            .publish(&routing_key, json!({"action": action, "by": "rust"}))
            .await
    }

    #[consume(queue = "audit-rust", exchange = "audit", routing_key = "py.#")]
    async fn log(&self, body: Value) {
        self.records
            .record(json!({"payload": body, "worker": describe(&self.worker)}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_publishers_reach_each_others_consumers_with_context() {
    run(async |mut env| {
        let rust = Recorder::new();
        env.start_rust_recording::<Audit>(&rust).await;
        // Declares the exchange `audit` again, as Python does: the flags must match.
        env.start_python(&["services:Audit"]).await;
        let context = json!({"user_id": 11, "language": "pt"});

        let record = json!({"service": "py_audit", "method": "record",
                            "args": ["login"], "context_data": context});
        env.python("call", record).await.unwrap();
        let from_python = rust.wait_for(1, Duration::from_secs(10)).await;
        assert_eq!(from_python.len(), 1, "{from_python:?}");
        assert_eq!(
            from_python[0]["payload"],
            json!({"action": "login", "by": "python"})
        );
        let worker = &from_python[0]["worker"];
        assert_eq!(worker["data"], context);
        let stack = worker["stack"].as_array().unwrap();
        assert_eq!(stack.len(), 3, "{stack:?}");
        assert!(stack[1].as_str().unwrap().starts_with("py_audit.record."));
        assert!(stack[2].as_str().unwrap().starts_with("rs_audit.log."));

        let proxy = env
            .cluster()
            .proxy_with_context(ContextData::from_map(context.as_object().unwrap().clone()))
            .await;
        proxy
            .service("rs_audit")
            .call::<Value>("record", ("logout",))
            .await
            .unwrap();
        let from_rust = env.python_records("py_audit", 1).await;
        assert_eq!(from_rust.len(), 1, "{from_rust:?}");
        assert_eq!(
            from_rust[0]["payload"],
            json!({"action": "logout", "by": "rust"})
        );
        let worker = &from_rust[0]["worker"];
        assert_eq!(worker["data"], context);
        let stack = worker["stack"].as_array().unwrap();
        assert_eq!(stack[0], json!(proxy.root_call_id()));
        assert!(stack[1].as_str().unwrap().starts_with("rs_audit.record."));
        assert!(stack[2].as_str().unwrap().starts_with("py_audit.log."));
        env.shutdown().await;
    })
    .await;
}
