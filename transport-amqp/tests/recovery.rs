//! Connection loss and automatic recovery, driven through a TCP proxy in front of the
//! broker (and once through `rabbitmqctl close_connection`).

mod common;

use std::time::{Duration, Instant};

use common::{Proxy, id_of, msg, next, wait_status};
use futures_util::StreamExt as _;
use nameko_amqp::test_support::test_broker;
use nameko_amqp::{AmqpOptions, AmqpTransport, ReconnectPolicy, Startup};
use nameko_transport::{
    ConsumeOptions, ExchangeKind, ExchangeOptions, FieldTable, PublishOptions, QueueOptions,
    Transport, TransportError, TransportStatus,
};

fn fast_reconnect() -> ReconnectPolicy {
    ReconnectPolicy::exponential(Duration::from_millis(20), Duration::from_millis(200))
}

fn is_reconnecting(s: &TransportStatus) -> bool {
    matches!(s, TransportStatus::Reconnecting { .. })
}

/// After the connection is cut, the transport reconnects, declares its exchange, queues
/// and bindings again (the exclusive queue died with the old connection), and the same
/// consumer streams go on; a delivery taken before the cut cannot be settled and comes
/// back redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_resume_and_topology_is_restored_after_connection_loss() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("recovery-resume", |scope| async move {
            let (proxy, via) = Proxy::in_front_of(scope.broker().uri()).await;
            let transport = AmqpTransport::connect_with(
                &via,
                AmqpOptions::new()
                    .reconnect(fast_reconnect())
                    .connection_name("nameko-rs recovery test"),
            )
            .await
            .expect("connecting through the proxy");
            let direct = scope.connect().await;
            let exchange = scope.exchange("x");
            let shared = scope.queue("shared");
            let private = scope.queue("private");
            transport
                .declare_exchange(&exchange, ExchangeKind::Topic, ExchangeOptions::default())
                .await
                .expect("exchange");
            transport
                .declare_queue(&shared, QueueOptions::default())
                .await
                .expect("shared queue");
            transport
                .declare_queue(&private, QueueOptions::default().with_exclusive(true))
                .await
                .expect("exclusive queue");
            transport
                .bind_queue(&private, &exchange, "private.*")
                .await
                .expect("binding");
            let mut shared_consumer = transport
                .consume(&shared, ConsumeOptions::with_prefetch(5))
                .await
                .expect("consume shared");
            let mut private_consumer = transport
                .consume(&private, ConsumeOptions::default())
                .await
                .expect("consume private");

            direct
                .publish("", &shared, msg("before"), PublishOptions::default())
                .await
                .expect("publish");
            let held = next(&mut shared_consumer, 5).await;
            assert_eq!(id_of(&held), "before");
            assert!(!held.redelivered());

            let mut status = transport.status();
            proxy.sever();
            let reconnecting = wait_status(&mut status, 5, "reconnecting", is_reconnecting).await;
            if let TransportStatus::Reconnecting { attempt, .. } = reconnecting {
                assert!(attempt >= 1);
            }
            wait_status(&mut status, 10, "connected again", |s| {
                *s == TransportStatus::Connected
            })
            .await;

            match held.ack().await {
                Err(TransportError::Disconnected(_)) => {}
                other => panic!("acking on the dead channel: expected Disconnected, got {other:?}"),
            }
            let again = next(&mut shared_consumer, 10).await;
            assert_eq!(id_of(&again), "before");
            assert!(
                again.redelivered(),
                "the unsettled delivery comes back redelivered"
            );
            again.ack().await.expect("ack after recovery");

            let outcome = direct
                .publish(
                    &exchange,
                    "private.key",
                    msg("after"),
                    PublishOptions::default().with_mandatory(true),
                )
                .await
                .expect("publish to the re-created binding");
            assert!(
                !outcome.is_returned(),
                "the binding was not restored: {outcome:?}"
            );
            let after = next(&mut private_consumer, 10).await;
            assert_eq!(id_of(&after), "after");
            after.ack().await.expect("ack");
            transport.close().await.expect("close");
        })
        .await;
}

/// Bindings with arguments and exchange-to-exchange bindings are declared again after the
/// connection is cut, through the same calls that made them: a message reaches the
/// re-created exclusive queue through both, and only when its headers match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_with_arguments_and_exchange_bindings_are_restored_after_connection_loss() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("recovery-bindings", |scope| async move {
            let (proxy, via) = Proxy::in_front_of(scope.broker().uri()).await;
            let transport = AmqpTransport::connect_with(
                &via,
                AmqpOptions::new()
                    .reconnect(fast_reconnect())
                    .connection_name("nameko-rs recovery test"),
            )
            .await
            .expect("connecting through the proxy");
            let direct = scope.connect().await;
            let source = scope.exchange("source");
            let by_kind = scope.exchange("by-kind");
            let kind_a = scope.queue("kind-a");
            transport
                .declare_exchange(&source, ExchangeKind::Topic, ExchangeOptions::default())
                .await
                .expect("source exchange");
            // Auto-delete: it goes with the exclusive queue bound to it, and takes the
            // exchange binding along.
            transport
                .declare_exchange(
                    &by_kind,
                    ExchangeKind::Headers,
                    ExchangeOptions::default().with_auto_delete(true),
                )
                .await
                .expect("headers exchange");
            transport
                .declare_queue(&kind_a, QueueOptions::default().with_exclusive(true))
                .await
                .expect("exclusive queue");
            let match_a = FieldTable::new().with("x-match", "all").with("kind", "a");
            transport
                .bind_queue_with_arguments(&kind_a, &by_kind, "", match_a)
                .await
                .expect("binding with arguments");
            transport
                .bind_exchange(&by_kind, &source, "orders.#")
                .await
                .expect("exchange binding");
            let mut consumer = transport
                .consume(&kind_a, ConsumeOptions::default())
                .await
                .expect("consume");
            let send = |kind: &'static str, message_id: &'static str| {
                let mut message = msg(message_id);
                message.properties.headers.insert("kind", kind);
                direct.publish(
                    &source,
                    "orders.placed",
                    message,
                    PublishOptions::default().with_mandatory(true),
                )
            };
            let before = send("a", "before").await.expect("publish before the cut");
            assert!(!before.is_returned(), "{before:?}");
            let d = next(&mut consumer, 5).await;
            assert_eq!(id_of(&d), "before");
            d.ack().await.expect("ack");

            let mut status = transport.status();
            proxy.sever();
            wait_status(&mut status, 5, "reconnecting", is_reconnecting).await;
            wait_status(&mut status, 10, "connected again", |s| {
                *s == TransportStatus::Connected
            })
            .await;

            let after = send("a", "after").await.expect("publish after recovery");
            assert!(
                !after.is_returned(),
                "the bindings were not restored: {after:?}"
            );
            let d = next(&mut consumer, 10).await;
            assert_eq!(id_of(&d), "after");
            d.ack().await.expect("ack");
            // The binding kept its arguments: another kind does not match.
            let other = send("b", "other-kind").await.expect("publish");
            assert!(other.is_returned(), "{other:?}");
            transport.close().await.expect("close");
        })
        .await;
}

/// While the broker cannot be reached every operation fails at once with
/// `Disconnected`; once it can, the transport is back and what it deleted before the
/// loss stays deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_fail_fast_while_disconnected_and_deleted_things_stay_deleted() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("recovery-fail-fast", |scope| async move {
            let (proxy, via) = Proxy::in_front_of(scope.broker().uri()).await;
            let transport =
                AmqpTransport::connect_with(&via, AmqpOptions::new().reconnect(fast_reconnect()))
                    .await
                    .expect("connecting through the proxy");
            let kept = scope.queue("kept");
            let deleted = scope.queue("deleted");
            for q in [&kept, &deleted] {
                transport
                    .declare_queue(q, QueueOptions::default().with_auto_delete(true))
                    .await
                    .expect("declare");
            }
            // Consumers keep the auto-delete queues alive until the connection goes.
            let _c1 = transport
                .consume(&kept, ConsumeOptions::default())
                .await
                .expect("consume");
            transport.delete_queue(&deleted).await.expect("delete");

            let mut status = transport.status();
            proxy.refuse(true);
            proxy.sever();
            wait_status(&mut status, 5, "reconnecting", is_reconnecting).await;

            let started = Instant::now();
            let declare = transport
                .declare_queue(&kept, QueueOptions::default())
                .await;
            let publish = transport
                .publish("", &kept, msg("x"), PublishOptions::default())
                .await;
            let consume = transport.consume(&kept, ConsumeOptions::default()).await;
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "failing took {:?}",
                started.elapsed()
            );
            assert!(
                matches!(declare, Err(TransportError::Disconnected(_))),
                "{declare:?}"
            );
            assert!(
                matches!(publish, Err(TransportError::Disconnected(_))),
                "{publish:?}"
            );
            assert!(
                matches!(consume, Err(TransportError::Disconnected(_))),
                "consume"
            );

            proxy.refuse(false);
            wait_status(&mut status, 10, "connected again", |s| {
                *s == TransportStatus::Connected
            })
            .await;
            let direct = scope.connect().await;
            direct
                .declare_queue(&kept, QueueOptions::passive())
                .await
                .expect("the kept auto-delete queue was declared again");
            match direct
                .declare_queue(&deleted, QueueOptions::passive())
                .await
            {
                Err(TransportError::NotFound(_)) => {}
                other => panic!("the deleted queue came back: {other:?}"),
            }
            transport.close().await.expect("close");
        })
        .await;
}

/// A publish awaiting its confirm when the connection dies fails with `Disconnected`:
/// it neither hangs nor reports success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_awaiting_confirm_fails_when_the_connection_dies() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("recovery-confirm", |scope| async move {
            let (proxy, via) = Proxy::in_front_of(scope.broker().uri()).await;
            let transport =
                AmqpTransport::connect_with(&via, AmqpOptions::new().reconnect(fast_reconnect()))
                    .await
                    .expect("connecting through the proxy");
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            // Warm the publish channels up, so the stalled publish only waits for its confirm.
            for options in [
                PublishOptions::default(),
                PublishOptions::default().with_mandatory(true),
            ] {
                transport
                    .publish("", &q, msg("warm"), options)
                    .await
                    .expect("warm-up");
            }
            proxy.stall();
            let plain = tokio::spawn({
                let t = transport.clone();
                let q = q.clone();
                async move {
                    t.publish("", &q, msg("stalled"), PublishOptions::default())
                        .await
                }
            });
            let mandatory = tokio::spawn({
                let t = transport.clone();
                let q = q.clone();
                async move {
                    t.publish(
                        "",
                        &q,
                        msg("stalled-m"),
                        PublishOptions::default().with_mandatory(true),
                    )
                    .await
                }
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !plain.is_finished(),
                "the stalled publish finished: {plain:?}"
            );
            proxy.sever();
            for task in [plain, mandatory] {
                let result = tokio::time::timeout(Duration::from_secs(5), task)
                    .await
                    .expect("the publish hung")
                    .expect("publish task");
                assert!(
                    matches!(result, Err(TransportError::Disconnected(_))),
                    "expected Disconnected, got {result:?}"
                );
            }
            transport.close().await.expect("close");
        })
        .await;
}

/// Missing heartbeats are a lost connection too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_heartbeats_trigger_reconnection() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("recovery-heartbeat", |scope| async move {
            let (proxy, via) = Proxy::in_front_of(scope.broker().uri()).await;
            let transport = AmqpTransport::connect_with(
                &via,
                AmqpOptions::new()
                    .heartbeat(Duration::from_secs(1))
                    .reconnect(fast_reconnect()),
            )
            .await
            .expect("connecting through the proxy");
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let mut consumer = transport
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let mut status = transport.status();
            proxy.stall();
            wait_status(&mut status, 10, "reconnecting", is_reconnecting).await;
            wait_status(&mut status, 10, "connected again", |s| {
                *s == TransportStatus::Connected
            })
            .await;
            let direct = scope.connect().await;
            direct
                .publish(
                    "",
                    &q,
                    msg("after-heartbeat-loss"),
                    PublishOptions::default(),
                )
                .await
                .expect("publish");
            let d = next(&mut consumer, 10).await;
            assert_eq!(id_of(&d), "after-heartbeat-loss");
            d.ack().await.expect("ack");
            transport.close().await.expect("close");
        })
        .await;
}

/// At start-up, `FailFast` reports an unreachable broker at once and `WaitForBroker`
/// keeps trying until it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_fails_fast_or_waits_for_the_broker() {
    let Some(broker) = test_broker().await else {
        return;
    };
    let (proxy, via) = Proxy::in_front_of(broker.uri()).await;
    proxy.refuse(true);
    let started = Instant::now();
    match AmqpTransport::connect(&via).await {
        Err(TransportError::Connect(_)) => {}
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );

    let waiting = tokio::spawn({
        let via = via.clone();
        async move {
            AmqpTransport::connect_with(
                &via,
                AmqpOptions::new()
                    .startup(Startup::WaitForBroker)
                    .reconnect(fast_reconnect()),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "connected while the broker was unreachable"
    );
    proxy.refuse(false);
    let transport = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("still waiting after the broker came back")
        .expect("connect task")
        .expect("connected");
    assert_eq!(*transport.status().borrow(), TransportStatus::Connected);
    transport.close().await.expect("close");
}

/// With reconnection off, a lost connection closes the transport for good: the status
/// says `Closed`, operations fail, and consumers end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_reconnection_a_lost_connection_closes_the_transport() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("recovery-never", |scope| async move {
            let (proxy, via) = Proxy::in_front_of(scope.broker().uri()).await;
            let transport = AmqpTransport::connect_with(
                &via,
                AmqpOptions::new().reconnect(ReconnectPolicy::never()),
            )
            .await
            .expect("connecting through the proxy");
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let mut consumer = transport
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let mut status = transport.status();
            proxy.sever();
            wait_status(&mut status, 5, "closed", |s| *s == TransportStatus::Closed).await;
            let ended = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(item) = consumer.next().await {
                    assert!(item.is_err(), "a delivery after the loss: {item:?}");
                }
            })
            .await;
            assert!(ended.is_ok(), "the consumer did not end");
            let declare = transport.declare_queue(&q, QueueOptions::default()).await;
            assert!(
                matches!(declare, Err(TransportError::Closed)),
                "{declare:?}"
            );
        })
        .await;
}

/// The broker closing the connection (`rabbitmqctl close_connection`, as an operator or
/// a broker shutdown does) is recovered from like a network failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_closing_the_connection_is_recovered() {
    let Some(broker) = test_broker().await else {
        return;
    };
    if !rabbitmqctl_available() {
        eprintln!("skipping: rabbitmqctl is not usable here");
        return;
    }
    broker
        .run("recovery-rabbitmqctl", |scope| async move {
            let name = scope.name("conn");
            let transport = scope
                .connect_with(
                    AmqpOptions::new()
                        .connection_name(name.clone())
                        .reconnect(fast_reconnect()),
                )
                .await;
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let mut consumer = transport
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let mut status = transport.status();
            let closed = tokio::task::spawn_blocking(move || close_connection_named(&name))
                .await
                .expect("rabbitmqctl task");
            assert!(closed, "rabbitmqctl did not find the connection");
            let reconnecting = wait_status(&mut status, 15, "reconnecting", is_reconnecting).await;
            if let TransportStatus::Reconnecting { reason, .. } = &reconnecting {
                assert!(!reason.contains("guest:guest"), "credentials in {reason}");
            }
            wait_status(&mut status, 15, "connected again", |s| {
                *s == TransportStatus::Connected
            })
            .await;
            transport
                .publish("", &q, msg("after-close"), PublishOptions::default())
                .await
                .expect("publish after recovery");
            let d = next(&mut consumer, 10).await;
            assert_eq!(id_of(&d), "after-close");
            d.ack().await.expect("ack");
        })
        .await;
}

fn rabbitmqctl_available() -> bool {
    std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "name"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Closes the broker connection whose client-given name is `name`.
fn close_connection_named(name: &str) -> bool {
    let Ok(listing) = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--no-table-headers",
            "-q",
        ])
        .output()
    else {
        return false;
    };
    let text = String::from_utf8_lossy(&listing.stdout);
    let Some(line) = text.lines().find(|l| l.contains(name)) else {
        return false;
    };
    let Some(pid) = line.split_whitespace().next() else {
        return false;
    };
    std::process::Command::new("rabbitmqctl")
        .args([
            "close_connection",
            pid,
            "closed by the nameko-rs recovery test",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}
