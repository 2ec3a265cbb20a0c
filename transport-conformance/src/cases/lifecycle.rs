//! Declarations and lifetimes: exclusive, auto-delete and expiring queues, passive and
//! conflicting declarations, deletion, and closing connections.

use std::time::Duration;

use futures_util::StreamExt as _;
use nameko_transport::{
    ConsumeOptions, Consumer, ExchangeKind, ExchangeOptions, QueueOptions, TransportError,
};

use crate::runner::{CaseResult, Context as _, Cx, ensure};
use crate::support::{
    ack_all, consume, depth, id_of, ids, publish_ids, publish_one, queue_exists, recv, recv_ids,
};

/// Waits for `consumer` to end: `None`, possibly after one `Err` item.
async fn expect_stream_end(cx: &Cx<'_>, consumer: &mut Consumer, what: &str) -> CaseResult {
    let timeout = cx.harness.receive_timeout();
    let mut errors = 0;
    loop {
        match tokio::time::timeout(timeout, consumer.next()).await {
            Ok(None) => return Ok(()),
            Ok(Some(Err(_))) if errors == 0 => errors += 1,
            Ok(Some(Err(e))) => return Err(format!("{what}: a second error item: {e}")),
            Ok(Some(Ok(d))) => {
                return Err(format!("{what}: message {} arrived instead", id_of(&d)));
            }
            Err(_) => return Err(format!("{what}: the stream did not end within {timeout:?}")),
        }
    }
}

/// An exclusive queue is refused to other connections and vanishes with its owner; an
/// empty name gets a server-generated one.
pub(crate) async fn exclusive_queue_is_owned_by_its_connection(cx: &Cx<'_>) -> CaseResult {
    let owner = cx.connect().await;
    let other = cx.connect().await;
    let exclusive = QueueOptions::default().with_exclusive(true);
    let q = cx.queue(&owner, "excl", exclusive.clone()).await?;
    match other.declare_queue(&q, exclusive.clone()).await {
        Err(TransportError::ResourceLocked(_)) => {}
        other => {
            return Err(format!(
                "declaring another connection's exclusive queue: expected ResourceLocked, \
                 got {other:?}"
            ));
        }
    }
    match other.consume(&q, ConsumeOptions::default()).await {
        Err(TransportError::ResourceLocked(_)) => {}
        Ok(_) => return Err("consuming another connection's exclusive queue succeeded".into()),
        Err(e) => {
            return Err(format!(
                "consuming another connection's exclusive queue: expected ResourceLocked, got {e}"
            ));
        }
    }
    let mut consumer = consume(&owner, &q, ConsumeOptions::default()).await?;
    publish_one(&other, "", &q, "to-exclusive").await?;
    let d = recv(cx, &mut consumer, "the owner consuming its exclusive queue").await?;
    d.ack().await.ctx("acking")?;

    let named = owner
        .declare_queue("", exclusive)
        .await
        .ctx("declaring a server-named exclusive queue")?;
    cx.track_queue(&named.name);
    ensure!(
        !named.name.is_empty(),
        "a queue declared with an empty name got no name"
    );
    let again = owner
        .declare_queue("", QueueOptions::default().with_exclusive(true))
        .await
        .ctx("declaring a second server-named queue")?;
    cx.track_queue(&again.name);
    ensure!(
        again.name != named.name,
        "two server-named queues got the same name {}",
        named.name
    );
    publish_one(&owner, "", &named.name, "to-server-named").await?;
    cx.harness.settle().await;
    let depth = depth(&owner, &named.name).await?;
    ensure!(
        depth == 1,
        "the server-named queue holds {depth} messages, expected 1"
    );

    owner.close().await.ctx("closing the owner")?;
    match tokio::time::timeout(cx.harness.receive_timeout(), consumer.next()).await {
        Ok(None | Some(Err(_))) => {}
        Ok(Some(Ok(d))) => return Err(format!("message {} after close", id_of(&d))),
        Err(_) => return Err("the owner's consumer did not end when it closed".into()),
    }
    cx.harness.settle().await;
    for name in [&q, &named.name] {
        ensure!(
            !queue_exists(&other, name).await?,
            "exclusive queue {name} still exists after its connection closed"
        );
    }
    Ok(())
}

/// An auto-delete queue stays until it has had a consumer, and goes with the last one.
pub(crate) async fn auto_delete_queue_goes_with_last_consumer(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx
        .queue(
            &conn,
            "auto",
            QueueOptions::default().with_auto_delete(true),
        )
        .await?;
    cx.harness.settle().await;
    ensure!(
        queue_exists(&conn, &q).await?,
        "auto-delete queue vanished before it ever had a consumer"
    );
    let first = consume(&conn, &q, ConsumeOptions::default()).await?;
    let second = consume(&conn, &q, ConsumeOptions::default()).await?;
    first.close().await.ctx("closing the first consumer")?;
    cx.harness.settle().await;
    ensure!(
        queue_exists(&conn, &q).await?,
        "auto-delete queue vanished while it still had a consumer"
    );
    second.close().await.ctx("closing the last consumer")?;
    cx.harness.settle().await;
    ensure!(
        !queue_exists(&conn, &q).await?,
        "auto-delete queue still exists after its last consumer went"
    );
    Ok(())
}

/// `x-expires` deletes a queue left unused that long; one with a consumer stays.
pub(crate) async fn expires_removes_unused_queue(cx: &Cx<'_>) -> CaseResult {
    const EXPIRES_MS: u32 = 1000;
    let expires = Duration::from_millis(EXPIRES_MS.into());
    let conn = cx.connect().await;
    let options = QueueOptions::default().with_expires(EXPIRES_MS);
    let idle = cx.queue(&conn, "idle", options.clone()).await?;
    let busy = cx.queue(&conn, "busy", options).await?;
    let consumer = consume(&conn, &busy, ConsumeOptions::default()).await?;

    cx.harness.advance(expires * 3 / 10).await;
    ensure!(
        queue_exists(&conn, &idle).await?,
        "queue with x-expires={EXPIRES_MS} gone after {:?}",
        expires * 3 / 10
    );
    cx.harness.advance(expires * 2).await;
    ensure!(
        !queue_exists(&conn, &idle).await?,
        "queue with x-expires={EXPIRES_MS} still exists after {:?} unused",
        expires * 2
    );
    ensure!(
        queue_exists(&conn, &busy).await?,
        "queue with x-expires={EXPIRES_MS} expired although it has a consumer"
    );
    consumer.close().await.ctx("closing the consumer")?;
    cx.harness.advance(expires * 2).await;
    ensure!(
        !queue_exists(&conn, &busy).await?,
        "queue with x-expires={EXPIRES_MS} still exists {:?} after its consumer went",
        expires * 2
    );
    Ok(())
}

/// Passive declarations of a missing queue or exchange fail with `NotFound`, and the
/// transport keeps working.
pub(crate) async fn passive_declare_of_missing_is_not_found(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    match conn
        .declare_queue(&cx.name("missing-q"), QueueOptions::passive())
        .await
    {
        Err(TransportError::NotFound(_)) => {}
        other => return Err(format!("passive queue: expected NotFound, got {other:?}")),
    }
    match conn
        .declare_exchange(
            &cx.name("missing-x"),
            ExchangeKind::Topic,
            ExchangeOptions::passive(),
        )
        .await
    {
        Err(TransportError::NotFound(_)) => {}
        other => {
            return Err(format!(
                "passive exchange: expected NotFound, got {other:?}"
            ));
        }
    }
    let q = cx.queue(&conn, "after", QueueOptions::default()).await?;
    let ex = cx.exchange(&conn, "after-x", ExchangeKind::Direct).await?;
    conn.declare_exchange(&ex, ExchangeKind::Direct, ExchangeOptions::passive())
        .await
        .ctx("passive declaration of an existing exchange")?;
    conn.bind_queue(&q, &ex, "k").await.ctx("binding")?;
    publish_one(&conn, &ex, "k", "works").await?;
    cx.harness.settle().await;
    let depth = depth(&conn, &q).await?;
    ensure!(
        depth == 1,
        "expected 1 message after the failures, found {depth}"
    );
    Ok(())
}

/// Redeclaring with the same arguments succeeds; with different ones fails with
/// `PreconditionFailed`, leaving the original untouched and the transport working.
pub(crate) async fn redeclare_same_ok_conflicting_fails(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let original = QueueOptions::durable().with_expires(60_000);
    let q = cx.queue(&conn, "q", original.clone()).await?;
    publish_one(&conn, "", &q, "kept").await?;
    conn.declare_queue(&q, original.clone())
        .await
        .ctx("redeclaring with the same options")?;
    let conflicts = [
        ("durable", original.clone().with_durable(false)),
        ("auto_delete", original.clone().with_auto_delete(true)),
        ("x-expires", QueueOptions::durable().with_expires(30_000)),
        ("missing x-expires", QueueOptions::durable()),
    ];
    for (what, options) in conflicts {
        match conn.declare_queue(&q, options).await {
            Err(TransportError::PreconditionFailed(_)) => {}
            other => {
                return Err(format!(
                    "redeclaring the queue with a different {what}: expected \
                     PreconditionFailed, got {other:?}"
                ));
            }
        }
    }
    let ex = cx.exchange(&conn, "x", ExchangeKind::Topic).await?;
    conn.declare_exchange(&ex, ExchangeKind::Topic, ExchangeOptions::default())
        .await
        .ctx("redeclaring the exchange identically")?;
    for (what, kind, options) in [
        ("kind", ExchangeKind::Direct, ExchangeOptions::default()),
        ("durable", ExchangeKind::Topic, ExchangeOptions::durable()),
    ] {
        match conn.declare_exchange(&ex, kind, options).await {
            Err(TransportError::PreconditionFailed(_)) => {}
            other => {
                return Err(format!(
                    "redeclaring the exchange with a different {what}: expected \
                     PreconditionFailed, got {other:?}"
                ));
            }
        }
    }
    cx.harness.settle().await;
    let depth = depth(&conn, &q).await?;
    ensure!(
        depth == 1,
        "after the refused redeclarations the queue holds {depth} messages, expected 1"
    );
    Ok(())
}

/// A deleted exchange is gone (publishing to it fails) and deleting it again succeeds.
pub(crate) async fn delete_exchange_removes_it(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let ex = cx.exchange(&conn, "x", ExchangeKind::Fanout).await?;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    conn.bind_queue(&q, &ex, "").await.ctx("binding")?;
    conn.delete_exchange(&ex)
        .await
        .ctx("deleting the exchange")?;
    match conn
        .declare_exchange(&ex, ExchangeKind::Fanout, ExchangeOptions::passive())
        .await
    {
        Err(TransportError::NotFound(_)) => {}
        other => {
            return Err(format!(
                "passive declaration of the deleted exchange: expected NotFound, got {other:?}"
            ));
        }
    }
    conn.delete_exchange(&ex)
        .await
        .ctx("deleting a missing exchange")?;
    // Re-created, it has lost the old binding.
    conn.declare_exchange(&ex, ExchangeKind::Fanout, ExchangeOptions::default())
        .await
        .ctx("re-creating the exchange")?;
    publish_one(&conn, &ex, "", "unbound").await?;
    cx.harness.settle().await;
    let depth = depth(&conn, &q).await?;
    ensure!(
        depth == 0,
        "the old binding survived deleting the exchange: {depth} messages routed"
    );
    Ok(())
}

/// Closing a connection while consuming ends the consumer's stream without hanging, and
/// later calls fail with `Closed`.
pub(crate) async fn close_while_consuming_ends_stream(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    publish_one(&conn, "", &q, "before-close").await?;
    let d = recv(cx, &mut consumer, "before close").await?;
    d.ack().await.ctx("acking")?;
    tokio::time::timeout(cx.harness.receive_timeout(), conn.close())
        .await
        .map_err(|_| "close did not finish".to_owned())?
        .ctx("closing")?;
    expect_stream_end(cx, &mut consumer, "the consumer of the closed connection").await?;
    match conn.declare_queue(&q, QueueOptions::default()).await {
        Err(TransportError::Closed) => {}
        other => {
            return Err(format!(
                "declare after close: expected Closed, got {other:?}"
            ));
        }
    }
    match conn
        .publish("", &q, crate::support::msg("late"), Default::default())
        .await
    {
        Err(TransportError::Closed) => Ok(()),
        other => Err(format!(
            "publish after close: expected Closed, got {other:?}"
        )),
    }
}

/// Deliveries a connection never settled go back to the queue, redelivered, when it
/// closes.
pub(crate) async fn closing_connection_requeues_unsettled(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let other = cx.connect().await;
    let q = cx.queue(&other, "q", QueueOptions::default()).await?;
    let all = ids("m", 3);
    publish_ids(&other, "", &q, &all).await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let held = recv_ids(cx, &mut consumer, &all, "the first connection").await?;
    conn.close().await.ctx("closing the first connection")?;
    let mut errors = Vec::new();
    for d in held {
        let id = id_of(&d);
        match d.ack().await {
            Err(TransportError::Disconnected(_) | TransportError::Closed) => {}
            other => errors.push(format!("{id}: {other:?}")),
        }
    }
    ensure!(
        errors.is_empty(),
        "acking after the connection closed should fail: {}",
        errors.join(", ")
    );
    cx.harness.settle().await;
    let mut again = consume(&other, &q, ConsumeOptions::default()).await?;
    let back = recv_ids(cx, &mut again, &all, "the other connection").await?;
    let fresh: Vec<String> = back
        .iter()
        .filter(|d| !d.redelivered())
        .map(id_of)
        .collect();
    ensure!(
        fresh.is_empty(),
        "messages {fresh:?} came back with redelivered=false"
    );
    ack_all(back).await
}

/// Deleting a queue returns its ready count and ends its consumers' streams.
pub(crate) async fn delete_queue_ends_its_consumers(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let full = cx.queue(&conn, "full", QueueOptions::default()).await?;
    publish_ids(&conn, "", &full, &ids("m", 3)).await?;
    cx.harness.settle().await;
    let count = conn.delete_queue(&full).await.ctx("deleting a queue")?;
    ensure!(
        count == 3,
        "delete_queue returned {count}, expected 3 ready messages"
    );
    let gone = conn
        .delete_queue(&full)
        .await
        .ctx("deleting a missing queue")?;
    ensure!(gone == 0, "deleting a missing queue returned {gone}");

    let consumed = cx.queue(&conn, "consumed", QueueOptions::default()).await?;
    let other = cx.connect().await;
    let mut consumer = consume(&other, &consumed, ConsumeOptions::default()).await?;
    conn.delete_queue(&consumed)
        .await
        .ctx("deleting a consumed queue")?;
    expect_stream_end(cx, &mut consumer, "the consumer of the deleted queue").await?;
    // The connection of that consumer keeps working.
    let q = cx.queue(&other, "after", QueueOptions::default()).await?;
    publish_one(&other, "", &q, "after-delete").await?;
    cx.harness.settle().await;
    let depth = depth(&other, &q).await?;
    ensure!(
        depth == 1,
        "expected 1 message after the delete, found {depth}"
    );
    Ok(())
}
