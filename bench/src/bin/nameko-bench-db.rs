//! The database benchmark: `authors_service` in nameko-rs (`examples/src/authors.rs`, on
//! nameko-sqlx) against the same service in Python nameko 2.14.1 with nameko-sqlalchemy
//! 1.5.0 (`bench/python/authors_service.py`), on the same PostgreSQL and RabbitMQ, called
//! by the same nameko-rs client.
//!
//! ```text
//! cargo run --release -p nameko-bench --bin nameko-bench-db -- [--rounds 3] [--calls 1000]
//!     [--inflight 50] [--smoke]
//! ```
//!
//! Each round starts each service in a process of its own on a fresh PostgreSQL
//! database (`NAMEKO_TEST_POSTGRES_URI`, default the local server) in a fresh virtual
//! host (`NAMEKO_TEST_AMQP_URI`, default the local RabbitMQ), then measures sequential `create_author`, sequential `get_author` and
//! `create_author` with `--inflight` calls in flight. Prints medians over the rounds.
//! The Python side runs in its own virtual environment, made from
//! `bench/python/requirements-db.txt` in `target/bench-db-venv` on first use.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nameko::amqp::AmqpTransport;
use nameko::prelude::*;
use nameko::testing::{TestCluster, TestDatabase};
use nameko_bench::broker::Probe;
use nameko_bench::error::{BenchError, Result};
use nameko_bench::process::{Launch, Running};
use nameko_bench::stats::RunFigures;
use nameko_bench::tools::repo_root;
use nameko_examples::AuthorsService;

const QUEUE: &str = "rpc-authors_service";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        // The nameko-rs side: `nameko-bench-db serve run --config <file>`.
        let rest = std::iter::once(args[0].clone()).chain(args[2..].iter().cloned());
        return nameko::cli::Cli::new()
            .service::<AuthorsService>()
            .main_from(rest);
    }
    nameko_bench::run_driver("nameko-bench-db", run())
}

/// `nameko-bench-db`: a database-backed service, nameko-rs against Python nameko.
#[derive(Debug, Parser)]
#[command(
    name = "nameko-bench-db",
    about = "authors_service on nameko-sqlx against Python nameko with nameko-sqlalchemy, on one PostgreSQL"
)]
struct Options {
    /// Rounds; each runs both sides once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Calls per scenario.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Calls in flight in the concurrent scenario.
    #[arg(long, default_value_t = 50)]
    inflight: usize,
    /// One round of a few calls.
    #[arg(long)]
    smoke: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Rust,
    Python,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::Rust => "nameko-rs + nameko-sqlx",
            Self::Python => "Python nameko + nameko-sqlalchemy",
        }
    }
}

const SCENARIOS: [&str; 3] = ["create, sequential", "get, sequential", "create, in flight"];

async fn run() -> Result<()> {
    let mut options = Options::parse();
    if options.smoke {
        options.rounds = 1;
        options.calls = 20;
        options.inflight = 5;
    }
    let python = python_env()?;
    // A fresh virtual host (deleted at the end), made as the tests make theirs.
    let cluster = TestCluster::rabbitmq()
        .await
        .ok_or_else(|| BenchError::new("no RabbitMQ reachable"))?;
    let amqp = cluster
        .amqp_uri()
        .ok_or_else(|| BenchError::new("the cluster has no AMQP URI"))?
        .to_owned();
    let work = std::env::temp_dir().join(format!("nameko-bench-db-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut figures: BTreeMap<(Side, &str), Vec<RunFigures>> = BTreeMap::new();
    for round in 1..=options.rounds {
        for side in [Side::Rust, Side::Python] {
            eprintln!("round {round}: {}", side.label());
            let db = TestDatabase::postgres()
                .await
                .ok_or_else(|| BenchError::new("no PostgreSQL server reachable"))?;
            let server = start(side, &python, &amqp, db.uri(), &work).await?;
            let measured = measure(&amqp, &options).await;
            server.stop(Duration::from_secs(10)).await;
            db.drop_now()
                .await
                .map_err(|e| BenchError::new(e.to_string()))?;
            for (scenario, run) in SCENARIOS.into_iter().zip(measured?) {
                figures.entry((side, scenario)).or_default().push(run);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    cluster.shutdown().await;
    println!("{}", render(&figures, &options));
    Ok(())
}

/// The virtual environment of `bench/python/requirements-db.txt`, made when missing.
fn python_env() -> Result<PathBuf> {
    let root = repo_root();
    let requirements = root.join("bench/python/requirements-db.txt");
    let venv = std::env::var_os("NAMEKO_BENCH_DB_VENV")
        .map_or_else(|| root.join("target/bench-db-venv"), PathBuf::from);
    let stamp = venv.join(".requirements");
    let wanted = std::fs::read_to_string(&requirements)?
        + &std::fs::read_to_string(root.join("interop/requirements.txt"))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        eprintln!("making {} from {}", venv.display(), requirements.display());
        let _ = std::fs::remove_dir_all(&venv);
        let ok = |status: std::io::Result<std::process::ExitStatus>, what: &str| match status {
            Ok(s) if s.success() => Ok(()),
            other => Err(BenchError::new(format!("{what} failed: {other:?}"))),
        };
        ok(
            Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status(),
            "python3 -m venv",
        )?;
        ok(
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements)
                .status(),
            "pip install",
        )?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(venv)
}

async fn start(side: Side, venv: &Path, amqp: &str, db: &str, work: &Path) -> Result<Running> {
    let config = work.join(format!("{side:?}.yaml"));
    let launch = match side {
        Side::Rust => {
            std::fs::write(
                &config,
                format!(
                    "AMQP_URI: '{amqp}'\nmax_workers: 10\nDB_URIS:\n  'authors_service:main': '{db}'\nDB_POOL:\n  size: 10\nLOGGING: WARNING\n"
                ),
            )?;
            Launch::new("nameko-rs authors_service", std::env::current_exe()?).args([
                "serve".to_owned(),
                "run".to_owned(),
                "--config".to_owned(),
                config.display().to_string(),
            ])
        }
        Side::Python => {
            let sqlalchemy_uri = db.replacen("postgres://", "postgresql://", 1);
            std::fs::write(
                &config,
                format!(
                    "AMQP_URI: '{amqp}'\nmax_workers: 10\nDB_URIS:\n  'authors_service:Base': '{sqlalchemy_uri}'\n"
                ),
            )?;
            Launch::new("Python authors_service", venv.join("bin/nameko"))
                .args([
                    "run".to_owned(),
                    "--config".to_owned(),
                    config.display().to_string(),
                    "authors_service".to_owned(),
                ])
                .env("BENCH_DB_URI", sqlalchemy_uri)
                .cwd(&repo_root().join("bench/python"))
        }
    };
    let server = Running::spawn(&launch)?;
    let probe = Probe::connect(amqp).await?;
    let ready = probe
        .wait_for_consumer(QUEUE, Duration::from_secs(60))
        .await;
    probe.close().await;
    ready.map_err(|e| server.failure(e))?;
    Ok(server)
}

async fn measure(amqp: &str, options: &Options) -> Result<Vec<RunFigures>> {
    let transport = Arc::new(AmqpTransport::connect(amqp).await?);
    let config = Config::new().with("AMQP_URI", amqp);
    let proxy = ClusterRpcProxy::start(transport.clone(), &config).await?;
    let authors = proxy.service("authors_service");
    // Warm up: connections, statements.
    for i in 0..20 {
        let _: Value = authors
            .call("create_author", (format!("warm {i}"),))
            .await?;
    }
    let mut ids = Vec::with_capacity(options.calls);
    let mut latencies = Vec::with_capacity(options.calls);
    let started = Instant::now();
    for i in 0..options.calls {
        let t = Instant::now();
        let author: Value = authors
            .call("create_author", (format!("author {i}"),))
            .await?;
        latencies.push(t.elapsed());
        ids.push(author["id"].as_i64().unwrap_or_default());
    }
    let create = RunFigures::from_latencies(&latencies, started.elapsed());

    latencies.clear();
    let started = Instant::now();
    for id in &ids {
        let t = Instant::now();
        let author: Value = authors.call("get_author", (*id,)).await?;
        latencies.push(t.elapsed());
        if author["id"].as_i64() != Some(*id) {
            return Err(BenchError::new(format!(
                "get_author({id}) returned {author}"
            )));
        }
    }
    let get = RunFigures::from_latencies(&latencies, started.elapsed());

    latencies.clear();
    let total = options.calls * 2;
    let started = Instant::now();
    let mut in_flight = FuturesUnordered::new();
    let mut sent = 0;
    while sent < total || !in_flight.is_empty() {
        while sent < total && in_flight.len() < options.inflight {
            let authors = authors.clone();
            let name = format!("parallel {sent}");
            in_flight.push(async move {
                let t = Instant::now();
                let result: std::result::Result<Value, RpcError> =
                    authors.call("create_author", (name,)).await;
                result.map(|_| t.elapsed())
            });
            sent += 1;
        }
        if let Some(done) = in_flight.next().await {
            latencies.push(done?);
        }
    }
    let parallel = RunFigures::from_latencies(&latencies, started.elapsed());
    proxy.stop().await;
    let _ = nameko::transport::Transport::close(&*transport).await;
    Ok(vec![create, get, parallel])
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn render(figures: &BTreeMap<(Side, &str), Vec<RunFigures>>, options: &Options) -> String {
    let mut out = format!(
        "## Database-backed calls (PostgreSQL)\n\n{} rounds, {} calls per sequential run, {} in flight for {} calls; medians\n\n\
         | scenario | nameko-rs + nameko-sqlx | Python nameko + nameko-sqlalchemy 1.5.0 | ratio |\n|---|---:|---:|---:|\n",
        options.rounds,
        options.calls,
        options.inflight,
        options.calls * 2
    );
    for scenario in SCENARIOS {
        let cell = |side: Side| {
            let runs = figures.get(&(side, scenario)).cloned().unwrap_or_default();
            let mut rate: Vec<f64> = runs.iter().map(|r| r.calls_per_s).collect();
            let mut p50: Vec<f64> = runs.iter().map(|r| r.p50_ms).collect();
            (median(&mut rate), median(&mut p50))
        };
        let (rs, rs_p50) = cell(Side::Rust);
        let (py, py_p50) = cell(Side::Python);
        out.push_str(&format!(
            "| {scenario} | {rs:.0} calls/s, p50 {rs_p50:.2} ms | {py:.0} calls/s, p50 {py_p50:.2} ms | {:.2}× |\n",
            rs / py
        ));
    }
    out
}
