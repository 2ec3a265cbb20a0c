//! The nameko-rs benchmark client, with the flags and output of the Python client
//! (`../shared/bench/python-nameko/bench_client.py`): one JSON object per measured run.
//!
//! ```text
//! nameko-bench-client [--transport amqp|memory] [--uri AMQP_URI]
//!                     [--scenarios seq,pipe,seq10k,event] [--runs 3]
//!                     [--seq-n 2000] [--pipe-n 5000] [--inflight 100] [--big-n 1000]
//!                     [--event-n 2000] [--warmup 100] [--set KEY=VALUE]...
//!                     [--threads N]   (1: a current-thread runtime; default: one per core)
//!                     [--publish-log off|on]   (memory: the broker's log of publishes, off as
//!                                              for `memory://` brokers)
//! ```
//!
//! With `--transport memory` the `echo` service runs in this process on the in-process
//! broker (its config from `--set`), so the figures are those of nameko-rs alone.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use nameko::amqp::{AmqpOptions, AmqpTransport};
use nameko::memory::{MemoryBroker, PublishLog};
use nameko::prelude::*;
use nameko::transport::Transport;
use nameko_bench::cli::{self, Flags};
use nameko_bench::echo::Echo;
use nameko_bench::error::{BenchError, Result};
use nameko_bench::load::Load;
use nameko_bench::scenario::{Scenario, Sizes};

fn main() -> ExitCode {
    let threads = std::env::args()
        .skip_while(|a| a != "--threads")
        .nth(1)
        .and_then(|n| n.parse::<usize>().ok());
    let runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
        None => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => Err(error.into()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nameko-bench-client: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<()> {
    let mut uri = nameko_bench::default_uri();
    let mut memory = false;
    let mut scenarios = vec![Scenario::Seq, Scenario::Pipe, Scenario::Seq10k];
    let mut runs = 3_usize;
    let mut sizes = Sizes::default();
    let mut config = Config::new();
    let mut publish_log = PublishLog::Off;
    let options = AmqpOptions::new().connection_name("nameko-bench client");
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--uri" => uri = flags.value(&flag)?,
            "--transport" => {
                memory = match flags.value(&flag)?.as_str() {
                    "memory" => true,
                    "amqp" => false,
                    other => return Err(BenchError::new(format!("unknown transport {other}"))),
                }
            }
            "--scenarios" => {
                scenarios = flags
                    .value(&flag)?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, String>>()?;
            }
            "--runs" => runs = flags.parsed(&flag)?,
            "--seq-n" => sizes.seq = flags.parsed(&flag)?,
            "--pipe-n" => sizes.pipe = flags.parsed(&flag)?,
            "--inflight" => sizes.inflight = flags.parsed(&flag)?,
            "--big-n" => sizes.big = flags.parsed(&flag)?,
            "--event-n" => sizes.events = flags.parsed(&flag)?,
            "--warmup" => sizes.warmup = flags.parsed(&flag)?,
            "--set" => config = cli::set(config, &flags.value(&flag)?)?,
            "--publish-log" => {
                publish_log = match flags.value(&flag)?.as_str() {
                    "off" => PublishLog::Off,
                    "on" => PublishLog::default(),
                    other => {
                        return Err(BenchError::new(format!(
                            "--publish-log on|off, not {other}"
                        )));
                    }
                }
            }
            "--threads" => {
                flags.value(&flag)?;
            }
            other => return Err(BenchError::new(format!("unknown flag {other}"))),
        }
    }

    let (implementation, client, service, broker) = if memory {
        let broker = MemoryBroker::builder().publish_log(publish_log).build();
        let service = ServiceContainer::<Echo>::new(Arc::new(broker.connect()), config.clone())?;
        service.start().await?;
        let client: Arc<dyn Transport> = Arc::new(broker.connect());
        ("nameko-rs", client, Some(service), Some(broker))
    } else {
        let client: Arc<dyn Transport> =
            Arc::new(AmqpTransport::connect_with(&uri, options).await?);
        ("nameko-rs", client, None, None)
    };
    let proxy = ClusterRpcProxy::start(Arc::clone(&client), &config).await?;
    let events = StandaloneDispatcher::new(Arc::clone(&client), &config)?;
    let load = Load::new(&proxy, events);
    for scenario in scenarios {
        for run in 1..=runs {
            let figures = load.run(scenario, &sizes).await?;
            let mut line = figures.to_json(implementation, scenario.name(), run);
            if scenario == Scenario::Pipe {
                line["inflight"] = sizes.inflight.into();
            }
            println!("{line}");
            std::io::stdout().flush()?;
        }
    }
    proxy.stop().await;
    if let Some(service) = service {
        service.stop().await?;
    }
    client.close().await?;
    drop(broker);
    Ok(())
}
