//! Python nameko serving `@http` (`python/http_service.py`), for the HTTP comparisons.

use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::Agent;

/// How long Python nameko may take to start serving HTTP.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// `http_service.py` run by Python nameko 2.14.1 on a free port of 127.0.0.1, killed when
/// dropped.
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
        let agent = Agent::shared().await?;
        let addr = free_port();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python");
        let mut child = Command::new(agent.python())
            .args(["-u", "http_service.py", &addr.to_string()])
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
            "Python nameko did not serve http_service.py within {START_TIMEOUT:?}"
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

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address")
}
