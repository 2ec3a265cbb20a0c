//! The HTTP benchmark: `GET /get/<int>` of `http_service` (`examples/src/http_service.rs`)
//! served by nameko-rs, against the same handler in Python nameko 2.14.1
//! (`interop/python/http_service.py`, on eventlet and werkzeug) and against a bare hyper
//! server answering the same bytes (the ceiling), interleaved round by round.
//!
//! ```text
//! cargo run --release -p nameko-bench --bin nameko-bench-http -- [--rounds 3]
//!     [--seconds 5] [--connections 1,64] [--no-python] [--smoke]
//! ```
//!
//! Each server runs in a process of its own, on a free port of 127.0.0.1; the load
//! comes from this process, on hyper's HTTP/1 client: each connection sends one request
//! at a time on a keep-alive connection for `--seconds`, after a second of warm-up.
//! Prints requests per second and p50/p99 latency (medians over the rounds), the ratios
//! of nameko-rs to the others, and the idle RSS of the nameko-rs service.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use nameko_bench::error::{BenchError, Result};
use nameko_bench::process::{Launch, Running};
use nameko_bench::stats::{RunFigures, Spread};
use nameko_bench::tools::{self, Need, repo_root};
use nameko_examples::HttpService;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        // The nameko-rs side: `nameko-bench-http serve-rs <address>`.
        Some("serve-rs") => {
            let address = args.get(2).cloned().unwrap_or_default();
            let cli = [
                args[0].clone(),
                "run".to_owned(),
                "-d".to_owned(),
                format!("WEB_SERVER_ADDRESS={address}"),
            ];
            return nameko::cli::Cli::new()
                .service::<HttpService>()
                .default_broker("memory://")
                .main_from(cli);
        }
        // The ceiling: `nameko-bench-http serve-hyper <address>`.
        Some("serve-hyper") => return serve_hyper(args.get(2).cloned().unwrap_or_default()),
        _ => {}
    }
    nameko_bench::run_driver("nameko-bench-http", run())
}

/// `nameko-bench-http`: HTTP entrypoints, nameko-rs against bare hyper and Python nameko.
#[derive(Debug, Parser)]
#[command(
    name = "nameko-bench-http",
    about = "GET /get/<int> on nameko-rs, bare hyper and Python nameko, interleaved"
)]
struct Options {
    /// Rounds; each runs every server once.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds measured per connection count.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Connection counts, each a scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [1_usize, 64])]
    connections: Vec<usize>,
    /// Leave Python nameko out.
    #[arg(long)]
    no_python: bool,
    /// One short round.
    #[arg(long)]
    smoke: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Rust,
    Hyper,
    Python,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::Rust => "nameko-rs `#[http]`",
            Self::Hyper => "bare hyper (ceiling)",
            Self::Python => "Python nameko 2.14.1 `@http`",
        }
    }
}

async fn run() -> Result<()> {
    let mut options = Options::parse();
    if options.smoke {
        options.rounds = 1;
        options.seconds = 0.5;
    }
    let python = if options.no_python {
        None
    } else {
        tools::python(Need::from_env("NAMEKO_BENCH_PYTHON_NEED", Need::IfPresent))?
    };
    let mut sides = vec![Side::Rust, Side::Hyper];
    if python.is_some() {
        sides.push(Side::Python);
    }
    eprintln!("{}", nameko_bench::machine::describe());
    let mut figures: BTreeMap<(Side, usize), Vec<RunFigures>> = BTreeMap::new();
    let mut idle_rss_kib = Vec::new();
    for round in 1..=options.rounds {
        for &side in &sides {
            eprintln!("round {round}: {}", side.label());
            let addr = free_port()?;
            let server = start(side, python.as_ref(), addr).await?;
            if side == Side::Rust {
                // Settled after start, before any request.
                tokio::time::sleep(Duration::from_millis(500)).await;
                idle_rss_kib.push(server.memory()?.rss_kib);
            }
            load(addr, 4, Duration::from_secs(1)).await?;
            for &connections in &options.connections {
                let run = load(addr, connections, Duration::from_secs_f64(options.seconds)).await?;
                eprintln!(
                    "  {connections} connections: {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms",
                    run.calls_per_s, run.p50_ms, run.p99_ms
                );
                figures.entry((side, connections)).or_default().push(run);
            }
            server.stop(Duration::from_secs(10)).await;
        }
    }
    println!("{}", render(&figures, &options, &sides, &idle_rss_kib));
    Ok(())
}

fn free_port() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn start(side: Side, python: Option<&PathBuf>, addr: SocketAddr) -> Result<Running> {
    let launch = match side {
        Side::Rust => Launch::new("nameko-rs http_service", std::env::current_exe()?)
            .args(["serve-rs".to_owned(), addr.to_string()])
            .env("RUST_LOG", "warn"),
        Side::Hyper => Launch::new("bare hyper", std::env::current_exe()?)
            .args(["serve-hyper".to_owned(), addr.to_string()]),
        Side::Python => {
            let python = python.ok_or_else(|| BenchError::new("no Python"))?;
            Launch::new("Python nameko http_service", python)
                .args(["-u", "http_service.py"].map(str::to_owned))
                .args([addr.to_string()])
                .cwd(&repo_root().join("interop/python"))
        }
    };
    let mut server = Running::spawn(&launch)?;
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(server);
        }
        if !server.is_running() || started.elapsed() > Duration::from_secs(30) {
            return Err(server.failure(format!("did not listen on {addr} within 30 s")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `connections` keep-alive connections, each sending `GET /get/<n>` one at a time for
/// `duration`; every answer is checked.
async fn load(addr: SocketAddr, connections: usize, duration: Duration) -> Result<RunFigures> {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..connections)
        .map(|c| tokio::spawn(connection(addr, c, deadline)))
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        let mut own = task
            .await
            .map_err(|e| BenchError::new(format!("a load connection panicked: {e}")))??;
        latencies.append(&mut own);
    }
    Ok(RunFigures::from_latencies(&latencies, started.elapsed()))
}

async fn connection(addr: SocketAddr, index: usize, deadline: Instant) -> Result<Vec<Duration>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| BenchError::new(format!("HTTP handshake: {e}")))?;
    tokio::spawn(conn);
    let mut latencies = Vec::new();
    let mut n = index * 1_000_000;
    while Instant::now() < deadline {
        n += 1;
        let value = n % 100_000;
        let request = http::Request::get(format!("/get/{value}"))
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|e| BenchError::new(e.to_string()))?;
        let sent = Instant::now();
        sender
            .ready()
            .await
            .map_err(|e| BenchError::new(format!("connection lost: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| BenchError::new(format!("request failed: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| BenchError::new(format!("body: {e}")))?
            .to_bytes();
        latencies.push(sent.elapsed());
        let expected = format!("{{\"value\": {value}}}");
        if status != 200 || body != expected.as_bytes() {
            return Err(BenchError::new(format!(
                "GET /get/{value} answered {status} {:?}",
                String::from_utf8_lossy(&body)
            )));
        }
    }
    Ok(latencies)
}

/// The ceiling: hyper answering `GET /get/<n>` with the bytes nameko answers.
fn serve_hyper(address: String) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("serve-hyper: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(&address).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("serve-hyper: cannot listen on {address}: {error}");
                return ExitCode::FAILURE;
            }
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn answer(
    request: http::Request<hyper::body::Incoming>,
) -> std::result::Result<http::Response<Full<Bytes>>, Infallible> {
    let value = request
        .uri()
        .path()
        .strip_prefix("/get/")
        .and_then(|v| v.parse::<i64>().ok());
    let mut response = match value {
        Some(value) => {
            http::Response::new(Full::new(Bytes::from(format!("{{\"value\": {value}}}"))))
        }
        None => {
            let mut response = http::Response::new(Full::new(Bytes::from_static(b"not found")));
            *response.status_mut() = http::StatusCode::NOT_FOUND;
            response
        }
    };
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

fn median(runs: &[RunFigures], f: impl Fn(&RunFigures) -> f64) -> f64 {
    Spread::of(runs.iter().map(f)).map_or(f64::NAN, |s| s.median)
}

fn render(
    figures: &BTreeMap<(Side, usize), Vec<RunFigures>>,
    options: &Options,
    sides: &[Side],
    idle_rss_kib: &[u64],
) -> String {
    let mut out = format!(
        "## HTTP: GET /get/<int>\n\n{} rounds of {} s per connection count, medians over the rounds\n\n",
        options.rounds, options.seconds
    );
    out.push_str(
        "| server | connections | requests/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n",
    );
    for &connections in &options.connections {
        for &side in sides {
            if let Some(runs) = figures.get(&(side, connections)) {
                out.push_str(&format!(
                    "| {} | {connections} | {:.0} | {:.3} | {:.3} |\n",
                    side.label(),
                    median(runs, |r| r.calls_per_s),
                    median(runs, |r| r.p50_ms),
                    median(runs, |r| r.p99_ms)
                ));
            }
        }
    }
    out.push_str(
        "\n| connections | nameko-rs / bare hyper | nameko-rs / Python nameko |\n|---|---|---|\n",
    );
    for &connections in &options.connections {
        let rate = |side| {
            figures
                .get(&(side, connections))
                .map_or(f64::NAN, |runs| median(runs, |r| r.calls_per_s))
        };
        let rust = rate(Side::Rust);
        out.push_str(&format!(
            "| {connections} | {:.2}x (target >= 0.8x) | {:.1}x (target >= 10x) |\n",
            rust / rate(Side::Hyper),
            rust / rate(Side::Python)
        ));
    }
    if let Some(rss) = Spread::of(idle_rss_kib.iter().map(|&k| k as f64)) {
        out.push_str(&format!(
            "\nIdle RSS of the nameko-rs http_service process: {:.1} MB (target < 20 MB)\n",
            rss.median / 1024.0
        ));
    }
    out
}
