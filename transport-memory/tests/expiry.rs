//! x-expires on tokio's paused clock: the lease, what renews it, what does not.

use std::time::Duration;

use nameko_memory::MemoryBroker;
use nameko_transport::{ConsumeOptions, QueueOptions, Transport};

fn expiring(ms: u32) -> QueueOptions {
    QueueOptions::default().with_expires(ms)
}

#[tokio::test(start_paused = true)]
async fn an_unused_queue_expires_after_its_lease() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", expiring(1000)).await.unwrap();
    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(
        broker.queue_exists("q"),
        "inspection must not renew the lease"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!broker.queue_exists("q"));
}

#[tokio::test(start_paused = true)]
async fn declarations_renew_the_lease_passive_ones_too() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", expiring(1000)).await.unwrap();
    tokio::time::advance(Duration::from_millis(800)).await;
    conn.declare_queue("q", QueueOptions::passive())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_millis(800)).await;
    conn.declare_queue("q", expiring(1000)).await.unwrap();
    tokio::time::advance(Duration::from_millis(800)).await;
    assert!(broker.queue_exists("q"));
    tokio::time::advance(Duration::from_millis(200)).await;
    assert!(!broker.queue_exists("q"));
}

#[tokio::test(start_paused = true)]
async fn a_consumer_holds_the_lease_and_its_departure_restarts_it() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", expiring(1000)).await.unwrap();
    let consumer = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(broker.queue_exists("q"));
    consumer.close().await.unwrap();
    tokio::time::advance(Duration::from_millis(999)).await;
    assert!(broker.queue_exists("q"));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!broker.queue_exists("q"));
}

#[tokio::test(start_paused = true)]
async fn expiry_drops_messages_and_bindings_and_publishes_stop_routing() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_exchange(
        "x",
        nameko_transport::ExchangeKind::Topic,
        Default::default(),
    )
    .await
    .unwrap();
    conn.declare_queue("q", expiring(500)).await.unwrap();
    conn.bind_queue("q", "x", "#").await.unwrap();
    conn.publish(
        "x",
        "k",
        nameko_transport::Message::new("m", Default::default()),
        Default::default(),
    )
    .await
    .unwrap();
    tokio::time::advance(Duration::from_millis(500)).await;
    let outcome = conn
        .publish(
            "x",
            "k",
            nameko_transport::Message::new("m", Default::default()),
            nameko_transport::PublishOptions::default().with_mandatory(true),
        )
        .await
        .unwrap();
    assert!(outcome.is_returned());
    assert!(broker.bindings().is_empty());
}

#[tokio::test(start_paused = true)]
async fn queues_without_x_expires_never_expire() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("forever", QueueOptions::default())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(86_400)).await;
    assert!(broker.queue_exists("forever"));
}
