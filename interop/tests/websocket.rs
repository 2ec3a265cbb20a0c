//! WebSocket RPC and the hub against Python nameko 2.14.1: the same service
//! (`nameko_examples::WebsocketService` with `WebsocketEdges` below, and
//! `python/websocket_service.py`) answers the same frames, played by Python's
//! websocket-client (`python/ws_client.py`), with the same frames, byte for byte: the
//! `connected` event, results, every kind of error, pushed events; and the
//! `order_placed` events of `order_service` reach subscribed sockets alike.
//!
//! Not compared (documented in the README): `NaN` and `Infinity` in a frame (Python
//! echoes them; nameko-rs reads them as `null`) and integers beyond 64 bits.

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::websocket::{ConnectionNotFound, WebSocketHub};
use nameko::web::ws_rpc;
use nameko_examples::WebsocketService;
use nameko_interop::{Agent, PythonWeb, python_ws_client};

/// `python/websocket_service.py`'s `ValueTooLarge`.
#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "ValueTooLarge",
    exc_path = "websocket_service.ValueTooLarge",
    display = "{0}"
)]
struct ValueTooLarge(String);

/// The methods of the comparison that the example does not have; another service of
/// the process, on the same `/ws`.
#[derive(Dependencies)]
struct WebsocketEdges {
    hub: WebSocketHub,
}

#[service(name = "websocket_edges")]
impl WebsocketEdges {
    #[ws_rpc]
    async fn fail(&self, socket_id: String, value: String) -> Result<Value, ValueTooLarge> {
        let _ = socket_id;
        Err(ValueTooLarge(value))
    }

    #[ws_rpc]
    async fn subscribe_other(
        &self,
        socket_id: String,
        other: String,
        channel: String,
    ) -> Result<&'static str, ConnectionNotFound> {
        let _ = socket_id;
        self.hub.subscribe(&other, &channel)?;
        Ok("subscribed")
    }

    #[ws_rpc]
    async fn unicast(&self, socket_id: String, target: String, value: Value) -> bool {
        let _ = socket_id;
        self.hub.unicast(&target, "direct", value)
    }
}

/// Every frame `a` sends, each answered once.
const FRAMES: &[&str] = &[
    // Results.
    r#"{"method": "echo", "data": {"value": "hi"}, "correlation_id": 1}"#,
    r#"{"method": "echo", "data": {"value": {"a": [1, 2.5, "é", null, true]}}}"#,
    r#"{"method": "echo", "data": {"value": 1.0}, "correlation_id": 1.5}"#,
    r#"{"method": "echo", "data": {"value": 1e16}, "correlation_id": [1, {"k": "v"}]}"#,
    r#"{"method": "echo", "data": {"value": "\ud83d\ude00 \u00e9"}, "correlation_id": "s"}"#,
    r#"{"method": "echo", "method": "subscriptions", "correlation_id": "last key wins"}"#,
    // MalformedRequest.
    "not json",
    "[1, 2]",
    "\"str\"",
    "",
    "{}",
    r#"{"data": {}, "correlation_id": 5}"#,
    // MethodNotFound.
    r#"{"method": "nope", "data": {}, "correlation_id": "c1"}"#,
    r#"{"method": 5, "correlation_id": "c2"}"#,
    r#"{"method": null}"#,
    // IncorrectSignature.
    r#"{"method": "echo", "data": {}, "correlation_id": 2}"#,
    r#"{"method": "echo", "data": {"value": 1, "x": 2}, "correlation_id": 3}"#,
    r#"{"method": "echo", "data": {"value": 1, "socket_id": 2}, "correlation_id": 4}"#,
    r#"{"method": "echo", "data": [1], "correlation_id": 6}"#,
    r#"{"method": "echo", "data": "abc", "correlation_id": 7}"#,
    r#"{"method": "echo", "data": 5, "correlation_id": 8}"#,
    r#"{"method": "echo", "data": null, "correlation_id": 9}"#,
    r#"{"method": "subscriptions", "data": {"channel": "x"}, "correlation_id": 10}"#,
    // Falsy data is no arguments.
    r#"{"method": "subscriptions", "data": null, "correlation_id": 11}"#,
    r#"{"method": "subscriptions", "data": [], "correlation_id": {"k": 1}}"#,
    r#"{"method": "subscriptions", "data": 0, "correlation_id": 12}"#,
    // The method's own error.
    r#"{"method": "fail", "data": {"value": "big"}, "correlation_id": 13}"#,
    // The hub.
    r#"{"method": "subscribe", "data": {"channel": "b"}, "correlation_id": 14}"#,
    r#"{"method": "subscribe", "data": {"channel": "a"}, "correlation_id": 15}"#,
    r#"{"method": "subscribe", "data": {"channel": "a"}, "correlation_id": 16}"#,
    r#"{"method": "subscriptions", "correlation_id": 17}"#,
    r#"{"method": "unsubscribe", "data": {"channel": "b"}, "correlation_id": 18}"#,
    r#"{"method": "unsubscribe", "data": {"channel": "never"}, "correlation_id": 19}"#,
    r#"{"method": "subscriptions", "correlation_id": 20}"#,
    r#"{"method": "subscribe_other", "data": {"other": "nobody", "channel": "x"}, "correlation_id": 21}"#,
    r#"{"method": "unicast", "data": {"target": "nobody", "value": 1}, "correlation_id": 22}"#,
];

/// The whole script: socket `a` sends every frame of [`FRAMES`]; then pushed events
/// between `a` and `b`; then `b` goes.
fn script() -> Value {
    let mut steps = vec![json!({"connect": "a"}), json!({"connect": "b"})];
    for frame in FRAMES {
        steps.push(json!({"send": "a", "text": frame}));
        steps.push(json!({"recv": "a"}));
    }
    steps.extend([
        json!({"send_binary": "a", "text": r#"{"method": "echo", "data": {"value": "binary"}, "correlation_id": 23}"#}),
        json!({"recv": "a"}),
        // Unicast to `b`, and `a` subscribing `b`.
        json!({"send": "a", "text": r#"{"method": "unicast", "data": {"target": "<b>", "value": {"to": "b"}}, "correlation_id": 24}"#}),
        json!({"recv": "a"}),
        json!({"recv": "b"}),
        json!({"send": "a", "text": r#"{"method": "subscribe_other", "data": {"other": "<b>", "channel": "a"}, "correlation_id": 25}"#}),
        json!({"recv": "a"}),
        json!({"send": "b", "text": r#"{"method": "subscriptions", "correlation_id": 26}"#}),
        json!({"recv": "b"}),
        // Broadcasts: to both, then to `a` only, then to nobody.
        json!({"post": "/broadcast/a", "body": r#"{"n": 1, "s": "é"}"#}),
        json!({"recv": "a"}),
        json!({"recv": "b"}),
        json!({"post": "/broadcast/b", "body": "[2]"}),
        json!({"post": "/broadcast/nobody", "body": "3"}),
        json!({"send": "a", "text": r#"{"method": "subscribe", "data": {"channel": "b"}, "correlation_id": 27}"#}),
        json!({"recv": "a"}),
        json!({"post": "/broadcast/b", "body": "4"}),
        json!({"recv": "a"}),
        // `b` goes: its subscriptions and unicasts with it.
        json!({"close": "b"}),
        json!({"sleep": 0.5}),
        json!({"send": "a", "text": r#"{"method": "unicast", "data": {"target": "<b>", "value": 5}, "correlation_id": 28}"#}),
        json!({"recv": "a"}),
        json!({"post": "/broadcast/a", "body": "6"}),
        json!({"recv": "a"}),
    ]);
    Value::Array(steps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_frames_are_answered_as_python_nameko_answers_them() {
    let Some(agent) = Agent::shared().await else {
        return;
    };
    let Some(python) = PythonWeb::serve("websocket_service.py", &[]).await else {
        return;
    };
    let mut cluster = TestCluster::memory();
    cluster.start::<WebsocketService>().await;
    cluster.start::<WebsocketEdges>().await;
    let rust = cluster.web_session().addr();

    let script = script();
    let from_python = python_ws_client(&agent, python.addr(), &script).await;
    let from_rust = python_ws_client(&agent, rust, &script).await;
    let (python_steps, rust_steps) = (
        from_python.as_array().unwrap(),
        from_rust.as_array().unwrap(),
    );
    assert_eq!(python_steps.len(), rust_steps.len());
    for (python, rust) in python_steps.iter().zip(rust_steps) {
        assert_eq!(
            rust, python,
            "nameko-rs answered differently from Python nameko"
        );
    }
    // The comparison saw every kind of answer.
    let text = from_python.to_string();
    for kind in [
        "MalformedRequest",
        "MethodNotFound",
        "IncorrectSignature",
        "ValueTooLarge",
        "ConnectionNotFound",
        "\\\"direct\\\"",
        "\\\"message\\\"",
    ] {
        assert!(text.contains(kind), "the script has no {kind}");
    }
    cluster.shutdown().await;
}

/// `order_service`'s `order_placed` events reach sockets subscribed to `orders` on
/// both, in the same frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_placed_events_are_pushed_as_python_pushes_them() {
    let Some(agent) = Agent::shared().await else {
        return;
    };
    let payload =
        json!({"order_id": 7, "customer_email": "ada@example.com", "payment": {"amount": 1.5}});
    let script = json!([
        {"connect": "a"},
        {"send": "a", "text": r#"{"method": "subscribe", "data": {"channel": "orders"}, "correlation_id": 1}"#},
        {"recv": "a"},
        // Waits (10 s at most) for the event, dispatched 3 s after the client started.
        {"recv": "a"},
    ]);
    let mut frames = Vec::new();
    for side in ["python", "rust"] {
        let Some(cluster) = TestCluster::rabbitmq().await else {
            return;
        };
        let uri = cluster.amqp_uri().unwrap().to_owned();
        let mut cluster = cluster;
        let python;
        let addr = if side == "python" {
            let Some(started) = PythonWeb::serve("websocket_service.py", &[&uri]).await else {
                return;
            };
            python = Some(started);
            python.as_ref().unwrap().addr()
        } else {
            python = None;
            cluster.start::<WebsocketService>().await;
            cluster.web_session().addr()
        };
        let client = python_ws_client(&agent, addr, &script);
        let dispatch = async {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            cluster
                .dispatch("order_service", "order_placed", &payload)
                .await;
        };
        let (answer, ()) = tokio::join!(client, dispatch);
        frames.push(answer);
        drop(python);
        cluster.shutdown().await;
    }
    assert_eq!(
        frames[1][2]["frame"],
        r#"{"type": "event", "event": "order_placed", "data": {"order_id": 7, "customer_email": "ada@example.com", "payment": {"amount": 1.5}}}"#
    );
    assert_eq!(frames[0], frames[1]);
}
