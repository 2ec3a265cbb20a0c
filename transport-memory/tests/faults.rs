//! Fault injection: failing publishes, dropped connections.

mod support;

use nameko_memory::{ConnectOptions, MemoryBroker};
use nameko_transport::{ConsumeOptions, PublishOutcome, QueueOptions, Transport, TransportError};
use support::{id, publish, recv, yield_a_few};

#[tokio::test]
async fn the_next_publishes_fail_then_publishing_works_again() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    broker.fail_next_publishes(2);
    for _ in 0..2 {
        let err = publish(&conn, "", "q", "lost").await.unwrap_err();
        assert!(matches!(err, TransportError::Injected(_)));
        assert!(err.is_connection_error());
    }
    assert_eq!(
        publish(&conn, "", "q", "kept").await.unwrap(),
        PublishOutcome::Confirmed
    );
    assert_eq!(broker.queue("q").unwrap().ready, 1);
    // Failed publishes are in the log too.
    let outcomes: Vec<bool> = broker
        .published()
        .iter()
        .map(|p| p.outcome.is_ok())
        .collect();
    assert_eq!(outcomes, [false, false, true]);
}

#[tokio::test]
async fn a_connection_can_be_made_to_fail_on_its_own() {
    let broker = MemoryBroker::new();
    let flaky = broker.connect();
    let steady = broker.connect();
    steady
        .declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    flaky.fail_next_publishes(1);
    publish(&steady, "", "q", "steady").await.unwrap();
    assert!(matches!(
        publish(&flaky, "", "q", "flaky").await,
        Err(TransportError::Injected(_))
    ));
    publish(&flaky, "", "q", "flaky-again").await.unwrap();
    assert_eq!(broker.queue("q").unwrap().ready, 2);
}

#[tokio::test]
async fn a_dropped_connection_requeues_and_loses_its_exclusive_queues() {
    let broker = MemoryBroker::new();
    let worker = broker.connect_with(ConnectOptions::default().with_recovery(false));
    let other = broker.connect();
    other
        .declare_queue("shared", QueueOptions::default())
        .await
        .unwrap();
    worker
        .declare_queue("private", QueueOptions::default().with_exclusive(true))
        .await
        .unwrap();
    let mut consumer = worker
        .consume("shared", ConsumeOptions::default())
        .await
        .unwrap();
    publish(&other, "", "shared", "m").await.unwrap();
    let d = recv(&mut consumer).await;
    assert_eq!(id(&d), "m");

    assert!(broker.drop_connection(worker.id()));
    assert!(!broker.queue_exists("private"));
    let q = broker.queue("shared").unwrap();
    assert_eq!((q.ready, q.unacked, q.consumers), (1, 0, 0));
    let mut again = other
        .consume("shared", ConsumeOptions::default())
        .await
        .unwrap();
    let d2 = recv(&mut again).await;
    assert!(d2.redelivered());
    assert!(matches!(
        d.ack().await,
        Err(TransportError::Disconnected(_))
    ));
    d2.ack().await.unwrap();
}

#[tokio::test]
async fn dropping_every_connection_reconnects_them_all() {
    let broker = MemoryBroker::new();
    let conns: Vec<_> = (0..3).map(|_| broker.connect()).collect();
    broker.drop_all_connections();
    assert!(broker.connections().iter().all(|c| matches!(
        c.status,
        nameko_transport::TransportStatus::Reconnecting { .. }
    )));
    yield_a_few().await;
    assert!(
        broker
            .connections()
            .iter()
            .all(|c| c.status == nameko_transport::TransportStatus::Connected)
    );
    assert_eq!(broker.connections().len(), conns.len());
}
