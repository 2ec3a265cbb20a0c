//! Poison messages, on the in-memory broker and on RabbitMQ: requests nameko cannot read
//! are answered with `MalformedRequest` where a reply is possible, are settled, and do
//! not stop the service from serving the next call.

use std::time::Duration;

use futures_util::StreamExt;
use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};
use nameko::transport::{ConsumeOptions, Message, Properties, PublishOptions, QueueOptions};
use nameko::wire::decode_reply;

#[derive(Dependencies)]
struct Api;

#[service(name = "api")]
impl Api {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }
}

/// What a poison message looks like, and what it must produce.
struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// The start of the `MalformedRequest` message, or `None` when no reply is possible.
    reply: Option<&'static str>,
    reply_to: bool,
}

fn cases() -> Vec<Case> {
    let json = Some("application/json");
    vec![
        Case {
            name: "no reply_to",
            content_type: json,
            body: br#"{"args": [1], "kwargs": {}}"#.to_vec(),
            reply: None,
            reply_to: false,
        },
        Case {
            name: "no content type",
            content_type: None,
            body: br#"{"args": [1], "kwargs": {}}"#.to_vec(),
            reply: Some("Message has no content type"),
            reply_to: true,
        },
        Case {
            name: "wrong content type",
            content_type: Some("text/plain"),
            body: b"hello".to_vec(),
            reply: Some("Unsupported content type `text/plain`"),
            reply_to: true,
        },
        Case {
            name: "broken JSON",
            content_type: json,
            body: br#"{"args": [1"#.to_vec(),
            reply: Some("Invalid JSON in request body"),
            reply_to: true,
        },
        Case {
            name: "non-UTF-8 body",
            content_type: json,
            body: vec![b'{', 0xff, 0xfe, b'}'],
            reply: Some("Invalid JSON in request body"),
            reply_to: true,
        },
        Case {
            name: "missing kwargs",
            content_type: json,
            body: br#"{"args": [1]}"#.to_vec(),
            reply: Some("Message missing `args` or `kwargs`"),
            reply_to: true,
        },
        Case {
            name: "body is a list",
            content_type: json,
            body: b"[1, 2]".to_vec(),
            reply: Some("Message missing `args` or `kwargs`"),
            reply_to: true,
        },
        Case {
            name: "too large",
            content_type: json,
            body: format!(r#"{{"args": ["{}"], "kwargs": {{}}}}"#, "x".repeat(4096)).into_bytes(),
            reply: Some("Message body of 4124 bytes is larger than MAX_MESSAGE_SIZE (4000 bytes)"),
            reply_to: true,
        },
    ]
}

cluster_tests! {
    async fn poison_requests_are_answered_settled_and_survived(cluster: TestCluster) {
        let mut cluster = cluster.with_config("MAX_MESSAGE_SIZE", 4000);
        cluster.start::<Api>().await;
        let transport = cluster.connect().await;
        let reply_key = format!("poison-{}", uuid_like());
        let reply_queue = format!("poison-replies-{reply_key}");
        transport.declare_queue(&reply_queue, QueueOptions::default().with_auto_delete(true)).await.unwrap();
        transport.bind_queue(&reply_queue, "nameko-rpc", &reply_key).await.unwrap();
        let mut replies = transport.consume(&reply_queue, ConsumeOptions::default()).await.unwrap();
        for (i, case) in cases().into_iter().enumerate() {
            let mut properties = Properties::default().with_correlation_id(format!("poison-{i}"));
            if case.reply_to {
                properties = properties.with_reply_to(reply_key.clone());
            }
            if let Some(ct) = case.content_type {
                properties = properties.with_content_type(ct);
            }
            transport
                .publish("nameko-rpc", "api.echo", Message::new(case.body, properties), PublishOptions::default())
                .await
                .unwrap();
            if let Some(expected) = case.reply {
                let delivery = tokio::time::timeout(Duration::from_secs(5), replies.next())
                    .await
                    .unwrap_or_else(|_| panic!("{}: no reply", case.name))
                    .unwrap()
                    .unwrap();
                assert_eq!(delivery.properties().correlation_id.as_deref(), Some(format!("poison-{i}").as_str()), "{}", case.name);
                assert_eq!(delivery.properties().content_type.as_deref(), Some("application/json"), "{}", case.name);
                let error = decode_reply(delivery.body()).unwrap().unwrap_err();
                assert_eq!(error.exc_type, "MalformedRequest", "{}", case.name);
                assert_eq!(error.exc_path, "nameko.exceptions.MalformedRequest", "{}", case.name);
                assert!(error.value.starts_with(expected), "{}: {}", case.name, error.value);
                delivery.ack().await.unwrap();
            }
        }
        // A normal call still succeeds, and nothing is left in the request queue.
        let proxy = cluster.proxy().await;
        let out: Value = proxy.service("api").call("echo", ("still alive",)).await.unwrap();
        assert_eq!(out, json!("still alive"));
        cluster.run_until_idle().await.unwrap();
        let queue = transport.declare_queue("rpc-api", QueueOptions::passive()).await.unwrap();
        assert_eq!(queue.message_count, 0, "every poison message was settled");
        cluster.shutdown().await;
    }
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )
}
