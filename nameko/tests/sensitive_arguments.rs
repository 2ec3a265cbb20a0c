//! `sensitive_arguments` and the call log: the values of sensitive arguments reach no
//! log line, no call log line and no error message, searched for in everything the
//! process logged at TRACE level; the call log has one line per worker with
//! nameko-tracer's keys.

use std::io::Write;
use std::sync::{Mutex, MutexGuard, OnceLock};

use nameko::dependency::{CALL_LOG_TARGET, CallLog};
use nameko::prelude::*;
use nameko::sensitive::REDACTED;
use nameko::testing::TestCluster;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn logs() -> MutexGuard<'static, Vec<u8>> {
    LOGS.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Installs, once, a subscriber that records every event of every target at TRACE level.
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

/// A secret of its own for each test.
fn secret(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("s3cret-{test}-{nanos}")
}

#[derive(Debug, Clone, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_type = "AuthError",
    exc_path = "accounts.AuthError",
    display = "{0}"
)]
struct AuthError(String);

#[derive(Debug, Dependencies)]
struct Accounts {
    _call_log: CallLog,
}

#[service(name = "accounts")]
impl Accounts {
    #[rpc(sensitive_arguments = ["password", "card.number"])]
    async fn register(&self, user: String, password: String, card: Value) -> Value {
        let _ = password;
        json!({"user": user, "card_holder": card["holder"]})
    }

    #[rpc(sensitive_arguments = ["password"], expected_exceptions = [AuthError])]
    async fn login(&self, user: String, password: String) -> Result<String, AuthError> {
        let _ = password;
        Err(AuthError(format!("wrong password for {user}")))
    }

    #[rpc(sensitive_arguments = ["pin"])]
    async fn unlock(&self, pin: u32) -> u32 {
        pin
    }

    #[rpc]
    async fn echo(&self, text: String) -> String {
        text.repeat(30)
    }
}

/// The call log lines, parsed.
fn call_log_lines() -> Vec<Value> {
    let logs = String::from_utf8_lossy(&logs()).into_owned();
    logs.lines()
        .filter(|line| line.contains(CALL_LOG_TARGET))
        .filter_map(|line| {
            let json = &line[line.find("nameko_trace=")? + "nameko_trace=".len()..];
            serde_json::from_str(json).ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_values_reach_no_log_and_no_error() {
    capture_logs();
    let password = secret("password");
    let card_number = secret("card");
    let pin = secret("pin");
    let mut cluster = TestCluster::memory();
    cluster.start::<Accounts>().await;
    let proxy = cluster.proxy().await;
    let accounts = proxy.service("accounts");

    let registered: Value = accounts
        .call(
            "register",
            CallArgs::new()
                .arg("ada")
                .arg(password.as_str())
                .kwarg("card", json!({"number": card_number, "holder": "Ada"})),
        )
        .await
        .unwrap();
    assert_eq!(registered, json!({"user": "ada", "card_holder": "Ada"}));

    let refused = accounts
        .call::<String>("login", ("ada", password.as_str()))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("wrong password for ada"),
        "{refused}"
    );

    // A value of the wrong type: serde's message would quote it.
    let wrong = accounts
        .call::<u32>("unlock", (pin.as_str(),))
        .await
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("unlock() argument 'pin'"), "{wrong}");
    assert!(!wrong.contains(&pin), "the pin is in the error: {wrong}");
    cluster.run_until_idle().await.unwrap();

    let logs = String::from_utf8_lossy(&logs()).into_owned();
    for (what, value) in [
        ("password", &password),
        ("card number", &card_number),
        ("pin", &pin),
    ] {
        assert!(
            !logs.contains(value.as_str()),
            "the {what} is in the logs:\n{logs}"
        );
    }

    let lines = call_log_lines();
    let register = lines
        .iter()
        .find(|l| l["entrypoint_name"] == "register")
        .unwrap_or_else(|| panic!("no call log line of register:\n{logs}"));
    assert_eq!(register["stage"], "response");
    assert_eq!(register["service"], "accounts");
    assert_eq!(register["entrypoint_type"], "rpc");
    assert_eq!(register["response_status"], "success");
    assert_eq!(register["call_args_redacted"], true);
    assert_eq!(
        register["call_args"],
        json!({"user": "ada", "password": REDACTED, "card": {"number": REDACTED, "holder": "Ada"}})
    );
    let call_id = register["call_id"].as_str().unwrap();
    assert!(call_id.starts_with("accounts.register."), "{call_id}");
    assert_eq!(
        register["call_id_stack"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        call_id
    );
    assert!(register["response_time"].as_f64().unwrap() >= 0.0);
    assert_eq!(register["response_truncated"], false);

    let login = lines
        .iter()
        .find(|l| l["entrypoint_name"] == "login")
        .expect("a call log line of login");
    assert_eq!(login["response_status"], "error");
    assert_eq!(login["exception_type"], "AuthError");
    assert_eq!(login["exception_path"], "accounts.AuthError");
    assert_eq!(login["call_args"]["password"], REDACTED);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_log_cuts_long_results_and_reads_its_length_from_the_config() {
    capture_logs();
    let mut cluster =
        TestCluster::memory().with_config("CALL_LOG", json!({"response_max_length": 20}));
    cluster.start::<Accounts>().await;
    let proxy = cluster.proxy().await;
    let marker = secret("echo");
    let long: String = proxy
        .service("accounts")
        .call("echo", (marker.as_str(),))
        .await
        .unwrap();
    assert_eq!(long.len(), marker.len() * 30);
    cluster.run_until_idle().await.unwrap();
    let line = call_log_lines()
        .into_iter()
        .find(|l| l["call_args"]["text"] == marker.as_str())
        .expect("a call log line of echo");
    assert_eq!(line["call_args_redacted"], false);
    assert_eq!(line["response_truncated"], true);
    assert_eq!(line["response_length"], marker.len() * 30 + 2);
    assert_eq!(line["response"].as_str().unwrap().chars().count(), 20);
    cluster.shutdown().await;
}
