//! Declarations: refusals mapped to their errors, and the management channel going on
//! after the broker closed it over one.

use nameko_amqp::test_support::test_broker;
use nameko_transport::{ExchangeKind, ExchangeOptions, QueueOptions, Transport, TransportError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_declarations_map_to_errors_and_do_not_break_the_next_one() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("refusals", |scope| async move {
            let t = scope.connect().await;
            let other = scope.connect().await;
            let q = scope.queue("q");
            let ex = scope.exchange("x");
            t.declare_queue(&q, QueueOptions::durable())
                .await
                .expect("declare");
            t.declare_exchange(&ex, ExchangeKind::Topic, ExchangeOptions::default())
                .await
                .expect("exchange");

            let conflict = t.declare_queue(&q, QueueOptions::default()).await;
            assert!(
                matches!(conflict, Err(TransportError::PreconditionFailed(_))),
                "{conflict:?}"
            );
            t.declare_queue(&q, QueueOptions::durable())
                .await
                .expect("same flags right after");

            let kind = t
                .declare_exchange(&ex, ExchangeKind::Fanout, ExchangeOptions::default())
                .await;
            assert!(
                matches!(kind, Err(TransportError::PreconditionFailed(_))),
                "{kind:?}"
            );

            let missing = t
                .declare_queue(&scope.name("missing"), QueueOptions::passive())
                .await;
            assert!(
                matches!(missing, Err(TransportError::NotFound(_))),
                "{missing:?}"
            );
            let missing = t
                .declare_exchange(
                    &scope.name("missing-x"),
                    ExchangeKind::Topic,
                    ExchangeOptions::passive(),
                )
                .await;
            assert!(
                matches!(missing, Err(TransportError::NotFound(_))),
                "{missing:?}"
            );

            let exclusive = scope.queue("exclusive");
            t.declare_queue(&exclusive, QueueOptions::default().with_exclusive(true))
                .await
                .expect("exclusive");
            let locked = other
                .declare_queue(&exclusive, QueueOptions::default().with_exclusive(true))
                .await;
            assert!(
                matches!(locked, Err(TransportError::ResourceLocked(_))),
                "{locked:?}"
            );

            let unbound = t.bind_queue(&q, &scope.name("no-such-exchange"), "k").await;
            assert!(
                matches!(unbound, Err(TransportError::NotFound(_))),
                "{unbound:?}"
            );
            let default = t.bind_queue(&q, "", "k").await;
            assert!(
                matches!(default, Err(TransportError::AccessRefused(_))),
                "{default:?}"
            );

            t.bind_queue(&q, &ex, "a.#")
                .await
                .expect("binding after the refusals");
            let declared = t
                .declare_queue(&q, QueueOptions::passive())
                .await
                .expect("passive");
            assert_eq!(declared.name, q);
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nameko_reply_queue_arguments_and_deletion() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("arguments", |scope| async move {
            let t = scope.connect().await;
            // nameko's reply queue: durable, x-expires 300000 as an int32.
            let reply = scope.queue("rpc.reply-svc");
            let options = QueueOptions::durable().with_expires(300_000);
            t.declare_queue(&reply, options.clone())
                .await
                .expect("declare");
            t.declare_queue(&reply, options)
                .await
                .expect("identical redeclare");
            let other = t
                .declare_queue(&reply, QueueOptions::durable().with_expires(1_000))
                .await;
            assert!(
                matches!(other, Err(TransportError::PreconditionFailed(_))),
                "{other:?}"
            );

            let named = t
                .declare_queue("", QueueOptions::default().with_exclusive(true))
                .await
                .expect("server-named");
            assert!(named.name.starts_with("amq.gen-"), "{}", named.name);

            assert_eq!(t.delete_queue(&scope.name("never-declared")).await, Ok(0));
            t.delete_exchange(&scope.name("never-declared-x"))
                .await
                .expect("missing exchange");
            assert_eq!(t.delete_queue(&reply).await, Ok(0));
        })
        .await;
}
