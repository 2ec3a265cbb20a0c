//! The nameko-rs benchmark client, with the flags and output of the Python client
//! (`../shared/bench/python-nameko/bench_client.py`): one JSON object per measured run.
//!
//! ```text
//! nameko-bench-client [--transport amqp|memory] [--uri AMQP_URI]
//!                     [--scenarios seq,pipe,seq10k,event] [--runs 3]
//!                     [--seq-n 2000] [--pipe-n 5000] [--inflight 100] [--big-n 1000]
//!                     [--event-n 2000] [--warmup 100] [--set KEY=VALUE]...
//!                     [--threads N]   (1: a current-thread runtime; default: one per core)
//!                     [--api call|typed|kwargs]   (`RpcProxy::call`, the generated `EchoClient`,
//!                                                 or `call` with the typed client's keyword arguments)
//!                     [--load-in block-on|task]   (the load in `block_on` on the main thread,
//!                                                 or in a spawned task)
//!                     [--publish-log off|on]   (memory: the broker's log of publishes, off as
//!                                              for `memory://` brokers)
//!                     [--metrics off|on]   (memory: the service measured by nameko-prometheus)
//! ```
//!
//! With `--transport memory` the `echo` service runs in this process on the in-process
//! broker (its config from `--set`), so the figures are those of nameko-rs alone.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use nameko::amqp::{AmqpOptions, AmqpTransport};
use nameko::extension::ContainerHooks;
use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::transport::Transport;
use nameko_bench::cli::{self, ClientArgs, LoadIn, MetricsFlag, TransportKind};
use nameko_bench::echo::Echo;
use nameko_bench::error::{BenchError, Result};
use nameko_bench::load::Load;
use nameko_bench::scenario::Scenario;

fn main() -> ExitCode {
    let args = ClientArgs::parse();
    let runtime = match args.threads {
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
        Ok(runtime) => match args.load_in {
            LoadIn::BlockOn => runtime.block_on(run(args)),
            LoadIn::Task => runtime.block_on(async {
                tokio::spawn(run(args))
                    .await
                    .unwrap_or_else(|e| Err(BenchError::new(format!("the load task failed: {e}"))))
            }),
        },
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

async fn run(args: ClientArgs) -> Result<()> {
    let uri = args.uri.clone().unwrap_or_else(nameko_bench::default_uri);
    let memory = args.transport == TransportKind::Memory;
    let sizes = args.sizes();
    let config = cli::apply(Config::new(), &args.settings);
    let options = AmqpOptions::new().connection_name("nameko-bench client");

    let (implementation, client, service, broker) = if memory {
        let broker = MemoryBroker::builder()
            .publish_log(args.publish_log.into())
            .build();
        let mut builder = ServiceContainer::<Echo>::builder(
            Arc::new(broker.connect()),
            config.clone().with("METRICS_ADDRESS", "127.0.0.1:0"),
        );
        if args.metrics == MetricsFlag::On {
            builder = builder.with_state(ContainerHooks::new().with(nameko_prometheus::instrument));
        }
        let service = builder.build()?;
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
    let load = Load::new(&proxy, events, args.api);
    for &scenario in &args.scenarios {
        for run in 1..=args.runs {
            let figures = load.run(scenario, &sizes).await?;
            let mut line = figures.to_json(implementation, scenario.name(), run);
            if scenario == Scenario::Pipe {
                line["inflight"] = sizes.inflight.into();
            }
            // Read while every thread lives: the runtime's workers end with the process,
            // before the harness could read them.
            if let Ok(cpu) = nameko_bench::procfs::cpu_time(std::process::id()) {
                line["cpu_ns"] = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX).into();
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
