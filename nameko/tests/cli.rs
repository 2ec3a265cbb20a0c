//! The `nameko` command-line tool, run as a process: help, `show-config` with
//! environment substitution, defines and `--broker`, usage and connection errors with
//! their exit codes and without passwords; then `call` and `dispatch` against Rust
//! services on a fresh RabbitMQ vhost (results, keyword arguments, context, remote
//! errors, unknown services, timeouts), and against the Python echo service run by Python
//! nameko 2.14.1. At default verbosity the tool prints only its own one-line message for
//! each failure (no line of the AMQP library, which used to dump the returned message of
//! a call to an unknown service, and log errors on timeouts and refused logins); more
//! with `-v` or `RUST_LOG`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nameko::cli::exit;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use tokio::time::Instant;

const NAMEKO: &str = env!("CARGO_BIN_EXE_nameko");

/// Runs the tool with `args` and extra environment, without `AMQP_URI` or `RUST_LOG` from
/// the test's own environment.
async fn nameko(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(NAMEKO);
    command
        .args(args)
        .env_remove("AMQP_URI")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("the nameko tool runs"))
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, showing the output otherwise.
fn assert_exit(output: &Output, code: u8) {
    assert_eq!(
        output.status.code(),
        Some(i32::from(code)),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// A directory of its own for one test's files, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("nameko-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn help_documents_the_commands_examples_and_exit_codes_without_secrets() {
    let output = nameko(&["--help"], &[("AMQP_URI", "amqp://app:hunter2@rabbit/")]).await;
    assert_exit(&output, exit::OK);
    let help = stdout(&output);
    for expected in [
        "call",
        "dispatch",
        "show-config",
        "--broker <URI>",
        "Examples:",
        "nameko call calculator.add '[1, 2]'",
        "Exit codes:",
        "3  unknown service",
        "4  timeout",
        "5  cannot connect to the broker",
    ] {
        assert!(
            help.contains(expected),
            "`{expected}` missing from:\n{help}"
        );
    }
    assert!(!help.contains("hunter2"), "{help}");
    let call_help = stdout(&nameko(&["call", "--help"], &[]).await);
    assert!(
        call_help.contains("to pass one list, wrap it"),
        "{call_help}"
    );
    let version = nameko(&["--version"], &[]).await;
    assert_exit(&version, exit::OK);
    assert!(stdout(&version).starts_with("nameko "));
}

#[tokio::test]
async fn show_config_substitutes_the_environment_applies_defines_and_hides_passwords() {
    let dir = TempDir::new("show-config");
    let config = dir.file(
        "config.yaml",
        "AMQP_URI: amqp://${RABBIT_USER:guest}:${RABBIT_PASSWORD}@${RABBIT_HOST:localhost}:5672/\n\
         max_workers: ${MAX_WORKERS:10}\n\
         LOGGING:\n  version: 1\n  root:\n    level: ${LOG_LEVEL:INFO}\n",
    );
    let output = nameko(
        &[
            "show-config",
            "--config",
            &config,
            "-d",
            "max_workers=4",
            "-d",
            "RPC_TIMEOUT=2.5",
            "-d",
            "DEBUG",
        ],
        &[
            ("RABBIT_PASSWORD", "hunter2"),
            ("MAX_WORKERS", "3"),
            ("LOG_LEVEL", "DEBUG"),
        ],
    )
    .await;
    assert_exit(&output, exit::OK);
    assert_eq!(
        stdout(&output),
        "AMQP_URI: amqp://guest:***@localhost:5672/\n\
         max_workers: 4\n\
         LOGGING:\n  version: 1\n  root:\n    level: DEBUG\n\
         RPC_TIMEOUT: 2.5\n\
         DEBUG: true\n"
    );
    assert!(!stderr(&output).contains("hunter2"));
}

#[tokio::test]
async fn broker_applies_only_when_the_config_leaves_amqp_uri_unset() {
    let dir = TempDir::new("broker");
    let with_uri = dir.file("with.yaml", "AMQP_URI: amqp://file-host/\n");
    let without_uri = dir.file("without.yaml", "max_workers: 2\n");
    let broker_of = |output: &Output| {
        assert_exit(output, exit::OK);
        stdout(output)
            .lines()
            .find(|l| l.starts_with("AMQP_URI:"))
            .unwrap()
            .to_owned()
    };
    let env = [("AMQP_URI", "amqp://env-host/")];
    let file_wins = nameko(
        &[
            "show-config",
            "-c",
            &with_uri,
            "--broker",
            "amqp://flag-host/",
        ],
        &env,
    )
    .await;
    assert_eq!(broker_of(&file_wins), "AMQP_URI: amqp://file-host/");
    let define_wins = nameko(
        &[
            "show-config",
            "-d",
            "AMQP_URI=amqp://define-host/",
            "--broker",
            "amqp://x/",
        ],
        &[],
    )
    .await;
    assert_eq!(broker_of(&define_wins), "AMQP_URI: amqp://define-host/");
    let flag = nameko(
        &[
            "--broker",
            "amqp://flag-host/",
            "show-config",
            "-c",
            &without_uri,
        ],
        &env,
    )
    .await;
    assert_eq!(broker_of(&flag), "AMQP_URI: amqp://flag-host/");
    let from_env = nameko(&["show-config", "-c", &without_uri], &env).await;
    assert_eq!(broker_of(&from_env), "AMQP_URI: amqp://env-host/");
    let default = nameko(&["show-config"], &[]).await;
    assert_eq!(
        broker_of(&default),
        "AMQP_URI: amqp://guest:***@localhost:5672/"
    );
}

#[tokio::test]
async fn usage_errors_exit_2_with_a_reason() {
    let broker = "amqp://app:hunter2@127.0.0.1:1/";
    let cases: &[(&[&str], &str)] = &[
        (&["call", "echo.echo", "hello"], "ARGS is not valid JSON"),
        (
            &["call", "echo.echo", "--kwargs", "[1]"],
            "--kwargs must be a JSON object, not a list",
        ),
        (&["call", "echo", "1"], "`echo` is not SERVICE.METHOD"),
        (
            &["call", "echo.echo", "--context", "language"],
            "--context `language` is not KEY=VALUE",
        ),
        (
            &["call", "echo.echo", "--timeout", "0"],
            "the timeout must be positive",
        ),
        (
            &["dispatch", "src", "evt", "{oops"],
            "PAYLOAD_JSON is not valid JSON",
        ),
        (
            &["show-config", "--config", "/nonexistent/config.yaml"],
            "cannot read config file",
        ),
        (&["show-config", "-d", "=4"], "invalid define"),
        (
            &["call", "echo.echo", "-d", "AMQP_URI=memory://"],
            "in-process broker",
        ),
        (
            &["call", "echo.echo", "-d", "AMQP_URI=kafka://u:hunter2@k/"],
            "unsupported broker URI `kafka://u:***@k/`",
        ),
        (
            &["call", "echo.echo", "-d", "AMQP_SSL={ciphers: ALL}"],
            "AMQP_SSL.ciphers",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
        (&[], "Usage: nameko"),
    ];
    for (args, expected) in cases {
        let mut all = args.to_vec();
        all.extend(["--broker", broker]);
        if args.is_empty() {
            all.clear();
        }
        let output = nameko(&all, &[]).await;
        assert_exit(&output, exit::USAGE);
        let err = stderr(&output);
        assert!(
            err.contains(expected),
            "{args:?}: `{expected}` missing from:\n{err}"
        );
        assert!(
            !err.contains("hunter2"),
            "{args:?}: the password leaked:\n{err}"
        );
        assert!(stdout(&output).is_empty(), "{args:?}");
    }
}

#[tokio::test]
async fn a_broker_that_cannot_be_reached_exits_5_without_the_password() {
    for command in [
        &["call", "echo.echo", "1"][..],
        &["dispatch", "src", "evt", "{}"][..],
    ] {
        let mut args = command.to_vec();
        args.extend(["--broker", "amqp://app:hunter2@127.0.0.1:1/prod"]);
        let output = nameko(&args, &[]).await;
        assert_exit(&output, exit::CONNECTION);
        let err = stderr(&output);
        assert!(
            err.contains("cannot connect to amqp://app:***@127.0.0.1:1/prod"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }
}

// ---------------------------------------------------------------------------------------
// Against Rust services on RabbitMQ
// ---------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
struct ValueError(String);

static PINGS: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[derive(Dependencies)]
struct CliTarget {
    worker: std::sync::Arc<WorkerContext>,
}

#[service(name = "cli_target")]
impl CliTarget {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }

    #[rpc]
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    #[rpc]
    async fn greet(&self, name: String, greeting: Option<String>) -> String {
        format!("{}, {name}", greeting.as_deref().unwrap_or("Hello"))
    }

    #[rpc]
    async fn context(&self, key: String) -> Value {
        self.worker
            .context()
            .get(&key)
            .cloned()
            .unwrap_or(Value::Null)
    }

    #[rpc(expected_exceptions = [ValueError])]
    async fn fail(&self) -> Result<(), ValueError> {
        Err(ValueError("boom".to_owned()))
    }

    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    #[event_handler("cli_source", "pinged")]
    async fn on_ping(&self, payload: Value) {
        PINGS.lock().unwrap().push(payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_dispatch_reach_rust_services_on_rabbitmq() {
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<CliTarget>().await;
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let env = [("AMQP_URI", uri.as_str())];
    let call = |args: &'static [&'static str]| async move {
        let mut all = vec!["call"];
        all.extend_from_slice(args);
        nameko(&all, &env).await
    };

    let echo = call(&["cli_target.echo", r#"{"a": [1, "é", null]}"#]).await;
    assert_exit(&echo, exit::OK);
    assert_eq!(stdout(&echo), "{\"a\":[1,\"é\",null]}\n");
    let one_list = call(&["cli_target.echo", "[[1, 2]]"]).await;
    assert_eq!(stdout(&one_list), "[1,2]\n");
    let add = call(&["cli_target.add", "[1, 2]"]).await;
    assert_eq!(stdout(&add), "3\n");
    let negative = call(&["cli_target.echo", "-5"]).await;
    assert_eq!(stdout(&negative), "-5\n");
    let kwargs = call(&[
        "cli_target.greet",
        "--kwargs",
        r#"{"name": "Ada", "greeting": "Hi"}"#,
    ])
    .await;
    assert_eq!(stdout(&kwargs), "\"Hi, Ada\"\n");
    let mixed = call(&["cli_target.greet", r#""Ada""#]).await;
    assert_eq!(stdout(&mixed), "\"Hello, Ada\"\n");
    let language = call(&[
        "cli_target.context",
        r#""language""#,
        "--context",
        "language=fr",
        "--context",
        "user_id=42",
    ])
    .await;
    assert_eq!(stdout(&language), "\"fr\"\n");
    let user = call(&[
        "cli_target.context",
        r#""user_id""#,
        "--context",
        "user_id=42",
    ])
    .await;
    assert_eq!(
        stdout(&user),
        "42\n",
        "context values are parsed as YAML scalars"
    );
    let pretty = call(&["cli_target.echo", r#"{"a": 1}"#, "--pretty"]).await;
    assert_eq!(stdout(&pretty), "{\n  \"a\": 1\n}\n");

    let fail = call(&["cli_target.fail"]).await;
    assert_exit(&fail, exit::REMOTE_ERROR);
    assert_eq!(stderr(&fail), "ValueError: boom\n");
    assert!(stdout(&fail).is_empty());
    let missing = call(&["cli_target.nope"]).await;
    assert_exit(&missing, exit::REMOTE_ERROR);
    assert!(
        stderr(&missing).starts_with("MethodNotFound: nope"),
        "{}",
        stderr(&missing)
    );
    let signature = call(&["cli_target.add", "[1]"]).await;
    assert_exit(&signature, exit::REMOTE_ERROR);
    assert!(
        stderr(&signature).starts_with("IncorrectSignature: "),
        "{}",
        stderr(&signature)
    );
    let unknown = call(&["nobody_home.anything"]).await;
    assert_exit(&unknown, exit::UNKNOWN_SERVICE);
    assert!(
        stderr(&unknown).contains("Unknown service `nobody_home`"),
        "{}",
        stderr(&unknown)
    );
    let started = Instant::now();
    let timeout = call(&["cli_target.sleep", "3000", "--timeout", "0.3"]).await;
    assert_exit(&timeout, exit::TIMEOUT);
    assert!(
        stderr(&timeout).contains("RpcTimeout: no reply from cli_target.sleep within 0.3 s"),
        "{}",
        stderr(&timeout)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout bounds the wait"
    );
    for output in [&echo, &fail, &missing, &unknown, &timeout] {
        assert!(!stderr(output).contains(":guest@"), "{}", stderr(output));
    }

    // The broker from a config file and from --broker, rather than the environment.
    let dir = TempDir::new("rust-cluster");
    let config = dir.file(
        "config.yaml",
        &format!("AMQP_URI: {uri}\nRPC_TIMEOUT: 10\n"),
    );
    let from_file = nameko(
        &["call", "cli_target.add", "[2, 3]", "--config", &config],
        &[],
    )
    .await;
    assert_eq!(stdout(&from_file), "5\n");
    let from_flag = nameko(&["call", "cli_target.add", "[3, 4]", "--broker", &uri], &[]).await;
    assert_eq!(stdout(&from_flag), "7\n");

    let dispatch = nameko(&["dispatch", "cli_source", "pinged", r#"{"n": 1}"#], &env).await;
    assert_exit(&dispatch, exit::OK);
    assert!(stdout(&dispatch).is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !PINGS.lock().unwrap().contains(&json!({"n": 1})) {
        assert!(
            Instant::now() < deadline,
            "the event never reached the handler"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Against the Python echo service
// ---------------------------------------------------------------------------------------

/// The variable that turns a missing Python environment from a skip into a failure.
const REQUIRE_PYTHON: &str = "NAMEKO_REQUIRE_PYTHON";

/// The Python echo service (`echo.echo`, `echo.pings_seen`, a `bench_source.ping`
/// handler) in `../shared/bench/python-nameko` beside the repository;
/// `NAMEKO_PYTHON_ECHO_SERVICE` names another copy.
fn echo_service() -> PathBuf {
    std::env::var_os("NAMEKO_PYTHON_ECHO_SERVICE").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/bench/python-nameko/echo_service.py")
        },
        PathBuf::from,
    )
}

/// Python nameko's `nameko` script from the venv `scripts/python-env` made, or why not.
/// The venv is made here (installing from PyPI) only with `NAMEKO_PYTHON_SETUP=1`.
fn python_nameko() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env");
    let setup = std::env::var("NAMEKO_PYTHON_SETUP").is_ok_and(|v| v == "1");
    let mut command = Command::new(&script);
    if !setup {
        command.arg("--check");
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let why = stderr.lines().last().unwrap_or("no output").trim();
        return Err(if setup {
            format!("{} failed: {why}", script.display())
        } else {
            format!("{why}, or set NAMEKO_PYTHON_SETUP=1 to let the tests make it")
        });
    }
    let python = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let nameko = python.with_file_name("nameko");
    if nameko.exists() {
        Ok(nameko)
    } else {
        Err(format!("no nameko script next to {}", python.display()))
    }
}

fn skip_without_python(reason: &str) {
    let required =
        std::env::var(REQUIRE_PYTHON).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    assert!(
        !required,
        "Python nameko is not available ({reason}) and {REQUIRE_PYTHON}=1"
    );
    eprintln!(
        "skipping: Python nameko is not available ({reason}; set {REQUIRE_PYTHON}=1 to fail instead)"
    );
}

/// `nameko run` of Python nameko, killed when the test ends.
struct PythonService(Child);

impl Drop for PythonService {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_dispatch_reach_the_python_echo_service() {
    let service = echo_service();
    if !service.exists() {
        return skip_without_python(&format!("{} is missing", service.display()));
    }
    let python_nameko = match tokio::task::spawn_blocking(python_nameko).await.unwrap() {
        Ok(path) => path,
        Err(reason) => return skip_without_python(&reason),
    };
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let dir = TempDir::new("python");
    let config = dir.file("config.yaml", &format!("AMQP_URI: '{uri}'\n"));
    let log = std::fs::File::create(dir.0.join("python.log")).unwrap();
    let child = Command::new(&python_nameko)
        .args(["run", "--config", &config, "echo_service"])
        .current_dir(service.parent().unwrap())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("Python nameko starts");
    let _python = PythonService(child);
    let env = [("AMQP_URI", uri.as_str())];

    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        let output = nameko(&["call", "echo.echo", r#""ready""#, "--timeout", "5"], &env).await;
        if output.status.code() != Some(i32::from(exit::UNKNOWN_SERVICE))
            || Instant::now() > deadline
        {
            break output;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let python_log = || std::fs::read_to_string(dir.0.join("python.log")).unwrap_or_default();
    assert_exit(&ready, exit::OK);
    assert_eq!(
        stdout(&ready),
        "\"ready\"\n",
        "Python log:\n{}",
        python_log()
    );

    let echo = nameko(
        &["call", "echo.echo", r#"[{"a": [1, 2.5, "é", null, true]}]"#],
        &env,
    )
    .await;
    assert_exit(&echo, exit::OK);
    assert_eq!(stdout(&echo), "{\"a\":[1,2.5,\"é\",null,true]}\n");
    let kwargs = nameko(&["call", "echo.echo", "--kwargs", r#"{"value": 5}"#], &env).await;
    assert_eq!(stdout(&kwargs), "5\n");
    let missing = nameko(&["call", "echo.nope"], &env).await;
    assert_exit(&missing, exit::REMOTE_ERROR);
    assert!(
        stderr(&missing).starts_with("MethodNotFound: nope"),
        "{}",
        stderr(&missing)
    );
    let signature = nameko(&["call", "echo.echo"], &env).await;
    assert_exit(&signature, exit::REMOTE_ERROR);
    assert!(
        stderr(&signature).starts_with("IncorrectSignature: "),
        "{}",
        stderr(&signature)
    );

    let before: u64 = stdout(&nameko(&["call", "echo.pings_seen"], &env).await)
        .trim()
        .parse()
        .unwrap();
    let dispatch = nameko(&["dispatch", "bench_source", "ping", r#"{"n": 1}"#], &env).await;
    assert_exit(&dispatch, exit::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen: u64 = stdout(&nameko(&["call", "echo.pings_seen"], &env).await)
            .trim()
            .parse()
            .unwrap();
        if seen > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Python handler never saw the event"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------
// What the tool prints, and nothing else
// ---------------------------------------------------------------------------------------

/// Asserts the exit code, and that standard error is exactly one line starting with
/// `start` (the tool's own message) and names no library.
fn assert_one_line(output: &Output, code: u8, start: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(i32::from(code)), "{err}");
    assert!(err.starts_with(start), "expected `{start}...`, got:\n{err}");
    assert_eq!(err.lines().count(), 1, "one line only:\n{err}");
    for noise in ["lapin", "WARN", "ERROR", "BasicReturnMessage"] {
        assert!(!err.contains(noise), "`{noise}` in:\n{err}");
    }
}

#[derive(Dependencies)]
struct Slow;

#[service(name = "slow")]
impl Slow {
    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_one_line() {
    let output = nameko(
        &[
            "call",
            "svc.m",
            "--broker",
            "amqp://app:hunter2@127.0.0.1:1/",
        ],
        &[],
    )
    .await;
    assert_one_line(&output, exit::CONNECTION, "error: cannot connect to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_rabbitmq_print_only_the_tools_own_line() {
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<Slow>().await;
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let env = [("AMQP_URI", uri.as_str())];

    let unknown = nameko(&["call", "nobody_home.anything", r#"{"a": 1}"#], &env).await;
    assert_one_line(
        &unknown,
        exit::UNKNOWN_SERVICE,
        "error: UnknownService: Unknown service `nobody_home`",
    );

    let timeout = nameko(&["call", "slow.sleep", "2000", "--timeout", "0.2"], &env).await;
    assert_one_line(
        &timeout,
        exit::TIMEOUT,
        "error: RpcTimeout: no reply from slow.sleep",
    );

    let dispatched = nameko(&["dispatch", "somewhere", "happened", "{}"], &env).await;
    assert_eq!(dispatched.status.code(), Some(0), "{}", stderr(&dispatched));
    assert!(stderr(&dispatched).is_empty(), "{}", stderr(&dispatched));

    let wrong_password = uri.replacen("guest:guest@", "guest:not-the-password@", 1);
    assert_ne!(
        wrong_password, uri,
        "the test broker's URI has guest's password"
    );
    let refused = nameko(
        &["call", "slow.sleep", "1", "--broker", &wrong_password],
        &[],
    )
    .await;
    assert_one_line(&refused, exit::CONNECTION, "error: ");
    assert!(!stderr(&refused).contains("not-the-password"));

    // Asked for, the library's view is there: the returned message of the unknown call.
    let verbose = nameko(
        &["call", "nobody_home.anything", "1"],
        &[("AMQP_URI", &uri), ("RUST_LOG", "lapin=warn")],
    )
    .await;
    assert_eq!(
        verbose.status.code(),
        Some(i32::from(exit::UNKNOWN_SERVICE))
    );
    assert!(
        stderr(&verbose).lines().count() > 1 && stderr(&verbose).contains("lapin"),
        "RUST_LOG opens the library's logs:\n{}",
        stderr(&verbose)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_v_shows_more() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let env = [("AMQP_URI", uri.as_str())];
    let mut lines = Vec::new();
    for flags in [&[][..], &["-vv"][..], &["-vvvv"][..]] {
        let mut args = vec!["call", "nobody_home.anything"];
        args.extend_from_slice(flags);
        let output = nameko(&args, &env).await;
        assert_eq!(
            output.status.code(),
            Some(i32::from(exit::UNKNOWN_SERVICE)),
            "{}",
            stderr(&output)
        );
        lines.push(stderr(&output).lines().count());
    }
    assert_eq!(lines[0], 1, "default: the tool's own line");
    assert!(
        lines[1] <= lines[2] && lines[2] > 1,
        "-vv and -vvvv log more: {lines:?}"
    );
    cluster.shutdown().await;
}

static JOBS_FIXED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static JOBS_DONE: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[derive(Dependencies)]
struct JobWorker;

#[service(name = "job_worker")]
impl JobWorker {
    #[consume(queue = "cli-jobs", retry = Backoff { limit: 1, schedule: [0.05] })]
    async fn work(&self, job: Value) -> Result<(), ValueError> {
        if !JOBS_FIXED.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(ValueError(format!("cannot do {job}")));
        }
        JOBS_DONE.lock().unwrap().push(job);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_replayed_and_purged() {
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<JobWorker>().await;
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let env = [("AMQP_URI", uri.as_str())];
    let transport = cluster.connect().await;
    let body =
        nameko::transport::Message::new(r#"{"job": 7}"#, nameko::transport::Properties::json());
    transport
        .publish("", "cli-jobs", body, Default::default())
        .await
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let list = nameko(&["dead-letters", "list", "cli-jobs"], &env).await;
        assert_exit(&list, exit::OK);
        if !stdout(&list).is_empty() || Instant::now() > deadline {
            break stdout(&list);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let letter: Value = serde_json::from_str(listed.trim()).expect("one JSON line");
    assert_eq!(
        letter,
        json!({
            "body": {"job": 7},
            "exc_type": "ValueError",
            "value": "cannot do {\"job\":7}",
            "attempts": 2,
            "original_queue": "cli-jobs",
        })
    );
    // Listing leaves them in place.
    let again = nameko(&["dead-letters", "list", "cli-jobs.dead"], &env).await;
    assert_eq!(stdout(&again), listed);

    JOBS_FIXED.store(true, std::sync::atomic::Ordering::SeqCst);
    let replay = nameko(&["dead-letters", "replay", "cli-jobs"], &env).await;
    assert_exit(&replay, exit::OK);
    assert_eq!(
        stdout(&replay),
        "replayed 1 message(s) from cli-jobs.dead\n"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while JOBS_DONE.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*JOBS_DONE.lock().unwrap(), [json!({"job": 7})]);
    let empty = nameko(&["dead-letters", "list", "cli-jobs"], &env).await;
    assert_eq!(stdout(&empty), "");
    let purge = nameko(&["dead-letters", "purge", "cli-jobs"], &env).await;
    assert_eq!(stdout(&purge), "purged 0 message(s) from cli-jobs.dead\n");
    let missing = nameko(&["dead-letters", "list", "no-such-queue"], &env).await;
    assert_exit(&missing, exit::FAILURE);
    assert!(
        stderr(&missing).contains("no dead-letter queue `no-such-queue.dead`"),
        "{}",
        stderr(&missing)
    );
    cluster.shutdown().await;
}
