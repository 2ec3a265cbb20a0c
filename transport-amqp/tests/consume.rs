//! Consumers: prefetch per consumer, explicit requeue, cancel, close, drop, and
//! settling after the channel is gone.

mod common;

use std::time::{Duration, Instant};

use common::{id_of, msg, next, quiet};
use futures_util::StreamExt as _;
use nameko_amqp::test_support::test_broker;
use nameko_transport::{ConsumeOptions, PublishOptions, QueueOptions, Transport, TransportError};

async fn fill(t: &impl Transport, queue: &str, prefix: &str, count: usize) -> Vec<String> {
    let ids: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    for id in &ids {
        t.publish("", queue, msg(id), PublishOptions::default())
            .await
            .expect("publish");
    }
    ids
}

/// Two consumers on one connection each get their own prefetch window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_is_per_consumer() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("prefetch", |scope| async move {
            let t = scope.connect().await;
            let (qa, qb) = (scope.queue("a"), scope.queue("b"));
            for q in [&qa, &qb] {
                t.declare_queue(q, QueueOptions::default())
                    .await
                    .expect("declare");
                fill(&t, q, "m", 10).await;
            }
            let mut a = t
                .consume(&qa, ConsumeOptions::with_prefetch(2))
                .await
                .expect("a");
            let mut b = t
                .consume(&qb, ConsumeOptions::with_prefetch(5))
                .await
                .expect("b");
            let mut held_a = Vec::new();
            for _ in 0..2 {
                held_a.push(next(&mut a, 5).await);
            }
            let mut held_b = Vec::new();
            for _ in 0..5 {
                held_b.push(next(&mut b, 5).await);
            }
            quiet(&mut a, 300).await;
            quiet(&mut b, 100).await;
            // Settling one opens the window by one.
            held_a.remove(0).ack().await.expect("ack");
            let more = next(&mut a, 5).await;
            assert_eq!(id_of(&more), "m-2");
            quiet(&mut a, 200).await;
        })
        .await;
}

/// `nack` and `reject` requeue exactly when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_is_explicit() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("requeue", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let mut c = t
                .consume(&q, ConsumeOptions::with_prefetch(1))
                .await
                .expect("consume");
            for (id, requeue, reject) in [
                ("nack-requeue", true, false),
                ("reject-requeue", true, true),
                ("nack-drop", false, false),
                ("reject-drop", false, true),
            ] {
                t.publish("", &q, msg(id), PublishOptions::default())
                    .await
                    .expect("publish");
                let d = next(&mut c, 5).await;
                assert_eq!(id_of(&d), id);
                assert!(!d.redelivered());
                let settled = if reject {
                    d.reject(requeue).await
                } else {
                    d.nack(requeue).await
                };
                settled.expect("settle");
                if requeue {
                    let again = next(&mut c, 5).await;
                    assert_eq!(id_of(&again), id);
                    assert!(again.redelivered(), "{id} not marked redelivered");
                    again.ack().await.expect("ack");
                } else {
                    quiet(&mut c, 300).await;
                }
            }
        })
        .await;
}

/// After `cancel`, what was already delivered still arrives and can be settled, nothing
/// new arrives, and the stream ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_keeps_settlement_and_ends_the_stream() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("cancel", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            fill(&t, &q, "m", 3).await;
            let mut c = t
                .consume(&q, ConsumeOptions::with_prefetch(3))
                .await
                .expect("consume");
            let first = next(&mut c, 5).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.cancel().await.expect("cancel");
            c.cancel().await.expect("cancelling twice is fine");
            let mut rest = Vec::new();
            let ended = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(item) = c.next().await {
                    rest.push(item.expect("buffered delivery"));
                }
            })
            .await;
            assert!(ended.is_ok(), "the stream did not end after cancel");
            assert_eq!(rest.len(), 2, "the buffered deliveries are yielded");
            first.ack().await.expect("ack after cancel");
            for d in rest {
                d.ack().await.expect("ack after the end");
            }
            t.publish("", &q, msg("after"), PublishOptions::default())
                .await
                .expect("publish");
            tokio::time::sleep(Duration::from_millis(100)).await;
            let left = t
                .declare_queue(&q, QueueOptions::passive())
                .await
                .expect("passive");
            assert_eq!(
                left.message_count, 1,
                "the cancelled consumer took a new message"
            );
            assert_eq!(left.consumer_count, 0);
        })
        .await;
}

/// Closing a consumer requeues what it holds; settling those afterwards is
/// `Disconnected`, not a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_requeues_and_late_settlement_is_disconnected() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("close", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            fill(&t, &q, "m", 2).await;
            let mut c = t
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let held = [next(&mut c, 5).await, next(&mut c, 5).await];
            c.close().await.expect("close");
            for d in held {
                match d.ack().await {
                    Err(TransportError::Disconnected(_)) => {}
                    other => panic!("ack after close: expected Disconnected, got {other:?}"),
                }
            }
            let mut again = t
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume again");
            for expected in ["m-0", "m-1"] {
                let d = next(&mut again, 5).await;
                assert_eq!(id_of(&d), expected);
                assert!(d.redelivered());
                d.ack().await.expect("ack");
            }
        })
        .await;
}

/// Dropping a consumer does not block and requeues what it held.
#[tokio::test(flavor = "current_thread")]
async fn drop_does_not_block_and_requeues() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("drop", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            fill(&t, &q, "m", 1).await;
            let mut c = t
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let held = next(&mut c, 5).await;
            let started = Instant::now();
            drop(c);
            assert!(
                started.elapsed() < Duration::from_millis(20),
                "drop blocked"
            );
            let mut again = t
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume again");
            let d = next(&mut again, 5).await;
            assert_eq!(id_of(&d), "m-0");
            assert!(d.redelivered());
            d.ack().await.expect("ack");
            assert!(
                held.ack().await.is_err(),
                "the dropped consumer's delivery was settled"
            );
        })
        .await;
}

/// A consumer whose queue is deleted ends with `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_queue_ends_the_consumer_with_not_found() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("deleted", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let mut c = t
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            t.delete_queue(&q).await.expect("delete");
            match tokio::time::timeout(Duration::from_secs(5), c.next()).await {
                Ok(Some(Err(TransportError::NotFound(_)))) => {}
                other => panic!("expected NotFound, got {other:?}"),
            }
            let end = tokio::time::timeout(Duration::from_secs(5), c.next()).await;
            assert!(matches!(end, Ok(None)), "{end:?}");
            match t.consume(&q, ConsumeOptions::default()).await {
                Err(TransportError::NotFound(_)) => {}
                other => panic!("consuming a missing queue: {other:?}"),
            }
        })
        .await;
}
