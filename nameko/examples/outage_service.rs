//! A service binary for the broker outage tests (`nameko/tests/broker_outages.rs`): every
//! call of `work` that starts is written as one line `<pid> <id>` to the file named by
//! `OUTAGE_SERVICE_LOG` (when set), so that a test can tell which process ran which call
//! and whether any call ran twice.
//!
//! ```text
//! OUTAGE_SERVICE_LOG=/tmp/calls.log \
//!     cargo run -p nameko --example outage_service -- run --broker amqp://guest:guest@localhost:5672/
//! cargo run -p nameko --example outage_service -- call outage_service.work '["a", 100]'
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use nameko::prelude::*;

/// The variable naming the file calls are recorded in.
const LOG_VAR: &str = "OUTAGE_SERVICE_LOG";

#[derive(Dependencies)]
struct OutageService;

#[service(name = "outage_service")]
impl OutageService {
    /// Records that the call started, sleeps for `millis` milliseconds, then returns `id`.
    #[rpc]
    async fn work(&self, id: String, millis: u64) -> Result<String, ServiceError> {
        record(&id)?;
        tokio::time::sleep(Duration::from_millis(millis)).await;
        Ok(id)
    }

    /// The process id of the instance that answers.
    #[rpc]
    async fn ping(&self) -> u32 {
        std::process::id()
    }
}

/// Appends `<pid> <id>` to the log file, one `write` per line so that lines of
/// concurrent calls never interleave.
fn record(id: &str) -> std::io::Result<()> {
    static LOG: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let path = std::env::var_os(LOG_VAR)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("the file named by OUTAGE_SERVICE_LOG can be opened");
        Some(Mutex::new(file))
    });
    let Some(log) = log else {
        return Ok(());
    };
    let line = format!("{} {id}\n", std::process::id());
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .write_all(line.as_bytes())
}

fn main() -> std::process::ExitCode {
    nameko::cli::main(nameko::services![OutageService])
}
