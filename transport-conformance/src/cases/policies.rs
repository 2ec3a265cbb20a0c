//! Delivery policies: message TTL (per message and per queue), dead-lettering with the
//! `x-death` header, a headers exchange routing to a delay queue (the backoff pattern of
//! nameko-amqp-retry), max length with its overflow policies, and priority.

use std::sync::Arc;
use std::time::Duration;

use nameko_transport::{
    ConsumeOptions, Delivery, ExchangeKind, FieldTable, FieldValue, Message, PublishOptions,
    PublishOutcome, QueueOptions, Transport,
};

use crate::runner::{CaseResult, Context as _, Cx, ensure};
use crate::support::{consume, depth, expect_quiet, id_of, msg, publish_one, recv};

/// A queue dead-lettering through the default exchange into `<prefix>.dead`.
async fn with_dead_letter_queue(
    cx: &Cx<'_>,
    conn: &Arc<dyn Transport>,
    options: QueueOptions,
) -> Result<(String, String), String> {
    let dead = cx.queue(conn, "dead", QueueOptions::default()).await?;
    let options = options
        .with_argument("x-dead-letter-exchange", "")
        .with_argument("x-dead-letter-routing-key", dead.as_str());
    let q = cx.queue(conn, "q", options).await?;
    Ok((q, dead))
}

async fn publish(
    conn: &Arc<dyn Transport>,
    exchange: &str,
    routing_key: &str,
    message: Message,
) -> Result<PublishOutcome, String> {
    conn.publish(exchange, routing_key, message, PublishOptions::default())
        .await
        .ctx(&format!(
            "publishing to {exchange:?} with key {routing_key:?}"
        ))
}

/// The newest `x-death` entry of a delivery.
fn last_death(delivery: &Delivery) -> Result<&FieldTable, String> {
    delivery
        .properties()
        .headers
        .get("x-death")
        .and_then(FieldValue::as_array)
        .and_then(|deaths| deaths.first())
        .and_then(FieldValue::as_table)
        .ok_or_else(|| {
            format!(
                "message {} has no x-death header: {:?}",
                id_of(delivery),
                delivery.properties().headers
            )
        })
}

fn text<'a>(table: &'a FieldTable, key: &str) -> Option<&'a str> {
    table.get(key).and_then(FieldValue::as_str)
}

/// A message whose `expiration` runs out in a queue without consumers is dead-lettered
/// with an `x-death` entry (reason `expired`, its queue, count 1, the original
/// expiration) and without its `expiration`; one within its time is not.
pub(crate) async fn per_message_ttl_dead_letters_expired(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let (q, dead) = with_dead_letter_queue(cx, &conn, QueueOptions::default()).await?;
    let short = msg("short");
    let short = Message::new(short.body, short.properties.with_expiration("200"));
    publish(&conn, "", &q, short).await?;
    let long = msg("long");
    let long = Message::new(long.body, long.properties.with_expiration("60000"));
    publish(&conn, "", &q, long).await?;
    cx.harness.advance(Duration::from_millis(600)).await;
    cx.harness.settle().await;
    let mut consumer = consume(&conn, &dead, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut consumer, "the expired message").await?;
    ensure!(
        id_of(&d) == "short",
        "dead-lettered {} instead of short",
        id_of(&d)
    );
    let death = last_death(&d)?;
    ensure!(
        text(death, "reason") == Some("expired"),
        "x-death {death:?}"
    );
    ensure!(
        text(death, "queue") == Some(q.as_str()),
        "x-death {death:?}"
    );
    ensure!(
        death.get("count").and_then(FieldValue::as_i64) == Some(1),
        "x-death {death:?}"
    );
    ensure!(
        text(death, "original-expiration") == Some("200"),
        "x-death {death:?}"
    );
    ensure!(
        d.properties().expiration.is_none(),
        "the dead-lettered message kept its expiration {:?}",
        d.properties().expiration
    );
    d.ack().await.ctx("acking")?;
    expect_quiet(cx, &mut consumer, "the unexpired message").await?;
    ensure!(
        depth(&conn, &q).await? == 1,
        "the unexpired message left {q}"
    );
    Ok(())
}

/// `x-message-ttl` expires every message of a queue; without a dead-letter exchange
/// they are dropped.
pub(crate) async fn queue_ttl_drops_expired(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx
        .queue(
            &conn,
            "q",
            QueueOptions::default().with_argument("x-message-ttl", 200),
        )
        .await?;
    publish_one(&conn, "", &q, "m-0").await?;
    publish_one(&conn, "", &q, "m-1").await?;
    ensure!(
        depth(&conn, &q).await? == 2,
        "messages missing before their TTL"
    );
    cx.harness.advance(Duration::from_millis(600)).await;
    cx.harness.settle().await;
    let left = depth(&conn, &q).await?;
    ensure!(left == 0, "{left} messages left after x-message-ttl");
    Ok(())
}

/// A delivery rejected without requeue goes to the dead-letter exchange, `x-death`
/// saying `rejected`.
pub(crate) async fn rejected_is_dead_lettered(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let (q, dead) = with_dead_letter_queue(cx, &conn, QueueOptions::default()).await?;
    publish_one(&conn, "", &q, "m-0").await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut consumer, "the message").await?;
    d.reject(false).await.ctx("rejecting")?;
    let mut dead_consumer = consume(&conn, &dead, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut dead_consumer, "the rejected message").await?;
    let death = last_death(&d)?;
    ensure!(
        text(death, "reason") == Some("rejected"),
        "x-death {death:?}"
    );
    ensure!(
        d.info().routing_key == dead,
        "dead-lettered with key {} instead of {dead}",
        d.info().routing_key
    );
    d.ack().await.ctx("acking")
}

/// An acked message is done with: only rejected (and expired, and overflowing) ones are
/// dead-lettered. The first dead letter is the rejected second message, not the acked
/// first one.
pub(crate) async fn acked_is_not_dead_lettered(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let (q, dead) = with_dead_letter_queue(cx, &conn, QueueOptions::default()).await?;
    publish_one(&conn, "", &q, "m-0").await?;
    publish_one(&conn, "", &q, "m-1").await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let acked = recv(cx, &mut consumer, "the first message").await?;
    acked.ack().await.ctx("acking")?;
    let rejected = recv(cx, &mut consumer, "the second message").await?;
    rejected.reject(false).await.ctx("rejecting")?;
    let mut dead_consumer = consume(&conn, &dead, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut dead_consumer, "the rejected message").await?;
    ensure!(
        d.body().as_ref() == b"m-1",
        "the first dead letter is {:?}, not the rejected m-1",
        String::from_utf8_lossy(d.body())
    );
    d.ack().await.ctx("acking")
}

/// nameko-amqp-retry's backoff: a headers exchange routes by a `backoff` header to a
/// delay queue whose per-message TTL dead-letters through the default exchange back to
/// the queue named by the routing key; each round adds one to `x-death`'s count.
pub(crate) async fn backoff_round_trips_count_in_x_death(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let backoff = cx.exchange(&conn, "backoff", ExchangeKind::Headers).await?;
    let delay = cx
        .queue(
            &conn,
            "backoff--100ms",
            QueueOptions::default()
                .with_expires(60_000)
                .with_argument("x-dead-letter-exchange", ""),
        )
        .await?;
    conn.bind_queue_with_arguments(
        &delay,
        &backoff,
        "",
        FieldTable::new()
            .with("backoff", 100)
            .with("x-match", "any"),
    )
    .await
    .ctx("binding the delay queue")?;
    let target = cx.queue(&conn, "target", QueueOptions::default()).await?;
    let mut consumer = consume(&conn, &target, ConsumeOptions::default()).await?;
    let mut headers = FieldTable::new();
    for round in 1..=2_i64 {
        let message = msg("job");
        let properties = message
            .properties
            .with_headers(headers.clone().with("backoff", 100))
            .with_expiration("100");
        let outcome = publish(
            &conn,
            &backoff,
            &target,
            Message::new(message.body, properties),
        )
        .await?;
        ensure!(
            matches!(outcome, PublishOutcome::Confirmed),
            "publishing to the backoff exchange: {outcome:?}"
        );
        cx.harness.advance(Duration::from_millis(400)).await;
        cx.harness.settle().await;
        let d = recv(cx, &mut consumer, &format!("round {round}")).await?;
        let death = last_death(&d)?;
        ensure!(
            text(death, "queue") == Some(delay.as_str())
                && text(death, "exchange") == Some(backoff.as_str())
                && text(death, "reason") == Some("expired")
                && death.get("count").and_then(FieldValue::as_i64) == Some(round),
            "round {round}: x-death {death:?}"
        );
        headers = d.properties().headers.clone();
        d.ack().await.ctx("acking")?;
    }
    Ok(())
}

/// `x-max-length` with the default overflow drops (dead-letters) the oldest message,
/// `x-death` saying `maxlen`; with `reject-publish` a confirmed publish is nacked and
/// the queue keeps what it had.
pub(crate) async fn max_length_drops_head_or_rejects_publish(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let (q, dead) = with_dead_letter_queue(
        cx,
        &conn,
        QueueOptions::default().with_argument("x-max-length", 2),
    )
    .await?;
    for id in ["m-0", "m-1", "m-2"] {
        publish_one(&conn, "", &q, id).await?;
    }
    cx.harness.settle().await;
    ensure!(depth(&conn, &q).await? == 2, "x-max-length 2 exceeded");
    let mut dead_consumer = consume(&conn, &dead, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut dead_consumer, "the dropped head").await?;
    ensure!(
        id_of(&d) == "m-0",
        "dropped {} instead of the head m-0",
        id_of(&d)
    );
    let death = last_death(&d)?;
    ensure!(text(death, "reason") == Some("maxlen"), "x-death {death:?}");
    d.ack().await.ctx("acking")?;

    let rejecting = cx
        .queue(
            &conn,
            "rejecting",
            QueueOptions::default()
                .with_argument("x-max-length", 1)
                .with_argument("x-overflow", "reject-publish"),
        )
        .await?;
    publish_one(&conn, "", &rejecting, "r-0").await?;
    let outcome = publish(&conn, "", &rejecting, msg("r-1")).await?;
    ensure!(
        outcome == PublishOutcome::Nacked,
        "publishing into a full reject-publish queue: {outcome:?}"
    );
    let mut consumer = consume(&conn, &rejecting, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut consumer, "the kept message").await?;
    ensure!(id_of(&d) == "r-0", "kept {} instead of r-0", id_of(&d));
    d.ack().await.ctx("acking")?;
    expect_quiet(cx, &mut consumer, "the refused message").await
}

/// In a queue with `x-max-priority`, waiting messages of higher priority are delivered
/// first; equal priorities keep their order.
pub(crate) async fn priority_overtakes_waiting_messages(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx
        .queue(
            &conn,
            "q",
            QueueOptions::default().with_argument("x-max-priority", 10),
        )
        .await?;
    for (id, priority) in [
        ("low-0", 0),
        ("low-1", 1),
        ("high-0", 9),
        ("high-1", 9),
        ("top", 200),
    ] {
        let m = msg(id);
        let properties = m.properties.with_priority(priority);
        publish(&conn, "", &q, Message::new(m.body, properties)).await?;
    }
    cx.harness.settle().await;
    let mut consumer = consume(&conn, &q, ConsumeOptions::with_prefetch(1)).await?;
    let mut got = Vec::new();
    for _ in 0..5 {
        let d = recv(cx, &mut consumer, "by priority").await?;
        got.push(id_of(&d));
        d.ack().await.ctx("acking")?;
    }
    ensure!(
        got == ["top", "high-0", "high-1", "low-1", "low-0"],
        "delivered in the order {got:?}"
    );
    Ok(())
}

/// An exchange bound to another (RabbitMQ's exchange-to-exchange binding) routes what
/// the first routes with a matching key; a queue reached both ways gets one copy.
pub(crate) async fn exchange_to_exchange_binding_routes_once(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let source = cx.exchange(&conn, "src", ExchangeKind::Topic).await?;
    let all = cx.exchange(&conn, "all", ExchangeKind::Topic).await?;
    conn.bind_exchange(&all, &source, "#")
        .await
        .ctx("binding the exchanges")?;
    let via_all = cx.queue(&conn, "via-all", QueueOptions::default()).await?;
    conn.bind_queue(&via_all, &all, "job.*")
        .await
        .ctx("binding via-all")?;
    let both = cx.queue(&conn, "both", QueueOptions::default()).await?;
    conn.bind_queue(&both, &all, "#")
        .await
        .ctx("binding both")?;
    conn.bind_queue(&both, &source, "job.x")
        .await
        .ctx("binding both")?;
    publish_one(&conn, &source, "job.x", "m-0").await?;
    publish_one(&conn, &source, "other", "m-1").await?;
    let mut via_all_consumer = consume(&conn, &via_all, ConsumeOptions::default()).await?;
    let d = recv(cx, &mut via_all_consumer, "through the bound exchange").await?;
    ensure!(id_of(&d) == "m-0", "via-all got {}", id_of(&d));
    d.ack().await.ctx("acking")?;
    expect_quiet(
        cx,
        &mut via_all_consumer,
        "a key the binding does not match",
    )
    .await?;
    let mut both_consumer = consume(&conn, &both, ConsumeOptions::default()).await?;
    let mut got = Vec::new();
    for _ in 0..2 {
        let d = recv(cx, &mut both_consumer, "both paths").await?;
        got.push(id_of(&d));
        d.ack().await.ctx("acking")?;
    }
    got.sort();
    ensure!(
        got == ["m-0", "m-1"],
        "the queue reached two ways got {got:?}"
    );
    expect_quiet(cx, &mut both_consumer, "a second copy").await
}
