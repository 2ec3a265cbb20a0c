//! One trace across Python nameko 3 services instrumented with
//! opentelemetry-instrumentation-nameko and a Rust service instrumented with
//! nameko-opentelemetry, on a real RabbitMQ:
//!
//! ```text
//! Python client -> py_front.relay -> rs_middle.relay -> py_back.leaf
//!                                                       py_back dispatches `leafed` -> rs_middle.on_leafed
//!                                    rs_middle dispatches `relayed` -> py_back.on_relayed
//! ```
//!
//! The Python side runs in the second environment (`scripts/python-env --otel`: Python
//! nameko 3.0.0rc11), which writes its spans to a file; the Rust spans go to the SDK's
//! in-memory exporter. The test asserts one trace id and every parent link.

use std::path::Path;
use std::time::Duration;

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_interop::python_otel;
use nameko_opentelemetry::{Telemetry, span_filter};
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::prelude::*;

/// How long the Python half may take (start, the calls, a graceful stop).
const PYTHON_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Dependencies)]
struct RsMiddle {
    py_back: RpcProxy,
    events: EventDispatcher,
}

#[service(name = "rs_middle")]
impl RsMiddle {
    #[rpc]
    async fn relay(&self, value: i64) -> Result<i64, ServiceError> {
        let doubled: i64 = self.py_back.call("leaf", (value,)).await?;
        self.events
            .dispatch("relayed", json!({"value": doubled}))
            .await?;
        Ok(doubled)
    }

    #[event_handler("py_back", "leafed")]
    async fn on_leafed(&self, _payload: Value) {}
}

/// A span of either side, as the assertions need it.
#[derive(Debug, Clone)]
struct Span {
    side: &'static str,
    name: String,
    kind: String,
    trace_id: String,
    span_id: String,
    parent_id: Option<String>,
}

fn hex(value: &str) -> String {
    value.trim_start_matches("0x").to_ascii_lowercase()
}

/// The spans Python wrote, one `ReadableSpan.to_json()` per line.
fn python_spans(path: &Path) -> Vec<Span> {
    let text = std::fs::read_to_string(path).expect("Python wrote its spans");
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let span: Value = serde_json::from_str(line).expect("a span is JSON");
            Span {
                side: "python",
                name: span["name"].as_str().unwrap_or_default().to_owned(),
                kind: span["kind"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("SpanKind.")
                    .to_ascii_lowercase(),
                trace_id: hex(span["context"]["trace_id"].as_str().unwrap_or_default()),
                span_id: hex(span["context"]["span_id"].as_str().unwrap_or_default()),
                parent_id: span["parent_id"].as_str().map(hex),
            }
        })
        .collect()
}

fn rust_spans(exporter: &InMemorySpanExporter) -> Vec<Span> {
    exporter
        .get_finished_spans()
        .expect("the in-memory exporter keeps its spans")
        .into_iter()
        .map(|span| Span {
            side: "rust",
            name: span.name.to_string(),
            kind: match span.span_kind {
                SpanKind::Client => "client",
                SpanKind::Server => "server",
                SpanKind::Producer => "producer",
                SpanKind::Consumer => "consumer",
                SpanKind::Internal => "internal",
            }
            .to_owned(),
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_id: (span.parent_span_id != opentelemetry::trace::SpanId::INVALID)
                .then(|| span.parent_span_id.to_string()),
        })
        .collect()
}

fn find<'a>(spans: &'a [Span], side: &str, name: &str, kind: &str) -> &'a Span {
    let mut found = spans.iter().filter(|s| s.side == side && s.name == name);
    let span = found
        .next()
        .unwrap_or_else(|| panic!("no {side} span `{name}` among {spans:#?}"));
    assert!(found.next().is_none(), "more than one {side} span `{name}`");
    assert_eq!(span.kind, kind, "the kind of {side} `{name}`");
    span
}

fn assert_child(child: &Span, parent: &Span) {
    assert_eq!(
        child.parent_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{} `{}` is a child of {} `{}`",
        child.side,
        child.name,
        parent.side,
        parent.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_python_rust_and_python() {
    let Some(python) = python_otel() else {
        return;
    };
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    nameko_opentelemetry::install();
    let exporter = InMemorySpanExporter::default();
    let telemetry = Telemetry::new(
        SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build(),
    );
    tracing_subscriber::registry()
        .with(telemetry.layer().with_filter(span_filter()))
        .init();
    cluster.start::<RsMiddle>().await;

    let spans_file = std::env::temp_dir().join(format!(
        "nameko-interop-otel-spans-{}.jsonl",
        uuid::Uuid::new_v4()
    ));
    let args = json!({
        "uri": cluster.amqp_uri().expect("a RabbitMQ cluster has an AMQP URI"),
        "spans": spans_file,
        "value": 21,
    });
    let interop = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new(&python)
        .args(["-u", "otel_chain.py", &args.to_string()])
        .current_dir(interop.join("python"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PYTHON_TIMEOUT, run)
        .await
        .expect("the Python half finishes in time")
        .expect("Python runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("Python's log:\n{stderr}");
    assert!(output.status.success(), "Python failed:\n{stderr}");
    let answer: Value = serde_json::from_slice(
        output
            .stdout
            .rsplit(|b| *b == b'\n')
            .find(|line| !line.is_empty())
            .unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("Python's answer is not JSON ({e}):\n{stderr}"));
    assert_eq!(answer["result"], json!(42));

    // The Rust handler of Python's event may still be running.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rust_spans(&exporter)
        .iter()
        .any(|s| s.name == "rs_middle.on_leafed")
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.shutdown().await;

    let mut spans = python_spans(&spans_file);
    let _ = std::fs::remove_file(&spans_file);
    spans.extend(rust_spans(&exporter));

    let client = find(&spans, "python", "RPC to py_front.relay", "client");
    let front = find(&spans, "python", "py_front.relay", "server");
    let front_call = find(&spans, "python", "RPC to rs_middle.relay", "client");
    let middle = find(&spans, "rust", "rs_middle.relay", "server");
    let middle_call = find(&spans, "rust", "RPC to py_back.leaf", "client");
    let leaf = find(&spans, "python", "py_back.leaf", "server");
    let leafed = find(
        &spans,
        "python",
        "Dispatch event py_back.leafed",
        "producer",
    );
    let on_leafed = find(&spans, "rust", "rs_middle.on_leafed", "consumer");
    let relayed = find(
        &spans,
        "rust",
        "Dispatch event rs_middle.relayed",
        "producer",
    );
    let on_relayed = find(&spans, "python", "py_back.on_relayed", "consumer");

    assert_eq!(
        client.parent_id, None,
        "the Python client's call is the root"
    );
    assert_child(front, client);
    assert_child(front_call, front);
    assert_child(middle, front_call);
    assert_child(middle_call, middle);
    assert_child(leaf, middle_call);
    assert_child(leafed, leaf);
    assert_child(on_leafed, leafed);
    assert_child(relayed, middle);
    assert_child(on_relayed, relayed);
    for span in [
        front,
        front_call,
        middle,
        middle_call,
        leaf,
        leafed,
        on_leafed,
        relayed,
        on_relayed,
    ] {
        assert_eq!(
            span.trace_id, client.trace_id,
            "{} `{}` is in the one trace",
            span.side, span.name
        );
    }
    let _ = telemetry.shutdown();
}
