//! The WebSocket hub: subscriptions (sorted, gone with their socket), broadcasts to a
//! channel's sockets, unicasts, `ConnectionNotFound`; and 1,000 sockets reached by one
//! broadcast.

mod common;

use std::time::Duration;

use common::Ws;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::websocket::{ConnectionNotFound, WebSocketHub};
use nameko::web::{json_dumps, ws_rpc};

#[derive(Dependencies)]
struct Rooms {
    hub: WebSocketHub,
}

#[service(name = "rooms")]
impl Rooms {
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
    async fn unsubscribe(&self, socket_id: String, channel: String) -> &'static str {
        self.hub.unsubscribe(&socket_id, &channel);
        "unsubscribed"
    }

    #[ws_rpc]
    async fn subscriptions(&self, socket_id: String) -> Vec<String> {
        self.hub.get_subscriptions(&socket_id)
    }

    #[ws_rpc]
    async fn unicast(&self, socket_id: String, target: String, value: Value) -> bool {
        let _ = socket_id;
        self.hub.unicast(&target, "direct", value)
    }

    /// How many sockets a broadcast reached.
    #[http("POST", "/broadcast/<channel>")]
    async fn broadcast(&self, request: Request, channel: String) -> String {
        let body: Value = request.json().unwrap_or(Value::Null);
        json_dumps(&json!({"sent": self.hub.broadcast(&channel, "message", body)}))
    }
}

async fn broadcast(web: &nameko::testing::WebSession, channel: &str, body: Value) -> u64 {
    let response = web
        .post(&format!("/broadcast/{channel}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    answer["sent"].as_u64().unwrap()
}

#[tokio::test]
async fn subscriptions_broadcasts_and_unicasts_follow_nameko() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Rooms>().await;
    let web = cluster.web_session();
    let mut a = Ws::connect(web.addr()).await;
    let mut b = Ws::connect(web.addr()).await;

    assert_eq!(a.call("subscriptions", json!({})).await["data"], json!([]));
    assert_eq!(
        a.call("subscribe", json!({"channel": "b"})).await["data"],
        "subscribed"
    );
    assert_eq!(
        a.call("subscribe", json!({"channel": "a"})).await["data"],
        "subscribed"
    );
    assert_eq!(
        a.call("subscribe", json!({"channel": "a"})).await["data"],
        "subscribed"
    );
    assert_eq!(
        a.call("subscriptions", json!({})).await["data"],
        json!(["a", "b"])
    );
    b.call("subscribe", json!({"channel": "b"})).await;

    // `a` reaches `a` only, `b` both.
    assert_eq!(broadcast(&web, "a", json!({"n": 1})).await, 1);
    assert_eq!(
        a.recv_text().await,
        r#"{"type": "event", "event": "message", "data": {"n": 1}}"#
    );
    assert_eq!(broadcast(&web, "b", json!([2])).await, 2);
    assert_eq!(a.recv().await["data"], json!([2]));
    assert_eq!(b.recv().await["data"], json!([2]));
    assert_eq!(broadcast(&web, "nobody", json!(3)).await, 0);

    // Unsubscribing (even from a channel it never joined).
    assert_eq!(
        a.call("unsubscribe", json!({"channel": "b"})).await["data"],
        "unsubscribed"
    );
    assert_eq!(
        a.call("unsubscribe", json!({"channel": "zz"})).await["data"],
        "unsubscribed"
    );
    assert_eq!(
        a.call("subscriptions", json!({})).await["data"],
        json!(["a"])
    );
    assert_eq!(broadcast(&web, "b", json!(4)).await, 1);
    assert_eq!(b.recv().await["data"], 4);

    // Unicast: to a socket that exists, and to one that does not.
    let target = b.socket_id.clone();
    assert_eq!(
        a.call("unicast", json!({"target": target, "value": 5}))
            .await["data"],
        true
    );
    assert_eq!(
        b.recv().await,
        json!({"type": "event", "event": "direct", "data": 5})
    );
    assert_eq!(
        a.call("unicast", json!({"target": "nobody", "value": 5}))
            .await["data"],
        false
    );

    // Subscribing a socket that is not connected.
    let answer = a
        .call(
            "subscribe_other",
            json!({"other": "nobody", "channel": "x"}),
        )
        .await;
    assert_eq!(
        answer["error"],
        json!({"exc_type": "ConnectionNotFound", "exc_path": "nameko.exceptions.ConnectionNotFound", "exc_args": ["nobody"], "value": "nobody"})
    );
    let other = b.socket_id.clone();
    a.call("subscribe_other", json!({"other": other, "channel": "c"}))
        .await;
    assert_eq!(
        b.call("subscriptions", json!({})).await["data"],
        json!(["b", "c"])
    );

    // A socket's subscriptions go with it.
    drop(b);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while broadcast(&web, "b", json!(6)).await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the closed socket is still subscribed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        a.call("unicast", json!({"target": other, "value": 7}))
            .await["data"],
        false
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_broadcast_reaches_a_thousand_sockets() {
    const SOCKETS: usize = 1_000;
    let mut cluster = TestCluster::memory();
    cluster.start::<Rooms>().await;
    let web = cluster.web_session();
    let addr = web.addr();

    // Connect and subscribe, 50 at a time.
    let mut sockets = Vec::with_capacity(SOCKETS);
    for _ in 0..SOCKETS / 50 {
        let batch = (0..50).map(|_| async move {
            let mut ws = Ws::connect(addr).await;
            let answer = ws.call("subscribe", json!({"channel": "all"})).await;
            assert_eq!(answer["data"], "subscribed", "{answer}");
            ws
        });
        sockets.extend(futures_util::future::join_all(batch).await);
    }
    assert_eq!(sockets.len(), SOCKETS);

    assert_eq!(
        broadcast(&web, "all", json!({"hello": "everyone"})).await,
        SOCKETS as u64
    );
    let received = futures_util::future::join_all(sockets.iter_mut().map(|ws| ws.recv())).await;
    let expected = json!({"type": "event", "event": "message", "data": {"hello": "everyone"}});
    assert!(received.iter().all(|frame| *frame == expected));
    drop(sockets);
    cluster.shutdown().await;
}
