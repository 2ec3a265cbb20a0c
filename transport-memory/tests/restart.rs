//! Broker restarts: what survives and what is lost.

mod support;

use nameko_memory::MemoryBroker;
use nameko_transport::{ConsumeOptions, ExchangeKind, ExchangeOptions, QueueOptions, Transport};
use support::{id, msg, recv, transient, yield_a_few};

#[tokio::test(start_paused = true)]
async fn non_durable_state_and_transient_messages_are_lost() {
    let broker = MemoryBroker::new();
    let admin = broker.connect();
    admin
        .declare_exchange("durable-x", ExchangeKind::Topic, ExchangeOptions::durable())
        .await
        .unwrap();
    admin
        .declare_exchange(
            "transient-x",
            ExchangeKind::Topic,
            ExchangeOptions::default(),
        )
        .await
        .unwrap();
    admin
        .declare_queue("durable-q", QueueOptions::durable())
        .await
        .unwrap();
    admin
        .declare_queue("transient-q", QueueOptions::default())
        .await
        .unwrap();
    admin
        .bind_queue("durable-q", "durable-x", "#")
        .await
        .unwrap();
    admin
        .bind_queue("durable-q", "transient-x", "#")
        .await
        .unwrap();
    admin
        .bind_queue("transient-q", "durable-x", "#")
        .await
        .unwrap();
    for (m, key) in [(msg("persistent"), "p"), (transient("transient"), "t")] {
        admin
            .publish("durable-x", key, m, Default::default())
            .await
            .unwrap();
    }
    // Close the admin connection so recovery does not redeclare what it declared.
    admin.close().await.unwrap();

    broker.restart();

    let names: Vec<String> = broker.exchanges().into_iter().map(|x| x.name).collect();
    assert!(names.contains(&"durable-x".to_owned()));
    assert!(!names.contains(&"transient-x".to_owned()));
    assert!(names.contains(&"amq.topic".to_owned()));
    assert_eq!(
        broker
            .queues()
            .into_iter()
            .map(|q| q.name)
            .collect::<Vec<_>>(),
        ["durable-q"]
    );
    let bindings = broker.bindings();
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        (bindings[0].exchange.as_str(), bindings[0].queue.as_str()),
        ("durable-x", "durable-q")
    );
    assert_eq!(broker.queue("durable-q").unwrap().ready, 1);
}

#[tokio::test(start_paused = true)]
async fn delivered_persistent_messages_come_back_redelivered() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("work", QueueOptions::durable())
        .await
        .unwrap();
    for n in 0..3 {
        conn.publish("", "work", msg(&format!("m{n}")), Default::default())
            .await
            .unwrap();
    }
    let mut consumer = conn
        .consume("work", ConsumeOptions::with_prefetch(1))
        .await
        .unwrap();
    recv(&mut consumer).await.ack().await.unwrap();
    // m1 is delivered and held unsettled; m2 waits behind the prefetch window.
    let held = recv(&mut consumer).await;
    assert_eq!(id(&held), "m1");

    broker.restart();
    yield_a_few().await;

    // The recovered consumer gets m1 (delivered before, so redelivered) and m2 (never).
    let a = recv(&mut consumer).await;
    assert_eq!((id(&a), a.redelivered()), ("m1", true));
    a.ack().await.unwrap();
    let b = recv(&mut consumer).await;
    assert_eq!((id(&b), b.redelivered()), ("m2", false));
    b.ack().await.unwrap();
    broker.run_until_idle().await.unwrap();
}
