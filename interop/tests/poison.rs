//! Poison messages sent by hand to a Rust service that Python clients use: none stops the
//! service, every one is settled, those that can be answered get a `MalformedRequest`
//! that Python nameko raises as such, and Python's calls keep succeeding.

use std::time::Duration;

use nameko::prelude::*;
use nameko::transport::{Properties, QueueOptions};
use nameko_interop::{RawRpc, run};

#[derive(Dependencies)]
struct Api;

#[service(name = "rs_api")]
impl Api {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }
}

/// One hand-made request and the `MalformedRequest` message it must get back, if any.
struct Poison {
    name: &'static str,
    content_type: Option<&'static str>,
    reply_to: bool,
    body: &'static [u8],
    reply: Option<&'static str>,
}

const POISON: &[Poison] = &[
    Poison {
        name: "no reply_to",
        content_type: Some("application/json"),
        reply_to: false,
        body: br#"{"args": [1], "kwargs": {}}"#,
        reply: None,
    },
    Poison {
        name: "no content type",
        content_type: None,
        reply_to: true,
        body: br#"{"args": [1], "kwargs": {}}"#,
        reply: Some("Message has no content type"),
    },
    Poison {
        name: "broken JSON",
        content_type: Some("application/json"),
        reply_to: true,
        body: br#"{"args": [1"#,
        reply: Some("Invalid JSON in request body"),
    },
    Poison {
        name: "wrong content type",
        content_type: Some("text/plain"),
        reply_to: true,
        body: b"hello",
        reply: Some("Unsupported content type `text/plain`"),
    },
    Poison {
        name: "non-UTF-8 body",
        content_type: Some("application/json"),
        reply_to: true,
        body: b"{\xff\xfe}",
        reply: Some("Invalid JSON in request body"),
    },
];

async fn python_echo(env: &nameko_interop::Interop, value: Value) -> Value {
    env.python_call("rs_api", "echo", json!([value]))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_requests_to_a_rust_service_leave_python_callers_unaffected() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        assert_eq!(python_echo(&env, json!("before")).await, json!("before"));
        let mut raw = RawRpc::connect(env.cluster()).await;
        for (i, poison) in POISON.iter().enumerate() {
            let mut properties = Properties::default().with_correlation_id(format!("poison-{i}"));
            if poison.reply_to {
                properties = properties.with_reply_to(raw.reply_to().to_owned());
            }
            if let Some(content_type) = poison.content_type {
                properties = properties.with_content_type(content_type);
            }
            raw.send("rs_api.echo", poison.body, properties).await;
            let Some(expected) = poison.reply else {
                continue;
            };
            let reply = raw
                .reply(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("{}: no reply", poison.name));
            let correlation_id = format!("poison-{i}");
            assert_eq!(
                reply.properties.correlation_id.as_deref(),
                Some(correlation_id.as_str())
            );
            let error = nameko::wire::decode_reply(&reply.body)
                .unwrap()
                .unwrap_err();
            assert_eq!(
                error.exc_path, "nameko.exceptions.MalformedRequest",
                "{}",
                poison.name
            );
            assert!(
                error.value.starts_with(expected),
                "{}: {}",
                poison.name,
                error.value
            );
            assert_eq!(
                python_echo(&env, json!(poison.name)).await,
                json!(poison.name),
                "Python's call right after {}",
                poison.name
            );
        }
        assert!(
            raw.reply(Duration::from_millis(300)).await.is_none(),
            "nothing answered the request without reply_to"
        );
        let queue = raw
            .transport()
            .declare_queue("rpc-rs_api", QueueOptions::passive())
            .await
            .unwrap();
        assert_eq!(queue.message_count, 0, "every poison message was settled");
        assert_eq!(queue.consumer_count, 1, "the Rust service still consumes");
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_raises_malformed_request_for_poison_it_sends_to_a_rust_service() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        for (body, content_type, message) in [
            (r#"{"args": [1"#, "application/json", "Invalid JSON in request body"),
            ("[1, 2]", "application/json", "Message missing `args` or `kwargs`"),
            // A lone surrogate: valid for Python's json, no string in Rust.
            (r#"{"args": ["\ud800"], "kwargs": {}}"#, "application/json", "Invalid JSON in request body"),
            ("hello", "text/plain", "Unsupported content type `text/plain`"),
        ] {
            let error = env
                .python(
                    "call_raw",
                    json!({"routing_key": "rs_api.echo", "body": body, "content_type": content_type}),
                )
                .await
                .unwrap_err();
            assert_eq!(error.class, "nameko.exceptions.MalformedRequest", "{body}");
            assert!(error.message.starts_with(message), "{body}: {}", error.message);
        }
        assert_eq!(python_echo(&env, json!("after")).await, json!("after"));
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_service_answers_json_with_a_charset_that_python_nameko_would_drop() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let answer = env
            .python(
                "call_raw",
                json!({"routing_key": "rs_api.echo",
                       "body": r#"{"args": ["charset"], "kwargs": {}}"#,
                       "content_type": "application/json; charset=utf-8"}),
            )
            .await
            .unwrap();
        assert_eq!(answer, json!("charset"));
        env.shutdown().await;
    })
    .await;
}
