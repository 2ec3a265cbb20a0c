//! The shared transport conformance suite, against a real RabbitMQ.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nameko_amqp::test_support::{TestBroker, test_broker};
use nameko_amqp::{AmqpOptions, AmqpTransport};
use nameko_transport::{Capabilities, Transport};
use nameko_transport_conformance::{Harness, run_transport_suite};

struct Rabbit {
    broker: TestBroker,
}

#[async_trait]
impl Harness for Rabbit {
    fn capabilities(&self) -> Capabilities {
        nameko_amqp::capabilities()
    }

    async fn connect(&self) -> Arc<dyn Transport> {
        let options = AmqpOptions::new().connection_name("nameko-rs conformance");
        let transport: AmqpTransport = self.broker.connect_with(options).await;
        Arc::new(transport)
    }

    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    async fn advance(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    fn quiet_period(&self) -> Duration {
        Duration::from_millis(250)
    }

    fn receive_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn broker_user(&self) -> Option<String> {
        self.broker
            .uri()
            .parse::<nameko_amqp::AmqpUri>()
            .ok()
            .map(|uri| uri.username().to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_conformance_suite() {
    let Some(broker) = test_broker().await else {
        return;
    };
    run_transport_suite(&Rabbit { broker }).await;
}
