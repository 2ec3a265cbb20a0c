//! Test virtual hosts on the RabbitMQ test broker: made, used, listed and deleted,
//! through the management API when the plugin is on and through `rabbitmqctl` when it
//! is off. Skips without a broker, or when neither way works here, unless
//! `NAMEKO_REQUIRE_AMQP=1`.

use std::time::Duration;

use nameko_amqp::test_support::{broker_required, test_broker};
use nameko_amqp::{AmqpOptions, AmqpTransport};
use nameko_core::transport::{QueueOptions, Transport as _};
use nameko_testing::TestVhost;

async fn vhost() -> Option<TestVhost> {
    let broker = test_broker().await?;
    match TestVhost::create_with_prefix(broker.uri(), "nameko_test_vhost_").await {
        Ok(vhost) => Some(vhost),
        Err(error) => {
            assert!(
                !broker_required(),
                "cannot make a vhost ({error}) and NAMEKO_REQUIRE_AMQP=1"
            );
            eprintln!("skipping: cannot make a vhost ({error})");
            None
        }
    }
}

async fn connect(uri: &str) -> Result<AmqpTransport, nameko_core::transport::TransportError> {
    let options = AmqpOptions::new().connect_timeout(Duration::from_secs(5));
    AmqpTransport::connect_with(uri, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vhost_holds_its_queues_and_is_gone_once_deleted() {
    let Some(vhost) = vhost().await else { return };
    assert!(vhost.name().starts_with("nameko_test_vhost_"));
    assert!(vhost.uri().ends_with(vhost.name()));
    assert!(!format!("{vhost:?}").contains("guest:guest"));

    let transport = connect(vhost.uri()).await.expect("the vhost is open");
    transport
        .declare_queue("rpc-in-vhost", QueueOptions::default())
        .await
        .expect("declare");
    transport.close().await.expect("close");
    assert_eq!(vhost.queue_names().await.expect("queues"), ["rpc-in-vhost"]);

    vhost.delete().await;
    vhost.delete().await; // idempotent
    assert!(connect(vhost.uri()).await.is_err(), "the vhost is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_vhost_deletes_it() {
    let Some(vhost) = vhost().await else { return };
    let uri = vhost.uri().to_owned();
    connect(&uri)
        .await
        .expect("the vhost is open")
        .close()
        .await
        .expect("close");
    drop(vhost);
    assert!(connect(&uri).await.is_err(), "the vhost is gone");
}
