//! Serving until the process is told to stop, as `nameko run` does.
//!
//! - `SIGTERM`, or a first Ctrl-C (`SIGINT`): a graceful stop. Entrypoints stop taking
//!   work, running workers finish within `SHUTDOWN_TIMEOUT` (then they are killed and
//!   the broker redelivers their messages), dependencies stop.
//! - A second signal during the graceful stop: kill at once.
//! - A service that crashes: the others are stopped, and the crash is reported.
//!
//! [`Served::exit_code`] turns the outcome into the process's exit code: 0 after a clean
//! stop, [`exit::CRASHED`] when a service crashed, and
//! [`exit::FORCED`] when the deadline or a second signal forced
//! a kill.
//!
//! ```no_run
//! use nameko::config::Config;
//! use nameko::runner::ServiceRunner;
//!
//! # async fn example<S: nameko::service::Service>() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
//! let config = Config::new().with("AMQP_URI", "amqp://guest:guest@localhost/");
//! let transport = nameko::connect(&config).await?;
//! let runner = ServiceRunner::new(config, transport);
//! runner.add::<S>()?;
//! runner.start().await?;
//! let served = nameko::serve::serve(&runner).await?;
//! Ok(std::process::ExitCode::from(served.exit_code()))
//! # }
//! ```

use std::fmt;
use std::io;

use nameko_core::runner::{RunnerError, ServiceRunner, StopReport};
use tokio::sync::mpsc;

use crate::cli::exit;

/// A request to stop, from the operating system or a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// `SIGTERM`, as sent by `kill`, Docker and Kubernetes.
    Terminate,
    /// `SIGINT`: Ctrl-C.
    Interrupt,
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT (Ctrl-C)",
        })
    }
}

/// How serving ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Served {
    /// A signal asked for a graceful stop, which completed; the report tells how each
    /// service ended.
    Stopped {
        /// The signal.
        signal: Signal,
        /// How each service ended.
        report: StopReport,
    },
    /// A second signal killed the services during the graceful stop.
    Killed {
        /// The second signal.
        signal: Signal,
    },
    /// A service crashed; the others were stopped.
    Crashed(RunnerError),
    /// Every service stopped without a signal (stopped by other code).
    Finished,
}

impl Served {
    /// Whether every service stopped gracefully.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        match self {
            Self::Stopped { report, .. } => report.is_clean(),
            Self::Finished => true,
            Self::Killed { .. } | Self::Crashed(_) => false,
        }
    }

    /// The exit code for the process: [`exit::OK`] after a clean stop,
    /// [`exit::CRASHED`] when a service crashed, [`exit::FORCED`] when a kill was forced
    /// (by the shutdown deadline or a second signal).
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Stopped { report, .. } if report.crashed().next().is_some() => exit::CRASHED,
            Self::Stopped { report, .. } if !report.is_clean() => exit::FORCED,
            Self::Stopped { .. } | Self::Finished => exit::OK,
            Self::Killed { .. } => exit::FORCED,
            Self::Crashed(_) => exit::CRASHED,
        }
    }
}

impl fmt::Display for Served {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped { signal, report } => write!(f, "stopped on {signal}: {report}"),
            Self::Killed { signal } => write!(f, "killed on a second signal ({signal})"),
            Self::Crashed(error) => write!(f, "{error}"),
            Self::Finished => f.write_str("every service stopped"),
        }
    }
}

/// Serves a started runner until `SIGTERM` or Ctrl-C (see the [module docs](self)).
///
/// # Errors
///
/// When the signal handlers cannot be installed.
pub async fn serve(runner: &ServiceRunner) -> io::Result<Served> {
    Ok(serve_with(runner, os_signals()?).await)
}

/// As [`serve`], with the signals coming from `signals` (for tests, or to stop from
/// other code). A closed channel sends no more signals.
///
/// ```no_run
/// use nameko::serve::{Signal, serve_with};
///
/// # async fn example(runner: nameko::runner::ServiceRunner) {
/// let (signals, rx) = tokio::sync::mpsc::channel(2);
/// let serving = tokio::spawn({
///     let runner = runner.clone();
///     async move { serve_with(&runner, rx).await }
/// });
/// signals.send(Signal::Terminate).await.unwrap();
/// assert!(serving.await.unwrap().is_clean());
/// # }
/// ```
pub async fn serve_with(runner: &ServiceRunner, mut signals: mpsc::Receiver<Signal>) -> Served {
    let mut listening = true;
    let signal = loop {
        tokio::select! {
            result = runner.wait() => {
                return match result {
                    Ok(()) => Served::Finished,
                    Err(error) => Served::Crashed(error),
                };
            }
            received = signals.recv(), if listening => match received {
                Some(signal) => break signal,
                None => listening = false,
            },
        }
    };
    tracing::info!(
        %signal,
        deadline = ?runner.shutdown_timeout(),
        "stopping gracefully (signal again to kill)"
    );
    // Boxed, so that it can be dropped (releasing the containers' lifecycle locks)
    // before a kill.
    let mut stop = Box::pin(runner.stop());
    let second = loop {
        tokio::select! {
            report = &mut stop => return Served::Stopped { signal, report },
            received = signals.recv(), if listening => match received {
                Some(second) => break second,
                None => listening = false,
            },
        }
    };
    drop(stop);
    tracing::warn!(signal = %second, "second signal: killing the services");
    runner.kill().await;
    Served::Killed { signal: second }
}

/// The process's `SIGTERM` and `SIGINT`, as a channel.
pub(crate) fn os_signals() -> io::Result<mpsc::Receiver<Signal>> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    Some(()) = terminate.recv() => Signal::Terminate,
                    Some(()) = interrupt.recv() => Signal::Interrupt,
                    else => break,
                };
                if tx.send(received).await.is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                if tx.send(Signal::Interrupt).await.is_err() {
                    break;
                }
            }
        });
    }
    Ok(rx)
}
