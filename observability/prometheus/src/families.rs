//! The metrics of one prefix (one service), registered once in the process's registry.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use nameko_core::extension::{CallOutcome, Observer, OutgoingCall, Settlement};
use nameko_core::worker::{WorkerContext, WorkerResult};
use parking_lot::RwLock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::LATENCY_BUCKETS;

fn latency() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type Latency<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_family<L: Clone + std::hash::Hash + Eq>() -> Latency<L> {
    Family::new_with_constructor(latency)
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct MethodLabels {
    pub(crate) method_name: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    pub(crate) http_method: String,
    pub(crate) endpoint: String,
    pub(crate) status_code: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EventLabels {
    pub(crate) source_service: String,
    pub(crate) event_type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct InfoLabels {
    pub(crate) service_version: String,
    pub(crate) nameko_rs_version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutgoingLabels {
    pub(crate) service: String,
    pub(crate) method: String,
    pub(crate) outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabels {
    pub(crate) service: String,
    pub(crate) method: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct QueueLabels {
    pub(crate) queue: String,
}

/// A request counter and its latency histogram, for one set of labels.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    count: Counter,
    latency: Histogram,
}

impl Pair {
    pub(crate) fn observe(&self, seconds: f64) {
        self.count.inc();
        self.latency.observe(seconds);
    }
}

/// A counter and a histogram labelled by method name, with the handles of the methods
/// seen so far kept at hand: after a method's first call, recording one takes a read
/// lock, a hash of its name, an atomic addition and a histogram update.
#[derive(Debug)]
pub(crate) struct ByMethod {
    count: Family<MethodLabels, Counter>,
    latency: Latency<MethodLabels>,
    seen: RwLock<HashMap<String, Pair>>,
}

impl ByMethod {
    fn new() -> Self {
        Self {
            count: Family::default(),
            latency: latency_family(),
            seen: RwLock::default(),
        }
    }

    fn register(&self, registry: &mut Registry, name: &str, what: &str) {
        registry.register(
            format!("{name}s"),
            format!("Total number of {what}s"),
            self.count.clone(),
        );
        registry.register(
            format!("{name}_latency_seconds"),
            format!("{what} duration in seconds"),
            self.latency.clone(),
        );
    }

    pub(crate) fn observe(&self, method: &str, seconds: f64) {
        if let Some(pair) = self.seen.read().get(method) {
            pair.observe(seconds);
            return;
        }
        let labels = MethodLabels {
            method_name: method.to_owned(),
        };
        let pair = Pair {
            count: self.count.get_or_create(&labels).clone(),
            latency: self.latency.get_or_create(&labels).clone(),
        };
        pair.observe(seconds);
        self.seen.write().insert(method.to_owned(), pair);
    }
}

/// Every metric of one prefix.
#[derive(Debug)]
pub(crate) struct ServiceMetrics {
    pub(crate) prefix: String,
    pub(crate) rpc: ByMethod,
    pub(crate) timer: ByMethod,
    pub(crate) consumer: ByMethod,
    http_count: Family<HttpLabels, Counter>,
    http_latency: Latency<HttpLabels>,
    events_count: Family<EventLabels, Counter>,
    events_latency: Latency<EventLabels>,
    info: Family<InfoLabels, Gauge>,
    pub(crate) uptime: Gauge<f64, AtomicU64>,
    pub(crate) max_workers: Gauge,
    pub(crate) running_workers: Gauge,
    outgoing_count: Family<OutgoingLabels, Counter>,
    outgoing_latency: Latency<TargetLabels>,
    outgoing_seen: RwLock<HashMap<(String, String), Outgoing>>,
    pub(crate) disconnects: Counter,
    pub(crate) reconnects: Counter,
    pub(crate) connected: Gauge,
    requeued: Family<QueueLabels, Counter>,
    rejected: Family<QueueLabels, Counter>,
    retried: Family<QueueLabels, Counter>,
    dead_lettered: Family<QueueLabels, Counter>,
}

/// The handles of one called method: a counter per outcome and a histogram.
#[derive(Debug, Clone)]
struct Outgoing {
    outcomes: [Counter; 5],
    latency: Histogram,
}

const OUTCOMES: [CallOutcome; 5] = [
    CallOutcome::Ok,
    CallOutcome::RemoteError,
    CallOutcome::Timeout,
    CallOutcome::UnknownService,
    CallOutcome::Failed,
];

impl ServiceMetrics {
    /// The metrics of `prefix`, registered in `registry`.
    pub(crate) fn new(prefix: &str, service_version: &str, registry: &mut Registry) -> Self {
        let metrics = Self {
            prefix: prefix.to_owned(),
            rpc: ByMethod::new(),
            timer: ByMethod::new(),
            consumer: ByMethod::new(),
            http_count: Family::default(),
            http_latency: latency_family(),
            events_count: Family::default(),
            events_latency: latency_family(),
            info: Family::default(),
            uptime: Gauge::default(),
            max_workers: Gauge::default(),
            running_workers: Gauge::default(),
            outgoing_count: Family::default(),
            outgoing_latency: latency_family(),
            outgoing_seen: RwLock::default(),
            disconnects: Counter::default(),
            reconnects: Counter::default(),
            connected: Gauge::default(),
            requeued: Family::default(),
            rejected: Family::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
        };
        metrics
            .info
            .get_or_create(&InfoLabels {
                service_version: service_version.to_owned(),
                nameko_rs_version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        metrics.register(registry);
        metrics
    }

    /// Registers every metric; a counter's name gets its `_total` when encoded.
    fn register(&self, registry: &mut Registry) {
        let p = &self.prefix;
        registry.register(
            format!("{p}_http_requests"),
            "Total number of HTTP requests",
            self.http_count.clone(),
        );
        registry.register(
            format!("{p}_http_request_latency_seconds"),
            "HTTP request duration in seconds",
            self.http_latency.clone(),
        );
        self.rpc
            .register(registry, &format!("{p}_rpc_request"), "RPC request");
        registry.register(
            format!("{p}_events"),
            "Total number of handled events",
            self.events_count.clone(),
        );
        registry.register(
            format!("{p}_events_latency_seconds"),
            "Event handler duration in seconds",
            self.events_latency.clone(),
        );
        self.timer
            .register(registry, &format!("{p}_timer_request"), "timer request");
        self.consumer.register(
            registry,
            &format!("{p}_consumer_request"),
            "consumer request",
        );
        registry.register(
            format!("{p}_service_info"),
            "Always 1; the labels say which version runs",
            self.info.clone(),
        );
        registry.register(
            format!("{p}_service_uptime_seconds"),
            "Uptime of service in seconds",
            self.uptime.clone(),
        );
        registry.register(
            format!("{p}_service_max_workers"),
            "Maximum number of available nameko workers",
            self.max_workers.clone(),
        );
        registry.register(
            format!("{p}_service_running_workers"),
            "Number of currently running nameko workers",
            self.running_workers.clone(),
        );
        registry.register(
            format!("{p}_rpc_outgoing_calls"),
            "Total number of RPC calls made, by target and outcome",
            self.outgoing_count.clone(),
        );
        registry.register(
            format!("{p}_rpc_outgoing_call_latency_seconds"),
            "RPC call duration in seconds, from the request to the end of the wait for its reply",
            self.outgoing_latency.clone(),
        );
        registry.register(
            format!("{p}_broker_disconnects"),
            "Times the broker connection was lost",
            self.disconnects.clone(),
        );
        registry.register(
            format!("{p}_broker_reconnects"),
            "Times the broker connection came back after it was lost",
            self.reconnects.clone(),
        );
        registry.register(
            format!("{p}_broker_connected"),
            "1 while the broker connection is up",
            self.connected.clone(),
        );
        registry.register(
            format!("{p}_messages_requeued"),
            "Messages given back to their queue to be delivered again",
            self.requeued.clone(),
        );
        registry.register(
            format!("{p}_messages_rejected"),
            "Messages rejected without requeue (unreadable, or not fitting their method)",
            self.rejected.clone(),
        );
        registry.register(
            format!("{p}_messages_retried"),
            "Failed messages re-published for a later attempt",
            self.retried.clone(),
        );
        registry.register(
            format!("{p}_messages_dead_lettered"),
            "Messages sent to their dead-letter queue after their last attempt failed",
            self.dead_lettered.clone(),
        );
    }

    fn observe_http(&self, labels: HttpLabels, seconds: f64) {
        self.http_count.get_or_create(&labels).inc();
        self.http_latency.get_or_create(&labels).observe(seconds);
    }

    fn observe_event(&self, labels: EventLabels, seconds: f64) {
        self.events_count.get_or_create(&labels).inc();
        self.events_latency.get_or_create(&labels).observe(seconds);
    }

    fn outgoing(&self, service: &str, method: &str) -> Outgoing {
        let key = (service.to_owned(), method.to_owned());
        if let Some(handles) = self.outgoing_seen.read().get(&key) {
            return handles.clone();
        }
        let outcomes = OUTCOMES.map(|outcome| {
            self.outgoing_count
                .get_or_create(&OutgoingLabels {
                    service: service.to_owned(),
                    method: method.to_owned(),
                    outcome: outcome.as_str().to_owned(),
                })
                .clone()
        });
        let latency = self
            .outgoing_latency
            .get_or_create(&TargetLabels {
                service: service.to_owned(),
                method: method.to_owned(),
            })
            .clone();
        let handles = Outgoing { outcomes, latency };
        self.outgoing_seen.write().insert(key, handles.clone());
        handles
    }

    pub(crate) fn observe_outgoing(
        &self,
        service: &str,
        method: &str,
        outcome: CallOutcome,
        duration: Duration,
    ) {
        let handles = self.outgoing(service, method);
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            handles.outcomes[i].inc();
        }
        handles.latency.observe(duration.as_secs_f64());
    }
}

impl Observer for ServiceMetrics {
    fn worker_finished(&self, worker: &WorkerContext, _result: &WorkerResult) {
        let seconds = worker.started().elapsed().as_secs_f64();
        let attribute = |key| worker.attribute(key).unwrap_or("").to_owned();
        match worker.entrypoint_kind() {
            "rpc" => self.rpc.observe(worker.entrypoint(), seconds),
            "event_handler" => self.observe_event(
                EventLabels {
                    source_service: attribute("source_service"),
                    event_type: attribute("event_type"),
                },
                seconds,
            ),
            "http" => self.observe_http(
                HttpLabels {
                    http_method: attribute("http_method"),
                    endpoint: attribute("endpoint"),
                    status_code: attribute("status_code"),
                },
                seconds,
            ),
            "timer" => self.timer.observe(worker.entrypoint(), seconds),
            "consume" => self.consumer.observe(worker.entrypoint(), seconds),
            _ => {}
        }
    }

    fn call_finished(&self, call: &OutgoingCall<'_>) {
        self.observe_outgoing(call.service, call.method, call.outcome, call.duration);
    }

    fn message_settled(&self, queue: &str, settlement: Settlement, count: u64) {
        let family = match settlement {
            Settlement::Requeued => &self.requeued,
            Settlement::Rejected => &self.rejected,
            Settlement::Retried => &self.retried,
            Settlement::DeadLettered => &self.dead_lettered,
            _ => return,
        };
        family
            .get_or_create(&QueueLabels {
                queue: queue.to_owned(),
            })
            .inc_by(count);
    }
}
