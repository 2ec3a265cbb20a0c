//! Consumers: competing, ordered, settled, limited by prefetch, closed, cancelled.

use futures_util::StreamExt as _;
use nameko_transport::{ConsumeOptions, QueueOptions, TransportError};

use crate::runner::{CaseResult, Context as _, Cx, ensure};
use crate::support::{
    ack_all, consume, depth, diff_ids, expect_quiet, id_of, ids, publish_ids, publish_one, recv,
    recv_ids,
};

/// Two consumers on one queue: each message reaches exactly one of them, and not all
/// reach the same one.
pub(crate) async fn competing_consumers_share_each_message_once(cx: &Cx<'_>) -> CaseResult {
    let conn_a = cx.connect().await;
    let conn_b = cx.connect().await;
    let q = cx.queue(&conn_a, "q", QueueOptions::default()).await?;
    let a = consume(&conn_a, &q, ConsumeOptions::with_prefetch(1)).await?;
    let b = consume(&conn_b, &q, ConsumeOptions::with_prefetch(1)).await?;
    cx.harness.settle().await;
    let expected = ids("m", if cx.short { 10 } else { 40 });
    publish_ids(&conn_a, "", &q, &expected).await?;

    let mut merged = futures_util::stream::select(a.map(|d| (0, d)), b.map(|d| (1, d)));
    let mut got = Vec::new();
    let mut per_consumer = [0usize; 2];
    while got.len() < expected.len() {
        let timeout = cx.harness.receive_timeout();
        match tokio::time::timeout(timeout, merged.next()).await {
            Ok(Some((which, Ok(d)))) => {
                per_consumer[which] += 1;
                got.push(id_of(&d));
                d.ack().await.ctx("acking")?;
            }
            Ok(Some((which, Err(e)))) => return Err(format!("consumer {which} failed: {e}")),
            Ok(None) => return Err("both consumer streams ended".to_owned()),
            Err(_) => {
                return Err(format!(
                    "nothing arrived within {timeout:?} after {} of {} messages: {}",
                    got.len(),
                    expected.len(),
                    diff_ids(&expected, &got).unwrap_or_default()
                ));
            }
        }
    }
    if let Some(diff) = diff_ids(&expected, &got) {
        return Err(diff);
    }
    ensure!(
        per_consumer[0] > 0 && per_consumer[1] > 0,
        "all messages went to one consumer: {per_consumer:?}"
    );
    if let Ok(Some((which, Ok(d)))) =
        tokio::time::timeout(cx.harness.quiet_period(), merged.next()).await
    {
        return Err(format!(
            "message {} arrived again at consumer {which} after all were acked",
            id_of(&d)
        ));
    }
    Ok(())
}

/// One consumer receives a queue's messages in publish order.
pub(crate) async fn fifo_with_one_consumer(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let expected = ids("m", if cx.short { 20 } else { 100 });
    publish_ids(&conn, "", &q, &expected).await?;
    let deliveries = recv_ids(cx, &mut consumer, &expected, "receiving in order").await?;
    let got: Vec<String> = deliveries.iter().map(id_of).collect();
    ack_all(deliveries).await?;
    ensure!(
        got == expected,
        "out of order: first difference at position {}: got {:?}",
        got.iter()
            .zip(&expected)
            .position(|(g, e)| g != e)
            .unwrap_or(0),
        got
    );
    Ok(())
}

/// An acked message is gone: a new consumer gets nothing and the queue is empty.
pub(crate) async fn ack_removes_message(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    publish_one(&conn, "", &q, "acked").await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut consumer, "receiving").await?;
    d.ack().await.ctx("acking")?;
    consumer.close().await.ctx("closing the consumer")?;
    cx.harness.settle().await;
    let depth = depth(&conn, &q).await?;
    ensure!(depth == 0, "queue holds {depth} messages after the ack");
    let mut again = consume(&conn, &q, ConsumeOptions::default()).await?;
    expect_quiet(cx, &mut again, "a new consumer after the ack").await
}

/// Settles the only message with `settle(requeue=true)` and expects it back, redelivered.
async fn requeue_redelivers(cx: &Cx<'_>, reject: bool) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    publish_one(&conn, "", &q, "again").await?;
    publish_one(&conn, "", &q, "after").await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::with_prefetch(1)).await?;
    let first = recv(cx, &mut consumer, "first delivery").await?;
    ensure!(
        id_of(&first) == "again" && !first.redelivered(),
        "first delivery was {} redelivered={}, expected again redelivered=false",
        id_of(&first),
        first.redelivered()
    );
    if reject {
        first.reject(true).await.ctx("rejecting with requeue")?;
    } else {
        first.nack(true).await.ctx("nacking with requeue")?;
    }
    let second = recv(cx, &mut consumer, "the requeued message").await?;
    ensure!(
        id_of(&second) == "again",
        "expected the requeued message again first, got {}",
        id_of(&second)
    );
    ensure!(
        second.redelivered(),
        "the requeued message again came back with redelivered=false"
    );
    ensure!(
        second.body().as_ref() == b"again",
        "the requeued message came back with another body"
    );
    second.ack().await.ctx("acking the redelivery")?;
    let third = recv(cx, &mut consumer, "the next message").await?;
    ensure!(
        id_of(&third) == "after" && !third.redelivered(),
        "expected after (not redelivered), got {} redelivered={}",
        id_of(&third),
        third.redelivered()
    );
    third.ack().await.ctx("acking")?;
    expect_quiet(cx, &mut consumer, "after acking everything").await
}

/// `nack(requeue = true)` puts the message back, marked redelivered.
pub(crate) async fn nack_requeue_redelivers(cx: &Cx<'_>) -> CaseResult {
    requeue_redelivers(cx, false).await
}

/// `reject(requeue = true)` puts the message back, marked redelivered.
pub(crate) async fn reject_requeue_redelivers(cx: &Cx<'_>) -> CaseResult {
    requeue_redelivers(cx, true).await
}

/// Settles the only message without requeue and expects it gone.
async fn no_requeue_drops(cx: &Cx<'_>, reject: bool) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    publish_one(&conn, "", &q, "dropped").await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut consumer, "receiving").await?;
    if reject {
        d.reject(false).await.ctx("rejecting without requeue")?;
    } else {
        d.nack(false).await.ctx("nacking without requeue")?;
    }
    expect_quiet(cx, &mut consumer, "after settling without requeue").await?;
    let depth = depth(&conn, &q).await?;
    ensure!(depth == 0, "queue holds {depth} messages after the drop");
    Ok(())
}

/// `nack(requeue = false)` drops the message.
pub(crate) async fn nack_without_requeue_drops(cx: &Cx<'_>) -> CaseResult {
    no_requeue_drops(cx, false).await
}

/// `reject(requeue = false)` drops the message.
pub(crate) async fn reject_without_requeue_drops(cx: &Cx<'_>) -> CaseResult {
    no_requeue_drops(cx, true).await
}

/// With prefetch N, N messages are delivered; the next only after one is settled.
pub(crate) async fn prefetch_limits_unsettled(cx: &Cx<'_>) -> CaseResult {
    const PREFETCH: u16 = 3;
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let all = ids("m", usize::from(PREFETCH) + 2);
    publish_ids(&conn, "", &q, &all).await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::with_prefetch(PREFETCH)).await?;
    let window = recv_ids(
        cx,
        &mut consumer,
        &all[..usize::from(PREFETCH)],
        "filling the window",
    )
    .await?;
    expect_quiet(cx, &mut consumer, "with a full prefetch window").await?;
    let mut window = window.into_iter();
    if let Some(first) = window.next() {
        first.ack().await.ctx("acking one")?;
    }
    let next = recv(cx, &mut consumer, "the message freed by one ack").await?;
    ensure!(
        id_of(&next) == all[usize::from(PREFETCH)],
        "after one ack expected {}, got {}",
        all[usize::from(PREFETCH)],
        id_of(&next)
    );
    expect_quiet(cx, &mut consumer, "with the window full again").await?;
    next.nack(false).await.ctx("nacking one")?;
    let last = recv(cx, &mut consumer, "the message freed by one nack").await?;
    ensure!(
        id_of(&last) == all[usize::from(PREFETCH) + 1],
        "after one nack expected {}, got {}",
        all[usize::from(PREFETCH) + 1],
        id_of(&last)
    );
    ack_all(window.chain(std::iter::once(last)).collect()).await
}

/// Closing (or dropping) a consumer requeues its unsettled deliveries, marked
/// redelivered; settling one afterwards fails with `Disconnected`.
async fn consumer_end_requeues(cx: &Cx<'_>, drop_it: bool) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let all = ids("m", 3);
    publish_ids(&conn, "", &q, &all).await?;
    let mut first = consume(&conn, &q, ConsumeOptions::default()).await?;
    let mut deliveries = recv_ids(cx, &mut first, &all, "first consumer")
        .await?
        .into_iter();
    if let Some(d) = deliveries.next() {
        d.ack().await.ctx("acking the first message")?;
    }
    let kept: Vec<_> = deliveries.collect();
    if drop_it {
        drop(first);
    } else {
        first.close().await.ctx("closing the first consumer")?;
    }
    cx.harness.settle().await;
    let mut second = consume(&conn, &q, ConsumeOptions::default()).await?;
    let again = recv_ids(cx, &mut second, &all[1..], "second consumer").await?;
    let not_redelivered: Vec<String> = again
        .iter()
        .filter(|d| !d.redelivered())
        .map(id_of)
        .collect();
    ensure!(
        not_redelivered.is_empty(),
        "requeued messages {not_redelivered:?} came back with redelivered=false"
    );
    ack_all(again).await?;
    let mut errors = Vec::new();
    for d in kept {
        let id = id_of(&d);
        match d.ack().await {
            Err(TransportError::Disconnected(_)) => {}
            other => errors.push(format!("{id}: {other:?}")),
        }
    }
    ensure!(
        errors.is_empty(),
        "acking a delivery of the closed consumer should fail with Disconnected: {}",
        errors.join(", ")
    );
    expect_quiet(cx, &mut second, "after acking everything").await
}

/// `Consumer::close` requeues every unsettled delivery with redelivered set.
pub(crate) async fn closing_consumer_requeues_unsettled(cx: &Cx<'_>) -> CaseResult {
    consumer_end_requeues(cx, false).await
}

/// Dropping a `Consumer` requeues like closing it.
pub(crate) async fn dropping_consumer_requeues_unsettled(cx: &Cx<'_>) -> CaseResult {
    consumer_end_requeues(cx, true).await
}

/// `cancel` stops new deliveries, keeps the outstanding ones settleable, and ends the
/// stream; the rest stays in the queue for the next consumer.
pub(crate) async fn cancel_stops_deliveries_but_keeps_settlement(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let all = ids("m", 3);
    publish_ids(&conn, "", &q, &all).await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::with_prefetch(1)).await?;
    let held = recv(cx, &mut consumer, "first delivery").await?;
    consumer.cancel().await.ctx("cancelling")?;
    held.ack()
        .await
        .ctx("acking a delivery taken before cancel")?;
    let timeout = cx.harness.receive_timeout();
    match tokio::time::timeout(timeout, consumer.next()).await {
        Ok(None) => {}
        Ok(Some(Ok(d))) => {
            return Err(format!(
                "message {} delivered after cancel with prefetch 1 and nothing buffered",
                id_of(&d)
            ));
        }
        Ok(Some(Err(e))) => return Err(format!("the cancelled stream failed: {e}")),
        Err(_) => {
            return Err(format!(
                "the cancelled stream did not end within {timeout:?}"
            ));
        }
    }
    let mut next = consume(&conn, &q, ConsumeOptions::default()).await?;
    let rest = recv_ids(cx, &mut next, &all[1..], "a new consumer after cancel").await?;
    let redelivered: Vec<String> = rest.iter().filter(|d| d.redelivered()).map(id_of).collect();
    ensure!(
        redelivered.is_empty(),
        "messages {redelivered:?} were never delivered before but came redelivered"
    );
    ack_all(rest).await
}

/// Messages published to a queue with no consumer wait there, in order.
pub(crate) async fn messages_published_before_consume_are_buffered(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let all = ids("m", 5);
    publish_ids(&conn, "", &q, &all).await?;
    cx.harness.settle().await;
    let depth = depth(&conn, &q).await?;
    ensure!(
        depth == 5,
        "the queue holds {depth} ready messages, expected 5"
    );
    let other = cx.connect().await;
    let mut consumer = consume(&other, &q, ConsumeOptions::default()).await?;
    let got = recv_ids(cx, &mut consumer, &all, "consuming the backlog").await?;
    let order: Vec<String> = got.iter().map(id_of).collect();
    ack_all(got).await?;
    if cx.caps.ordered_per_queue {
        ensure!(order == all, "backlog arrived out of order: {order:?}");
    }
    Ok(())
}

/// An exclusive consumer keeps others off its queue, and a second exclusive consumer is
/// refused where one exists.
pub(crate) async fn exclusive_consumer_locks_queue(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let other = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let first = consume(&conn, &q, ConsumeOptions::default().with_exclusive(true)).await?;
    match other.consume(&q, ConsumeOptions::default()).await {
        Err(TransportError::ResourceLocked(_)) => {}
        Ok(_) => return Err("a second consumer joined a queue with an exclusive consumer".into()),
        Err(e) => return Err(format!("second consumer: expected ResourceLocked, got {e}")),
    }
    first.close().await.ctx("closing the exclusive consumer")?;
    cx.harness.settle().await;
    let mut later = consume(&other, &q, ConsumeOptions::default()).await?;
    publish_one(&conn, "", &q, "after-exclusive").await?;
    let d = recv(cx, &mut later, "a consumer after the exclusive one closed").await?;
    d.ack().await.ctx("acking")?;
    Ok(())
}
