//! The password of an AMQP URI never shows in an error, a `Debug` or `Display` output, or
//! a log record: connections refused, a wrong password, a broker that does not answer in
//! time, and a connection lost and recovered, with every log record of every library
//! (lapin's included) captured at TRACE level.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use nameko::amqp::test_support::{broker_required, test_broker};
use nameko::amqp::{AmqpOptions, AmqpTransport, AmqpUri};
use nameko::config::Config;
use nameko::connect::{ConnectError, Connector};
use nameko::prelude::*;
use nameko::transport::{QueueOptions, TransportStatus};

/// Everything logged by this test binary.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn logs() -> MutexGuard<'static, Vec<u8>> {
    LOGS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Writes log records into [`LOGS`].
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs, once, a subscriber that records every event of every target at TRACE level
/// (and the `log` records of libraries that use `log`), without the redaction the
/// `nameko` binaries' logging adds.
fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init()
            .expect("the only subscriber of this binary");
    });
}

/// A password of its own for each test, with characters a URI must encode.
fn secret(test: &str) -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let password = format!("S3cr:t/{test}-{nanos}");
    let encoded = password.replace(':', "%3A").replace('/', "%2F");
    (password, encoded)
}

/// Fails if `password` (or its URI encoding) is in `text` or in the logs so far.
fn assert_hidden(password: &(String, String), what: &str, text: &str) {
    for form in [&password.0, &password.1] {
        assert!(
            !text.contains(form.as_str()),
            "the password is in {what}: {text}"
        );
        let logs = String::from_utf8_lossy(&logs()).into_owned();
        assert!(
            !logs.contains(form.as_str()),
            "the password is in the logs:\n{logs}"
        );
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

fn check_error(password: &(String, String), error: &ConnectError) {
    assert_hidden(password, "the error's Display", &error.to_string());
    assert_hidden(password, "the error's Debug", &format!("{error:?}"));
}

#[tokio::test]
async fn a_refused_connection_never_shows_the_password() {
    capture_logs();
    let password = secret("refused");
    let uri = format!("amqp://app:{}@127.0.0.1:{}/prod", password.1, closed_port());
    let config = Config::new().with("AMQP_URI", uri.as_str());
    assert_hidden(&password, "the config's Debug", &format!("{config:?}"));
    let connector = Connector::from_config(&config).expect("a valid configuration");
    assert_hidden(
        &password,
        "the connector's Debug",
        &format!("{connector:?}"),
    );
    assert_hidden(&password, "the broker", &connector.broker().to_string());
    let error = nameko::connect(&config).await.expect_err("nothing listens");
    assert!(matches!(error, ConnectError::Transport { .. }), "{error:?}");
    assert!(error.to_string().contains("app:***@127.0.0.1"), "{error}");
    check_error(&password, &error);

    let parsed: AmqpUri = uri.parse().expect("a valid URI");
    assert_hidden(&password, "the URI's Display", &parsed.to_string());
    assert_hidden(&password, "the URI's Debug", &format!("{parsed:?}"));
    let error = AmqpTransport::connect_with(&uri, AmqpOptions::new())
        .await
        .expect_err("nothing listens");
    assert_hidden(
        &password,
        "the transport error",
        &format!("{error} {error:?}"),
    );
}

#[tokio::test]
async fn waiting_for_a_broker_that_never_comes_never_logs_the_password() {
    capture_logs();
    let password = secret("waiting");
    let uri = format!("amqp://app:{}@127.0.0.1:{}/", password.1, closed_port());
    let config = Config::new()
        .with("AMQP_URI", uri.as_str())
        .with("AMQP_STARTUP", "wait")
        .with("AMQP_STARTUP_TIMEOUT", 1);
    let error = nameko::connect(&config).await.expect_err("nothing listens");
    assert!(
        matches!(error, ConnectError::StartupTimeout { .. }),
        "{error:?}"
    );
    check_error(&password, &error);
    let logs = String::from_utf8_lossy(&logs()).into_owned();
    assert!(
        logs.contains("broker not reachable yet; retrying") && logs.contains("app:***@"),
        "the retries are logged with the URI redacted:\n{logs}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_showing_it() {
    capture_logs();
    let Some(broker) = test_broker().await else {
        return;
    };
    let password = secret("wrong");
    let real: AmqpUri = broker.uri().parse().expect("the test broker's URI");
    let uri = format!(
        "amqp://{}:{}@{}:{}/",
        real.username(),
        password.1,
        real.host(),
        real.port()
    );
    let config = Config::new().with("AMQP_URI", uri.as_str());
    let error = nameko::connect(&config)
        .await
        .expect_err("a wrong password");
    assert!(
        matches!(
            &error,
            ConnectError::Transport {
                error: nameko::transport::TransportError::AccessRefused(_),
                ..
            }
        ),
        "{error:?}"
    );
    check_error(&password, &error);
}

/// Runs `rabbitmqctl` (blocking, at most a minute); its output, or why it failed.
fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    nameko::testing::rabbitmqctl(args, Duration::from_secs(60)).map_err(|e| e.to_string())
}

/// A broker user with its own password and virtual host, removed when dropped.
struct SecretUser {
    user: String,
    vhost: String,
}

impl SecretUser {
    fn create(password: &str) -> Result<Self, String> {
        let id = std::process::id();
        let this = Self {
            user: format!("nameko_secret_{id}"),
            vhost: format!("nameko_secret_{id}"),
        };
        rabbitmqctl(&["add_vhost", &this.vhost])?;
        rabbitmqctl(&["add_user", &this.user, password])?;
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &this.vhost,
            &this.user,
            ".*",
            ".*",
            ".*",
        ])?;
        Ok(this)
    }
}

impl Drop for SecretUser {
    fn drop(&mut self) {
        let _ = rabbitmqctl(&["delete_user", &self.user]);
        let _ = rabbitmqctl(&["delete_vhost", &self.vhost]);
    }
}

/// A connection with a real password, lost (the broker closes it) and recovered: the
/// reconnection is logged, and neither the logs nor the status show the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_and_recovered_connection_never_logs_the_password() {
    capture_logs();
    let Some(broker) = test_broker().await else {
        return;
    };
    let password = secret("recovered");
    let user = match tokio::task::spawn_blocking({
        let password = password.0.clone();
        move || SecretUser::create(&password)
    })
    .await
    .expect("the rabbitmqctl task")
    {
        Ok(user) => user,
        Err(error) => {
            assert!(
                !broker_required(),
                "cannot make a broker user ({error}) and NAMEKO_REQUIRE_AMQP=1"
            );
            eprintln!("skipping: this test needs a working rabbitmqctl ({error})");
            return;
        }
    };
    let real: AmqpUri = broker.uri().parse().expect("the test broker's URI");
    let uri = format!(
        "amqp://{}:{}@{}:{}/{}",
        user.user,
        password.1,
        real.host(),
        real.port(),
        user.vhost
    );
    let config = Config::new().with("AMQP_URI", uri.as_str());
    let transport = nameko::connect(&config).await.expect("the right password");
    assert_hidden(
        &password,
        "the transport's Debug",
        &format!("{transport:?}"),
    );
    assert_hidden(&password, "the endpoint", &transport.endpoint());
    let proxy = ClusterRpcProxy::start(transport.clone(), &config)
        .await
        .expect("a proxy");
    transport
        .declare_queue(
            "secret-test",
            QueueOptions::default().with_auto_delete(true),
        )
        .await
        .expect("a queue");

    let mut status = transport.status();
    let vhost = user.vhost.clone();
    tokio::task::spawn_blocking(move || {
        rabbitmqctl(&["close_all_connections", "-p", &vhost, "credentials test"])
    })
    .await
    .expect("the rabbitmqctl task")
    .expect("rabbitmqctl close_all_connections");
    let reconnecting = tokio::time::timeout(
        Duration::from_secs(15),
        status.wait_for(|s| matches!(s, TransportStatus::Reconnecting { .. })),
    )
    .await
    .expect("the loss is noticed")
    .expect("the transport lives")
    .clone();
    assert_hidden(&password, "the status", &format!("{reconnecting:?}"));
    tokio::time::timeout(
        Duration::from_secs(15),
        status.wait_for(|s| *s == TransportStatus::Connected),
    )
    .await
    .expect("the transport reconnects")
    .expect("the transport lives");
    let outcome = proxy
        .service("nobody")
        .with_timeout(Duration::from_secs(5))
        .call::<Value>("anything", ())
        .await;
    assert!(
        matches!(outcome, Err(RpcError::UnknownService(_))),
        "{outcome:?}"
    );

    let logs = String::from_utf8_lossy(&logs()).into_owned();
    for expected in [
        "lost the connection to the broker",
        "reconnected to the broker",
    ] {
        assert!(logs.contains(expected), "`{expected}` was not logged");
    }
    assert!(
        logs.contains(" lapin"),
        "lapin's own records are captured too"
    );
    assert_hidden(&password, "the logs", "");
    proxy.stop().await;
    let _ = transport.close().await;
}
