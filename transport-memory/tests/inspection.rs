//! Looking inside: queues, exchanges, bindings, connections, the publish log.

mod support;

use nameko_memory::{ConnectOptions, MemoryBroker, PublishLog};
use nameko_transport::{
    ConsumeOptions, ExchangeKind, ExchangeOptions, PublishOptions, PublishOutcome, QueueOptions,
    Transport, TransportStatus,
};
use support::{msg, publish, recv};

#[tokio::test]
async fn queues_report_flags_depths_and_consumers() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("b", QueueOptions::durable().with_expires(5000))
        .await
        .unwrap();
    conn.declare_queue("a", QueueOptions::default().with_exclusive(true))
        .await
        .unwrap();
    for n in 0..3 {
        publish(&conn, "", "b", &format!("m{n}")).await.unwrap();
    }
    let mut consumer = conn
        .consume("b", ConsumeOptions::with_prefetch(1))
        .await
        .unwrap();
    let _held = recv(&mut consumer).await;

    let queues = broker.queues();
    assert_eq!(
        queues.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    let (a, b) = (&queues[0], &queues[1]);
    assert!(a.exclusive && !a.durable && a.owner == Some(conn.id()));
    assert!(b.durable && !b.exclusive && b.owner.is_none());
    assert_eq!(
        b.arguments.get("x-expires").and_then(|v| v.as_i64()),
        Some(5000)
    );
    assert_eq!((b.ready, b.unacked, b.consumers), (2, 1, 1));
    assert!(broker.queue_exists("a"));
    assert!(broker.queue("missing").is_none());
}

#[tokio::test]
async fn exchanges_and_bindings_are_listed() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_exchange("events", ExchangeKind::Topic, ExchangeOptions::durable())
        .await
        .unwrap();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    conn.bind_queue("q", "events", "svc.*").await.unwrap();
    conn.bind_queue("q", "events", "svc.*").await.unwrap();
    let events = broker
        .exchanges()
        .into_iter()
        .find(|x| x.name == "events")
        .unwrap();
    assert_eq!((events.kind, events.durable), (ExchangeKind::Topic, true));
    let bindings = broker.bindings();
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        (
            bindings[0].exchange.as_str(),
            bindings[0].queue.as_str(),
            bindings[0].routing_key.as_str()
        ),
        ("events", "q", "svc.*")
    );
    conn.delete_queue("q").await.unwrap();
    assert!(broker.bindings().is_empty());
}

#[tokio::test]
async fn connections_are_listed_with_their_names_and_status() {
    let broker = MemoryBroker::new();
    let conn = broker.connect_with(ConnectOptions::default().with_name("calc"));
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let _consumer = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    let info = &broker.connections()[0];
    assert_eq!(info.id, conn.id());
    assert_eq!(info.name.as_deref(), Some("calc"));
    assert_eq!(info.status, TransportStatus::Connected);
    assert_eq!(info.consumers, 1);
    assert_eq!(conn.endpoint(), "memory://memory");
}

#[tokio::test]
async fn the_publish_log_records_shares_and_clears() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_exchange("x", ExchangeKind::Fanout, ExchangeOptions::default())
        .await
        .unwrap();
    for q in ["q1", "q2"] {
        conn.declare_queue(q, QueueOptions::default())
            .await
            .unwrap();
        conn.bind_queue(q, "x", "").await.unwrap();
    }
    let message = msg("m");
    let body = message.body.clone();
    conn.publish(
        "x",
        "k",
        message,
        PublishOptions::default().with_confirm(false),
    )
    .await
    .unwrap();
    let log = broker.published();
    assert_eq!(log.len(), 1);
    let record = &log[0];
    assert_eq!((&*record.exchange, &*record.routing_key), ("x", "k"));
    assert_eq!(record.connection, conn.id());
    assert_eq!(record.outcome, Ok(PublishOutcome::Sent));
    assert_eq!(record.queues, 2);
    assert_eq!(record.sequence, 1);
    // The body is shared, not copied.
    assert_eq!(record.message.body.as_ptr(), body.as_ptr());
    assert_eq!(broker.take_published().len(), 1);
    assert!(broker.published().is_empty());
}

#[tokio::test]
async fn the_publish_log_can_be_capped_or_switched_off() {
    let broker = MemoryBroker::builder()
        .publish_log(PublishLog::Capped(3))
        .build();
    let conn = broker.connect();
    for n in 0..5 {
        publish(&conn, "", "nowhere", &format!("m{n}"))
            .await
            .unwrap();
    }
    let kept: Vec<u64> = broker.published().iter().map(|p| p.sequence).collect();
    assert_eq!(kept, [3, 4, 5]);
    broker.set_publish_log(PublishLog::Capped(1));
    assert_eq!(broker.published().len(), 1);
    broker.set_publish_log(PublishLog::Off);
    publish(&conn, "", "nowhere", "m").await.unwrap();
    assert!(broker.published().is_empty());
    broker.set_publish_log(PublishLog::Unbounded);
    publish(&conn, "", "nowhere", "m").await.unwrap();
    assert_eq!(broker.published().len(), 1);
}
