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

use clap::Parser as _;
use nameko_bench::cli::BenchArgs;
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
    let (options, json) = options(BenchArgs::parse())?;
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

fn options(args: BenchArgs) -> Result<(Options, Option<PathBuf>)> {
    let dir = std::env::current_exe()?
        .parent()
        .map(PathBuf::from)
        .ok_or_else(|| BenchError::new("cannot find the binaries' directory"))?;
    let service = dir.join("nameko-bench-service");
    let client = dir.join("nameko-bench-client");
    let mut options = if args.smoke {
        Options::smoke(service, client)
    } else if args.quick {
        Options::quick(service, client)
    } else {
        Options::full(service, client)
    };
    if let Some(rounds) = args.rounds {
        options.rounds = rounds;
    }
    if let Some(uri) = args.uri {
        options.uri = uri;
    }
    options.only = args.only;
    if args.no_python {
        options.python = Need::Skip;
    }
    if args.no_raw_lapin {
        options.raw_lapin = Need::Skip;
    }
    Ok((options, args.json))
}
