//! A service binary with nameko's whole command line from a one-line `main`.
//!
//! ```text
//! cargo run -p nameko --example runner_service -- run --broker amqp://guest:guest@localhost:5672/
//! cargo run -p nameko --example runner_service -- call runner_example.echo '"hi"'
//! cargo run -p nameko --example runner_service -- show-config -d max_workers=4
//! cargo run -p nameko --example runner_service -- --help
//! ```
//!
//! `run` serves until SIGTERM or Ctrl-C: calls in flight are answered before the process
//! exits (with code 0); a second Ctrl-C kills it at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nameko::prelude::*;

/// Calls running now, for `running`.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

#[derive(Dependencies)]
struct RunnerExample;

#[service(name = "runner_example")]
impl RunnerExample {
    /// Returns its argument.
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }

    /// Sleeps for `millis` milliseconds, then returns them.
    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        millis
    }

    /// How many `sleep` calls are running.
    #[rpc]
    async fn running(&self) -> usize {
        RUNNING.load(Ordering::SeqCst)
    }
}

fn main() -> std::process::ExitCode {
    nameko::cli::main(nameko::services![RunnerExample])
}
