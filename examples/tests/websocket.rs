//! `websocket_service`: its WebSocket methods, its broadcast route, its page, and the
//! `order_placed` events of `order_service` pushed to the sockets subscribed to
//! `orders`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_examples::WebsocketService;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

async fn call(socket: &mut Socket, method: &str, data: Value) -> Value {
    let frame = json!({"method": method, "data": data, "correlation_id": method});
    socket.send(Message::text(frame.to_string())).await.unwrap();
    let answer = recv(socket).await;
    assert_eq!(answer["correlation_id"], method);
    assert_eq!(answer["success"], true, "{answer}");
    answer["data"].clone()
}

#[tokio::test]
async fn every_entrypoint_answers_as_documented() {
    let mut cluster = TestCluster::memory();
    cluster.start::<WebsocketService>().await;
    let web = cluster.web_session();
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", web.addr()))
        .await
        .unwrap();
    let connected = recv(&mut socket).await;
    assert_eq!(connected["event"], "connected");

    assert_eq!(
        call(&mut socket, "echo", json!({"value": [1, "two"]})).await,
        json!([1, "two"])
    );
    assert_eq!(
        call(&mut socket, "subscribe", json!({"channel": "orders"})).await,
        "subscribed"
    );
    assert_eq!(
        call(&mut socket, "subscribe", json!({"channel": "news"})).await,
        "subscribed"
    );
    assert_eq!(
        call(&mut socket, "subscriptions", json!({})).await,
        json!(["news", "orders"])
    );
    assert_eq!(
        call(&mut socket, "unsubscribe", json!({"channel": "news"})).await,
        "unsubscribed"
    );
    assert_eq!(
        call(&mut socket, "subscriptions", json!({})).await,
        json!(["orders"])
    );

    let response = web
        .post("/broadcast/orders")
        .body(r#"{"hello": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), r#"{"sent": true}"#);
    assert_eq!(
        recv(&mut socket).await,
        json!({"type": "event", "event": "message", "data": {"hello": 1}})
    );

    // `order_service`'s event, pushed to `orders`.
    cluster
        .dispatch("order_service", "order_placed", json!({"order_id": 3}))
        .await;
    assert_eq!(
        recv(&mut socket).await,
        json!({"type": "event", "event": "order_placed", "data": {"order_id": 3}})
    );

    let page = web.get("/").send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    assert!(html.contains("/ws") && html.contains("echo-form"), "{html}");
    cluster.shutdown().await;
}
