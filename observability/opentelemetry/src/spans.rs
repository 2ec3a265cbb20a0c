//! The spans of workers and outgoing messages, and their parents across processes.

use nameko_core::extension::instrumentation::{
    Carrier, Instrumentation, Outcome, Outgoing, WorkerStart,
};
use nameko_core::transport::FieldTable;
use nameko_core::wire::HEADER_PREFIX;
use nameko_core::worker::WorkerContext;
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The target of every span this crate makes.
pub const TARGET: &str = "nameko_opentelemetry";

/// The [`Instrumentation`] that makes nameko-rs's spans as opentelemetry-instrumentation-
/// nameko makes Python nameko's:
///
/// - a worker span named `<service>.<method>`, of kind `consumer` for event handlers and
///   `consume` entrypoints and `server` for the others (RPC, HTTP, timers), with the
///   attributes `service_name`, `method_name`, `entrypoint_type` and `call_id`; its
///   parent is the span whose context came with the call: the `traceparent` (and
///   `tracestate`, `baggage`) of the message's context data, i.e. its
///   `nameko.traceparent` header, or an HTTP request's `traceparent` header;
/// - a `client` span `RPC to <service>.<method>` per RPC request (until its reply), a
///   `producer` span `Dispatch event <source>.<event_type>` per event and
///   `Publish to <exchange>` per published message, whose context goes out as
///   `nameko.traceparent` (and `nameko.tracestate`, `nameko.baggage`): the headers
///   Python's `inject(worker_ctx.context_data)` writes.
///
/// A failed worker or call gets the attributes `exception.type` and
/// `exception.expected`, and an error status unless the error is one of the entrypoint's
/// `expected_exceptions`. Call arguments, results and error messages never reach a span.
///
/// The spans are `tracing` spans (target `nameko_opentelemetry`, level `INFO`): the
/// subscriber's OpenTelemetry layer ([`crate::Telemetry::layer`]) exports them, and
/// spans a service method opens inside a worker are children of the worker's span.
#[derive(Debug)]
pub struct NamekoTracing {
    propagator: TextMapCompositePropagator,
}

impl Default for NamekoTracing {
    fn default() -> Self {
        Self::new()
    }
}

impl NamekoTracing {
    /// The instrumentation, propagating W3C trace context and baggage (Python's default
    /// `OTEL_PROPAGATORS=tracecontext,baggage`).
    #[must_use]
    pub fn new() -> Self {
        Self {
            propagator: TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ]),
        }
    }

    /// The parent `incoming` names, if it carries a valid trace context.
    fn remote_parent(&self, incoming: &dyn Carrier) -> Option<opentelemetry::Context> {
        let context = self.propagator.extract(&Extract(incoming));
        context.span().span_context().is_valid().then_some(context)
    }
}

/// The span kind of a worker of an entrypoint of `kind`, as opentelemetry-instrumentation-
/// nameko chooses it.
fn worker_span_kind(kind: &str) -> &'static str {
    match kind {
        "event_handler" | "consume" => "consumer",
        _ => "server",
    }
}

impl Instrumentation for NamekoTracing {
    fn worker_span(&self, start: &WorkerStart<'_>) -> Option<Span> {
        if !exported() {
            return None;
        }
        let worker = start.worker;
        let name = format!("{}.{}", worker.service_name(), worker.entrypoint());
        let span = tracing::info_span!(
            target: TARGET,
            parent: None,
            "worker",
            otel.name = name.as_str(),
            otel.kind = worker_span_kind(start.entrypoint_kind),
            service_name = worker.service_name(),
            method_name = worker.entrypoint(),
            entrypoint_type = start.entrypoint_kind,
            call_id = worker.call_id(),
            http.response.status_code = Empty,
        );
        if let Some(parent) = self.remote_parent(start.incoming) {
            let _ = span.set_parent(parent);
        }
        Some(span)
    }

    fn worker_ended(&self, span: &Span, _worker: &WorkerContext, outcome: Outcome<'_>) {
        end(span, outcome);
    }

    fn outgoing(&self, message: &Outgoing<'_>, headers: &mut FieldTable) -> Option<Span> {
        if !exported() {
            return None;
        }
        let span = match *message {
            Outgoing::RpcRequest { service, method } => {
                let name = format!("RPC to {service}.{method}");
                tracing::info_span!(
                    target: TARGET,
                    "rpc_request",
                    otel.name = name.as_str(),
                    otel.kind = "client",
                    nameko.rpc.target_service = service,
                    nameko.rpc.target_method = method,
                )
            }
            Outgoing::Event { source, event_type } => {
                let name = format!("Dispatch event {source}.{event_type}");
                let exchange = format!("{source}.events");
                tracing::info_span!(
                    target: TARGET,
                    "event_dispatch",
                    otel.name = name.as_str(),
                    otel.kind = "producer",
                    nameko.events.exchange = exchange.as_str(),
                    nameko.events.event_type = event_type,
                )
            }
            Outgoing::Message {
                exchange,
                routing_key,
            } => {
                let target = if exchange.is_empty() {
                    "default-exchange"
                } else {
                    exchange
                };
                let name = format!("Publish to {target}");
                tracing::info_span!(
                    target: TARGET,
                    "publish",
                    otel.name = name.as_str(),
                    otel.kind = "producer",
                    nameko.messaging.exchange = target,
                    nameko.messaging.routing_key = routing_key,
                )
            }
            _ => return None,
        };
        let context = span.context();
        if context.span().span_context().is_valid() {
            self.propagator
                .inject_context(&context, &mut Inject(headers));
        }
        Some(span)
    }

    fn outgoing_ended(&self, span: &Span, outcome: Outcome<'_>) {
        end(span, outcome);
    }
}

/// Whether the subscriber takes this crate's spans: without an OpenTelemetry layer that
/// does, no span is made (workers keep core's span, messages their headers as they are).
fn exported() -> bool {
    tracing::enabled!(kind: tracing::metadata::Kind::SPAN, target: TARGET, tracing::Level::INFO)
}

/// Marks how a worker or an outgoing message ended.
fn end(span: &Span, outcome: Outcome<'_>) {
    match outcome {
        Outcome::Failed { exc_type, expected } => {
            span.set_attribute("exception.type", exc_type.to_owned());
            span.set_attribute("exception.expected", expected);
            if expected {
                span.set_status(Status::Ok);
            } else {
                span.set_status(Status::error(exc_type.to_owned()));
            }
        }
        _ => span.set_status(Status::Ok),
    }
}

/// What a call came with, as a propagator reads it.
struct Extract<'a>(&'a dyn Carrier);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys()
    }
}

/// The headers of an outgoing message, as a propagator writes them: each key as the
/// context key `<key>`, i.e. the header `nameko.<key>`.
struct Inject<'a>(&'a mut FieldTable);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(format!("{HEADER_PREFIX}{key}"), value);
    }
}
