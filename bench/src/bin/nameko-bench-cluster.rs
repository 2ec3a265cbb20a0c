//! The cluster benchmark: the example `calculator` service (`examples/src/calculator.rs`)
//! with 1, 2 and 3 instances on the three-node RabbitMQ cluster of
//! `scripts/rabbitmq-cluster`, on quorum and on classic queues, called by one nameko-rs
//! client with many calls in flight.
//!
//! ```text
//! scripts/rabbitmq-cluster up
//! cargo run --release -p nameko-bench --bin nameko-bench-cluster -- [--rounds 3] [--calls 5000]
//!     [--inflight 100] [--smoke]
//! ```
//!
//! Instance `i` connects to node `i` (its `AMQP_URI` lists the three nodes starting with
//! that one); the client lists them from node 1. Each round measures every combination
//! once, in turn; the queue is deleted between queue types (a queue's type is fixed when
//! it is declared). Prints medians over the rounds.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nameko::amqp::AmqpTransport;
use nameko::prelude::*;
use nameko::transport::Transport as _;
use nameko_bench::broker::Probe;
use nameko_bench::error::{BenchError, Result};
use nameko_bench::process::{Launch, Running};
use nameko_bench::stats::RunFigures;
use nameko_examples::Calculator;

const QUEUE: &str = "rpc-calculator";
const QUEUE_TYPES: [&str; 2] = ["quorum", "classic"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        // One instance: `nameko-bench-cluster serve run --config <file>`.
        let rest = std::iter::once(args[0].clone()).chain(args[2..].iter().cloned());
        return nameko::cli::Cli::new()
            .service::<Calculator>()
            .main_from(rest);
    }
    nameko_bench::run_driver("nameko-bench-cluster", run())
}

/// `nameko-bench-cluster`: RPC throughput with 1, 2 and 3 instances on a RabbitMQ cluster.
#[derive(Debug, Parser)]
#[command(
    name = "nameko-bench-cluster",
    about = "calculator.multiply with 1, 2 and 3 instances on the three-node RabbitMQ cluster of scripts/rabbitmq-cluster"
)]
struct Options {
    /// Rounds; each measures every combination once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Calls per measurement.
    #[arg(long, default_value_t = 5000)]
    calls: usize,
    /// Calls in flight.
    #[arg(long, default_value_t = 100)]
    inflight: usize,
    /// One round of a few calls.
    #[arg(long)]
    smoke: bool,
}

/// The AMQP port of node `n` (1 to 3) of `scripts/rabbitmq-cluster`.
fn port(node: usize) -> usize {
    5680 + node
}

/// A URI listing the three nodes, starting with `first`.
fn uri_from(first: usize) -> String {
    let hosts: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", port((first - 1 + i) % 3 + 1)))
        .collect();
    format!("amqp://guest:guest@{}/", hosts.join(","))
}

async fn run() -> Result<()> {
    let mut options = Options::parse();
    if options.smoke {
        options.rounds = 1;
        options.calls = 200;
        options.inflight = 20;
    }
    let client_uri = uri_from(1);
    let probe = Probe::connect(&client_uri).await.map_err(|e| {
        BenchError::new(format!(
            "the RabbitMQ cluster does not answer on 127.0.0.1:5681-5683 ({e}); start it with \
             `scripts/rabbitmq-cluster up`"
        ))
    })?;
    let work = std::env::temp_dir().join(format!("nameko-bench-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut figures: BTreeMap<(&str, usize), Vec<RunFigures>> = BTreeMap::new();
    for round in 1..=options.rounds {
        for queue_type in QUEUE_TYPES {
            // The queue's type is fixed when it is declared: start from none.
            probe_delete(&client_uri).await?;
            for instances in 1..=3 {
                eprintln!("round {round}: {queue_type} queue, {instances} instance(s)");
                let mut running = Vec::new();
                for i in 1..=instances {
                    running.push(start(i, queue_type, &work)?);
                }
                let ready = wait_for_consumers(&probe, instances).await;
                if let Err(error) = ready {
                    for server in running {
                        server.stop(Duration::from_secs(5)).await;
                    }
                    return Err(error);
                }
                let measured = measure(&client_uri, &options).await;
                for server in running {
                    server.stop(Duration::from_secs(10)).await;
                }
                probe
                    .wait_for_no_consumer(QUEUE, Duration::from_secs(20))
                    .await?;
                figures
                    .entry((queue_type, instances))
                    .or_default()
                    .push(measured?);
            }
        }
    }
    probe_delete(&client_uri).await?;
    probe.close().await;
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", render(&figures, &options));
    Ok(())
}

async fn probe_delete(uri: &str) -> Result<()> {
    let transport = AmqpTransport::connect(uri).await?;
    transport.delete_queue(QUEUE).await?;
    let _ = transport.close().await;
    Ok(())
}

async fn wait_for_consumers(probe: &Probe, instances: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while usize::try_from(probe.consumers(QUEUE).await?).unwrap_or(0) < instances {
        if Instant::now() > deadline {
            return Err(BenchError::new(format!(
                "{instances} instances did not all consume {QUEUE} within 60 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Starts instance `i` (connected to node `i`).
fn start(i: usize, queue_type: &str, work: &Path) -> Result<Running> {
    let config = work.join(format!("instance-{i}.yaml"));
    std::fs::write(
        &config,
        format!(
            "AMQP_URI: '{}'\nQUEUE_TYPE: {queue_type}\nmax_workers: 10\nLOGGING: WARNING\n",
            uri_from(i)
        ),
    )?;
    let launch = Launch::new(format!("calculator {i}"), std::env::current_exe()?).args([
        "serve".to_owned(),
        "run".to_owned(),
        "--config".to_owned(),
        config.display().to_string(),
    ]);
    Running::spawn(&launch)
}

async fn measure(uri: &str, options: &Options) -> Result<RunFigures> {
    let transport = Arc::new(AmqpTransport::connect(uri).await?);
    let config = Config::new().with("AMQP_URI", uri);
    let proxy = ClusterRpcProxy::start(transport.clone(), &config).await?;
    let calculator = proxy.service("calculator");
    for i in 0..50 {
        let _: f64 = calculator.call("multiply", (f64::from(i), 2.0)).await?;
    }
    let mut latencies = Vec::with_capacity(options.calls);
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0_u32;
    let total = u32::try_from(options.calls).unwrap_or(u32::MAX);
    while sent < total || !in_flight.is_empty() {
        while sent < total && in_flight.len() < options.inflight {
            let calculator = calculator.clone();
            let a = f64::from(sent);
            in_flight.push(async move {
                let t = Instant::now();
                let product: std::result::Result<f64, RpcError> =
                    calculator.call("multiply", (a, 2.0)).await;
                product.and_then(|p| {
                    if a.mul_add(-2.0, p).abs() < f64::EPSILON {
                        Ok(t.elapsed())
                    } else {
                        Err(RpcError::InvalidReply(format!("{a} × 2 = {p}?")))
                    }
                })
            });
            sent += 1;
        }
        if let Some(done) = in_flight.next().await {
            latencies.push(done?);
        }
    }
    let figures = RunFigures::from_latencies(&latencies, started.elapsed());
    proxy.stop().await;
    let _ = transport.close().await;
    Ok(figures)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn render(figures: &BTreeMap<(&str, usize), Vec<RunFigures>>, options: &Options) -> String {
    let cell = |queue_type: &str, instances: usize| {
        let runs = figures
            .get(&(queue_type, instances))
            .cloned()
            .unwrap_or_default();
        let mut rate: Vec<f64> = runs.iter().map(|r| r.calls_per_s).collect();
        let mut p50: Vec<f64> = runs.iter().map(|r| r.p50_ms).collect();
        let mut p99: Vec<f64> = runs.iter().map(|r| r.p99_ms).collect();
        (median(&mut rate), median(&mut p50), median(&mut p99))
    };
    let mut out = format!(
        "## RPC on a three-node RabbitMQ cluster\n\n{} rounds, {} calls of `calculator.multiply` \
         per run with {} in flight from one nameko-rs client; medians\n\n\
         | instances | quorum queue | vs 1 instance | classic queue | vs 1 instance |\n|---:|---:|---:|---:|---:|\n",
        options.rounds, options.calls, options.inflight
    );
    let (quorum_one, _, _) = cell("quorum", 1);
    let (classic_one, _, _) = cell("classic", 1);
    for instances in 1..=3 {
        let (q, q50, q99) = cell("quorum", instances);
        let (c, c50, c99) = cell("classic", instances);
        out.push_str(&format!(
            "| {instances} | {q:.0} calls/s, p50 {q50:.1} ms, p99 {q99:.1} ms | {:.2}× | {c:.0} calls/s, p50 {c50:.1} ms, p99 {c99:.1} ms | {:.2}× |\n",
            q / quorum_one,
            c / classic_one
        ));
    }
    out
}
