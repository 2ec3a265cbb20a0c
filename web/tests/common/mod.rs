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
