//! One trace across services on the in-memory broker: workers, RPC requests, events and
//! HTTP requests, parented through `nameko.traceparent` and `traceparent` headers, into
//! the SDK's in-memory exporter.

use std::time::Duration;

use nameko::messaging::{ExchangeDef, PublisherProvider};
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::transport::{ExchangeKind, FieldTable, Message, Properties, PublishOptions};
use nameko_opentelemetry::{Telemetry, span_filter};
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_type = "ValueError",
    exc_path = "builtins.ValueError",
    display = "{0}"
)]
struct ValueError(String);

#[derive(Debug, Dependencies)]
struct Front {
    back: RpcProxy,
    events: EventDispatcher,
}

#[service(name = "front")]
impl Front {
    #[rpc]
    async fn relay(&self, x: i64) -> Result<i64, ServiceError> {
        let doubled: i64 = self.back.call("double", (x,)).await?;
        self.events.dispatch("relayed", json!({"x": x})).await?;
        Ok(doubled)
    }

    #[rpc]
    async fn relay_failure(&self, secret: String) -> Result<(), ServiceError> {
        self.back.call::<Value>("fail", (secret,)).await?;
        Ok(())
    }

    #[http("GET", "/relay/<int:x>")]
    async fn http_relay(&self, x: i64) -> Result<String, ServiceError> {
        let doubled: i64 = self.back.call("double", (x,)).await?;
        Ok(doubled.to_string())
    }
}

#[derive(Debug, Dependencies)]
struct Back {
    context: ContextData,
}

#[service(name = "back")]
impl Back {
    #[rpc]
    async fn double(&self, x: i64) -> i64 {
        x * 2
    }

    #[rpc]
    async fn traceparent(&self) -> Option<String> {
        self.context.get_str("traceparent").map(str::to_owned)
    }

    #[rpc]
    async fn fail(&self, secret: String) -> Result<(), ServiceError> {
        Err(ServiceError::msg(format!("refused {secret}")))
    }

    #[rpc(expected_exceptions = [ValueError])]
    async fn reject(&self) -> Result<(), ValueError> {
        Err(ValueError("not today".to_owned()))
    }

    #[event_handler("front", "relayed")]
    async fn on_relayed(&self, _payload: Value) {}
}

#[derive(Debug, Dependencies)]
struct Audit {
    #[dependency(PublisherProvider::new(ExchangeDef::new("audit", ExchangeKind::Topic)))]
    publisher: Publisher,
}

#[service(name = "audit")]
impl Audit {
    #[rpc]
    async fn record(&self, action: String) -> Result<(), EventError> {
        self.publisher
            .publish(&format!("audit.{action}"), json!({"action": action}))
            .await
    }

    #[consume(queue = "audit-log", exchange = "audit", routing_key = "audit.#")]
    async fn log(&self, _body: Value) {}
}

/// The spans of one test: exported at once by a simple processor into memory.
struct Spans {
    exporter: InMemorySpanExporter,
    _telemetry: Telemetry,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Spans {
    /// Installs the instrumentation (once per process) and a subscriber for this test's
    /// thread (the tests run on current-thread runtimes).
    fn start() -> Self {
        nameko_opentelemetry::install();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let telemetry = Telemetry::new(provider);
        let subscriber =
            tracing_subscriber::registry().with(telemetry.layer().with_filter(span_filter()));
        Self {
            exporter,
            _telemetry: telemetry,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn all(&self) -> Vec<SpanData> {
        self.exporter
            .get_finished_spans()
            .expect("the in-memory exporter keeps its spans")
    }

    /// The one finished span named `name`.
    fn named(&self, name: &str) -> SpanData {
        let all = self.all();
        let mut found = all.iter().filter(|s| s.name == name);
        let span = found.next().unwrap_or_else(|| {
            let names: Vec<_> = all.iter().map(|s| s.name.to_string()).collect();
            panic!("no span `{name}` among {names:?}")
        });
        assert!(found.next().is_none(), "more than one span `{name}`");
        span.clone()
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<OtelValue> {
    span.attributes
        .iter()
        .find(|KeyValue { key: k, .. }| k.as_str() == key)
        .map(|kv| kv.value.clone())
}

/// `child` is a child of `parent`, in its trace.
fn assert_child(child: &SpanData, parent: &SpanData) {
    assert_eq!(
        child.span_context.trace_id(),
        parent.span_context.trace_id(),
        "`{}` is in the trace of `{}`",
        child.name,
        parent.name
    );
    assert_eq!(
        child.parent_span_id,
        parent.span_context.span_id(),
        "`{}` is a child of `{}`",
        child.name,
        parent.name
    );
}

async fn cluster() -> TestCluster {
    let mut cluster = TestCluster::memory();
    cluster.start::<Front>().await;
    cluster.start::<Back>().await;
    cluster
}

#[tokio::test]
async fn rpc_calls_and_events_make_one_trace_across_services() {
    let spans = Spans::start();
    let cluster = cluster().await;
    let proxy = cluster.proxy().await;
    let doubled: i64 = proxy.service("front").call("relay", (21,)).await.unwrap();
    assert_eq!(doubled, 42);
    cluster.run_until_idle().await.unwrap();
    cluster.shutdown().await;

    let root = spans.named("RPC to front.relay");
    let relay = spans.named("front.relay");
    let call = spans.named("RPC to back.double");
    let double = spans.named("back.double");
    let dispatch = spans.named("Dispatch event front.relayed");
    let handler = spans.named("back.on_relayed");

    assert_eq!(
        root.parent_span_id,
        SpanId::INVALID,
        "the proxy's call is the root"
    );
    assert_eq!(root.span_kind, SpanKind::Client);
    assert_child(&relay, &root);
    assert_eq!(relay.span_kind, SpanKind::Server);
    assert_child(&call, &relay);
    assert_eq!(call.span_kind, SpanKind::Client);
    assert_child(&double, &call);
    assert_eq!(double.span_kind, SpanKind::Server);
    assert_child(&dispatch, &relay);
    assert_eq!(dispatch.span_kind, SpanKind::Producer);
    assert_child(&handler, &dispatch);
    assert_eq!(handler.span_kind, SpanKind::Consumer);

    assert_eq!(
        attribute(&relay, "service_name"),
        Some(OtelValue::from("front"))
    );
    assert_eq!(
        attribute(&relay, "method_name"),
        Some(OtelValue::from("relay"))
    );
    assert_eq!(
        attribute(&relay, "entrypoint_type"),
        Some(OtelValue::from("rpc"))
    );
    assert!(
        attribute(&relay, "call_id").is_some_and(|id| id.as_str().starts_with("front.relay.")),
        "{:?}",
        relay.attributes
    );
    assert_eq!(
        attribute(&call, "nameko.rpc.target_service"),
        Some(OtelValue::from("back"))
    );
    assert_eq!(
        attribute(&dispatch, "nameko.events.event_type"),
        Some(OtelValue::from("relayed"))
    );
    assert_eq!(relay.status, Status::Ok);
    assert_eq!(root.status, Status::Ok);
}

#[tokio::test]
async fn the_context_travels_as_nameko_traceparent() {
    let spans = Spans::start();
    let cluster = cluster().await;
    let proxy = cluster.proxy().await;
    let traceparent: Option<String> = proxy.service("back").call("traceparent", ()).await.unwrap();
    cluster.shutdown().await;

    // The callee's context data has the key `traceparent`: the header was
    // `nameko.traceparent`, as opentelemetry-instrumentation-nameko writes it.
    let call = spans.named("RPC to back.traceparent");
    let expected = format!(
        "00-{}-{}-01",
        call.span_context.trace_id(),
        call.span_context.span_id()
    );
    assert_eq!(traceparent.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn a_worker_continues_the_trace_of_a_nameko_traceparent_header() {
    let spans = Spans::start();
    let cluster = cluster().await;
    // An event as a Python service instrumented with opentelemetry-instrumentation-nameko
    // sends it.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let headers = FieldTable::new()
        .with(
            "nameko.traceparent",
            format!("00-{trace_id}-{parent_id}-01"),
        )
        .with("nameko.call_id_stack", "py_front.relay.1");
    let transport = cluster.connect().await;
    transport
        .publish(
            "front.events",
            "relayed",
            Message::new(&b"{\"x\": 1}"[..], Properties::json().with_headers(headers)),
            PublishOptions::default(),
        )
        .await
        .unwrap();
    cluster
        .run_until_idle_within(Duration::from_secs(10))
        .await
        .unwrap();
    cluster.shutdown().await;

    let handler = spans.named("back.on_relayed");
    assert_eq!(
        handler.span_context.trace_id(),
        TraceId::from_hex(trace_id).unwrap()
    );
    assert_eq!(handler.parent_span_id, SpanId::from_hex(parent_id).unwrap());
}

#[tokio::test]
async fn failures_have_their_error_type_and_never_their_values() {
    let spans = Spans::start();
    let cluster = cluster().await;
    let proxy = cluster.proxy().await;
    proxy
        .service("front")
        .call::<Value>("relay_failure", ("s3cret-value",))
        .await
        .unwrap_err();
    proxy
        .service("back")
        .call::<Value>("reject", ())
        .await
        .unwrap_err();
    cluster.shutdown().await;

    let fail = spans.named("back.fail");
    assert!(
        matches!(&fail.status, Status::Error { description } if description == "Exception"),
        "{:?}",
        fail.status
    );
    assert_eq!(
        attribute(&fail, "exception.type"),
        Some(OtelValue::from("Exception"))
    );
    assert_eq!(
        attribute(&fail, "exception.expected"),
        Some(OtelValue::from(false))
    );
    let call = spans.named("RPC to back.fail");
    assert!(
        matches!(call.status, Status::Error { .. }),
        "{:?}",
        call.status
    );

    let reject = spans.named("back.reject");
    assert_eq!(
        reject.status,
        Status::Ok,
        "an expected exception is no error"
    );
    assert_eq!(
        attribute(&reject, "exception.expected"),
        Some(OtelValue::from(true))
    );

    let everything = format!("{:?}", spans.all());
    assert!(everything.contains("Exception"));
    assert!(
        !everything.contains("s3cret-value"),
        "no argument value reaches a span: {everything}"
    );
}

#[tokio::test]
async fn published_messages_and_their_consumers_make_one_trace() {
    let spans = Spans::start();
    let mut cluster = TestCluster::memory();
    cluster.start::<Audit>().await;
    let proxy = cluster.proxy().await;
    proxy
        .service("audit")
        .call::<Value>("record", ("login",))
        .await
        .unwrap();
    cluster.run_until_idle().await.unwrap();
    cluster.shutdown().await;

    let record = spans.named("audit.record");
    let publish = spans.named("Publish to audit");
    let log = spans.named("audit.log");
    assert_child(&publish, &record);
    assert_eq!(publish.span_kind, SpanKind::Producer);
    assert_eq!(
        attribute(&publish, "nameko.messaging.routing_key"),
        Some(OtelValue::from("audit.login"))
    );
    assert_child(&log, &publish);
    assert_eq!(log.span_kind, SpanKind::Consumer);
    assert_eq!(
        attribute(&log, "entrypoint_type"),
        Some(OtelValue::from("consume"))
    );
}

#[tokio::test]
async fn http_requests_continue_the_trace_of_their_traceparent() {
    let spans = Spans::start();
    let cluster = cluster().await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let parent_id = "b7ad6b7169203331";
    let response = cluster
        .web_session()
        .get("/relay/21")
        .header("traceparent", format!("00-{trace_id}-{parent_id}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "42");
    cluster.shutdown().await;

    let http = spans.named("front.http_relay");
    assert_eq!(http.span_kind, SpanKind::Server);
    assert_eq!(
        http.span_context.trace_id(),
        TraceId::from_hex(trace_id).unwrap()
    );
    assert_eq!(http.parent_span_id, SpanId::from_hex(parent_id).unwrap());
    assert_eq!(
        attribute(&http, "http.response.status_code"),
        Some(OtelValue::I64(200))
    );
    let call = spans.named("RPC to back.double");
    assert_child(&call, &http);
    assert_child(&spans.named("back.double"), &call);
}
