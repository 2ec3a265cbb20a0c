//! Looking at, replaying and purging a dead-letter queue (`nameko dead-letters`).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::transport::{
    ConsumeOptions, Delivery, FieldTable, FieldValue, Message, PublishOptions, PublishOutcome,
    QueueOptions, Transport, TransportError,
};

use super::{
    ATTEMPTS_HEADER, BACKOFF_HEADER, EXC_PATH_HEADER, EXC_TYPE_HEADER, ORIGINAL_QUEUE_HEADER,
    RETRY_ATTEMPT_HEADER, RETRY_EXC_TYPE_HEADER, RETRY_VALUE_HEADER, VALUE_HEADER,
    dead_letter_queue_name,
};

/// How long to wait for each message of a dead-letter queue the broker said it holds.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The headers a replay removes, so that the message starts its attempts afresh.
const RETRY_HEADERS: &[&str] = &[
    "x-death",
    "x-first-death-reason",
    "x-first-death-queue",
    "x-first-death-exchange",
    EXC_TYPE_HEADER,
    EXC_PATH_HEADER,
    VALUE_HEADER,
    ATTEMPTS_HEADER,
    ORIGINAL_QUEUE_HEADER,
    BACKOFF_HEADER,
    RETRY_ATTEMPT_HEADER,
    RETRY_EXC_TYPE_HEADER,
    RETRY_VALUE_HEADER,
];

/// The dead-letter queue meant by `queue`: itself when it ends in `.dead`, else
/// `<queue>.dead`.
#[must_use]
pub fn dead_queue_of(queue: &str) -> String {
    if queue.ends_with(".dead") {
        queue.to_owned()
    } else {
        dead_letter_queue_name(queue)
    }
}

/// One message of a dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// The message body.
    pub body: Bytes,
    /// The last error's type (`exc_type`).
    pub exc_type: Option<String>,
    /// The last error's value (`value`).
    pub value: Option<String>,
    /// How many attempts were made (`attempts`).
    pub attempts: Option<i64>,
    /// The queue it came from (`original_queue`).
    pub original_queue: Option<String>,
    /// All its headers.
    pub headers: FieldTable,
}

impl DeadLetter {
    fn from_message(message: &Message) -> Self {
        let headers = &message.properties.headers;
        let text = |key: &str| {
            headers
                .get(key)
                .and_then(FieldValue::as_str)
                .map(str::to_owned)
        };
        Self {
            body: message.body.clone(),
            exc_type: text(EXC_TYPE_HEADER),
            value: text(VALUE_HEADER),
            attempts: headers.get(ATTEMPTS_HEADER).and_then(FieldValue::as_i64),
            original_queue: text(ORIGINAL_QUEUE_HEADER),
            headers: headers.clone(),
        }
    }
}

/// Receives up to `limit` of the messages `dead` holds now, unsettled.
async fn take(
    transport: &dyn Transport,
    dead: &str,
    limit: usize,
) -> Result<(crate::transport::Consumer, Vec<Delivery>), TransportError> {
    let held = transport
        .declare_queue(dead, QueueOptions::passive())
        .await?
        .message_count;
    let count = usize::try_from(held).unwrap_or(usize::MAX).min(limit);
    let prefetch = u16::try_from(count.max(1)).unwrap_or(u16::MAX);
    let mut consumer = transport
        .consume(dead, ConsumeOptions::with_prefetch(prefetch))
        .await?;
    let mut deliveries = Vec::with_capacity(count);
    while deliveries.len() < count {
        match tokio::time::timeout(RECEIVE_TIMEOUT, consumer.next()).await {
            Ok(Some(Ok(delivery))) => deliveries.push(delivery),
            Ok(Some(Err(error))) => return Err(error),
            Ok(None) | Err(_) => break,
        }
    }
    Ok((consumer, deliveries))
}

/// The messages of a dead-letter queue (`queue` or `<queue>.dead`), at most `limit`,
/// left in it.
///
/// # Errors
///
/// [`TransportError::NotFound`] when there is no such queue; the broker's errors.
pub async fn list(
    transport: &dyn Transport,
    queue: &str,
    limit: usize,
) -> Result<Vec<DeadLetter>, TransportError> {
    let dead = dead_queue_of(queue);
    let (mut consumer, deliveries) = take(transport, &dead, limit).await?;
    let letters = deliveries
        .iter()
        .map(|d| DeadLetter::from_message(d.message()))
        .collect();
    for delivery in deliveries {
        delivery.nack(true).await?;
    }
    consumer.cancel().await?;
    consumer.close().await?;
    Ok(letters)
}

/// Sends every message of a dead-letter queue (at most `limit`) back to the queue it
/// came from, without its error and retry headers, so that it gets all its attempts
/// again. Each is removed from the dead-letter queue once the broker confirmed its
/// replay. Returns how many were replayed.
///
/// # Errors
///
/// [`TransportError::NotFound`] when there is no such queue; the broker's errors (the
/// messages not yet replayed stay in the dead-letter queue).
pub async fn replay(
    transport: &dyn Transport,
    queue: &str,
    limit: usize,
) -> Result<usize, TransportError> {
    let dead = dead_queue_of(queue);
    let default_target = dead.strip_suffix(".dead").unwrap_or(&dead).to_owned();
    let (mut consumer, deliveries) = take(transport, &dead, limit).await?;
    let mut replayed = 0;
    let mut deliveries = deliveries.into_iter();
    for delivery in deliveries.by_ref() {
        let mut message = delivery.message().clone();
        let target = message
            .properties
            .headers
            .get(ORIGINAL_QUEUE_HEADER)
            .and_then(FieldValue::as_str)
            .map_or_else(|| default_target.clone(), str::to_owned);
        for key in RETRY_HEADERS {
            message.properties.headers.remove(key);
        }
        let outcome = transport
            .publish(
                "",
                &target,
                message,
                PublishOptions::default().with_mandatory(true),
            )
            .await;
        match outcome {
            Ok(PublishOutcome::Confirmed | PublishOutcome::Sent) => {
                delivery.ack().await?;
                replayed += 1;
            }
            Ok(other) => {
                delivery.nack(true).await?;
                return Err(TransportError::Other(format!(
                    "replaying to `{target}`: {other:?} (is the queue declared?)"
                )));
            }
            Err(error) => {
                delivery.nack(true).await?;
                return Err(error);
            }
        }
    }
    for rest in deliveries {
        rest.nack(true).await?;
    }
    consumer.cancel().await?;
    consumer.close().await?;
    Ok(replayed)
}

/// Deletes the messages of a dead-letter queue (at most `limit`); returns how many.
///
/// # Errors
///
/// [`TransportError::NotFound`] when there is no such queue; the broker's errors.
pub async fn purge(
    transport: &dyn Transport,
    queue: &str,
    limit: usize,
) -> Result<usize, TransportError> {
    let dead = dead_queue_of(queue);
    let (mut consumer, deliveries) = take(transport, &dead, limit).await?;
    let count = deliveries.len();
    for delivery in deliveries {
        delivery.ack().await?;
    }
    consumer.cancel().await?;
    consumer.close().await?;
    Ok(count)
}
