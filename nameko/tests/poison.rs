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

mod random_messages {
    //! Hundreds of random messages (random bodies, headers of every field type, content
    //! types, routing keys, with and without `reply_to`) thrown at a running RPC service
    //! and an event handler: nothing panics, every message is settled, and the service
    //! still answers.

    use nameko::prelude::*;
    use nameko::testing::TestCluster;
    use nameko::transport::{
        FieldTable, FieldValue, Message, Properties, PublishOptions, QueueOptions,
    };
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    #[derive(Dependencies)]
    struct Target;

    #[service(name = "target")]
    impl Target {
        #[rpc]
        async fn echo(&self, value: Value) -> Value {
            value
        }

        #[rpc]
        async fn add(&self, a: i64, b: i64) -> i64 {
            a.wrapping_add(b)
        }

        #[event_handler("noise", "evt")]
        async fn on_event(&self, payload: Value) -> Value {
            payload
        }
    }

    fn field_value() -> impl Strategy<Value = FieldValue> {
        let leaf = prop_oneof![
            any::<bool>().prop_map(FieldValue::Bool),
            any::<i32>().prop_map(FieldValue::I32),
            any::<i64>().prop_map(FieldValue::I64),
            any::<f64>().prop_map(FieldValue::F64),
            any::<String>().prop_map(FieldValue::String),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(FieldValue::Bytes),
            (any::<u8>(), any::<u32>())
                .prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
            any::<u64>().prop_map(FieldValue::Timestamp),
            Just(FieldValue::Void),
        ];
        leaf.prop_recursive(2, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(FieldValue::Array),
                prop::collection::vec(("[a-z]{0,4}", inner), 0..4)
                    .prop_map(|kv| FieldValue::Table(kv.into_iter().collect())),
            ]
        })
    }

    #[derive(Debug, Clone)]
    struct Noise {
        routing_key: String,
        body: Vec<u8>,
        content_type: Option<String>,
        reply: bool,
        headers: Vec<(String, FieldValue)>,
    }

    fn noise() -> impl Strategy<Value = Noise> {
        let body = prop_oneof![
            prop::collection::vec(any::<u8>(), 0..48),
            Just(br#"{"args": [1, 2], "kwargs": {}}"#.to_vec()),
            Just(br#"{"args": [], "kwargs": {"value": NaN}}"#.to_vec()),
            Just(br#"{"args": ["x", 2], "kwargs": {"b": 3}}"#.to_vec()),
            "[\\[\\]{}\",:0-9a-z ]{0,30}".prop_map(String::into_bytes),
        ];
        let routing_key = prop_oneof![
            Just("target.echo".to_owned()),
            Just("target.add".to_owned()),
            Just("target.missing".to_owned()),
            Just("target.".to_owned()),
            "target\\.[a-z.]{0,6}",
        ];
        let content_type = prop_oneof![
            Just(Some("application/json".to_owned())),
            Just(None),
            Just(Some("text/plain".to_owned())),
            Just(Some("application/json; charset=utf-8".to_owned())),
            "[a-z/;= -]{0,20}".prop_map(Some),
        ];
        let headers = prop::collection::vec(
            (
                prop_oneof![
                    "nameko\\.[a-z_]{0,8}",
                    "[a-z-]{0,8}",
                    Just("nameko.call_id_stack".to_owned())
                ],
                field_value(),
            ),
            0..5,
        );
        (routing_key, body, content_type, any::<bool>(), headers).prop_map(
            |(routing_key, body, content_type, reply, headers)| Noise {
                routing_key,
                body,
                content_type,
                reply,
                headers,
            },
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn random_messages_never_stop_the_service() {
        let count: usize = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(400);
        let mut runner = TestRunner::deterministic();
        let strategy = noise();
        let messages: Vec<Noise> = (0..count)
            .map(|_| strategy.new_tree(&mut runner).unwrap().current())
            .collect();

        let mut cluster = TestCluster::memory().with_config("MAX_MESSAGE_SIZE", 1024);
        cluster.start::<Target>().await;
        let t = cluster.connect().await;
        t.declare_queue("noise-replies", QueueOptions::default())
            .await
            .unwrap();
        t.bind_queue("noise-replies", "nameko-rpc", "noise-reply-key")
            .await
            .unwrap();
        for (i, noise) in messages.iter().enumerate() {
            let mut properties = Properties::default().with_correlation_id(i.to_string());
            properties.content_type = noise.content_type.clone();
            properties.headers = noise.headers.iter().cloned().collect::<FieldTable>();
            if noise.reply {
                properties = properties.with_reply_to("noise-reply-key");
            }
            let (exchange, key) = if i % 4 == 0 {
                ("noise.events", "evt")
            } else {
                ("nameko-rpc", noise.routing_key.as_str())
            };
            if exchange == "noise.events" {
                t.declare_exchange(
                    exchange,
                    nameko::transport::ExchangeKind::Topic,
                    nameko::transport::ExchangeOptions::durable(),
                )
                .await
                .unwrap();
            }
            t.publish(
                exchange,
                key,
                Message::new(noise.body.clone(), properties),
                PublishOptions::default(),
            )
            .await
            .unwrap();
        }
        cluster.run_until_idle().await.unwrap();
        let broker = cluster.broker().unwrap();
        for queue in ["rpc-target", "evt-noise-evt--target.on_event"] {
            let info = broker.queue(queue).unwrap();
            assert_eq!(
                (info.ready, info.unacked),
                (0, 0),
                "{queue}: every message settled"
            );
        }
        let proxy = cluster.proxy().await;
        let sum: i64 = proxy.service("target").call("add", (2, 3)).await.unwrap();
        assert_eq!(sum, 5, "the service still answers");
        cluster.shutdown().await;
    }
}

/// A reply larger than the caller's `MAX_MESSAGE_SIZE` fails its call at once with an
/// error that says so (not as if the proxy had stopped), and the proxy goes on working.
#[tokio::test]
async fn an_oversized_reply_fails_its_call_with_an_error_saying_so() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Api>().await;
    let config = cluster.config().clone().with("MAX_MESSAGE_SIZE", 1000);
    let proxy = ClusterRpcProxy::start(cluster.connect().await, &config)
        .await
        .unwrap();
    let api = proxy.service("api");
    let error = api
        .call::<Value>("echo", ("x".repeat(5000),))
        .await
        .unwrap_err();
    match &error {
        RpcError::InvalidReply(text) => assert!(
            text.contains("larger than MAX_MESSAGE_SIZE (1000 bytes)"),
            "{text}"
        ),
        other => panic!("expected InvalidReply, got {other:?}"),
    }
    let small: Value = api.call("echo", ("small",)).await.unwrap();
    assert_eq!(small, json!("small"));
    proxy.stop().await;
    cluster.shutdown().await;
}
