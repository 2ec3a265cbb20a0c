//! Publishing: confirms, mandatory returns under concurrency, missing exchanges and the
//! shared publish channel's resilience.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::msg;
use nameko_amqp::AmqpTransport;
use nameko_amqp::test_support::{Scope, test_broker};
use nameko_transport::{
    ExchangeKind, ExchangeOptions, Message, Properties, PublishOptions, PublishOutcome,
    QueueOptions, Transport, TransportError,
};
use tokio::task::JoinSet;

fn no_route(outcome: &PublishOutcome) -> bool {
    matches!(outcome, PublishOutcome::Returned { reply_code: 312, reply_text } if reply_text == "NO_ROUTE")
}

async fn depth(transport: &impl Transport, queue: &str) -> u32 {
    transport
        .declare_queue(queue, QueueOptions::passive())
        .await
        .expect("passive declare")
        .message_count
}

/// A transport, a queue `q` to route to and the name of a queue that does not exist.
async fn routed_and_unroutable(scope: &Scope) -> (Arc<AmqpTransport>, String, String) {
    let t = Arc::new(scope.connect().await);
    let q = scope.queue("q");
    t.declare_queue(&q, QueueOptions::default())
        .await
        .expect("declare");
    (t, q, scope.name("nowhere"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_for_every_combination_of_options() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("outcomes", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let nowhere = scope.name("nowhere");
            let cases = [
                (&q, false, true, PublishOutcome::Confirmed),
                (&q, false, false, PublishOutcome::Sent),
                (&q, true, true, PublishOutcome::Confirmed),
                (&q, true, false, PublishOutcome::Sent),
                (&nowhere, false, true, PublishOutcome::Confirmed),
                (&nowhere, false, false, PublishOutcome::Sent),
            ];
            for (key, mandatory, confirm, expected) in cases {
                let options = PublishOptions::default()
                    .with_mandatory(mandatory)
                    .with_confirm(confirm);
                let got = t
                    .publish("", key, msg("m"), options)
                    .await
                    .expect("publish");
                assert_eq!(
                    got, expected,
                    "mandatory={mandatory} confirm={confirm} to {key}"
                );
            }
            for confirm in [true, false] {
                let options = PublishOptions::default()
                    .with_mandatory(true)
                    .with_confirm(confirm);
                let got = t
                    .publish("", &nowhere, msg("r"), options)
                    .await
                    .expect("publish");
                assert!(no_route(&got), "confirm={confirm}: {got:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(depth(&t, &q).await, 4);
        })
        .await;
}

/// Many mandatory publishes in flight at once, a third of them unroutable and half of
/// them with the same body: each gets its own outcome, and none waits for ever. (lapin
/// can hand a `basic.return` to another publish's confirm; the transport must not report
/// it there.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mandatory_returns_go_to_the_right_publish() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("returns", |scope| async move {
            let (t, q, nowhere) = routed_and_unroutable(&scope).await;
            let mut set = JoinSet::new();
            for i in 0..1500 {
                let t = Arc::clone(&t);
                let routable = i % 3 != 0;
                let key = if routable { q.clone() } else { nowhere.clone() };
                let body = if i % 2 == 0 {
                    "same".to_owned()
                } else {
                    i.to_string()
                };
                set.spawn(async move {
                    let options = PublishOptions::default().with_mandatory(true);
                    let outcome = t.publish("", &key, msg(&body), options).await;
                    (i, routable, outcome)
                });
            }
            let mut routed = 0;
            let mut settled = 0;
            loop {
                let next = tokio::time::timeout(Duration::from_secs(20), set.join_next());
                let Some(joined) = next.await.unwrap_or_else(|_| {
                    panic!(
                        "{} of 1500 publishes still wait for an outcome",
                        1500 - settled
                    )
                }) else {
                    break;
                };
                settled += 1;
                let (i, routable, outcome) = joined.expect("task");
                let outcome = outcome.expect("publish");
                if routable {
                    assert_eq!(outcome, PublishOutcome::Confirmed, "publish {i}");
                    routed += 1;
                } else {
                    assert!(no_route(&outcome), "publish {i}: {outcome:?}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(depth(&*t, &q).await, routed);
        })
        .await;
}

/// Publishing to a missing exchange is `NotFound` for that publish only: the ones in
/// flight with it are confirmed, and the transport keeps publishing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_exchange_fails_only_its_own_publish() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("missing-exchange", |scope| async move {
            let t = Arc::new(scope.connect().await);
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let missing = scope.name("missing");
            let mut set = JoinSet::new();
            for i in 0..300 {
                let t = Arc::clone(&t);
                let (exchange, key) = if i % 50 == 0 {
                    (missing.clone(), "k".to_owned())
                } else {
                    (String::new(), q.clone())
                };
                set.spawn(async move {
                    let outcome = t
                        .publish(&exchange, &key, msg("m"), PublishOptions::default())
                        .await;
                    (exchange.is_empty(), outcome)
                });
            }
            let mut good = 0;
            while let Some(joined) = set.join_next().await {
                match joined.expect("task") {
                    (true, Ok(PublishOutcome::Confirmed)) => good += 1,
                    (false, Err(TransportError::NotFound(_))) => {}
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
            assert_eq!(good, 294);

            // An exchange deleted behind the transport's back after it was used.
            let exchange = scope.exchange("doomed");
            t.declare_exchange(&exchange, ExchangeKind::Direct, ExchangeOptions::default())
                .await
                .expect("declare exchange");
            t.bind_queue(&q, &exchange, "k").await.expect("bind");
            let got = t
                .publish(&exchange, "k", msg("m"), PublishOptions::default())
                .await;
            assert_eq!(got, Ok(PublishOutcome::Confirmed));
            let other = scope.connect().await;
            other
                .delete_exchange(&exchange)
                .await
                .expect("delete elsewhere");
            let got = t
                .publish(&exchange, "k", msg("m"), PublishOptions::default())
                .await;
            assert!(matches!(got, Err(TransportError::NotFound(_))), "{got:?}");
            let got = t.publish("", &q, msg("m"), PublishOptions::default()).await;
            assert_eq!(
                got,
                Ok(PublishOutcome::Confirmed),
                "the transport recovered its channel"
            );
        })
        .await;
}

/// Properties RabbitMQ would answer by closing the channel are refused before sending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn properties_the_broker_refuses_are_caught_before_sending() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("bad-properties", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let bad = [
                Properties::json().with_user_id("someone-else"),
                Properties::json().with_expiration("soon"),
                Properties::json().with_correlation_id("c".repeat(300)),
            ];
            for props in bad {
                let got = t
                    .publish(
                        "",
                        &q,
                        Message::new("x", props.clone()),
                        PublishOptions::default(),
                    )
                    .await;
                assert!(
                    matches!(got, Err(TransportError::InvalidArgument(_))),
                    "{props:?}: {got:?}"
                );
            }
            let long_key = "k".repeat(256);
            let got = t
                .publish("", &long_key, msg("x"), PublishOptions::default())
                .await;
            assert!(
                matches!(got, Err(TransportError::InvalidArgument(_))),
                "{got:?}"
            );
            let got = t
                .publish("", &q, msg("fine"), PublishOptions::default())
                .await;
            assert_eq!(got, Ok(PublishOutcome::Confirmed));
        })
        .await;
}

/// Confirmed publishes from many tasks pipeline on the shared channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_confirmed_publishes_pipeline() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("pipeline", |scope| async move {
            let t = Arc::new(scope.connect().await);
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let (tasks, each) = (50, 100);
            let started = Instant::now();
            let mut set = JoinSet::new();
            for task in 0..tasks {
                let t = Arc::clone(&t);
                let q = q.clone();
                set.spawn(async move {
                    for i in 0..each {
                        let got = t
                            .publish(
                                "",
                                &q,
                                msg(&format!("{task}-{i}")),
                                PublishOptions::default(),
                            )
                            .await;
                        assert_eq!(got, Ok(PublishOutcome::Confirmed));
                    }
                });
            }
            while let Some(joined) = set.join_next().await {
                joined.expect("publishing task");
            }
            let elapsed = started.elapsed();
            let total = tasks * each;
            println!(
                "{total} confirmed publishes from {tasks} tasks in {elapsed:?} ({:.0}/s)",
                f64::from(total) / elapsed.as_secs_f64()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(depth(&*t, &q).await, total);
        })
        .await;
}

/// Mandatory publishes made one after the other by each of several tasks, routed and
/// unroutable interleaved, some given up while they wait: each publish awaited to the end
/// is settled within seconds with its own outcome. A task with one publish in flight is
/// woken only by its own confirm, and one given up leaves its confirm for the others to
/// see; a lost wake-up shows here as a publish that waits for ever. lapin may hand a
/// return to a confirm of the same multiple-ack completed after the returned publish's
/// own; a publish settled before that confirm is seen shows as an unroutable one
/// reported confirmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_and_abandoned_mandatory_publishes_all_settle() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("sequential-returns", |scope| async move {
            let (t, q, nowhere) = routed_and_unroutable(&scope).await;
            let (tasks, each) = (16, 500);
            let mut set = JoinSet::new();
            for task in 0..tasks {
                let t = Arc::clone(&t);
                let (q, nowhere) = (q.clone(), nowhere.clone());
                set.spawn(async move {
                    let (mut routed, mut abandoned) = (0, 0);
                    for i in 0..each {
                        let routable = (i + task) % 3 != 0;
                        let key = if routable { &q } else { &nowhere };
                        let options = PublishOptions::default().with_mandatory(true);
                        let publish = t.publish("", key, msg(&format!("{task}-{i}")), options);
                        if i % 7 == 3 {
                            // Given up while it waits, or before: either way nothing hangs.
                            let given_up =
                                tokio::time::timeout(Duration::from_micros(300), publish).await;
                            abandoned += u32::from(given_up.is_err() && routable);
                            routed +=
                                u32::from(matches!(given_up, Ok(Ok(PublishOutcome::Confirmed))));
                            continue;
                        }
                        let outcome = tokio::time::timeout(Duration::from_secs(10), publish)
                            .await
                            .unwrap_or_else(|_| panic!("publish {task}-{i} still waits after 10 s"))
                            .expect("publish");
                        if routable {
                            assert_eq!(outcome, PublishOutcome::Confirmed, "publish {task}-{i}");
                            routed += 1;
                        } else {
                            assert!(no_route(&outcome), "publish {task}-{i}: {outcome:?}");
                        }
                    }
                    (routed, abandoned)
                });
            }
            let (mut routed, mut abandoned) = (0, 0);
            while let Some(joined) = set.join_next().await {
                let (r, a) = joined.expect("publishing task");
                routed += r;
                abandoned += a;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let depth = depth(&*t, &q).await;
            assert!(
                (routed..=routed + abandoned).contains(&depth),
                "{depth} messages queued, {routed} confirmed and {abandoned} given up"
            );
        })
        .await;
}
