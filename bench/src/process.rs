//! Benchmark processes: spawned with their output captured, measured through `/proc`,
//! and never left behind (killed when dropped, so also on errors, panics and Ctrl-C).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::error::{BenchError, Result};
use crate::procfs::{self, Memory};

/// Lines of standard error kept to explain a failure.
const STDERR_TAIL: usize = 40;

/// How to start a process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Short name for messages.
    pub name: String,
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory, if not the harness's.
    pub cwd: Option<String>,
}

impl Launch {
    /// `program` with no arguments yet.
    pub fn new(name: impl Into<String>, program: impl AsRef<OsStr>) -> Self {
        Self {
            name: name.into(),
            program: program.as_ref().to_string_lossy().into_owned(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
        }
    }

    /// Adds arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs in `dir`.
    #[must_use]
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_string_lossy().into_owned());
        self
    }
}

/// A running benchmark process.
#[derive(Debug)]
pub struct Running {
    name: String,
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    started: Instant,
}

impl Running {
    /// Starts a process; it is killed when the returned value is dropped.
    ///
    /// # Errors
    ///
    /// If it cannot be started.
    pub fn spawn(launch: &Launch) -> Result<Self> {
        let mut command = Command::new(&launch.program);
        command
            .args(&launch.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        if let Some(dir) = &launch.cwd {
            command.current_dir(dir);
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| BenchError::new(format!("starting {}: {e}", launch.program)))?;
        let pid = child
            .id()
            .ok_or_else(|| BenchError::new(format!("{} exited at once", launch.name)))?;
        let (tx, lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let tail = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut reader = BufReader::new(err).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    let mut tail = tail.lock();
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        Ok(Self {
            name: launch.name.clone(),
            stdin: child.stdin.take(),
            child,
            pid,
            lines,
            stderr,
            started,
        })
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// When it was started.
    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The next line of its standard output; `None` once it closed it.
    ///
    /// # Errors
    ///
    /// If no line comes within `timeout`.
    pub async fn next_line(&mut self, timeout: Duration) -> Result<Option<String>> {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(line) => Ok(line),
            Err(_) => Err(self.failure(format!("no output for {timeout:?}"))),
        }
    }

    /// CPU time used so far.
    ///
    /// # Errors
    ///
    /// If the process is gone.
    pub fn cpu_time(&self) -> Result<Duration> {
        procfs::cpu_time(self.pid).map_err(|e| self.failure(e.to_string()))
    }

    /// Its memory now.
    ///
    /// # Errors
    ///
    /// If the process is gone.
    pub fn memory(&self) -> Result<Memory> {
        procfs::memory(self.pid).map_err(|e| self.failure(e.to_string()))
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// An error about this process, with the end of its standard error.
    #[must_use]
    pub fn failure(&self, what: impl std::fmt::Display) -> BenchError {
        let tail = self
            .stderr
            .lock()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n    ");
        if tail.is_empty() {
            BenchError::new(format!("{}: {what}", self.name))
        } else {
            BenchError::new(format!("{}: {what}\n  its stderr:\n    {tail}", self.name))
        }
    }

    /// Waits for it to exit on its own, and fails unless it succeeded.
    ///
    /// # Errors
    ///
    /// A failure exit, or no exit within `timeout` (it is then killed).
    pub async fn finish(mut self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(self.failure(format!("exited with {status}"))),
            Ok(Err(e)) => Err(self.failure(e)),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(self.failure(format!("still running after {timeout:?}")))
            }
        }
    }

    /// Asks it to stop (end of standard input, then SIGTERM), waits up to `grace`, then
    /// kills it.
    pub async fn stop(mut self, grace: Duration) {
        drop(self.stdin.take());
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
