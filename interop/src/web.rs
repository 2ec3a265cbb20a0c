//! Python nameko serving `@http` (`python/http_service.py`) and WebSockets
//! (`python/websocket_service.py`), for the HTTP and WebSocket comparisons, and the
//! WebSocket client that plays the same frames against both (`python/ws_client.py`).

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Agent;

/// How long Python nameko may take to start serving HTTP.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A service of `python/` run by Python nameko 2.14.1 on a free port of 127.0.0.1
/// (`http_service.py` unless said otherwise), killed when dropped.
#[derive(Debug)]
pub struct PythonWeb {
    addr: SocketAddr,
    _child: Child,
}

impl PythonWeb {
    /// Starts it; `None` (after printing why) when there is no Python nameko.
    ///
    /// # Panics
    ///
    /// When Python is missing and `NAMEKO_REQUIRE_PYTHON=1`, or when it does not serve
    /// within 30 s.
    pub async fn start() -> Option<Self> {
        Self::serve("http_service.py", &[]).await
    }

    /// Starts `script` (in `python/`) with the address to serve on and `args`; `None`
    /// (after printing why) when there is no Python nameko.
    ///
    /// # Panics
    ///
    /// As [`PythonWeb::start`].
    pub async fn serve(script: &str, args: &[&str]) -> Option<Self> {
        let agent = Agent::shared().await?;
        let addr = free_port();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
        let mut child = Command::new(agent.python())
            .args(["-u", script, &addr.to_string()])
            .args(args)
            .current_dir(dir)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("Python starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        assert!(
            matches!(ready, Ok(true)),
            "Python nameko did not serve {script} within {START_TIMEOUT:?}"
        );
        let started = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "Python nameko does not accept connections on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(Self {
            addr,
            _child: child,
        })
    }

    /// Where it listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// How long one run of `ws_client.py` may take.
const WS_CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Plays `script` (steps as `python/ws_client.py` describes them) against the
/// WebSocket server at `addr` with Python's websocket-client, and returns what came
/// back, socket ids replaced by the sockets' names.
///
/// # Panics
///
/// When the client fails or takes more than a minute.
pub async fn python_ws_client(
    agent: &Agent,
    addr: SocketAddr,
    script: &serde_json::Value,
) -> serde_json::Value {
    use tokio::io::AsyncWriteExt;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
    let mut child = Command::new(agent.python())
        .args(["ws_client.py", &addr.to_string()])
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("Python starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(script.to_string().as_bytes())
        .await
        .expect("the script is written");
    drop(stdin);
    let output = tokio::time::timeout(WS_CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .expect("ws_client.py ends within a minute")
        .expect("ws_client.py runs");
    assert!(
        output.status.success(),
        "ws_client.py against {addr} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ws_client.py prints JSON")
}

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}
