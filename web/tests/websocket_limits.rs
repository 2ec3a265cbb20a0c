//! What bounds a WebSocket: a client that stops reading is closed once its send queue
//! is full (the server's memory does not grow with what it is sent), a message that is
//! too large closes its socket, sockets beyond `MAX_WEBSOCKETS` are refused, and a
//! graceful stop answers the calls in flight, then closes every socket with a close
//! frame.

mod common;

use std::time::Duration;

use common::Ws;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::websocket::{ConnectionNotFound, WebSocketHub};
use nameko::web::{json_dumps, ws_rpc};

#[derive(Dependencies)]
struct Flood {
    hub: WebSocketHub,
}

#[service(name = "flood")]
impl Flood {
    #[ws_rpc]
    async fn subscribe(
        &self,
        socket_id: String,
        channel: String,
    ) -> Result<&'static str, ConnectionNotFound> {
        self.hub.subscribe(&socket_id, &channel)?;
        Ok("subscribed")
    }

    #[ws_rpc]
    async fn nap(&self, socket_id: String, millis: u64) -> u64 {
        let _ = socket_id;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    /// Broadcasts `count` events of `size` bytes to `channel`, a millisecond apart (a
    /// pace a reading client keeps up with); answers how many were queued.
    #[http("POST", "/flood/<channel>/<int:count>/<int:size>")]
    async fn flood(&self, channel: String, count: u64, size: usize) -> String {
        let text = "x".repeat(size);
        let mut queued = 0;
        for _ in 0..count {
            queued += self.hub.broadcast(&channel, "flood", json!(text));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        json_dumps(&json!({"queued": queued}))
    }
}

async fn flood(web: &nameko::testing::WebSession, path: &str) -> Value {
    let text = web.post(path).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The resident memory of this process, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_without_the_server_growing() {
    const QUEUE: u64 = 16;
    const SIZE: u64 = 64 * 1024;
    const EVENTS: u64 = 2_000; // 128 MiB in all
    let mut cluster = TestCluster::memory().with_config("WEBSOCKET_SEND_QUEUE", QUEUE);
    cluster.start::<Flood>().await;
    let web = cluster.web_session();
    let mut slow = Ws::connect(web.addr()).await;
    slow.call("subscribe", json!({"channel": "news"})).await;
    let mut reader = Ws::connect(web.addr()).await;
    reader.call("subscribe", json!({"channel": "news"})).await;

    // The slow client reads nothing from now on; the reader reads everything.
    let reading = tokio::spawn(async move {
        let mut received = 0;
        while received < EVENTS {
            assert_eq!(reader.recv().await["event"], "flood");
            received += 1;
        }
        reader
    });
    let before = resident();
    let mut queued = 0;
    for _ in 0..EVENTS / 100 {
        let answer = flood(&web, &format!("/flood/news/100/{SIZE}")).await;
        queued += answer["queued"].as_u64().unwrap();
    }
    let grown = resident().saturating_sub(before);
    let mut reader = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("the reader gets every event")
        .unwrap();
    let to_slow = queued - EVENTS;
    eprintln!(
        "{to_slow} of {EVENTS} events of {SIZE} bytes queued for the slow client before its socket was closed (the reader got all {EVENTS}); resident memory grew by {} KiB",
        grown / 1024
    );
    assert!(
        to_slow < EVENTS,
        "the slow client's socket was closed before all {EVENTS} events were queued ({to_slow} were)"
    );
    assert!(
        grown < 48 * 1024 * 1024,
        "the server grew by {} MiB for a client that does not read",
        grown / (1024 * 1024)
    );

    // The reader is served as before.
    assert_eq!(reader.call("nap", json!({"millis": 0})).await["data"], 0);
    let answer = flood(&web, "/flood/news/1/10").await;
    assert_eq!(answer["queued"], 1, "only the reader is subscribed now");
    assert_eq!(reader.recv().await["event"], "flood");

    // Reading again, the slow client finds its socket closed, with the reason when the
    // close frame could still be sent.
    if let Some((code, reason)) = slow.closed().await {
        assert_eq!(code, 1008);
        assert!(reason.contains("send queue full"), "{reason}");
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_message_larger_than_the_limit_closes_its_socket() {
    let mut cluster = TestCluster::memory().with_config("MAX_WEBSOCKET_MESSAGE", 1024);
    cluster.start::<Flood>().await;
    let addr = cluster.web_session().addr();
    let mut ws = Ws::connect(addr).await;
    let small = json!({"method": "nap", "data": {"millis": 0}, "pad": "x".repeat(900)});
    ws.send(&small.to_string()).await;
    assert_eq!(ws.recv().await["data"], 0);
    ws.send(&json!({"method": "nap", "pad": "x".repeat(2000)}).to_string())
        .await;
    assert_eq!(ws.closed().await.map(|(code, _)| code), Some(1009));
    // Others connect as before.
    Ws::connect(addr).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn sockets_beyond_max_websockets_are_refused() {
    let mut cluster = TestCluster::memory().with_config("MAX_WEBSOCKETS", 2);
    cluster.start::<Flood>().await;
    let addr = cluster.web_session().addr();
    let first = Ws::connect(addr).await;
    let _second = Ws::connect(addr).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
        }
        other => panic!("a third socket is refused with 503, not {other:?}"),
    }
    drop(first);
    // Once one closed, another connects.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no socket is let in after one closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_graceful_stop_answers_calls_in_flight_then_closes_every_socket() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Flood>().await;
    let addr = cluster.web_session().addr();
    let mut busy = Ws::connect(addr).await;
    let mut idle = Ws::connect(addr).await;
    busy.send(r#"{"method": "nap", "data": {"millis": 300}, "correlation_id": "in flight"}"#)
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let clients = async {
        let answer = busy.recv().await;
        assert_eq!(answer["correlation_id"], "in flight");
        assert_eq!(answer["data"], 300);
        let expected = Some((1001, "the server is stopping".to_owned()));
        assert_eq!(busy.closed().await, expected);
        assert_eq!(idle.closed().await, expected);
    };
    tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(cluster.shutdown(), clients)
    })
    .await
    .expect("the stop ends");
}
