//! The `reports` service and its cron jobs on the in-process broker: runs until its
//! every-second heartbeat has fired three times, then stops gracefully and exits 0.
//!
//! ```text
//! cargo run --example custom_entrypoint
//! ```

use std::process::ExitCode;
use std::time::Duration;

use nameko::prelude::*;
use nameko_cron::{Reports, ReportsClient, Run};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(runs) => {
            for run in runs {
                println!("{} ran for {}", run.job, run.scheduled.unwrap_or_default());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<Vec<Run>, Box<dyn std::error::Error>> {
    let config = Config::new().with("AMQP_URI", "memory://custom-entrypoint");
    let transport = nameko::connect_or_memory(&config).await?;
    let container = ServiceContainer::<Reports>::new(transport.clone(), config.clone())?;
    container.start().await?;
    let proxy = ClusterRpcProxy::start(transport, &config).await?;
    let reports: ReportsClient = proxy.client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let runs = loop {
        let runs = reports.runs().await?;
        if runs.len() >= 3 {
            break runs;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("only {} heartbeat(s) in 15 s", runs.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    proxy.stop().await;
    container.stop().await?;
    Ok(runs)
}
