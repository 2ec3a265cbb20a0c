//! What the web tests share: a cluster serving a service, and raw HTTP on a socket.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use nameko::service::Service;
use nameko::testing::{TestCluster, WebSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A memory cluster serving `S`, and a session on its web server.
pub async fn serve<S: Service>() -> (TestCluster, WebSession) {
    serve_with::<S>(TestCluster::memory()).await
}

/// `cluster` serving `S`, and a session on its web server.
pub async fn serve_with<S: Service>(mut cluster: TestCluster) -> (TestCluster, WebSession) {
    cluster.start::<S>().await;
    let web = cluster.web_session();
    (cluster, web)
}

/// Sends `raw` on a new connection and reads the whole answer (until the server closes,
/// or 10 s).
pub async fn raw(addr: SocketAddr, raw: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A WebSocket client of nameko's protocol on `/ws`.
pub struct Ws {
    pub stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
}

/// How long a test waits for a frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

impl Ws {
    /// Connects to `/ws` and reads the `connected` event.
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::connect_with(addr, &[]).await
    }

    /// Connects with extra headers on the upgrade request.
    pub async fn connect_with(addr: SocketAddr, headers: &[(&'static str, &str)]) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        let (stream, response) =
            tokio::time::timeout(FRAME_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .expect("the upgrade is answered in time")
                .expect("the upgrade succeeds");
        assert_eq!(response.status(), 101);
        let mut ws = Self {
            stream,
            socket_id: String::new(),
        };
        let connected = ws.recv().await;
        assert_eq!(connected["type"], "event");
        assert_eq!(connected["event"], "connected");
        ws.socket_id = connected["data"]["socket_id"].as_str().unwrap().to_owned();
        ws
    }

    /// Sends a text frame.
    pub async fn send(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
    }

    /// The next text frame, as text.
    pub async fn recv_text(&mut self) -> String {
        use futures_util::StreamExt;
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("a frame in time")
                .expect("the socket is open")
                .expect("a frame");
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                return text.as_str().to_owned();
            }
            assert!(!message.is_close(), "the socket closed: {message:?}");
        }
    }

    /// The next text frame, as JSON.
    pub async fn recv(&mut self) -> serde_json::Value {
        serde_json::from_str(&self.recv_text().await).unwrap()
    }

    /// Calls `method` with `data` and returns the result frame.
    pub async fn call(&mut self, method: &str, data: serde_json::Value) -> serde_json::Value {
        let frame = serde_json::json!({"method": method, "data": data, "correlation_id": method});
        self.send(&frame.to_string()).await;
        let answer = self.recv().await;
        assert_eq!(answer["correlation_id"], method, "{answer}");
        answer
    }

    /// The close frame the server ends the socket with (`None` when the connection
    /// ends without one), skipping frames before it.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        use futures_util::StreamExt;
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.stream.next())
                .await
                .expect("the socket closes in time")
            {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}
