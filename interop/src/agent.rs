//! The Python side: one `interop/python/agent.py` process per test binary, hosting Python
//! nameko services and clients for every test of the binary.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// The variable that turns a missing Python into a failure (`1`) rather than a skip.
pub const REQUIRE_PYTHON_VAR: &str = "NAMEKO_REQUIRE_PYTHON";

/// The variable that lets the tests make the Python environment (`1`): run
/// `scripts/python-env`, which installs Python nameko from PyPI. Without it they only
/// use an environment that is already there.
pub const PYTHON_SETUP_VAR: &str = "NAMEKO_PYTHON_SETUP";

/// How long the agent may take to start (imports, eventlet's monkey patching).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one request to the agent may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A Python exception, as the agent describes it: what a Python caller would catch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PythonError {
    /// Module and class name, e.g. `nameko.exceptions.MethodNotFound`.
    #[serde(rename = "type")]
    pub class: String,
    /// The nameko exception classes (and `interop_errors` classes) it is an instance
    /// of, by name: Python's `isinstance` checks.
    pub instance_of: Vec<String>,
    /// Its `args`.
    pub args: Vec<Value>,
    /// Its `str()`.
    #[serde(rename = "str")]
    pub message: String,
    /// `RemoteError.exc_type`, for remote errors.
    pub exc_type: Option<String>,
    /// `RemoteError.value`, for remote errors.
    pub value: Option<String>,
}

impl PythonError {
    /// Whether `isinstance(exc, <name>)` holds, for a class of `nameko.exceptions` or
    /// `interop_errors`.
    #[must_use]
    pub fn is_instance(&self, class: &str) -> bool {
        self.instance_of.iter().any(|c| c == class)
    }
}

impl fmt::Display for PythonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

impl std::error::Error for PythonError {}

type Answer = Result<Value, PythonError>;

/// Where the answer to one request goes.
enum Waiter {
    Task(oneshot::Sender<Answer>),
    Thread(mpsc::Sender<Answer>),
}

impl Waiter {
    fn send(self, answer: Answer) {
        // The requester may have given up (timed out); the answer is then dropped.
        match self {
            Self::Task(tx) => drop(tx.send(answer)),
            Self::Thread(tx) => drop(tx.send(answer)),
        }
    }
}

/// The Python agent of this test binary.
///
/// Tests share it: every request names the AMQP URI of its test's virtual host, and each
/// test stops its own services. The process ends when the test binary does, because the
/// agent exits when its stdin closes.
pub struct Agent {
    stdin: Mutex<ChildStdin>,
    pending: Arc<Mutex<HashMap<u64, Waiter>>>,
    next_id: AtomicU64,
    log: PathBuf,
    python: PathBuf,
    _child: Child,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("python", &self.python)
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl Agent {
    /// The agent of this test binary, started on first use; `None` (after printing
    /// why) when there is no Python to run it.
    ///
    /// # Panics
    ///
    /// When Python is missing and `NAMEKO_REQUIRE_PYTHON=1`.
    pub async fn shared() -> Option<Arc<Self>> {
        static AGENT: OnceLock<Result<Arc<Agent>, String>> = OnceLock::new();
        let agent = match AGENT.get() {
            Some(agent) => agent.clone(),
            None => tokio::task::spawn_blocking(|| AGENT.get_or_init(Self::spawn).clone())
                .await
                .unwrap_or_else(|e| Err(format!("starting the Python agent panicked: {e}"))),
        };
        match agent {
            Ok(agent) => Some(agent),
            Err(reason) => {
                assert!(
                    !python_required(),
                    "no Python nameko for the interop suite ({reason}) and {REQUIRE_PYTHON_VAR}=1"
                );
                eprintln!(
                    "skipping: no Python nameko ({reason}; set {REQUIRE_PYTHON_VAR}=1 to fail instead)"
                );
                None
            }
        }
    }

    /// The file the agent's stderr (Python's logs and tracebacks) goes to.
    #[must_use]
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The Python interpreter running the agent.
    #[must_use]
    pub fn python(&self) -> &Path {
        &self.python
    }

    fn spawn() -> Result<Arc<Self>, String> {
        let interop = Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = interop.parent().unwrap_or(interop);
        let python = python_env(&workspace.join("scripts/python-env"), &[])?;
        let log = std::env::temp_dir().join(format!("nameko-interop-{}.log", binary_name()));
        let stderr =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(&python)
            .args(["-u", "agent.py"])
            .current_dir(interop.join("python"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the agent's pipes are missing".to_owned());
        };
        let pending: Arc<Mutex<HashMap<u64, Waiter>>> = Arc::default();
        let (ready_tx, ready_rx) = mpsc::channel();
        let routes = pending.clone();
        std::thread::Builder::new()
            .name("python-agent".to_owned())
            .spawn(move || read_answers(BufReader::new(stdout), &routes, &ready_tx))
            .map_err(|e| format!("cannot start the agent's reader: {e}"))?;
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(Arc::new(Self {
                stdin: Mutex::new(stdin),
                pending,
                next_id: AtomicU64::new(1),
                log,
                python,
                _child: child,
            })),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "the Python agent did not start within {START_TIMEOUT:?}: {}",
                    log_tail(&log)
                ))
            }
        }
    }

    fn send(&self, op: &str, args: &Value, waiter: Waiter) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(id, waiter);
        let mut line = serde_json::to_vec(&json!({"id": id, "op": op, "args": args}))
            .expect("a request is JSON");
        line.push(b'\n');
        let written = {
            let mut stdin = self.stdin.lock();
            stdin.write_all(&line).and_then(|()| stdin.flush())
        };
        if let Err(error) = written {
            self.pending.lock().remove(&id);
            panic!("the Python agent is gone ({error}); {}", self.log_hint());
        }
        id
    }

    /// Runs `op` with `args` in the agent and returns its value, or the Python exception
    /// it raised.
    ///
    /// # Panics
    ///
    /// When the agent does not answer within 30 seconds, or is gone.
    pub async fn request(&self, op: &str, args: Value) -> Result<Value, PythonError> {
        let (tx, rx) = oneshot::channel();
        let id = self.send(op, &args, Waiter::Task(tx));
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => panic!("the Python agent exited during `{op}`; {}", self.log_hint()),
            Err(_) => {
                self.pending.lock().remove(&id);
                panic!(
                    "the Python agent did not answer `{op}` within {REQUEST_TIMEOUT:?}; {}",
                    self.log_hint()
                )
            }
        }
    }

    /// [`Agent::request`] for code that cannot await (drop): blocks the thread; `None`
    /// when no answer came within `timeout`.
    pub fn request_blocking(
        &self,
        op: &str,
        args: Value,
        timeout: Duration,
    ) -> Option<Result<Value, PythonError>> {
        let (tx, rx) = mpsc::channel();
        let id = self.send(op, &args, Waiter::Thread(tx));
        let answer = rx.recv_timeout(timeout).ok();
        if answer.is_none() {
            self.pending.lock().remove(&id);
        }
        answer
    }

    fn log_hint(&self) -> String {
        format!(
            "Python's log is {}; it ends with:\n{}",
            self.log.display(),
            log_tail(&self.log)
        )
    }
}

/// Routes the agent's answers to their requests; at the end of its output, fails every
/// request still waiting.
fn read_answers(
    stdout: impl BufRead,
    pending: &Mutex<HashMap<u64, Waiter>>,
    ready: &mpsc::Sender<()>,
) {
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        let Ok(message) = nameko::wire::json::parse_value(line.as_bytes()) else {
            eprintln!("python agent: unreadable answer: {line}");
            continue;
        };
        if message.get("ready").is_some() {
            let _ = ready.send(());
            continue;
        }
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            continue;
        };
        let Some(waiter) = pending.lock().remove(&id) else {
            continue;
        };
        let answer = if message["ok"] == json!(true) {
            Ok(message.get("value").cloned().unwrap_or(Value::Null))
        } else {
            Err(
                PythonError::deserialize(&message["error"]).unwrap_or_else(|e| PythonError {
                    class: "interop.UnreadableError".to_owned(),
                    instance_of: Vec::new(),
                    args: Vec::new(),
                    message: format!("{e}: {}", message["error"]),
                    exc_type: None,
                    value: None,
                }),
            )
        };
        waiter.send(answer);
    }
    // The agent is gone: dropping the waiters wakes every request still waiting.
    pending.lock().clear();
}

/// The python of the virtual environment with Python nameko: `scripts/python-env
/// --check` finds a ready one; with `NAMEKO_PYTHON_SETUP=1`, `scripts/python-env` makes
/// it when needed (installing from PyPI). `args` chooses the environment (`--otel`).
fn python_env(script: &Path, args: &[&str]) -> Result<PathBuf, String> {
    let setup = flag(PYTHON_SETUP_VAR);
    let mut command = Command::new(script);
    command.args(args);
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
            format!("{why}, or set {PYTHON_SETUP_VAR}=1 to let the tests make it")
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().map(str::trim) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(format!("{} printed no python path", script.display())),
    }
}

/// The variable that turns a missing Python nameko 3 environment with
/// opentelemetry-instrumentation-nameko (`scripts/python-env --otel`) into a failure
/// (`1`) rather than a skip.
pub const REQUIRE_PYTHON_OTEL_VAR: &str = "NAMEKO_REQUIRE_PYTHON_OTEL";

/// The python of the second environment, with Python nameko 3.0.0rc11 and
/// opentelemetry-instrumentation-nameko (`scripts/python-env --otel`, the pins of
/// `interop/requirements-otel.txt`); `None` (after printing why) when there is none.
///
/// # Panics
///
/// When there is none and `NAMEKO_REQUIRE_PYTHON_OTEL=1`.
#[must_use]
pub fn python_otel() -> Option<PathBuf> {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = interop.parent().unwrap_or(interop);
    match python_env(&workspace.join("scripts/python-env"), &["--otel"]) {
        Ok(python) => Some(python),
        Err(reason) => {
            assert!(
                !flag(REQUIRE_PYTHON_OTEL_VAR),
                "no Python nameko 3 with opentelemetry-instrumentation-nameko ({reason}) and {REQUIRE_PYTHON_OTEL_VAR}=1"
            );
            eprintln!(
                "skipping: no Python nameko 3 with opentelemetry-instrumentation-nameko ({reason}; set {REQUIRE_PYTHON_OTEL_VAR}=1 to fail instead)"
            );
            None
        }
    }
}

/// Whether the variable `var` is `1` or `true`.
fn flag(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn python_required() -> bool {
    flag(REQUIRE_PYTHON_VAR)
}

/// The test binary's file name, e.g. `rpc_python_to_rust-0123abcd`.
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| format!("pid{}", std::process::id()))
}

/// The last lines of the agent's log, for failure messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
