//! Who is measured: each contender is a server and a client, on RabbitMQ or in process.

use crate::scenario::Scenario;

/// A server process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Server {
    /// `nameko-bench-service`: the nameko-rs `echo` service.
    NamekoRs,
    /// `nameko run echo_service` from `../shared/bench/python-nameko`.
    Python,
    /// `raw-lapin server` from `../shared/bench/raw-lapin`.
    RawLapin,
}

impl Server {
    /// The queue it consumes requests from, which has a consumer once it is ready.
    #[must_use]
    pub fn queue(self) -> &'static str {
        match self {
            Self::NamekoRs | Self::Python => "rpc-echo",
            Self::RawLapin => "rawbench-rpc-echo",
        }
    }

    /// Its name in tables.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::NamekoRs => "nameko-rs service",
            Self::Python => "Python nameko service",
            Self::RawLapin => "raw lapin server",
        }
    }
}

/// A client process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// `nameko-bench-client` over RabbitMQ.
    NamekoRs,
    /// `bench_client.py` (and `bench/python/event_client.py` for events).
    Python,
    /// `raw-lapin client --durable-reply`: nameko's wire settings.
    RawLapin,
    /// `nameko-bench-client --transport memory`: service and client in one process, on
    /// a runtime with this many worker threads (1: a current-thread runtime, what
    /// `#[tokio::test]` runs on; 0: one per core, what `#[tokio::main]` runs on).
    Memory {
        /// Worker threads of the runtime.
        threads: usize,
    },
}

/// One contender: what serves, what calls, with which prefetch window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contender {
    /// Short stable key (`rs`, `rs-typed`, `rs-kwargs`, `lapin`, `py`, `py-rs`, `rs-py`,
    /// `rs-p100`, `lapin-p100`, `memory`, `memory-typed`, `memory-kwargs`,
    /// `memory-metrics`, `memory-mt`, `memory-mt-block-on`).
    pub key: &'static str,
    /// Name in tables.
    pub label: &'static str,
    /// The server process; `None` for the in-process memory contender.
    pub server: Option<Server>,
    /// The client.
    pub client: Client,
    /// The server's prefetch window (and, for nameko-rs, its `max_workers`).
    pub prefetch: u16,
    /// The scenarios it runs.
    pub scenarios: Vec<Scenario>,
    /// Extra flags of the nameko-rs client.
    pub client_flags: &'static [&'static str],
}

impl Contender {
    /// Whether it needs RabbitMQ.
    #[must_use]
    pub fn needs_broker(&self) -> bool {
        !matches!(self.client, Client::Memory { .. })
    }

    /// Whether it needs Python nameko.
    #[must_use]
    pub fn needs_python(&self) -> bool {
        self.client == Client::Python || self.server == Some(Server::Python)
    }

    /// Whether it needs the raw lapin baseline.
    #[must_use]
    pub fn needs_raw_lapin(&self) -> bool {
        self.client == Client::RawLapin
    }
}

/// Every contender, in table order.
#[must_use]
pub fn all() -> Vec<Contender> {
    use Scenario::{Event, Pipe, Seq, Seq10k};
    let rpc_and_events = vec![Seq, Pipe, Seq10k, Event];
    vec![
        Contender {
            key: "rs",
            label: "nameko-rs → nameko-rs",
            server: Some(Server::NamekoRs),
            client: Client::NamekoRs,
            prefetch: 10,
            scenarios: rpc_and_events.clone(),
            client_flags: &[],
        },
        Contender {
            key: "rs-typed",
            label: "nameko-rs → nameko-rs, typed client",
            server: Some(Server::NamekoRs),
            client: Client::NamekoRs,
            prefetch: 10,
            scenarios: vec![Seq, Pipe, Seq10k],
            client_flags: &["--api", "typed"],
        },
        Contender {
            key: "rs-kwargs",
            label: "nameko-rs → nameko-rs, `call` with keyword arguments",
            server: Some(Server::NamekoRs),
            client: Client::NamekoRs,
            prefetch: 10,
            scenarios: vec![Seq, Pipe, Seq10k],
            client_flags: &["--api", "kwargs"],
        },
        Contender {
            key: "lapin",
            label: "raw lapin → raw lapin",
            server: Some(Server::RawLapin),
            client: Client::RawLapin,
            prefetch: 10,
            scenarios: vec![Seq, Pipe, Seq10k],
            client_flags: &[],
        },
        Contender {
            key: "py",
            label: "Python → Python",
            server: Some(Server::Python),
            client: Client::Python,
            prefetch: 10,
            scenarios: rpc_and_events.clone(),
            client_flags: &[],
        },
        Contender {
            key: "py-rs",
            label: "Python client → nameko-rs service",
            server: Some(Server::NamekoRs),
            client: Client::Python,
            prefetch: 10,
            scenarios: rpc_and_events.clone(),
            client_flags: &[],
        },
        Contender {
            key: "rs-py",
            label: "nameko-rs client → Python service",
            server: Some(Server::Python),
            client: Client::NamekoRs,
            prefetch: 10,
            scenarios: rpc_and_events.clone(),
            client_flags: &[],
        },
        Contender {
            key: "rs-p100",
            label: "nameko-rs, PREFETCH_COUNT 100",
            server: Some(Server::NamekoRs),
            client: Client::NamekoRs,
            prefetch: 100,
            scenarios: vec![Pipe],
            client_flags: &[],
        },
        Contender {
            key: "lapin-p100",
            label: "raw lapin, --prefetch 100",
            server: Some(Server::RawLapin),
            client: Client::RawLapin,
            prefetch: 100,
            scenarios: vec![Pipe],
            client_flags: &[],
        },
        Contender {
            key: "memory",
            label: "memory transport, current-thread runtime",
            server: None,
            client: Client::Memory { threads: 1 },
            prefetch: 10,
            scenarios: rpc_and_events.clone(),
            client_flags: &[],
        },
        Contender {
            key: "memory-typed",
            label: "memory transport, current-thread runtime, typed client",
            server: None,
            client: Client::Memory { threads: 1 },
            prefetch: 10,
            scenarios: vec![Seq, Pipe, Seq10k],
            client_flags: &["--api", "typed"],
        },
        Contender {
            key: "memory-kwargs",
            label: "memory transport, current-thread runtime, `call` with keyword arguments",
            server: None,
            client: Client::Memory { threads: 1 },
            prefetch: 10,
            scenarios: vec![Seq, Pipe, Seq10k],
            client_flags: &["--api", "kwargs"],
        },
        Contender {
            key: "memory-metrics",
            label: "memory transport, current-thread runtime, metrics on",
            server: None,
            client: Client::Memory { threads: 1 },
            prefetch: 10,
            scenarios: vec![Seq, Pipe],
            client_flags: &["--metrics", "on"],
        },
        Contender {
            key: "memory-mt",
            label: "memory transport, multi-thread runtime, load in a task",
            server: None,
            client: Client::Memory { threads: 0 },
            prefetch: 10,
            scenarios: rpc_and_events.clone(),
            client_flags: &["--load-in", "task"],
        },
        Contender {
            key: "memory-mt-block-on",
            label: "memory transport, multi-thread runtime, load in `block_on`",
            server: None,
            client: Client::Memory { threads: 0 },
            prefetch: 10,
            scenarios: rpc_and_events,
            client_flags: &[],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_needs_follow_the_processes() {
        let all = all();
        let mut keys: Vec<_> = all.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), all.len());
        let memory = all.iter().find(|c| c.key == "memory").unwrap();
        assert!(!memory.needs_broker() && !memory.needs_python());
        let mixed = all.iter().find(|c| c.key == "rs-py").unwrap();
        assert!(mixed.needs_python() && !mixed.needs_raw_lapin());
    }
}
