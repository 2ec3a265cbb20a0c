//! Connection recovery after broker-side drops: status transitions, redeclaration,
//! resumed consumers, backoff while the broker is down.

mod support;

use std::time::Duration;

use nameko_memory::{ConnectOptions, MemoryBroker};
use nameko_transport::{
    ConsumeOptions, ExchangeKind, ExchangeOptions, FieldTable, PublishOptions, QueueOptions,
    Transport, TransportError, TransportStatus,
};
use support::{id, msg, publish, quiet, recv, yield_a_few};

fn reconnecting(status: &TransportStatus) -> Option<(u32, String)> {
    match status {
        TransportStatus::Reconnecting { attempt, reason } => Some((*attempt, reason.clone())),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn status_goes_reconnecting_then_connected() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    let mut status = conn.status();
    assert_eq!(*status.borrow_and_update(), TransportStatus::Connected);
    assert!(broker.drop_connection(conn.id()));
    let (attempt, reason) = reconnecting(&status.borrow_and_update()).unwrap();
    assert_eq!(attempt, 1);
    assert!(reason.contains("closed by the broker"), "{reason}");
    // Until the recovery task runs, calls fail at once.
    assert!(matches!(
        conn.declare_queue("q", QueueOptions::default()).await,
        Err(TransportError::Disconnected(_))
    ));
    assert!(matches!(
        publish(&conn, "", "q", "m").await,
        Err(TransportError::Disconnected(_))
    ));
    status.changed().await.unwrap();
    assert_eq!(*status.borrow(), TransportStatus::Connected);
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn topology_is_redeclared_and_consumers_resume() {
    let broker = MemoryBroker::new();
    let service = broker.connect();
    let client = broker.connect();
    service
        .declare_exchange(
            "nameko-rpc",
            ExchangeKind::Topic,
            ExchangeOptions::durable(),
        )
        .await
        .unwrap();
    // Exclusive and auto-delete: both vanish with the dropped connection.
    let reply = service
        .declare_queue(
            "",
            QueueOptions::default()
                .with_exclusive(true)
                .with_auto_delete(true),
        )
        .await
        .unwrap()
        .name;
    service
        .bind_queue(&reply, "nameko-rpc", &reply)
        .await
        .unwrap();
    let mut consumer = service
        .consume(
            &reply,
            ConsumeOptions::with_prefetch(5).with_consumer_tag("replies"),
        )
        .await
        .unwrap();

    broker.drop_connection(service.id());
    assert!(!broker.queue_exists(&reply));
    yield_a_few().await;
    assert_eq!(*service.status().borrow(), TransportStatus::Connected);

    let q = broker
        .queue(&reply)
        .expect("the reply queue is redeclared under its name");
    assert!(q.exclusive && q.auto_delete);
    assert_eq!(q.owner, Some(service.id()));
    assert_eq!(q.consumers, 1);
    publish(&client, "nameko-rpc", &reply, "after-recovery")
        .await
        .unwrap();
    let d = recv(&mut consumer).await;
    assert_eq!(id(&d), "after-recovery");
    assert_eq!(d.info().consumer_tag, "replies");
    d.ack().await.unwrap();
}

/// Bindings with arguments and exchange-to-exchange bindings are declared again as well:
/// a message reaches the re-created exclusive queue through both.
#[tokio::test(start_paused = true)]
async fn bindings_with_arguments_and_exchange_bindings_are_redeclared() {
    let broker = MemoryBroker::new();
    let service = broker.connect();
    let client = broker.connect();
    service
        .declare_exchange("source", ExchangeKind::Topic, ExchangeOptions::durable())
        .await
        .unwrap();
    // Auto-delete: it goes with the exclusive queue bound to it, and takes the exchange
    // binding along.
    service
        .declare_exchange(
            "by-kind",
            ExchangeKind::Headers,
            ExchangeOptions::default().with_auto_delete(true),
        )
        .await
        .unwrap();
    service
        .declare_queue("kind-a", QueueOptions::default().with_exclusive(true))
        .await
        .unwrap();
    let match_a = FieldTable::new().with("x-match", "all").with("kind", "a");
    service
        .bind_queue_with_arguments("kind-a", "by-kind", "", match_a)
        .await
        .unwrap();
    service
        .bind_exchange("by-kind", "source", "orders.#")
        .await
        .unwrap();
    let mut consumer = service
        .consume("kind-a", ConsumeOptions::default())
        .await
        .unwrap();

    broker.drop_connection(service.id());
    assert!(!broker.queue_exists("kind-a"));
    assert!(
        broker.exchanges().iter().all(|x| x.name != "by-kind"),
        "the auto-delete exchange went with its last binding"
    );
    yield_a_few().await;
    assert_eq!(*service.status().borrow(), TransportStatus::Connected);

    let send = |kind: &'static str, message_id: &'static str| {
        let mut message = msg(message_id);
        message.properties.headers.insert("kind", kind);
        client.publish(
            "source",
            "orders.placed",
            message,
            PublishOptions::default().with_mandatory(true),
        )
    };
    let outcome = send("a", "kind-a-after").await.unwrap();
    assert!(!outcome.is_returned(), "routed through both bindings");
    let d = recv(&mut consumer).await;
    assert_eq!(id(&d), "kind-a-after");
    d.ack().await.unwrap();
    // The binding kept its arguments: another kind does not match.
    let outcome = send("b", "kind-b-after").await.unwrap();
    assert!(outcome.is_returned(), "{outcome:?}");
}

#[tokio::test(start_paused = true)]
async fn deliveries_from_before_the_drop_are_requeued_and_cannot_be_settled() {
    let broker = MemoryBroker::new();
    let worker = broker.connect();
    let client = broker.connect();
    client
        .declare_queue("work", QueueOptions::durable())
        .await
        .unwrap();
    let mut consumer = worker
        .consume("work", ConsumeOptions::default())
        .await
        .unwrap();
    publish(&client, "", "work", "m0").await.unwrap();
    publish(&client, "", "work", "m1").await.unwrap();
    // m0 is read; m1 sits unread in the stream's buffer when the connection drops.
    let taken = recv(&mut consumer).await;
    broker.drop_connection(worker.id());
    assert!(matches!(
        taken.ack().await,
        Err(TransportError::Disconnected(_))
    ));
    let q = broker.queue("work").unwrap();
    assert_eq!((q.ready, q.unacked, q.consumers), (2, 0, 0));
    yield_a_few().await;
    // After recovery both come again, redelivered; the stale buffered m1 is not seen.
    let again: Vec<_> = [recv(&mut consumer).await, recv(&mut consumer).await].into();
    assert_eq!(
        again
            .iter()
            .map(|d| (id(d), d.redelivered()))
            .collect::<Vec<_>>(),
        [("m0", true), ("m1", true)]
    );
    for d in again {
        d.ack().await.unwrap();
    }
    assert!(quiet(&mut consumer).await);
    broker.run_until_idle().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn backs_off_while_the_broker_is_down() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    let mut status = conn.status();
    broker.set_available(false);
    broker.drop_connection(conn.id());
    assert_eq!(reconnecting(&status.borrow_and_update()).unwrap().0, 1);
    let started = tokio::time::Instant::now();
    let mut seen = Vec::new();
    while status.changed().await.is_ok() {
        let now = status.borrow_and_update().clone();
        if now == TransportStatus::Connected {
            break;
        }
        let (attempt, reason) = reconnecting(&now).unwrap();
        assert_eq!(reason, "broker unavailable");
        seen.push((attempt, started.elapsed().as_millis()));
        if attempt == 5 {
            broker.set_available(true);
        }
    }
    // Attempt n+1 comes after a wait of 100 ms doubling: at 0, 100, 300, 700 ms...
    assert_eq!(seen, vec![(2, 0), (3, 100), (4, 300), (5, 700)]);
    // ...and the attempt after the broker came back (1500 ms) succeeds.
    assert_eq!(started.elapsed(), Duration::from_millis(1500));
    assert_eq!(*conn.status().borrow(), TransportStatus::Connected);
}

#[tokio::test(start_paused = true)]
async fn run_until_idle_waits_for_a_pending_reconnection() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    broker.drop_connection(conn.id());
    assert!(!broker.is_idle());
    broker.run_until_idle().await.unwrap();
    assert_eq!(*conn.status().borrow(), TransportStatus::Connected);

    // While the broker is down, a reconnection cannot proceed and does not count.
    broker.set_available(false);
    broker.drop_connection(conn.id());
    broker.run_until_idle().await.unwrap();
    assert!(matches!(
        *conn.status().borrow(),
        TransportStatus::Reconnecting { .. }
    ));
    broker.set_available(true);
    broker.run_until_idle().await.unwrap();
    assert_eq!(*conn.status().borrow(), TransportStatus::Connected);
}

#[tokio::test(start_paused = true)]
async fn without_recovery_the_fault_is_final() {
    let broker = MemoryBroker::new();
    let conn = broker.connect_with(ConnectOptions::default().with_recovery(false));
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let mut consumer = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    broker.drop_connection(conn.id());
    assert_eq!(*conn.status().borrow(), TransportStatus::Closed);
    assert!(matches!(
        support::next(&mut consumer).await,
        Some(Err(TransportError::Disconnected(_)))
    ));
    assert!(support::next(&mut consumer).await.is_none());
    yield_a_few().await;
    assert!(matches!(
        conn.declare_queue("q", QueueOptions::default()).await,
        Err(TransportError::Disconnected(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn explicit_close_is_final_and_deleted_queues_are_not_redeclared() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("kept", QueueOptions::default())
        .await
        .unwrap();
    conn.declare_queue("deleted", QueueOptions::default())
        .await
        .unwrap();
    conn.delete_queue("deleted").await.unwrap();
    broker.restart();
    assert!(!broker.queue_exists("kept"));
    yield_a_few().await;
    assert!(broker.queue_exists("kept"));
    assert!(!broker.queue_exists("deleted"));

    conn.close().await.unwrap();
    assert_eq!(*conn.status().borrow(), TransportStatus::Closed);
    assert!(!broker.drop_connection(conn.id()));
    assert!(matches!(
        conn.declare_queue("kept", QueueOptions::default()).await,
        Err(TransportError::Closed)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_consumer_is_not_resumed() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::durable())
        .await
        .unwrap();
    let mut consumer = conn.consume("q", ConsumeOptions::default()).await.unwrap();
    consumer.cancel().await.unwrap();
    broker.drop_connection(conn.id());
    yield_a_few().await;
    assert_eq!(broker.queue("q").unwrap().consumers, 0);
    assert!(support::next(&mut consumer).await.is_none());
}
