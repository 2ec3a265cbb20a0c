//! Running `rabbitmqctl` from tests: the broker's own control tool, for what the AMQP
//! protocol cannot do (close connections, stop the broker, manage users and vhosts).

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Why a `rabbitmqctl` command did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RabbitmqctlError {
    /// The tool could not be started (not installed, not on `PATH`).
    #[error("rabbitmqctl: {0}")]
    Spawn(#[from] io::Error),
    /// The command did not finish in time; it was killed.
    #[error("rabbitmqctl {command} took longer than {within:?}")]
    TimedOut {
        /// The arguments, joined by spaces.
        command: String,
        /// The time it was given.
        within: Duration,
    },
    /// The command exited with an error.
    #[error("rabbitmqctl {command} failed: {stderr}")]
    Failed {
        /// The arguments, joined by spaces.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
}

/// Runs `rabbitmqctl args...` (blocking), killing it after `within`; returns its stdout.
///
/// ```no_run
/// use std::time::Duration;
///
/// let vhosts = nameko_amqp::test_support::rabbitmqctl(&["list_vhosts", "-q"], Duration::from_secs(30))?;
/// # Ok::<(), nameko_amqp::test_support::RabbitmqctlError>(())
/// ```
///
/// # Errors
///
/// See [`RabbitmqctlError`].
pub fn rabbitmqctl(args: &[&str], within: Duration) -> Result<String, RabbitmqctlError> {
    let mut child = Command::new("rabbitmqctl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + within;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RabbitmqctlError::TimedOut {
                command: args.join(" "),
                within,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(RabbitmqctlError::Failed {
            command: args.join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}
