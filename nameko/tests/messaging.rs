//! Generic messaging, on the in-memory broker and on RabbitMQ: a `Publisher` dependency
//! publishing to an exchange with extra headers and the worker's context, and the
//! `consume` entrypoint; plus the test-only `once` and `dummy` entrypoints.

use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use nameko::messaging::ExchangeDef;
use nameko::messaging::PublisherProvider;
use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests, entrypoint_hook};
use nameko::transport::{ConsumeOptions, ExchangeKind, FieldTable, FieldValue, QueueOptions};

static CONSUMED: Mutex<Vec<(Value, Value)>> = Mutex::new(Vec::new());
static ONCE: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[derive(Dependencies)]
struct Audit {
    #[dependency(PublisherProvider::new(ExchangeDef::new("audit", ExchangeKind::Topic)))]
    publisher: Publisher,
    context: ContextData,
}

#[service(name = "audit")]
impl Audit {
    #[rpc]
    async fn record(&self, action: String) -> Result<(), EventError> {
        let headers = FieldTable::new()
            .with("x-trace", "t-1")
            .with("nameko.tenant", "acme");
        self.publisher
            .publish_with_headers(
                &format!("audit.{action}"),
                json!({"action": action}),
                headers,
            )
            .await
    }

    #[consume(queue = "audit-log", exchange = "audit", routing_key = "audit.#")]
    async fn log(&self, body: Value) {
        CONSUMED
            .lock()
            .unwrap()
            .push((body, Value::Object(self.context.to_map())));
    }

    #[once("hello", 2)]
    async fn on_start(&self, greeting: String, times: u32) {
        ONCE.lock().unwrap().push(json!([greeting, times]));
    }

    #[dummy]
    async fn only_by_hooks(&self, x: i64) -> i64 {
        x * 2
    }
}

cluster_tests! {
    async fn publish_and_consume_round_trip_with_custom_headers(cluster: TestCluster) {
        let mut cluster = cluster;
        let container = cluster.start::<Audit>().await;
        let t = cluster.connect().await;
        t.declare_queue("audit-capture", QueueOptions::default().with_auto_delete(true)).await.unwrap();
        t.bind_queue("audit-capture", "audit", "#").await.unwrap();
        let mut capture = t.consume("audit-capture", ConsumeOptions::default()).await.unwrap();
        let run = format!("login-{}", cluster.is_memory());
        let proxy = cluster.proxy_with_context(ContextData::new().with("user_id", 7)).await;
        proxy.service("audit").call::<Value>("record", (run.clone(),)).await.unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(5), capture.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(delivery.routing_key(), format!("audit.{run}"));
        let headers = &delivery.properties().headers;
        assert_eq!(headers.get("x-trace"), Some(&FieldValue::String("t-1".into())));
        assert_eq!(headers.get("nameko.user_id"), Some(&FieldValue::I32(7)));
        assert!(headers.contains_key("nameko.call_id_stack"));
        assert_eq!(&delivery.body()[..], format!(r#"{{"action": "{run}"}}"#).as_bytes());
        delivery.ack().await.unwrap();
        cluster.run_until_idle().await.unwrap();
        let consumed: Vec<_> = CONSUMED.lock().unwrap().iter().filter(|(b, _)| b["action"] == run).cloned().collect();
        assert_eq!(consumed.len(), 1);
        let context = &consumed[0].1;
        assert_eq!(context["user_id"], json!(7), "the publishing worker's context travels");
        assert_eq!(context["tenant"], json!("acme"), "nameko.* extra headers become context");
        assert!(context.get("x-trace").is_none(), "foreign headers do not enter the context");

        // `once` fired at start; `dummy` fires only through a hook.
        assert!(ONCE.lock().unwrap().contains(&json!(["hello", 2])));
        let doubled: i64 = entrypoint_hook(&container, "only_by_hooks").call_as((21,)).await.unwrap();
        assert_eq!(doubled, 42);
        cluster.shutdown().await;
    }
}
