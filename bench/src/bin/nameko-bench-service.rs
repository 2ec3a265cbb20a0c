//! The nameko-rs `echo` service in a process of its own, for the benchmark harness.
//!
//! ```text
//! nameko-bench-service [--uri AMQP_URI] [--set KEY=VALUE]...
//! ```
//!
//! Prints `ready <ms since start>` once it serves, and stops gracefully on Ctrl-C,
//! SIGTERM or the end of its standard input (so it never outlives the harness).

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser as _;
use nameko::amqp::{AmqpOptions, AmqpTransport};
use nameko::prelude::*;
use nameko::transport::Transport as _;
use nameko_bench::cli::{self, ServiceArgs};
use nameko_bench::echo::Echo;
use nameko_bench::error::Result;
use tokio::io::AsyncReadExt as _;
use tokio::signal::unix::{SignalKind, signal};

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    match run(started, ServiceArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nameko-bench-service: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(started: Instant, args: ServiceArgs) -> Result<()> {
    let uri = args.uri.unwrap_or_else(nameko_bench::default_uri);
    let config = cli::apply(Config::new(), &args.settings);
    let options = AmqpOptions::new().connection_name("nameko-bench echo service");
    let transport = AmqpTransport::connect_with(&uri, options).await?;
    let container = ServiceContainer::<Echo>::new(Arc::new(transport.clone()), config)?;
    container.start().await?;
    println!("ready {:.3}", started.elapsed().as_secs_f64() * 1e3);
    std::io::stdout().flush()?;

    let mut terminate = signal(SignalKind::terminate())?;
    let mut stdin = tokio::io::stdin();
    let mut sink = [0_u8; 64];
    let stdin_closed = async { while matches!(stdin.read(&mut sink).await, Ok(n) if n > 0) {} };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        () = stdin_closed => {}
        _ = container.wait() => {}
    }
    container.stop().await?;
    transport.close().await?;
    Ok(())
}
