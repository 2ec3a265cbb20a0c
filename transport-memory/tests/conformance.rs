//! The transport conformance suite, run against the in-memory broker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nameko_memory::MemoryBroker;
use nameko_transport::{Capabilities, Transport};
use nameko_transport_conformance::{Harness, run_transport_suite};

struct Memory {
    broker: MemoryBroker,
}

#[async_trait]
impl Harness for Memory {
    fn capabilities(&self) -> Capabilities {
        self.broker.connect().capabilities()
    }

    async fn connect(&self) -> Arc<dyn Transport> {
        Arc::new(self.broker.connect())
    }

    async fn settle(&self) {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
    }

    async fn advance(&self, duration: Duration) {
        tokio::time::pause();
        tokio::time::advance(duration).await;
        tokio::time::resume();
    }

    fn quiet_period(&self) -> Duration {
        Duration::from_millis(20)
    }

    fn receive_timeout(&self) -> Duration {
        Duration::from_secs(2)
    }

    fn case_timeout(&self) -> Duration {
        // Generous against the paused-clock advances of the expiry case.
        Duration::from_secs(20)
    }

    fn broker_user(&self) -> Option<String> {
        Some("guest".to_owned())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn memory_broker_passes_the_transport_conformance_suite() {
    let harness = Memory {
        broker: MemoryBroker::new(),
    };
    run_transport_suite(&harness).await;
    assert!(
        harness.broker.queues().is_empty(),
        "the suite left queues behind: {:?}",
        harness.broker.queues()
    );
}

/// A transport that ignores `mandatory` and never finishes declaring the fanout case's
/// exchange: the suite must report both, by case name, and pass the rest.
#[derive(Debug)]
struct Faulty(nameko_memory::MemoryTransport);

#[async_trait]
impl Transport for Faulty {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    fn status(&self) -> tokio::sync::watch::Receiver<nameko_transport::TransportStatus> {
        self.0.status()
    }

    async fn declare_exchange(
        &self,
        name: &str,
        kind: nameko_transport::ExchangeKind,
        options: nameko_transport::ExchangeOptions,
    ) -> Result<(), nameko_transport::TransportError> {
        if name.ends_with(".fanout") {
            std::future::pending::<()>().await;
        }
        self.0.declare_exchange(name, kind, options).await
    }

    async fn delete_exchange(&self, name: &str) -> Result<(), nameko_transport::TransportError> {
        self.0.delete_exchange(name).await
    }

    async fn declare_queue(
        &self,
        name: &str,
        options: nameko_transport::QueueOptions,
    ) -> Result<nameko_transport::QueueDeclared, nameko_transport::TransportError> {
        self.0.declare_queue(name, options).await
    }

    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), nameko_transport::TransportError> {
        self.0.bind_queue(queue, exchange, routing_key).await
    }

    async fn bind_queue_with_arguments(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: nameko_transport::FieldTable,
    ) -> Result<(), nameko_transport::TransportError> {
        self.0
            .bind_queue_with_arguments(queue, exchange, routing_key, arguments)
            .await
    }

    async fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
    ) -> Result<(), nameko_transport::TransportError> {
        self.0.bind_exchange(destination, source, routing_key).await
    }

    async fn delete_queue(&self, name: &str) -> Result<u32, nameko_transport::TransportError> {
        self.0.delete_queue(name).await
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: nameko_transport::Message,
        options: nameko_transport::PublishOptions,
    ) -> Result<nameko_transport::PublishOutcome, nameko_transport::TransportError> {
        self.0
            .publish(
                exchange,
                routing_key,
                message,
                options.with_mandatory(false),
            )
            .await
    }

    async fn consume(
        &self,
        queue: &str,
        options: nameko_transport::ConsumeOptions,
    ) -> Result<nameko_transport::Consumer, nameko_transport::TransportError> {
        self.0.consume(queue, options).await
    }

    async fn close(&self) -> Result<(), nameko_transport::TransportError> {
        self.0.close().await
    }
}

struct FaultyHarness(Memory);

#[async_trait]
impl Harness for FaultyHarness {
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }

    async fn connect(&self) -> Arc<dyn Transport> {
        Arc::new(Faulty(self.0.broker.connect()))
    }

    async fn settle(&self) {
        self.0.settle().await;
    }

    async fn advance(&self, duration: Duration) {
        // The clock is paused for the whole run.
        tokio::time::sleep(duration).await;
    }

    fn quiet_period(&self) -> Duration {
        self.0.quiet_period()
    }

    fn receive_timeout(&self) -> Duration {
        self.0.receive_timeout()
    }

    fn case_timeout(&self) -> Duration {
        Duration::from_secs(10)
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_suite_names_failed_and_hung_cases() {
    use futures_util::FutureExt;

    let harness = FaultyHarness(Memory {
        broker: MemoryBroker::new(),
    });
    let outcome = std::panic::AssertUnwindSafe(run_transport_suite(&harness))
        .catch_unwind()
        .await;
    let Err(panic) = outcome else {
        panic!("the suite passed a transport that ignores mandatory and hangs");
    };
    let report = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        report.contains("39 passed, 2 failed, 0 skipped"),
        "{report}"
    );
    assert!(
        report.contains(
            "FAILED  mandatory_unroutable_is_returned: mandatory publish with no matching binding"
        ),
        "{report}"
    );
    assert!(
        report.contains(
            "FAILED  fanout_copies_to_every_bound_queue: did not finish within 10s (hung)"
        ),
        "{report}"
    );
    assert!(
        harness.0.broker.queues().is_empty(),
        "cleanup ran for every case"
    );
}
