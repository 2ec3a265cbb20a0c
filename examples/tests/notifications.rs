//! The notification service handles `order_placed` events and remembers them.

use nameko::prelude::*;
use nameko::testing::{TestCluster, entrypoint_waiter, worker_factory};
use nameko_examples::NotificationService;

#[tokio::test]
async fn handled_events_are_listed_in_order() {
    let service = worker_factory::<NotificationService>()
        .with_value("outbox", nameko_examples::notifications::Outbox::default())
        .build()
        .unwrap();
    service.on_order_placed(json!({"order_id": 1})).await;
    service.on_order_placed(json!({"order_id": 2})).await;
    assert_eq!(
        service.sent().await,
        vec![json!({"order_id": 1}), json!({"order_id": 2})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_order_service_are_handled_in_order() {
    // One worker at a time: events are handled in the order they were dispatched (a
    // queue is FIFO; with more workers they may finish in any order).
    let mut cluster = TestCluster::memory().with_config("max_workers", 1);
    let container = cluster.start::<NotificationService>().await;
    let waiter = entrypoint_waiter(&container, "on_order_placed")
        .matching(|w| w.context.args().args[0]["order_id"] == 3);
    for id in 1..=3 {
        cluster
            .dispatch("order_service", "order_placed", json!({"order_id": id}))
            .await;
    }
    waiter.wait().await.unwrap();
    let proxy = cluster.proxy().await;
    let sent: Vec<Value> = proxy
        .service("notification_service")
        .call("sent", ())
        .await
        .unwrap();
    assert_eq!(
        sent,
        vec![
            json!({"order_id": 1}),
            json!({"order_id": 2}),
            json!({"order_id": 3})
        ]
    );
    cluster.shutdown().await;
}
