//! What tracing costs an RPC round trip on the in-memory broker: first with no
//! instrumentation installed (off: the state of every process that does not turn it on),
//! then installed but with no OpenTelemetry layer in the subscriber, then installed with
//! every span exported to memory. Prints calls per second; not run by default:
//!
//! ```text
//! cargo test --release -p nameko-opentelemetry --test overhead -- --ignored --nocapture
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use nameko::extension::instrumentation;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_opentelemetry::{Telemetry, span_filter};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_subscriber::prelude::*;

#[derive(Debug, Dependencies)]
struct Echo;

#[service(name = "echo")]
impl Echo {
    #[rpc]
    async fn echo(&self, x: i64) -> i64 {
        x
    }
}

fn calls() -> u32 {
    std::env::var("NAMEKO_OVERHEAD_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Round trips per second of `calls` sequential calls.
async fn measure(proxy: &RpcProxy, calls: u32) -> f64 {
    for i in 0..1_000 {
        let _: i64 = proxy.call("echo", (i,)).await.unwrap();
    }
    let started = Instant::now();
    for i in 0..calls {
        let _: i64 = proxy.call("echo", (i64::from(i),)).await.unwrap();
    }
    f64::from(calls) / started.elapsed().as_secs_f64()
}

#[tokio::test]
#[ignore = "a measurement: run it in release mode with --ignored --nocapture"]
async fn instrumentation_cost_per_rpc_round_trip() {
    let calls = calls();
    let started = Instant::now();
    let mut installed = 0_u32;
    for _ in 0..10_000_000 {
        installed += u32::from(black_box(instrumentation::installed()).is_some());
    }
    let check = started.elapsed().as_secs_f64() * 1e9 / 10_000_000.0;
    assert_eq!(installed, 0);

    let mut cluster = TestCluster::memory();
    cluster.start::<Echo>().await;
    let proxy = cluster.proxy().await.service("echo");

    let off = measure(&proxy, calls).await;

    nameko_opentelemetry::install();
    let hooks_only = measure(&proxy, calls).await;

    let exporter = InMemorySpanExporter::default();
    let telemetry = Telemetry::new(
        SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build(),
    );
    let guard = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(telemetry.layer().with_filter(span_filter())),
    );
    let on = measure(&proxy, calls / 4).await;
    drop(guard);
    assert!(
        !exporter.get_finished_spans().unwrap().is_empty(),
        "spans were exported"
    );
    cluster.shutdown().await;

    println!(
        "instrumentation check when off: {check:.2} ns (3 per round trip: proxy, worker start, worker end)"
    );
    println!("off (nothing installed):            {off:>9.0} calls/s");
    println!(
        "installed, no OpenTelemetry layer:  {hooks_only:>9.0} calls/s ({:.3}x off)",
        hooks_only / off
    );
    println!(
        "installed, spans exported to memory: {on:>8.0} calls/s ({:.3}x off)",
        on / off
    );
    assert!(off > 0.0 && Duration::from_secs_f64(1.0 / off) < Duration::from_secs(1));
}
