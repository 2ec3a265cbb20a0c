//! Delivery details particular to the in-memory broker: tags, exact round-robin,
//! requeue position, settling after the consumer or connection is gone.

mod support;

use nameko_memory::MemoryBroker;
use nameko_transport::{ConsumeOptions, QueueOptions, Transport, TransportError};
use support::{id, publish, quiet, recv};

#[tokio::test]
async fn delivery_tags_count_from_one_per_consumer() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let mut a = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    for n in 0..3 {
        publish(&conn, "", "q", &format!("m{n}")).await.unwrap();
    }
    let tags: Vec<u64> = [recv(&mut a).await, recv(&mut a).await, recv(&mut a).await]
        .iter()
        .map(|d| d.info().delivery_tag)
        .collect();
    assert_eq!(tags, vec![1, 2, 3]);
    let mut b = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    drop(a);
    // The three unacked messages are requeued to b, whose tags start at 1.
    let d = recv(&mut b).await;
    assert_eq!(d.info().delivery_tag, 1);
    assert!(d.redelivered());
    assert_ne!(d.info().consumer_tag, "");
}

#[tokio::test]
async fn competing_consumers_alternate_exactly() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let mut a = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    let mut b = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    for n in 0..6 {
        publish(&conn, "", "q", &format!("m{n}")).await.unwrap();
    }
    for n in (0..6).step_by(2) {
        assert_eq!(id(&recv(&mut a).await), format!("m{n}"));
        assert_eq!(id(&recv(&mut b).await), format!("m{}", n + 1));
    }
}

#[tokio::test]
async fn a_full_window_passes_messages_to_the_next_consumer() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let mut slow = conn
        .consume("q", ConsumeOptions::with_prefetch(1))
        .await
        .unwrap();
    let mut fast = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    for n in 0..4 {
        publish(&conn, "", "q", &format!("m{n}")).await.unwrap();
    }
    assert_eq!(id(&recv(&mut slow).await), "m0");
    for n in 1..4 {
        assert_eq!(id(&recv(&mut fast).await), format!("m{n}"));
    }
    assert!(quiet(&mut slow).await);
}

#[tokio::test]
async fn requeued_messages_go_back_to_the_head() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    for n in 0..3 {
        publish(&conn, "", "q", &format!("m{n}")).await.unwrap();
    }
    let mut c = conn
        .consume("q", ConsumeOptions::with_prefetch(2))
        .await
        .unwrap();
    let first = recv(&mut c).await;
    let second = recv(&mut c).await;
    assert_eq!(broker.queue("q").unwrap().unacked, 2);
    second.nack(true).await.unwrap();
    // m1 is back in front of m2, and the freed window takes it again at once.
    let again = recv(&mut c).await;
    assert_eq!((id(&again), again.redelivered()), ("m1", true));
    first.ack().await.unwrap();
    assert_eq!(id(&recv(&mut c).await), "m2");
}

#[tokio::test]
async fn settling_after_the_consumer_closed_fails_and_counts_nothing_twice() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    publish(&conn, "", "q", "m").await.unwrap();
    let mut c = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    let d = recv(&mut c).await;
    c.close().await.unwrap();
    assert!(matches!(
        d.ack().await,
        Err(TransportError::Disconnected(_))
    ));
    let q = broker.queue("q").unwrap();
    assert_eq!((q.ready, q.unacked), (1, 0));
    assert!(broker.is_idle());
}

#[tokio::test]
async fn settling_after_the_connection_closed_fails() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    let other = broker.connect();
    other
        .declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    publish(&other, "", "q", "m").await.unwrap();
    let mut c = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    let d = recv(&mut c).await;
    conn.close().await.unwrap();
    assert!(matches!(
        d.reject(false).await,
        Err(TransportError::Disconnected(_))
    ));
    assert_eq!(broker.queue("q").unwrap().ready, 1);
    assert!(matches!(
        conn.publish("", "q", support::msg("x"), Default::default())
            .await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test]
async fn cancel_keeps_buffered_deliveries_and_their_settlement() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    for n in 0..3 {
        publish(&conn, "", "q", &format!("m{n}")).await.unwrap();
    }
    let mut c = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    c.cancel().await.unwrap();
    // All three were delivered before the cancel: the stream still yields them.
    let mut got = Vec::new();
    while let Some(item) = support::next(&mut c).await {
        got.push(item.unwrap());
    }
    assert_eq!(got.iter().map(id).collect::<Vec<_>>(), ["m0", "m1", "m2"]);
    assert_eq!(broker.queue("q").unwrap().consumers, 0);
    for d in got {
        d.ack().await.unwrap();
    }
    assert!(broker.is_idle());
    assert_eq!(broker.queue("q").unwrap().ready, 0);
}

#[tokio::test]
async fn dropping_the_last_transport_handle_closes_the_connection() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("mine", QueueOptions::default().with_exclusive(true))
        .await
        .unwrap();
    let clone = conn.clone();
    drop(conn);
    assert!(broker.queue_exists("mine"));
    drop(clone);
    assert!(!broker.queue_exists("mine"));
    assert!(broker.connections().is_empty());
}
