//! WebSocket RPC (`#[ws_rpc]`) on `/ws`: nameko's frames, its error dicts for every kind
//! of bad frame (none closes the socket), context data from the upgrade request, and
//! one worker per frame, counted against `max_workers`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::Ws;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::{WebConfig, ws_rpc};

#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "ValueTooLarge",
    exc_path = "websocket_service.ValueTooLarge",
    display = "{0}"
)]
struct ValueTooLarge(String);

static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST_RUNNING: AtomicUsize = AtomicUsize::new(0);

#[derive(Dependencies)]
struct Sockets {
    context: ContextData,
}

#[service(name = "sockets")]
impl Sockets {
    #[ws_rpc]
    async fn echo(&self, socket_id: String, value: Value) -> Value {
        let _ = socket_id;
        value
    }

    #[ws_rpc]
    async fn whoami(&self, socket_id: String) -> Value {
        json!({"socket_id": socket_id, "user_id": self.context.get("user_id")})
    }

    #[ws_rpc]
    async fn fail(&self, socket_id: String, value: String) -> Result<Value, ValueTooLarge> {
        let _ = socket_id;
        Err(ValueTooLarge(value))
    }

    #[ws_rpc]
    async fn nap(&self, socket_id: String, millis: u64) -> u64 {
        let _ = socket_id;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    /// A nap that counts how many run at once (only one test calls it).
    #[ws_rpc]
    async fn counted_nap(&self, socket_id: String, millis: u64) -> u64 {
        let _ = socket_id;
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST_RUNNING.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        millis
    }
}

fn error_frame(exc_type: &str, message: &str, correlation_id: Value) -> Value {
    json!({
        "type": "result",
        "success": false,
        "error": {
            "exc_type": exc_type,
            "exc_path": format!("nameko.exceptions.{exc_type}"),
            "exc_args": [message],
            "value": message,
        },
        "correlation_id": correlation_id,
    })
}

#[tokio::test]
async fn frames_are_answered_as_nameko_answers_them() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Sockets>().await;
    let addr = cluster.web_session().addr();
    let mut ws = Ws::connect(addr).await;
    assert_eq!(ws.socket_id.len(), 36, "a uuid4: {}", ws.socket_id);

    // Results, byte for byte as Python writes them.
    ws.send(r#"{"method": "echo", "data": {"value": {"a": [1, 2.5, "é"]}}, "correlation_id": 1}"#)
        .await;
    assert_eq!(
        ws.recv_text().await,
        r#"{"type": "result", "success": true, "data": {"a": [1, 2.5, "\u00e9"]}, "correlation_id": 1}"#
    );
    ws.send(r#"{"method": "echo", "data": {"value": 1.0}}"#)
        .await;
    assert_eq!(
        ws.recv_text().await,
        r#"{"type": "result", "success": true, "data": 1.0, "correlation_id": null}"#
    );

    // Bad frames: MalformedRequest, with no correlation id.
    for bad in [
        "not json",
        "[1, 2]",
        "\"str\"",
        "",
        r#"{"data": {}, "correlation_id": 5}"#,
    ] {
        ws.send(bad).await;
        assert_eq!(
            ws.recv().await,
            error_frame("MalformedRequest", "Invalid JSON data", Value::Null),
            "{bad:?}"
        );
    }
    // Unknown methods: MethodNotFound, without arguments.
    for unknown in [
        r#"{"method": "nope", "correlation_id": "c"}"#,
        r#"{"method": 5, "correlation_id": "c"}"#,
    ] {
        ws.send(unknown).await;
        let mut expected = error_frame("MethodNotFound", "", json!("c"));
        expected["error"]["exc_args"] = json!([]);
        assert_eq!(ws.recv().await, expected, "{unknown}");
    }
    // Arguments that do not fit: IncorrectSignature with Python's words.
    let cases = [
        (
            json!({}),
            "echo() missing 1 required positional argument: 'value'",
        ),
        (
            json!(null),
            "echo() missing 1 required positional argument: 'value'",
        ),
        (
            json!({"value": 1, "x": 2}),
            "echo() got an unexpected keyword argument 'x'",
        ),
        (
            json!({"value": 1, "socket_id": 2}),
            "echo() got multiple values for argument 'socket_id'",
        ),
        (
            json!([1]),
            "inspect.getcallargs() argument after ** must be a mapping, not list",
        ),
        (
            json!("abc"),
            "inspect.getcallargs() argument after ** must be a mapping, not str",
        ),
    ];
    for (data, message) in cases {
        let answer = ws.call("echo", data.clone()).await;
        assert_eq!(
            answer,
            error_frame("IncorrectSignature", message, json!("echo")),
            "{data}"
        );
    }
    // The method's own error.
    let answer = ws.call("fail", json!({"value": "big"})).await;
    assert_eq!(
        answer["error"],
        json!({"exc_type": "ValueTooLarge", "exc_path": "websocket_service.ValueTooLarge", "exc_args": ["big"], "value": "big"})
    );
    // A binary frame is read as a text one; the socket is still open after all of it.
    {
        use futures_util::SinkExt;
        ws.stream
            .send(tokio_tungstenite::tungstenite::Message::binary(
                br#"{"method": "echo", "data": {"value": "bin"}, "correlation_id": 2}"#.to_vec(),
            ))
            .await
            .unwrap();
    }
    assert_eq!(ws.recv().await["data"], "bin");
    assert_eq!(
        ws.call("whoami", json!({})).await["data"]["socket_id"],
        ws.socket_id
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn frames_of_a_socket_are_answered_in_order() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Sockets>().await;
    let mut ws = Ws::connect(cluster.web_session().addr()).await;
    for (i, millis) in [60, 0, 30, 0].into_iter().enumerate() {
        ws.send(
            &json!({"method": "nap", "data": {"millis": millis}, "correlation_id": i}).to_string(),
        )
        .await;
    }
    for i in 0..4 {
        assert_eq!(ws.recv().await["correlation_id"], i);
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn context_data_comes_from_the_upgrade_request_through_the_web_hook() {
    let config = WebConfig::new().context_data_from_headers(|request| {
        let mut data = ContextData::new();
        if let Some(user) = request.header("X-User-Id") {
            data.set("user_id", user);
        }
        data
    });
    let mut cluster = TestCluster::memory().with_state(config);
    cluster.start::<Sockets>().await;
    let addr = cluster.web_session().addr();
    let mut ws = Ws::connect_with(addr, &[("x-user-id", "ada")]).await;
    let answer = ws.call("whoami", json!({})).await;
    assert_eq!(answer["data"]["user_id"], "ada");
    let mut anonymous = Ws::connect(addr).await;
    assert_eq!(
        anonymous.call("whoami", json!({})).await["data"]["user_id"],
        Value::Null
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn each_frame_is_a_worker_counted_against_max_workers() {
    let mut cluster = TestCluster::memory().with_config("max_workers", 2);
    cluster.start::<Sockets>().await;
    let addr = cluster.web_session().addr();
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(Ws::connect(addr).await);
    }
    for ws in &mut sockets {
        ws.send(r#"{"method": "counted_nap", "data": {"millis": 150}, "correlation_id": 1}"#)
            .await;
    }
    for ws in &mut sockets {
        assert_eq!(ws.recv().await["data"], 150);
    }
    assert_eq!(
        MOST_RUNNING.load(Ordering::SeqCst),
        2,
        "at most max_workers frames run at once"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_request_that_is_no_upgrade_is_refused() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Sockets>().await;
    let web = cluster.web_session();
    let response = web.get("/ws").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let response = web.post("/ws").send().await.unwrap();
    assert_eq!(response.status(), 405);
    cluster.shutdown().await;
}

#[derive(Dependencies)]
struct OtherSockets;

#[service(name = "other_sockets")]
impl OtherSockets {
    #[ws_rpc]
    async fn echo(&self, socket_id: String, value: Value) -> Value {
        let _ = socket_id;
        value
    }

    #[ws_rpc]
    async fn shout(&self, socket_id: String, value: String) -> String {
        let _ = socket_id;
        value.to_uppercase()
    }
}

#[derive(Dependencies)]
struct Shouter;

#[service(name = "shouter")]
impl Shouter {
    #[ws_rpc]
    async fn shout(&self, socket_id: String, value: String) -> String {
        let _ = socket_id;
        value.to_uppercase()
    }
}

#[tokio::test]
async fn one_socket_calls_every_service_of_the_process_and_names_clash() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Sockets>().await;
    cluster.start::<Shouter>().await;
    let mut ws = Ws::connect(cluster.web_session().addr()).await;
    assert_eq!(ws.call("shout", json!({"value": "hi"})).await["data"], "HI");
    assert_eq!(ws.call("echo", json!({"value": "hi"})).await["data"], "hi");

    cluster.shutdown().await;

    let broker = nameko::memory::MemoryBroker::new();
    let config = Config::new()
        .with("AMQP_URI", "memory://")
        .with("WEB_SERVER_ADDRESS", "127.0.0.1:0");
    let runner = ServiceRunner::new(config, std::sync::Arc::new(broker.connect()));
    runner.add::<Sockets>().unwrap();
    runner.add::<OtherSockets>().unwrap();
    let error = runner
        .start()
        .await
        .expect_err("a second `echo` on /ws is refused")
        .to_string();
    assert!(
        error.contains("`echo`") && error.contains("sockets.echo"),
        "{error}"
    );
    runner.kill().await;
}
