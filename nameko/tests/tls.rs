//! `amqps://` with certificate verification, against a RabbitMQ node with a TLS listener
//! that the test starts itself (a second node, on free ports, stopped at the end) with a
//! certificate authority and a server certificate for `localhost` made for the run: RPC
//! works with the CA trusted (`AMQP_SSL: {ca_certs: ...}`); with the system's roots only,
//! or under a host name the certificate does not name, the connection is refused with an
//! error that says why.
//!
//! Needs `openssl` and `rabbitmq-server`; skipped without them, or when the node does not
//! start, unless `NAMEKO_REQUIRE_AMQP=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nameko::amqp::test_support::broker_required;
use nameko::config::Config;
use nameko::connect::ConnectError;
use nameko::prelude::*;
use tokio::time::Instant;

#[derive(Dependencies)]
struct Echo;

#[service(name = "tls_echo")]
impl Echo {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }
}

/// Skips the test (after saying why), or fails it when `NAMEKO_REQUIRE_AMQP=1`.
fn skip(why: &str) {
    assert!(!broker_required(), "{why}, and NAMEKO_REQUIRE_AMQP=1");
    eprintln!("skipping: {why}");
}

/// Runs a command to completion; its standard output, or why it failed.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!("nameko-tls-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        Self(path)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Makes a CA (`ca.pem`) and a certificate for `localhost` only, signed by it
/// (`server.pem`, `server.key`).
fn make_certificates(dir: &TempDir) -> Result<(), String> {
    let path = |name: &str| dir.file(name);
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=nameko-rs test CA", "-keyout"])
        .arg(path("ca.key"))
        .arg("-out")
        .arg(path("ca.pem")))?;
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(path("server.key"))
        .arg("-out")
        .arg(path("server.csr")))?;
    std::fs::write(
        path("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
        .arg(path("server.csr"))
        .arg("-CA")
        .arg(path("ca.pem"))
        .arg("-CAkey")
        .arg(path("ca.key"))
        .arg("-out")
        .arg(path("server.pem"))
        .arg("-extfile")
        .arg(path("server.ext")))?;
    Ok(())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The RabbitMQ scripts: the distribution's own (which run as the current user) when
/// present, else those on the `PATH`.
fn rabbitmq_script(name: &str) -> PathBuf {
    let packaged = Path::new("/usr/lib/rabbitmq/bin").join(name);
    if packaged.exists() {
        packaged
    } else {
        PathBuf::from(name)
    }
}

/// A RabbitMQ node of its own with a TLS listener, stopped when dropped.
struct TlsNode {
    name: String,
    home: PathBuf,
    tls_port: u16,
}

impl TlsNode {
    /// Starts the node and waits (at most 40 s) for its TLS listener.
    async fn start(dir: &TempDir) -> Result<Self, String> {
        let home = dir.file("home");
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let cookie = home.join(".erlang.cookie");
        std::fs::write(&cookie, format!("NAMEKOTLSTEST{}", std::process::id()))
            .map_err(|e| e.to_string())?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
                .map_err(|e| e.to_string())?;
        }
        let (tcp_port, tls_port, dist_port) = (free_port(), free_port(), free_port());
        let config = format!(
            "listeners.tcp.default = {tcp_port}\n\
             listeners.ssl.default = {tls_port}\n\
             ssl_options.cacertfile = {}\n\
             ssl_options.certfile = {}\n\
             ssl_options.keyfile = {}\n\
             ssl_options.verify = verify_none\n\
             ssl_options.fail_if_no_peer_cert = false\n",
            dir.file("ca.pem").display(),
            dir.file("server.pem").display(),
            dir.file("server.key").display(),
        );
        std::fs::write(dir.file("rabbitmq.conf"), config).map_err(|e| e.to_string())?;
        std::fs::write(dir.file("enabled_plugins"), "[].\n").map_err(|e| e.to_string())?;
        let node = Self {
            name: format!("nameko_tls_{}@localhost", std::process::id()),
            home,
            tls_port,
        };
        run(Command::new(rabbitmq_script("rabbitmq-server"))
            .arg("-detached")
            .env("HOME", &node.home)
            .env("RABBITMQ_NODENAME", &node.name)
            .env("RABBITMQ_NODE_PORT", tcp_port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.file("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.file("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.file("rabbitmq"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.file("enabled_plugins")))?;
        let deadline = Instant::now() + Duration::from_secs(40);
        let listener = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port));
        while std::net::TcpStream::connect_timeout(&listener, Duration::from_millis(200)).is_err() {
            if Instant::now() >= deadline {
                let log =
                    std::fs::read_to_string(dir.file("log").join(format!("{}.log", node.name)))
                        .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                return Err(format!(
                    "the TLS node did not listen within 40 s; its log ends with:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(node)
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        let stopped = run(Command::new(rabbitmq_script("rabbitmqctl"))
            .args(["-n", &self.name, "stop"])
            .env("HOME", &self.home));
        if let Err(error) = stopped {
            eprintln!("could not stop the TLS node {}: {error}", self.name);
        }
    }
}

/// The configuration of a connection to the node under `host`, trusting `ca` if given.
fn tls_config(node: &TlsNode, host: &str, ca: Option<&Path>) -> Config {
    let ssl = match ca {
        Some(ca) => json!({ "ca_certs": ca.display().to_string() }),
        None => json!(true),
    };
    Config::new()
        .with(
            "AMQP_URI",
            format!("amqps://guest:guest@{host}:{}/", node.tls_port),
        )
        .with("AMQP_SSL", ssl)
        .with("RPC_TIMEOUT", 10)
}

/// Checks that a refused TLS connection says it was the certificate.
fn check_refused(result: Result<Arc<dyn nameko::transport::Transport>, ConnectError>, why: &str) {
    let error = match result {
        Ok(_) => panic!("connected although {why}"),
        Err(error) => error,
    };
    let text = error.to_string();
    assert!(
        matches!(error, ConnectError::Transport { .. }),
        "{why}: {error:?}"
    );
    assert!(
        text.to_ascii_lowercase().contains("certificate"),
        "the error does not say the certificate was refused ({why}): {text}"
    );
    println!("{why}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_verifies_the_brokers_certificate() {
    let began = Instant::now();
    let dir = TempDir::new();
    if let Err(error) = make_certificates(&dir) {
        return skip(&format!("cannot make certificates with openssl ({error})"));
    }
    let node = match TlsNode::start(&dir).await {
        Ok(node) => node,
        Err(error) => return skip(&format!("cannot start a RabbitMQ node with TLS ({error})")),
    };
    let started = began.elapsed();
    let ca = dir.file("ca.pem");

    // The test's CA trusted: RPC works over TLS.
    let config = tls_config(&node, "localhost", Some(&ca));
    let transport = nameko::connect(&config).await.expect("a TLS connection");
    assert!(
        transport
            .endpoint()
            .starts_with("amqps://guest:***@localhost:"),
        "{}",
        transport.endpoint()
    );
    let container = ServiceContainer::<Echo>::new(transport, config.clone()).expect("a container");
    container
        .start()
        .await
        .expect("the service starts over TLS");
    let client = nameko::connect(&config).await.expect("a TLS connection");
    let proxy = ClusterRpcProxy::start(Arc::clone(&client), &config)
        .await
        .expect("a proxy over TLS");
    let echoed: Value = proxy
        .service("tls_echo")
        .call("echo", (json!({"over": "tls"}),))
        .await
        .expect("a call over TLS");
    assert_eq!(echoed, json!({"over": "tls"}));

    // The system's roots only: the test's CA is unknown.
    check_refused(
        nameko::connect(&tls_config(&node, "localhost", None)).await,
        "the CA is not trusted",
    );
    // The certificate names `localhost`, not `127.0.0.1`.
    check_refused(
        nameko::connect(&tls_config(&node, "127.0.0.1", Some(&ca))).await,
        "the certificate is for another host name",
    );

    proxy.stop().await;
    let _ = client.close().await;
    container.stop().await.expect("a clean stop");
    println!(
        "TLS: node started in {started:.2?}; whole test {:.2?}",
        began.elapsed()
    );
}
