//! Helpers shared by the cases: messages named by id, bounded receives, id bookkeeping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::StreamExt as _;
use nameko_transport::{
    ConsumeOptions, Consumer, Delivery, Message, Properties, PublishOptions, PublishOutcome,
    QueueOptions, Transport, TransportError,
};

use crate::runner::{Context as _, Cx};

/// A message whose body and `message_id` are `id`.
pub(crate) fn msg(id: &str) -> Message {
    Message::new(
        id.as_bytes().to_vec(),
        Properties::default().with_message_id(id),
    )
}

/// `count` ids `<tag>-0`, `<tag>-1`, ...
pub(crate) fn ids(tag: &str, count: usize) -> Vec<String> {
    (0..count).map(|n| format!("{tag}-{n}")).collect()
}

/// The `message_id` of a delivery, or a marker when it has none.
pub(crate) fn id_of(delivery: &Delivery) -> String {
    delivery
        .properties()
        .message_id
        .clone()
        .unwrap_or_else(|| "<no message_id>".to_owned())
}

/// Publishes each id as a message, with confirms, failing on any outcome but
/// `Confirmed`/`Sent`.
pub(crate) async fn publish_ids(
    conn: &Arc<dyn Transport>,
    exchange: &str,
    routing_key: &str,
    ids: &[String],
) -> Result<(), String> {
    for id in ids {
        publish_one(conn, exchange, routing_key, id).await?;
    }
    Ok(())
}

/// Publishes one id as a message, with confirms.
pub(crate) async fn publish_one(
    conn: &Arc<dyn Transport>,
    exchange: &str,
    routing_key: &str,
    id: &str,
) -> Result<(), String> {
    let outcome = conn
        .publish(exchange, routing_key, msg(id), PublishOptions::default())
        .await
        .ctx(&format!(
            "publishing {id} to exchange {exchange:?} with key {routing_key:?}"
        ))?;
    match outcome {
        PublishOutcome::Confirmed | PublishOutcome::Sent => Ok(()),
        other => Err(format!(
            "publishing {id} to exchange {exchange:?} with key {routing_key:?}: {other:?}"
        )),
    }
}

/// Starts a consumer on `queue`.
pub(crate) async fn consume(
    conn: &Arc<dyn Transport>,
    queue: &str,
    options: ConsumeOptions,
) -> Result<Consumer, String> {
    conn.consume(queue, options)
        .await
        .ctx(&format!("consuming {queue}"))
}

/// The next delivery, within the harness's receive timeout.
pub(crate) async fn recv(
    cx: &Cx<'_>,
    consumer: &mut Consumer,
    what: &str,
) -> Result<Delivery, String> {
    let timeout = cx.harness.receive_timeout();
    match tokio::time::timeout(timeout, consumer.next()).await {
        Ok(Some(Ok(delivery))) => Ok(delivery),
        Ok(Some(Err(e))) => Err(format!("{what}: the consumer failed: {e}")),
        Ok(None) => Err(format!("{what}: the consumer stream ended")),
        Err(_) => Err(format!("{what}: nothing arrived within {timeout:?}")),
    }
}

/// Fails if anything arrives on `consumer` within the harness's quiet period.
pub(crate) async fn expect_quiet(
    cx: &Cx<'_>,
    consumer: &mut Consumer,
    what: &str,
) -> Result<(), String> {
    match tokio::time::timeout(cx.harness.quiet_period(), consumer.next()).await {
        Err(_) => Ok(()),
        Ok(Some(Ok(delivery))) => Err(format!(
            "{what}: message {} arrived but none should have (redelivered={})",
            id_of(&delivery),
            delivery.redelivered()
        )),
        Ok(Some(Err(e))) => Err(format!("{what}: the consumer failed: {e}")),
        Ok(None) => Err(format!("{what}: the consumer stream ended")),
    }
}

/// Receives until every id in `expected` has arrived (or a receive times out), without
/// settling; fails naming the ids missing, duplicated or unexpected.
pub(crate) async fn recv_ids(
    cx: &Cx<'_>,
    consumer: &mut Consumer,
    expected: &[String],
    what: &str,
) -> Result<Vec<Delivery>, String> {
    let mut got = Vec::with_capacity(expected.len());
    while got.len() < expected.len() {
        match recv(cx, consumer, what).await {
            Ok(delivery) => got.push(delivery),
            Err(why) => {
                let ids: Vec<String> = got.iter().map(id_of).collect();
                let diff = diff_ids(expected, &ids).unwrap_or_default();
                return Err(format!(
                    "{why}; received {} of {}: {diff}",
                    got.len(),
                    expected.len()
                ));
            }
        }
    }
    let ids: Vec<String> = got.iter().map(id_of).collect();
    if let Some(diff) = diff_ids(expected, &ids) {
        return Err(format!("{what}: {diff}"));
    }
    Ok(got)
}

/// Acks every delivery.
pub(crate) async fn ack_all(deliveries: Vec<Delivery>) -> Result<(), String> {
    for d in deliveries {
        let id = id_of(&d);
        d.ack().await.ctx(&format!("acking {id}"))?;
    }
    Ok(())
}

/// How many messages are ready in `queue`, by a passive declaration.
pub(crate) async fn depth(conn: &Arc<dyn Transport>, queue: &str) -> Result<u32, String> {
    conn.declare_queue(queue, QueueOptions::passive())
        .await
        .map(|declared| declared.message_count)
        .ctx(&format!("passive declaration of {queue}"))
}

/// Whether `queue` exists, by a passive declaration.
pub(crate) async fn queue_exists(conn: &Arc<dyn Transport>, queue: &str) -> Result<bool, String> {
    match conn.declare_queue(queue, QueueOptions::passive()).await {
        Ok(_) => Ok(true),
        Err(TransportError::NotFound(_)) => Ok(false),
        Err(e) => Err(format!("passive declaration of {queue}: {e}")),
    }
}

/// Drains exactly the messages ready in `queue` (its depth), acking them, and returns
/// their ids in arrival order.
pub(crate) async fn drain_ids(
    cx: &Cx<'_>,
    conn: &Arc<dyn Transport>,
    queue: &str,
) -> Result<Vec<String>, String> {
    let count = depth(conn, queue).await?;
    let mut ids = Vec::new();
    if count == 0 {
        return Ok(ids);
    }
    let mut consumer = consume(conn, queue, ConsumeOptions::default()).await?;
    for n in 0..count {
        let d = recv(
            cx,
            &mut consumer,
            &format!("draining message {n} of {count} from {queue}"),
        )
        .await?;
        ids.push(id_of(&d));
        d.ack().await.ctx("acking a drained message")?;
    }
    consumer
        .close()
        .await
        .ctx("closing the draining consumer")?;
    Ok(ids)
}

/// Describes how `got` differs from `expected` as multisets: ids missing, duplicated or
/// unexpected. `None` when they hold the same ids once each.
pub(crate) fn diff_ids(expected: &[String], got: &[String]) -> Option<String> {
    let expected_set: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in got {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let missing: Vec<&str> = expected_set
        .iter()
        .copied()
        .filter(|id| !counts.contains_key(id))
        .collect();
    let duplicated: Vec<String> = counts
        .iter()
        .filter(|(id, n)| **n > 1 && expected_set.contains(*id))
        .map(|(id, n)| format!("{id} x{n}"))
        .collect();
    let unexpected: Vec<&str> = counts
        .keys()
        .copied()
        .filter(|id| !expected_set.contains(id))
        .collect();
    if missing.is_empty() && duplicated.is_empty() && unexpected.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing {}", list(&missing)));
    }
    if !duplicated.is_empty() {
        parts.push(format!("came more than once {}", list(&duplicated)));
    }
    if !unexpected.is_empty() {
        parts.push(format!("unexpected {}", list(&unexpected)));
    }
    Some(parts.join("; "))
}

/// A readable list, cut after 20 items.
fn list<T: std::fmt::Display>(items: &[T]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = items.iter().take(SHOWN).map(ToString::to_string).collect();
    if items.len() > SHOWN {
        out.push(format!("... ({} in all)", items.len()));
    }
    format!("[{}]", out.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn diff_ids_names_missing_duplicated_and_unexpected() {
        assert_eq!(diff_ids(&s(&["a", "b"]), &s(&["b", "a"])), None);
        let diff = diff_ids(&s(&["a", "b", "c"]), &s(&["a", "a", "x"])).unwrap_or_default();
        assert_eq!(
            diff,
            "missing [b, c]; came more than once [a x2]; unexpected [x]"
        );
    }
}
