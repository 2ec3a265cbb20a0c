//! The benchmarked service: the same `echo` service as the Python baseline
//! (`../shared/bench/python-nameko/echo_service.py`).

use std::sync::atomic::{AtomicU64, Ordering};

use nameko::prelude::*;

/// Name of the service, its RPC queue is `rpc-echo`.
pub const SERVICE: &str = "echo";
/// Source service of the benchmark events.
pub const EVENT_SOURCE: &str = "bench_source";
/// Event type of the benchmark events.
pub const EVENT_TYPE: &str = "ping";

static PINGS_SEEN: AtomicU64 = AtomicU64::new(0);

/// `echo.echo(value)` returns its argument; `on_ping` counts `bench_source.ping` events
/// and `pings_seen` reports the count, as in the Python service.
#[derive(Debug, Dependencies)]
pub struct Echo;

#[service(name = "echo")]
impl Echo {
    /// Returns its argument unchanged.
    #[rpc]
    pub async fn echo(&self, value: Value) -> Value {
        value
    }

    /// How many `bench_source.ping` events this process handled.
    #[rpc]
    async fn pings_seen(&self) -> u64 {
        PINGS_SEEN.load(Ordering::Relaxed)
    }

    /// Counts one event.
    #[event_handler("bench_source", "ping")]
    async fn on_ping(&self, payload: Value) {
        let _ = payload;
        PINGS_SEEN.fetch_add(1, Ordering::Relaxed);
    }
}
