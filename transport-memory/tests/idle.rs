//! run_until_idle: what counts as in flight, and the bounded wait.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use nameko_memory::MemoryBroker;
use nameko_transport::{ConsumeOptions, QueueOptions, Transport};
use support::{publish, recv};

#[tokio::test(start_paused = true)]
async fn messages_without_consumers_do_not_count() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("parked", QueueOptions::default())
        .await
        .unwrap();
    publish(&conn, "", "parked", "m").await.unwrap();
    assert!(broker.is_idle());
    broker.run_until_idle().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn resolves_once_a_worker_acks_what_it_was_given() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("work", QueueOptions::default())
        .await
        .unwrap();
    let mut consumer = conn
        .consume("work", ConsumeOptions::with_prefetch(2))
        .await
        .unwrap();
    let worker = tokio::spawn(async move {
        let mut done = 0;
        while let Some(Ok(d)) = consumer.next().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
            d.ack().await.unwrap();
            done += 1;
            if done == 5 {
                return done;
            }
        }
        done
    });
    for n in 0..5 {
        publish(&conn, "", "work", &format!("m{n}")).await.unwrap();
    }
    assert!(!broker.is_idle());
    broker.run_until_idle().await.unwrap();
    let q = broker.queue("work").unwrap();
    assert_eq!((q.ready, q.unacked), (0, 0));
    assert_eq!(worker.await.unwrap(), 5);
}

#[tokio::test(start_paused = true)]
async fn times_out_naming_the_busy_queue() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("stuck", QueueOptions::default())
        .await
        .unwrap();
    let mut consumer = conn
        .consume("stuck", ConsumeOptions::with_prefetch(1))
        .await
        .unwrap();
    publish(&conn, "", "stuck", "a").await.unwrap();
    publish(&conn, "", "stuck", "b").await.unwrap();
    let held = recv(&mut consumer).await;
    let err = broker
        .run_until_idle_within(Duration::from_millis(500))
        .await
        .unwrap_err();
    assert_eq!(err.waited, Duration::from_millis(500));
    assert_eq!(err.busy_queues.len(), 1);
    let q = &err.busy_queues[0];
    assert_eq!((q.name.as_str(), q.ready, q.unacked), ("stuck", 1, 1));
    let text = err.to_string();
    assert!(text.contains("queue 'stuck' (ready 1, unacked 1"), "{text}");
    held.ack().await.unwrap();
    let next = recv(&mut consumer).await;
    next.ack().await.unwrap();
    broker.run_until_idle().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_unread_delivery_counts_as_in_flight() {
    let broker = MemoryBroker::builder()
        .idle_timeout(Duration::from_millis(200))
        .build();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let consumer = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    publish(&conn, "", "q", "unread").await.unwrap();
    assert!(broker.run_until_idle().await.is_err());
    // Closing the consumer requeues it; with no consumer left the broker is idle.
    consumer.close().await.unwrap();
    broker.run_until_idle().await.unwrap();
    assert_eq!(broker.queue("q").unwrap().ready, 1);
}
