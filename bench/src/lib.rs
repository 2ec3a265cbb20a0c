//! Benchmarks of nameko-rs against raw lapin and Python nameko.
//!
//! `cargo run --release -p nameko-bench -- [--rounds 3] [--quick]` runs every contender
//! once per round, interleaved, on the same broker, and prints medians, ranges and
//! ratios. See `BENCHMARKS.md` at the repository root.

pub mod broker;
pub mod cli;
pub mod contender;
pub mod echo;
pub mod error;
pub mod harness;
pub mod load;
pub mod machine;
pub mod process;
pub mod procfs;
pub mod report;
pub mod scenario;
pub mod stats;
pub mod tools;

/// The broker used when no `--uri` is given: `AMQP_URI`, else the local RabbitMQ.
#[must_use]
pub fn default_uri() -> String {
    std::env::var("AMQP_URI").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Runs a benchmark binary's driver on a runtime of one worker thread (the other core is
/// left to the broker and the servers it measures) and turns its outcome into the exit
/// code, printing an error as `<name>: <error>`.
pub fn run_driver<F>(name: &str, driver: F) -> std::process::ExitCode
where
    F: Future<Output = error::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build();
    match runtime
        .map_err(error::BenchError::from)
        .and_then(|rt| rt.block_on(driver))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
