//! The benchmark harness: nameko-rs against raw lapin and Python nameko, interleaved over
//! rounds, on one machine.
//!
//! ```text
//! cargo run --release -p nameko-bench -- [--rounds 3] [--quick | --smoke]
//!     [--uri amqp://guest:guest@127.0.0.1:5672/%2f] [--only rs,lapin,py,...]
//!     [--no-python] [--no-raw-lapin] [--json results.json]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use nameko_bench::cli::Flags;
use nameko_bench::error::{BenchError, Result};
use nameko_bench::harness::{self, Options};
use nameko_bench::tools::Need;
use nameko_bench::{machine, report};
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nameko-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let options = parse()?;
    let (options, json) = options;
    let description = machine::describe();
    eprintln!("{description}");
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    // Dropping the run (on a signal) kills its processes and deletes its vhost.
    let report = tokio::select! {
        report = harness::run(&options) => report?,
        _ = tokio::signal::ctrl_c() => return Err(BenchError::new("interrupted")),
        _ = terminate.recv() => return Err(BenchError::new("terminated")),
        _ = hangup.recv() => return Err(BenchError::new("hung up")),
    };
    println!(
        "## Results\n\n{} rounds, load average at the end: {}\n",
        report.rounds,
        machine::load_average()
    );
    println!("{description}");
    println!("{}", report.render());
    println!(
        "### Targets\n\n{}",
        report::render_targets(&report.targets())
    );
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&report.to_json())?)?;
        eprintln!("samples written to {}", path.display());
    }
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::new(format!(
            "{} contender runs failed",
            report.failures.len()
        )))
    }
}

fn parse() -> Result<(Options, Option<PathBuf>)> {
    let dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| BenchError::new("cannot find the binaries' directory"))?;
    let service = dir.join("nameko-bench-service");
    let client = dir.join("nameko-bench-client");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = if args.iter().any(|a| a == "--smoke") {
        Options::smoke(service, client)
    } else if args.iter().any(|a| a == "--quick") {
        Options::quick(service, client)
    } else {
        Options::full(service, client)
    };
    let mut json = None;
    let mut flags = Flags::new(args);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--smoke" | "--quick" => {}
            "--rounds" => options.rounds = flags.parsed(&flag)?,
            "--uri" => options.uri = flags.value(&flag)?,
            "--only" => {
                options.only = Some(flags.value(&flag)?.split(',').map(str::to_owned).collect());
            }
            "--no-python" => options.python = Need::Skip,
            "--no-raw-lapin" => options.raw_lapin = Need::Skip,
            "--json" => json = Some(PathBuf::from(flags.value(&flag)?)),
            other => return Err(BenchError::new(format!("unknown flag {other}"))),
        }
    }
    Ok((options, json))
}
