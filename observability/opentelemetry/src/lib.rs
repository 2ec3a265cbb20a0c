//! OpenTelemetry traces for nameko-rs services.
//!
//! One trace follows a request through every service it reaches, Rust or Python:
//!
//! - every worker runs in a span (`server` kind for RPC, HTTP and timers, `consumer` for
//!   event handlers and consumers) named `<service>.<method>`;
//! - every RPC request a service or a standalone proxy sends gets a `client` span
//!   (`RPC to <service>.<method>`, until the reply), every event and published message a
//!   `producer` span (`Dispatch event <source>.<type>`, `Publish to <exchange>`);
//! - the context goes along in the `nameko.traceparent` header (and `nameko.tracestate`,
//!   `nameko.baggage`), exactly as Python's opentelemetry-instrumentation-nameko writes
//!   and reads it, so Python services instrumented with it and Rust services make one
//!   trace, both ways; `#[http]` entrypoints read a W3C `traceparent` request header.
//!
//! Spans carry names, kinds, service and method names, call ids and error types, never
//! call arguments, results or error messages. See [`NamekoTracing`] for the details.
//!
//! Nothing of this runs unless a binary turns it on: with no instrumentation installed,
//! nameko-rs only tests one atomic pointer per worker and per message.
//!
//! # In a service binary
//!
//! [`init_from_env`] reads the standard `OTEL_*` variables: with an OTLP endpoint
//! (`OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318`) or `OTEL_TRACES_EXPORTER=otlp`
//! it exports spans over OTLP/HTTP and installs the logging subscriber itself; otherwise
//! it does nothing and returns `None`.
//!
//! ```no_run
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let telemetry = nameko_opentelemetry::init_from_env("billing", "info", std::io::stderr)?;
//!     // ... run the services ...
//!     if let Some(telemetry) = telemetry {
//!         telemetry.shutdown()?; // exports the last spans
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # With a subscriber of your own
//!
//! Install the instrumentation, and add the layer of a [`Telemetry`] (any tracer
//! provider: here the SDK's in-memory exporter, as the tests do):
//!
//! ```
//! use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
//! use tracing_subscriber::prelude::*;
//!
//! let exporter = InMemorySpanExporter::default();
//! let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
//! let telemetry = nameko_opentelemetry::Telemetry::new(provider);
//! nameko_opentelemetry::install();
//! let subscriber = tracing_subscriber::registry()
//!     .with(telemetry.layer().with_filter(nameko_opentelemetry::span_filter()));
//! # drop(subscriber);
//! ```

mod export;
mod spans;

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

pub use export::{ExportSettings, Telemetry, TelemetryError};
pub use spans::{NamekoTracing, TARGET};

/// Installs [`NamekoTracing`] as the process's instrumentation; `false` when an
/// instrumentation was installed before (this one, or another: the first stays).
pub fn install() -> bool {
    nameko_core::extension::instrumentation::install(NamekoTracing::new())
}

/// The filter for the layer of a [`Telemetry`]: spans at `INFO` and above, so that the
/// spans of workers and outgoing messages are exported, and with them the spans service
/// code opens at that level; debug spans of libraries are not. Log events are not
/// either: they would become span events, and log records carry values (error messages
/// quote arguments) that must not leave the process with the spans.
#[must_use]
pub fn span_filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    FilterFn::new(is_exported)
}

fn is_exported(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && *metadata.level() <= Level::INFO
}

/// Turns tracing on for a service binary when the `OTEL_*` variables ask for it (see
/// [`ExportSettings`]); does nothing and returns `None` otherwise.
///
/// When on, it installs [`NamekoTracing`] and the global `tracing` subscriber: spans to
/// the OTLP exporter (named `default_service_name` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` name the service), and log records to `writer` filtered by
/// `log_filter` (an `EnvFilter` directive, e.g. `nameko::logging::directive`'s). A
/// logging set-up that runs later finds the subscriber installed and does nothing.
///
/// Keep the returned [`Telemetry`] and shut it down at the end, so that the last spans
/// are exported.
///
/// # Errors
///
/// [`TelemetryError`] for `OTEL_*` values it cannot follow, a `log_filter` that is not a
/// directive, or an exporter that cannot be built.
pub fn init_from_env<W>(
    default_service_name: &str,
    log_filter: &str,
    writer: W,
) -> Result<Option<Telemetry>, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let Some(telemetry) = Telemetry::from_env(default_service_name)? else {
        return Ok(None);
    };
    let filter = EnvFilter::try_new(log_filter).map_err(|e| TelemetryError::Setting {
        variable: "RUST_LOG",
        value: log_filter.to_owned(),
        reason: e.to_string(),
    })?;
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(writer)
        .with_filter(filter);
    let spans = telemetry.layer().with_filter(span_filter());
    // A subscriber installed before wins; then spans go nowhere, as before.
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init();
    install();
    Ok(Some(telemetry))
}
