//! The benchmark run: every contender once per round, rounds interleaved, each process
//! measured from outside through `/proc`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use nameko::testing::TestVhost;

use crate::broker::Probe;
use crate::contender::{self, Client, Contender, Server};
use crate::error::{BenchError, Result};
use crate::process::{Launch, Running};
use crate::report::{CallSample, Report, ServerSample};
use crate::scenario::{Scenario, Sizes};
use crate::stats::RunFigures;
use crate::tools::{self, Need};

/// Every client runs each scenario twice and the second run is the one measured: the first
/// warms up connections, code and caches, and its end marks where the CPU time of the
/// second starts.
const RUNS: usize = 2;
const MEASURED_RUN: u64 = 2;

/// What to run and how much.
#[derive(Debug, Clone)]
pub struct Options {
    /// Rounds; each runs every contender once.
    pub rounds: usize,
    /// Calls per run over RabbitMQ.
    pub sizes: Sizes,
    /// Calls per run on the memory transport.
    pub memory_sizes: Sizes,
    /// The broker; a fresh vhost is made on it for the run.
    pub uri: String,
    /// Only these contenders (by key), if set.
    pub only: Option<Vec<String>>,
    /// Whether RabbitMQ must be there.
    pub broker: Need,
    /// Whether Python nameko must be there.
    pub python: Need,
    /// Whether the raw lapin baseline must be there.
    pub raw_lapin: Need,
    /// The `nameko-bench-service` binary.
    pub service_bin: PathBuf,
    /// The `nameko-bench-client` binary.
    pub client_bin: PathBuf,
    /// The longest a client may go without printing a result.
    pub line_timeout: Duration,
}

impl Options {
    /// The full benchmark: 3 rounds, nameko's sizes (2000 sequential calls, 5000 with
    /// 100 in flight, 1000 of 10 KB, 2000 events; ten times more in memory).
    #[must_use]
    pub fn full(service_bin: PathBuf, client_bin: PathBuf) -> Self {
        let sizes = Sizes::default();
        Self {
            rounds: 3,
            sizes,
            memory_sizes: Sizes {
                seq: sizes.seq * 10,
                pipe: sizes.pipe * 10,
                inflight: sizes.inflight,
                big: sizes.big * 10,
                events: sizes.events * 10,
                warmup: sizes.warmup * 10,
            },
            uri: crate::default_uri(),
            only: None,
            broker: Need::from_env("NAMEKO_REQUIRE_AMQP", Need::Provision),
            python: Need::from_env("NAMEKO_REQUIRE_PYTHON", Need::Provision),
            raw_lapin: Need::Provision,
            service_bin,
            client_bin,
            line_timeout: Duration::from_secs(300),
        }
    }

    /// A fifth of the calls.
    #[must_use]
    pub fn quick(service_bin: PathBuf, client_bin: PathBuf) -> Self {
        let mut options = Self::full(service_bin, client_bin);
        for sizes in [&mut options.sizes, &mut options.memory_sizes] {
            sizes.seq /= 5;
            sizes.pipe /= 5;
            sizes.big /= 5;
            sizes.events /= 5;
        }
        options
    }

    /// A few calls per contender, one round: proves every path works. Uses RabbitMQ,
    /// Python and raw lapin only when they are already there, unless
    /// `NAMEKO_REQUIRE_AMQP=1` / `NAMEKO_REQUIRE_PYTHON=1` ask for them.
    #[must_use]
    pub fn smoke(service_bin: PathBuf, client_bin: PathBuf) -> Self {
        let tiny = Sizes {
            seq: 20,
            pipe: 50,
            inflight: 10,
            big: 10,
            events: 20,
            warmup: 5,
        };
        Self {
            rounds: 1,
            sizes: tiny,
            memory_sizes: tiny,
            broker: Need::from_env("NAMEKO_REQUIRE_AMQP", Need::IfPresent),
            python: Need::from_env("NAMEKO_REQUIRE_PYTHON", Need::IfPresent),
            raw_lapin: Need::IfPresent,
            line_timeout: Duration::from_secs(60),
            ..Self::full(service_bin, client_bin)
        }
    }
}

/// What every contender's processes need.
struct Setup<'a> {
    options: &'a Options,
    python: Option<PathBuf>,
    raw_lapin: Option<PathBuf>,
    /// The vhost's URI.
    uri: String,
    probe: Option<Probe>,
}

/// Runs the benchmark.
///
/// # Errors
///
/// When a required tool or the broker is missing. A contender that fails is reported in
/// [`Report::failures`] and the run goes on.
pub async fn run(options: &Options) -> Result<Report> {
    let mut contenders: Vec<Contender> = contender::all()
        .into_iter()
        .filter(|c| {
            options
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|k| k == c.key))
        })
        .collect();
    let mut report = Report::new(options.rounds);
    report.inflight = options.sizes.inflight;

    let python = if contenders.iter().any(Contender::needs_python) {
        tools::python(options.python)?
    } else {
        None
    };
    if python.is_none() {
        skip(
            &mut contenders,
            &mut report,
            Contender::needs_python,
            "no Python nameko",
        );
    }
    let raw_lapin = if contenders.iter().any(Contender::needs_raw_lapin) {
        tools::raw_lapin(options.raw_lapin)?
    } else {
        None
    };
    if raw_lapin.is_none() {
        skip(
            &mut contenders,
            &mut report,
            Contender::needs_raw_lapin,
            "raw lapin not built",
        );
    }
    let (vhost, probe) = if contenders.iter().any(Contender::needs_broker) {
        match connect_broker(options).await {
            Ok((vhost, probe)) => (Some(vhost), Some(probe)),
            Err(error) if options.broker == Need::Required => return Err(error),
            Err(error) => {
                eprintln!("skipping RabbitMQ contenders: {error}");
                skip(
                    &mut contenders,
                    &mut report,
                    Contender::needs_broker,
                    "no RabbitMQ",
                );
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    if let Some(vhost) = &vhost {
        eprintln!("running in vhost {}", vhost.name());
    }
    let setup = Setup {
        options,
        python,
        raw_lapin,
        uri: vhost
            .as_ref()
            .map(|v| v.uri().to_owned())
            .unwrap_or_default(),
        probe,
    };
    for round in 1..=options.rounds {
        // Rotate the order so that no contender always runs first or last.
        let n = contenders.len();
        for i in 0..n {
            let contender = &contenders[(i + round - 1) % n];
            eprintln!("round {round}/{}: {}", options.rounds, contender.label);
            if let Err(error) = run_contender(&setup, contender, round, &mut report).await {
                eprintln!("  failed: {error}");
                report
                    .failures
                    .push(format!("round {round}, {}: {error}", contender.label));
            }
        }
    }
    report.contenders = contenders;
    if let Some(probe) = &setup.probe {
        probe.close().await;
    }
    drop(vhost);
    Ok(report)
}

fn skip(
    contenders: &mut Vec<Contender>,
    report: &mut Report,
    needs: fn(&Contender) -> bool,
    why: &str,
) {
    for c in contenders.iter().filter(|c| needs(c)) {
        report.skipped.push(format!("{} ({why})", c.label));
    }
    contenders.retain(|c| !needs(c));
}

async fn connect_broker(options: &Options) -> Result<(TestVhost, Probe)> {
    Probe::connect(&options.uri).await?.close().await;
    let vhost = TestVhost::create_with_prefix(&options.uri, "nameko-bench-")
        .await
        .map_err(|e| BenchError::from(e).context("cannot make a vhost"))?;
    let probe = Probe::connect(vhost.uri()).await?;
    Ok((vhost, probe))
}

async fn run_contender(
    setup: &Setup<'_>,
    contender: &Contender,
    round: usize,
    report: &mut Report,
) -> Result<()> {
    let server = match contender.server {
        Some(kind) => Some(start_server(setup, contender, kind, round, report).await?),
        None => None,
    };
    let mut outcome = Ok(());
    for launch in client_launches(setup, contender)? {
        outcome = measure(setup, contender, &launch, server.as_ref(), round, report).await;
        if outcome.is_err() {
            break;
        }
    }
    if let Some(server) = server {
        if let (Ok(memory), Some(sample)) = (server.memory(), report.servers.last_mut()) {
            sample.peak_rss_kib = memory.peak_kib;
        }
        server.stop(Duration::from_secs(10)).await;
    }
    outcome
}

/// Starts a server and measures how long it takes to serve and how much memory it holds
/// while idle.
async fn start_server(
    setup: &Setup<'_>,
    contender: &Contender,
    kind: Server,
    round: usize,
    report: &mut Report,
) -> Result<Running> {
    let probe = setup
        .probe
        .as_ref()
        .ok_or_else(|| BenchError::new("no broker"))?;
    let queue = kind.queue();
    probe
        .wait_for_no_consumer(queue, Duration::from_secs(30))
        .await?;
    let mut server = Running::spawn(&server_launch(setup, contender, kind)?)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        if probe.consumers(queue).await? > 0 {
            break Instant::now();
        }
        if !server.is_running() {
            return Err(server.failure("exited before serving"));
        }
        if Instant::now() > deadline {
            return Err(server.failure("not serving after 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // Let start-up work settle before reading the idle footprint.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let memory = server.memory()?;
    report.servers.push(ServerSample {
        round,
        contender: contender.key,
        server: kind,
        ready_ms: (ready - server.started()).as_secs_f64() * 1e3,
        idle_rss_kib: memory.rss_kib,
        peak_rss_kib: memory.peak_kib,
    });
    Ok(server)
}

fn server_launch(setup: &Setup<'_>, contender: &Contender, kind: Server) -> Result<Launch> {
    let uri = setup.uri.clone();
    Ok(match kind {
        Server::NamekoRs => {
            let mut launch = Launch::new("nameko-rs service", &setup.options.service_bin)
                .args(["--uri".to_owned(), uri]);
            if contender.prefetch != 10 {
                launch = launch.args([
                    "--set".to_owned(),
                    format!("PREFETCH_COUNT={}", contender.prefetch),
                    "--set".to_owned(),
                    format!("max_workers={}", contender.prefetch),
                ]);
            }
            launch
        }
        Server::Python => Launch::new("Python nameko service", python(setup)?)
            .args([
                "-m",
                "nameko",
                "run",
                "--config",
                "cfg.yaml",
                "echo_service",
            ])
            .env("AMQP_URI", uri)
            .cwd(&tools::python_bench_dir()),
        Server::RawLapin => Launch::new("raw lapin server", raw_lapin(setup)?).args([
            "server".to_owned(),
            "--uri".to_owned(),
            uri,
            "--prefetch".to_owned(),
            contender.prefetch.to_string(),
        ]),
    })
}

fn python(setup: &Setup<'_>) -> Result<PathBuf> {
    setup
        .python
        .clone()
        .ok_or_else(|| BenchError::new("no Python nameko"))
}

fn raw_lapin(setup: &Setup<'_>) -> Result<PathBuf> {
    setup
        .raw_lapin
        .clone()
        .ok_or_else(|| BenchError::new("raw lapin not built"))
}

fn sizes_of(setup: &Setup<'_>, contender: &Contender) -> Sizes {
    if matches!(contender.client, Client::Memory { .. }) {
        setup.options.memory_sizes
    } else {
        setup.options.sizes
    }
}

/// The client processes of a contender: one per scenario, so that no scenario runs in a
/// process that an earlier one left in another state (a pool of channels grown by calls
/// in flight, say).
fn client_launches(setup: &Setup<'_>, contender: &Contender) -> Result<Vec<Launch>> {
    contender
        .scenarios
        .iter()
        .map(|&scenario| client_launch(setup, contender, scenario))
        .collect()
}

/// The client process of one scenario.
fn client_launch(setup: &Setup<'_>, contender: &Contender, scenario: Scenario) -> Result<Launch> {
    let sizes = sizes_of(setup, contender);
    let mut common = vec![
        "--scenarios".to_owned(),
        scenario.name().to_owned(),
        "--runs".to_owned(),
        RUNS.to_string(),
    ];
    common.extend(sizes.client_args());
    let uri = ["--uri".to_owned(), setup.uri.clone()];
    let events = ["--event-n".to_owned(), sizes.events.to_string()];
    Ok(match contender.client {
        Client::NamekoRs => Launch::new("nameko-rs client", &setup.options.client_bin)
            .args(uri)
            .args(common)
            .args(events)
            .args(contender.client_flags.iter().copied()),
        Client::Memory { threads } => {
            Launch::new("nameko-rs memory client", &setup.options.client_bin)
                .args(["--transport", "memory"])
                .args(
                    (threads > 0)
                        .then(|| ["--threads".to_owned(), threads.to_string()])
                        .into_iter()
                        .flatten(),
                )
                .args(common)
                .args(events)
                .args(contender.client_flags.iter().copied())
        }
        Client::RawLapin => Launch::new("raw lapin client", raw_lapin(setup)?)
            .args(["client", "--durable-reply"])
            .args(uri)
            .args(common),
        Client::Python if scenario == Scenario::Event => {
            Launch::new("Python event client", python(setup)?)
                .args([tools::event_client_script().to_string_lossy().into_owned()])
                .args(uri)
                .args(["--runs".to_owned(), RUNS.to_string()])
                .args(["--warmup".to_owned(), sizes.warmup.to_string()])
                .args(events)
        }
        Client::Python => Launch::new("Python client", python(setup)?)
            .args(["bench_client.py"])
            .args(uri)
            .args(common)
            .cwd(&tools::python_bench_dir()),
    })
}

/// Runs one client process to its end, recording the measured run of each scenario with
/// the CPU time the client and the server used for it.
async fn measure(
    setup: &Setup<'_>,
    contender: &Contender,
    launch: &Launch,
    server: Option<&Running>,
    round: usize,
    report: &mut Report,
) -> Result<()> {
    let sizes = sizes_of(setup, contender);
    let mut client = Running::spawn(launch)?;
    let server_cpu = || server.map(Running::cpu_time).transpose();
    let mut mark = (client.cpu_time()?, server_cpu()?);
    while let Some(line) = client.next_line(setup.options.line_timeout).await? {
        let Ok(result) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // The nameko-rs client reports its own CPU time (`cpu_ns`), read while its
        // runtime's threads live; the others are read here.
        let client_cpu = match result.get("cpu_ns").and_then(Value::as_u64) {
            Some(ns) => Duration::from_nanos(ns),
            None => client.cpu_time()?,
        };
        let now = (client_cpu, server_cpu()?);
        let scenario = result
            .get("scenario")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .parse::<Scenario>()?;
        if result.get("run").and_then(Value::as_u64) == Some(MEASURED_RUN) {
            let figures = RunFigures::from_json(&result)
                .ok_or_else(|| client.failure(format!("unreadable result: {line}")))?;
            // The CPU time between the two results covers this run's warm-up and calls.
            let calls = (sizes.warmup + figures.calls) as f64;
            let per_call = |before: Duration, after: Duration| {
                after.saturating_sub(before).as_secs_f64() * 1e6 / calls
            };
            report.calls.push(CallSample {
                round,
                contender: contender.key,
                scenario,
                client_cpu_us: per_call(mark.0, now.0),
                server_cpu_us: match (mark.1, now.1) {
                    (Some(before), Some(after)) => Some(per_call(before, after)),
                    _ => None,
                },
                figures,
            });
        }
        mark = now;
    }
    client.finish(setup.options.line_timeout).await
}
