//! What a Rust proxy and a Rust service put on the wire, checked against Python nameko's
//! protocol, on the in-memory broker and on RabbitMQ: exchange, routing key, properties,
//! headers and body of requests and replies, and the flags of every declaration (a
//! redeclaration with other flags is refused by the broker, which is how Python and Rust
//! services sharing a queue would fail).

use std::time::Duration;

use futures_util::StreamExt;
use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};
use nameko::transport::{
    ConsumeOptions, DeliveryMode, ExchangeKind, ExchangeOptions, FieldValue, QueueOptions,
    TransportError,
};

#[derive(Dependencies)]
struct Api;

#[service(name = "api")]
impl Api {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }
}

fn refused<T>(result: Result<T, TransportError>) -> bool {
    matches!(result, Err(TransportError::PreconditionFailed(_)))
}

async fn next(consumer: &mut nameko::transport::Consumer) -> nameko::transport::Delivery {
    tokio::time::timeout(Duration::from_secs(5), consumer.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit() && !c.is_ascii_uppercase()
            }
        })
}

cluster_tests! {
    async fn requests_and_replies_match_python_nameko_byte_for_byte(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Api>().await;
        let transport = cluster.connect().await;
        transport.declare_queue("capture", QueueOptions::default().with_auto_delete(true)).await.unwrap();
        transport.bind_queue("capture", "nameko-rpc", "#").await.unwrap();
        let mut capture = transport.consume("capture", ConsumeOptions::default()).await.unwrap();
        let context = ContextData::new().with("language", "en-gb").with("user_id", 42).with("custom_key", "cv");
        let proxy = cluster.proxy_with_context(context).await;
        let out: Value = proxy.service("api").call("echo", ("héllo",)).await.unwrap();
        assert_eq!(out, json!("héllo"));

        let request = next(&mut capture).await;
        let request = {
            let (message, info, acker) = request.into_parts();
            acker.ack().await.unwrap();
            assert_eq!(info.exchange, "nameko-rpc");
            assert_eq!(info.routing_key, "api.echo");
            message
        };
        let p = &request.properties;
        assert_eq!(&request.body[..], br#"{"args": ["h\u00e9llo"], "kwargs": {}}"#);
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        assert_eq!(p.content_encoding.as_deref(), Some("utf-8"));
        assert_eq!(p.delivery_mode, Some(DeliveryMode::Persistent));
        assert_eq!(p.priority, Some(0));
        let correlation_id = p.correlation_id.clone().unwrap();
        assert!(is_uuid(&correlation_id), "{correlation_id}");
        let reply_to = p.reply_to.clone().unwrap();
        assert!(is_uuid(&reply_to), "reply_to is the bare uuid routing key: {reply_to}");
        assert_eq!(proxy.reply_queue(), format!("rpc.reply-standalone_rpc_proxy-{reply_to}"));
        assert_eq!(p.headers.get("nameko.language"), Some(&FieldValue::String("en-gb".into())));
        assert_eq!(p.headers.get("nameko.user_id"), Some(&FieldValue::I32(42)));
        assert_eq!(p.headers.get("nameko.custom_key"), Some(&FieldValue::String("cv".into())));
        assert_eq!(
            p.headers.get("nameko.call_id_stack"),
            Some(&FieldValue::Array(vec![FieldValue::String(proxy.root_call_id().to_owned())]))
        );
        assert_eq!(p.headers.len(), 4, "only context headers: {:?}", p.headers);

        let reply = next(&mut capture).await;
        let (reply, info, acker) = reply.into_parts();
        acker.ack().await.unwrap();
        assert_eq!(info.exchange, "nameko-rpc");
        assert_eq!(info.routing_key, reply_to, "the reply goes through nameko-rpc to reply_to");
        assert_eq!(&reply.body[..], br#"{"result": "h\u00e9llo", "error": null}"#);
        let p = &reply.properties;
        assert_eq!(p.correlation_id.as_deref(), Some(correlation_id.as_str()));
        assert_eq!(p.content_type.as_deref(), Some("application/json"));
        assert_eq!(p.content_encoding.as_deref(), Some("utf-8"));
        assert_eq!(p.delivery_mode, Some(DeliveryMode::Persistent));
        assert_eq!(p.priority, Some(0));
        assert!(p.headers.is_empty(), "replies carry no context: {:?}", p.headers);
        assert_eq!(p.reply_to, None);
        cluster.shutdown().await;
    }

    async fn declarations_have_namekos_exact_flags(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Api>().await;
        let proxy = cluster.proxy().await;
        let t = cluster.connect().await;
        // Identical redeclarations succeed...
        t.declare_exchange("nameko-rpc", ExchangeKind::Topic, ExchangeOptions::durable()).await.unwrap();
        t.declare_queue("rpc-api", QueueOptions::durable()).await.unwrap();
        t.declare_queue(&proxy.reply_queue(), QueueOptions::durable().with_expires(300_000)).await.unwrap();
        // ...and any other flag or argument is refused, as RabbitMQ refuses a Python
        // service whose declaration differs.
        let t = cluster.connect().await;
        assert!(refused(t.declare_exchange("nameko-rpc", ExchangeKind::Direct, ExchangeOptions::durable()).await));
        let t = cluster.connect().await;
        assert!(refused(t.declare_queue("rpc-api", QueueOptions::default()).await), "rpc-api is durable");
        let t = cluster.connect().await;
        assert!(refused(t.declare_queue("rpc-api", QueueOptions::durable().with_expires(1000)).await), "rpc-api has no arguments");
        let t = cluster.connect().await;
        assert!(refused(t.declare_queue(&proxy.reply_queue(), QueueOptions::durable()).await), "reply queues expire");
        let t = cluster.connect().await;
        assert!(refused(t.declare_queue(&proxy.reply_queue(), QueueOptions::durable().with_expires(300_001)).await));
        if let Some(broker) = cluster.broker() {
            let bindings = broker.bindings();
            assert!(bindings.iter().any(|b| b.exchange == "nameko-rpc" && b.queue == "rpc-api" && b.routing_key == "api.*"));
            let queue = proxy.reply_queue();
            let reply_key = queue.trim_start_matches("rpc.reply-standalone_rpc_proxy-");
            assert!(bindings.iter().any(|b| b.queue == queue && b.routing_key == reply_key));
            let reply_queue = broker.queue(&queue).unwrap();
            assert_eq!(reply_queue.arguments.get("x-expires"), Some(&FieldValue::I32(300_000)));
            assert!(!reply_queue.exclusive && !reply_queue.auto_delete && reply_queue.durable);
        }
        cluster.shutdown().await;
    }
}
