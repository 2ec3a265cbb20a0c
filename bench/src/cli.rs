//! Command-line flags of the benchmark binaries, parsed by clap.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, ValueEnum};
use nameko::memory::PublishLog;
use nameko::prelude::{Config, Value};

use crate::scenario::{Scenario, Sizes};

/// A `KEY=VALUE` configuration setting; the value is read as JSON when it is JSON
/// (`PREFETCH_COUNT=100`), as a string otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
}

impl FromStr for Setting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("wants KEY=VALUE, not `{s}`"))?;
        let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::from(value));
        Ok(Self {
            key: key.to_owned(),
            value,
        })
    }
}

/// `config` with `settings` applied, in order.
#[must_use]
pub fn apply(config: Config, settings: &[Setting]) -> Config {
    settings
        .iter()
        .fold(config, |config, s| config.with(&s.key, s.value.clone()))
}

/// `nameko-bench`: the benchmark harness.
#[derive(Debug, Parser)]
#[command(
    name = "nameko-bench",
    about = "nameko-rs against raw lapin and Python nameko, interleaved over rounds"
)]
pub struct BenchArgs {
    /// Rounds; each runs every contender once (default 3; 1 with --smoke).
    #[arg(long)]
    pub rounds: Option<usize>,
    /// A fifth of the calls.
    #[arg(long)]
    pub quick: bool,
    /// A few calls per contender, one round, only the tools already there.
    #[arg(long)]
    pub smoke: bool,
    /// The broker; a fresh vhost is made on it for the run (default: `AMQP_URI`, else
    /// the local RabbitMQ).
    #[arg(long)]
    pub uri: Option<String>,
    /// Only these contenders, by key (comma-separated: rs,lapin,py,...).
    #[arg(long, value_delimiter = ',')]
    pub only: Option<Vec<String>>,
    /// Skip the Python nameko contenders.
    #[arg(long)]
    pub no_python: bool,
    /// Skip the raw lapin contenders.
    #[arg(long)]
    pub no_raw_lapin: bool,
    /// Also write every sample to this JSON file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The transport of the benchmark client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    /// RabbitMQ, at `--uri`.
    Amqp,
    /// The in-process broker, with the `echo` service in the client's process.
    Memory,
}

/// How the nameko-rs client calls `echo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ClientApi {
    /// `RpcProxy::call("echo", (&payload,))`: the dynamic proxy.
    #[default]
    Call,
    /// `EchoClient::echo(payload)`: the typed client `#[service]` generates.
    Typed,
    /// `RpcProxy::call("echo", CallArgs::new().kwarg("value", &payload))`: the dynamic
    /// proxy with the keyword arguments the typed client sends, to tell the cost of the
    /// client from that of the wire form.
    Kwargs,
}

/// Where the client's load runs on the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LoadIn {
    /// In `Runtime::block_on` on the main thread, as the body of `#[tokio::main]` does:
    /// on a multi-thread runtime every reply wakes the main thread from another one.
    #[default]
    BlockOn,
    /// In a task spawned on the runtime, as a service's workers and most clients run.
    Task,
}

/// Whether the in-process broker keeps its log of publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PublishLogFlag {
    /// No log, as for `memory://` brokers.
    Off,
    /// The default log.
    On,
}

impl From<PublishLogFlag> for PublishLog {
    fn from(flag: PublishLogFlag) -> Self {
        match flag {
            PublishLogFlag::Off => Self::Off,
            PublishLogFlag::On => Self::default(),
        }
    }
}

/// `nameko-bench-client`: the nameko-rs benchmark client, with the flags and output of
/// the Python client.
#[derive(Debug, Parser)]
#[command(
    name = "nameko-bench-client",
    about = "The nameko-rs benchmark client, with the flags and output of the Python client"
)]
pub struct ClientArgs {
    /// The broker.
    #[arg(long, value_enum, default_value = "amqp")]
    pub transport: TransportKind,
    /// The broker's URI (default: `AMQP_URI`, else the local RabbitMQ).
    #[arg(long)]
    pub uri: Option<String>,
    /// The scenarios, comma-separated (seq, pipe, seq10k, event).
    #[arg(long, value_delimiter = ',', default_value = "seq,pipe,seq10k")]
    pub scenarios: Vec<Scenario>,
    /// Runs of each scenario.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Measured calls of `seq`.
    #[arg(long, default_value_t = Sizes::default().seq)]
    pub seq_n: usize,
    /// Measured calls of `pipe`.
    #[arg(long, default_value_t = Sizes::default().pipe)]
    pub pipe_n: usize,
    /// Calls in flight in `pipe`.
    #[arg(long, default_value_t = Sizes::default().inflight)]
    pub inflight: usize,
    /// Measured calls of `seq10k`.
    #[arg(long, default_value_t = Sizes::default().big)]
    pub big_n: usize,
    /// Measured events of `event`.
    #[arg(long, default_value_t = Sizes::default().events)]
    pub event_n: usize,
    /// Unmeasured calls before each measured run.
    #[arg(long, default_value_t = Sizes::default().warmup)]
    pub warmup: usize,
    /// A configuration setting, `KEY=VALUE` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<Setting>,
    /// Worker threads of the runtime (1: a current-thread runtime; default: one per
    /// core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// With `--transport memory`: the broker's log of publishes.
    #[arg(long, value_enum, default_value = "off")]
    pub publish_log: PublishLogFlag,
    /// The client API the calls go through.
    #[arg(long, value_enum, default_value = "call")]
    pub api: ClientApi,
    /// Where the load runs: in `block_on` on the main thread, or in a spawned task.
    #[arg(long, value_enum, default_value = "block-on")]
    pub load_in: LoadIn,
    /// With `--transport memory`: the `echo` service measured by nameko-prometheus
    /// (its metrics served at `METRICS_ADDRESS` 127.0.0.1:0), or not.
    #[arg(long, value_enum, default_value = "off")]
    pub metrics: MetricsFlag,
}

/// Whether the in-process `echo` service records metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricsFlag {
    /// No metrics.
    Off,
    /// Every worker and call recorded, as `nameko_prometheus::instrument` does.
    On,
}

impl ClientArgs {
    /// The sizes the flags ask for.
    #[must_use]
    pub fn sizes(&self) -> Sizes {
        Sizes {
            seq: self.seq_n,
            pipe: self.pipe_n,
            inflight: self.inflight,
            big: self.big_n,
            events: self.event_n,
            warmup: self.warmup,
        }
    }
}

/// `nameko-bench-service`: the nameko-rs `echo` service in a process of its own.
#[derive(Debug, Parser)]
#[command(
    name = "nameko-bench-service",
    about = "The nameko-rs echo service of the benchmark, in a process of its own"
)]
pub struct ServiceArgs {
    /// The broker's URI (default: `AMQP_URI`, else the local RabbitMQ).
    #[arg(long)]
    pub uri: Option<String>,
    /// A configuration setting, `KEY=VALUE` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub settings: Vec<Setting>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn settings_are_json_or_strings() {
        let settings: Vec<Setting> = ["PREFETCH_COUNT=100", "AMQP_URI=amqp://x/"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let config = apply(Config::new(), &settings);
        assert_eq!(config.prefetch_count().unwrap(), 100);
        assert_eq!(config.get("AMQP_URI"), Some(&Value::from("amqp://x/")));
        assert!("nope".parse::<Setting>().is_err());
    }

    #[test]
    fn the_commands_are_well_formed() {
        BenchArgs::command().debug_assert();
        ClientArgs::command().debug_assert();
        ServiceArgs::command().debug_assert();
    }

    #[test]
    fn client_flags_are_those_the_harness_passes() {
        let sizes = Sizes {
            seq: 1,
            pipe: 2,
            inflight: 3,
            big: 4,
            events: 5,
            warmup: 6,
        };
        let args = ClientArgs::try_parse_from(
            [
                "nameko-bench-client",
                "--transport",
                "memory",
                "--threads",
                "1",
            ]
            .into_iter()
            .map(str::to_owned)
            .chain(sizes.client_args())
            .chain(["--event-n", "5", "--scenarios", "seq,event"].map(str::to_owned))
            .chain(["--set", "max_workers=4", "--publish-log", "on"].map(str::to_owned)),
        )
        .unwrap();
        assert_eq!(args.transport, TransportKind::Memory);
        assert_eq!(args.threads, Some(1));
        assert_eq!(args.sizes(), sizes);
        assert_eq!(args.scenarios, [Scenario::Seq, Scenario::Event]);
        assert_eq!(args.settings[0].value, Value::from(4));
        assert_eq!(args.publish_log, PublishLogFlag::On);
        assert!(ClientArgs::try_parse_from(["c", "--runs"]).is_err());
        assert!(ClientArgs::try_parse_from(["c", "--scenarios", "nope"]).is_err());
    }

    #[test]
    fn harness_flags() {
        let args = BenchArgs::try_parse_from([
            "nameko-bench",
            "--smoke",
            "--only",
            "rs,memory",
            "--no-python",
            "--rounds",
            "2",
        ])
        .unwrap();
        assert!(args.smoke && args.no_python && !args.no_raw_lapin);
        assert_eq!(args.rounds, Some(2));
        assert_eq!(args.only.unwrap(), ["rs", "memory"]);
        assert!(BenchArgs::try_parse_from(["nameko-bench", "--unknown"]).is_err());
    }
}
