//! Prometheus metrics and health probes for nameko-rs services: Python's
//! nameko-prometheus, with its metric names, labels and buckets, plus what a Rust
//! process can say besides (worker pool use, outgoing calls by outcome, broker
//! reconnects, messages requeued or dead-lettered) and Kubernetes-style probes.
//!
//! A service gets metrics from a [`Metrics`] field, as a Python one gets them from a
//! `PrometheusMetrics()` dependency (its name starts with `_` when the service's methods
//! never read it), or every service of a process from the [`instrument`] container
//! hook:
//!
//! ```
//! use nameko::prelude::*;
//! use nameko_prometheus::Metrics;
//!
//! #[derive(Dependencies)]
//! struct Calculator {
//!     _metrics: Metrics,
//! }
//!
//! #[service(name = "calculator")]
//! impl Calculator {
//!     #[rpc]
//!     async fn add(&self, x: f64, y: f64) -> f64 {
//!         x + y
//!     }
//! }
//! ```
//!
//! The first such field of a process mounts three routes on the process's web server
//! ([`nameko_web::WebServer`], at `WEB_SERVER_ADDRESS`), or on a listener of their own
//! at [`METRICS_ADDRESS`] when that key is set (for a process that serves no HTTP, or to
//! keep them off the public port):
//!
//! - `GET /metrics`: every metric of every service of the process, in the text format
//!   Prometheus scrapes (OpenMetrics);
//! - `GET /health/live`: 200 while the process answers;
//! - `GET /health/ready`: 200 when every container of the process is running and its
//!   broker connection is up; 503 with a JSON reason otherwise (starting, a broker
//!   outage, a graceful stop under way).
//!
//! # Metrics
//!
//! `<prefix>` is the service name, or `prefix` of `PROMETHEUS: {<service>: {prefix:
//! ...}}` in the configuration. nameko-prometheus 1.6.0's metrics, with its names, labels
//! and histogram buckets ([`LATENCY_BUCKETS`]), so its dashboards keep working:
//!
//! | metric | labels |
//! |---|---|
//! | `<prefix>_rpc_requests_total`, `<prefix>_rpc_request_latency_seconds` | `method_name` |
//! | `<prefix>_http_requests_total`, `<prefix>_http_request_latency_seconds` | `http_method`, `endpoint`, `status_code` |
//! | `<prefix>_events_total`, `<prefix>_events_latency_seconds` | `source_service`, `event_type` |
//! | `<prefix>_timer_requests_total`, `<prefix>_timer_request_latency_seconds` | `method_name` |
//! | `<prefix>_consumer_requests_total`, `<prefix>_consumer_request_latency_seconds` | `method_name` |
//! | `<prefix>_service_info` | `service_version` (from `APP_VERSION`, or the variable `PROMETHEUS.APP_VERSION_KEY` names), `nameko_rs_version` |
//! | `<prefix>_service_uptime_seconds`, `<prefix>_service_max_workers`, `<prefix>_service_running_workers` | |
//!
//! and beyond it:
//!
//! | metric | labels |
//! |---|---|
//! | `<prefix>_rpc_outgoing_calls_total` | `service`, `method`, `outcome` (`ok`, `remote_error`, `timeout`, `unknown_service`, `failed`) |
//! | `<prefix>_rpc_outgoing_call_latency_seconds` | `service`, `method` |
//! | `<prefix>_broker_disconnects_total`, `<prefix>_broker_reconnects_total`, `<prefix>_broker_connected` | |
//! | `<prefix>_messages_requeued_total`, `<prefix>_messages_rejected_total`, `<prefix>_messages_retried_total`, `<prefix>_messages_dead_lettered_total` | `queue` |
//!
//! A latency is measured from the worker's start to its result, as its dependencies see
//! it. Recording one is two atomic additions and a histogram update behind a read of a
//! per-method cache: the RPC benchmark's figures do not move with metrics on
//! (`BENCHMARKS.md`).

mod families;
mod health;
mod provider;
mod registry;

pub use health::{Readiness, ServiceHealth, readiness};
pub use provider::{Metrics, PrometheusMetrics, instrument};
pub use registry::MetricsRegistry;

/// The configuration key of a listener of the metrics and health routes' own
/// (`[host:]port`); without it they are mounted on the process's web server.
pub const METRICS_ADDRESS: &str = "METRICS_ADDRESS";

/// The configuration key of nameko-prometheus's settings: `PROMETHEUS: {<service>:
/// {prefix: ...}, APP_VERSION_KEY: ...}`.
pub const PROMETHEUS: &str = "PROMETHEUS";

/// The buckets of every latency histogram, in seconds: those of Python's
/// `prometheus_client` (and so of nameko-prometheus); `+Inf` comes last on its own.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// The paths of the routes, as mounted.
pub mod paths {
    /// The metrics in Prometheus's text format.
    pub const METRICS: &str = "/metrics";
    /// Liveness.
    pub const LIVE: &str = "/health/live";
    /// Readiness.
    pub const READY: &str = "/health/ready";
}
