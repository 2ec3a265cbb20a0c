//! What the shell's process tests share: the `nameko` tool, the example cluster binary
//! (built on demand), the cluster run as a child on RabbitMQ, the Python interop service,
//! and a slow service for timeouts.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nameko::prelude::*;

/// The `nameko` tool.
pub const NAMEKO: &str = env!("CARGO_BIN_EXE_nameko");

/// The variable that turns a missing Python environment from a skip into a failure.
const REQUIRE_PYTHON: &str = "NAMEKO_REQUIRE_PYTHON";

/// The `cluster` example of `nameko-examples` (every example service), built once per
/// test process into this test's target directory and profile.
pub fn cluster_binary() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = &*built {
        return path.clone();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("a target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .unwrap_or("debug");
    let profile = if profile == "debug" { "dev" } else { profile };
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "nameko-examples",
            "--example",
            "cluster",
            "--profile",
            profile,
            "--target-dir",
        ])
        .arg(target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example cluster failed");
    let path = profile_dir
        .join("examples")
        .join(format!("cluster{}", std::env::consts::EXE_SUFFIX));
    assert!(path.exists(), "{} was not built", path.display());
    *built = Some(path.clone());
    path
}

/// A directory of its own for one test's files, removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("nameko-shell-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn file(&self, name: &str, text: &str) -> String {
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

/// Runs `binary shell args...` with `script` on standard input, a history directory of
/// its own, and no `AMQP_URI` or `RUST_LOG` but what `env` sets.
pub fn pipe(binary: &Path, args: &[&str], env: &[(&str, &str)], script: &str) -> Output {
    let data = TempDir::new("pipe-data");
    let mut command = Command::new(binary);
    command
        .arg("shell")
        .args(args)
        .env_remove("AMQP_URI")
        .env_remove("RUST_LOG")
        .env("XDG_DATA_HOME", &data.0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("the shell starts");
    let mut stdin = child.stdin.take().unwrap();
    let script = script.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let output = wait_with_deadline(child, Duration::from_secs(120));
    writer.join().unwrap();
    output
}

fn wait_with_deadline(child: Child, within: Duration) -> Output {
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(within) {
        Ok(output) => output.expect("the shell ran"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &id.to_string()])
                .status();
            panic!("the shell did not finish within {within:?}");
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `cluster run` as a child process on `amqp_uri`, stopped with SIGTERM at the end.
pub struct ClusterProcess(Child);

impl ClusterProcess {
    /// Starts the example cluster and waits until it serves.
    pub fn start(amqp_uri: &str) -> Self {
        let mut child = Command::new(cluster_binary())
            .args(["run", "-d", "WEB_SERVER_ADDRESS=127.0.0.1:0"])
            .env("AMQP_URI", amqp_uri)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the cluster starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving until SIGTERM") {
                    let _ = tx.send(());
                }
            }
        });
        let started = rx.recv_timeout(Duration::from_secs(60)).is_ok();
        let cluster = Self(child);
        assert!(started, "the example cluster did not start serving");
        cluster
    }
}

impl Drop for ClusterProcess {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

/// SIGTERM, then SIGKILL after 10 s.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `slow.sleep(millis)`: a service that answers late, for timeouts.
#[derive(Dependencies)]
pub struct Slow;

#[service(name = "slow")]
impl Slow {
    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

/// Python nameko's `nameko` script from the venv `scripts/python-env` makes, or why not.
fn python_nameko() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env");
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!("{} failed", script.display()));
    }
    let python = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    let nameko = python.with_file_name("nameko");
    if nameko.exists() {
        Ok(nameko)
    } else {
        Err(format!("no nameko script next to {}", python.display()))
    }
}

/// Python nameko running the interop suite's `py_api` service (`echo`, `divide`,
/// `sleep`, ...), killed at the end; `None`, saying why, without Python (a failure with
/// `NAMEKO_REQUIRE_PYTHON=1`).
pub struct PythonService {
    child: Child,
    _dir: TempDir,
}

impl PythonService {
    pub fn start(amqp_uri: &str) -> Option<Self> {
        let nameko = match python_nameko() {
            Ok(nameko) => nameko,
            Err(reason) => {
                let required = std::env::var(REQUIRE_PYTHON)
                    .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
                assert!(
                    !required,
                    "Python nameko is not available ({reason}) and {REQUIRE_PYTHON}=1"
                );
                eprintln!(
                    "skipping the Python service: Python nameko is not available ({reason}; \
                     set {REQUIRE_PYTHON}=1 to fail instead)"
                );
                return None;
            }
        };
        let dir = TempDir::new("python");
        let config = dir.file("config.yaml", &format!("AMQP_URI: '{amqp_uri}'\n"));
        let log = std::fs::File::create(dir.0.join("python.log")).unwrap();
        let child = Command::new(nameko)
            .args(["run", "--config", &config, "services:Api"])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/python"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("Python nameko starts");
        Some(Self { child, _dir: dir })
    }

    /// Python's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.join("python.log")).unwrap_or_default()
    }
}

impl Drop for PythonService {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Waits (bounded) until `service` answers `probe` in a piped shell.
pub fn wait_for_service(amqp_uri: &str, probe: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let output = pipe(
            Path::new(NAMEKO),
            &["--broker", amqp_uri],
            &[],
            &format!("n.timeout(5)\n{probe}\n"),
        );
        if output.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never answered: {}",
            stderr(&output)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
