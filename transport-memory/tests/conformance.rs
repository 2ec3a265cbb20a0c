//! The transport conformance suite, run against the in-memory broker.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nameko_core::transport::{Capabilities, Transport};
use nameko_memory::MemoryBroker;
use nameko_testing::conformance::{Harness, run_transport_suite};

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
