//! Publishing with nameko's retry policy.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::transport::{
    Message, PublishOptions, PublishOutcome, Transport, TransportError, TransportStatus,
};

/// Publishes `message`, retrying per `policy` when the transport fails with a connection
/// error (never past `deadline`). A returned or nacked message is an outcome, not
/// retried. A retry waits the policy's delay, or less when the transport reconnects
/// sooner (see [`pause`]).
///
/// # Errors
///
/// The last transport error once retries are spent, the deadline is reached, or the
/// error is not one a retry can fix.
pub async fn publish_with_retry(
    transport: &dyn Transport,
    exchange: &str,
    routing_key: &str,
    message: Message,
    options: PublishOptions,
    policy: &RetryPolicy,
    deadline: Option<Instant>,
) -> Result<PublishOutcome, TransportError> {
    let make = || message.clone();
    publish_made_with_retry(
        transport,
        exchange,
        routing_key,
        make,
        options,
        policy,
        deadline,
    )
    .await
}

/// Waits `delay` before a retry, or less: the wait ends as soon as the transport is
/// connected again after an outage seen during it, since the retry can succeed from then
/// on (and one started earlier would fail the same way). A failure that left the
/// transport connected (a closed channel, an injected fault) waits the whole delay; a
/// closed transport ends the wait at once, as a retry then fails for good.
async fn pause(transport: &dyn Transport, delay: Duration) {
    let deadline = Instant::now() + delay;
    let mut status = transport.status();
    let mut outage = !matches!(*status.borrow_and_update(), TransportStatus::Connected);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => return,
            changed = status.changed() => {
                if changed.is_err() {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                match *status.borrow_and_update() {
                    TransportStatus::Connected if outage => return,
                    TransportStatus::Connected => {}
                    TransportStatus::Closed => return,
                    _ => outage = true,
                }
            }
        }
    }
}

/// As [`publish_with_retry`], with the message made by `make` for each attempt, so that
/// nothing is copied unless a retry happens.
///
/// # Errors
///
/// As [`publish_with_retry`].
pub async fn publish_made_with_retry(
    transport: &dyn Transport,
    exchange: &str,
    routing_key: &str,
    mut make: impl FnMut() -> Message,
    options: PublishOptions,
    policy: &RetryPolicy,
    deadline: Option<Instant>,
) -> Result<PublishOutcome, TransportError> {
    let mut retry = 0;
    loop {
        match transport
            .publish(exchange, routing_key, make(), options)
            .await
        {
            Err(error) if error.is_connection_error() && retry < policy.max_retries => {
                let delay = policy.delay(retry);
                if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                    return Err(error);
                }
                tracing::warn!(%error, exchange, routing_key, retry = retry + 1, ?delay, "publish failed; retrying");
                pause(transport, delay).await;
                retry += 1;
            }
            other => return other,
        }
    }
}
