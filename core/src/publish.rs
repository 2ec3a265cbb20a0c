//! Publishing with nameko's retry policy, on backon's retry loop.

use std::time::Duration;

use backon::Retryable as _;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::transport::{
    Message, PublishOptions, PublishOutcome, Transport, TransportError, TransportStatus,
};

/// Publishes `message`, retrying per `policy` when the transport fails with a connection
/// error (never past `deadline`). A returned or nacked message is an outcome, not
/// retried. A retry waits the policy's delay, or less: after an outage, it starts as
/// soon as the transport is connected again.
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

/// The waits of a [`RetryPolicy`] as a backon backoff: `max_retries` of them, from
/// `interval_start`, each `interval_step` longer, at most `interval_max` (kombu's
/// `retry_policy`, a linear backoff that backon has no builder for).
#[derive(Debug, Clone)]
struct PolicyBackoff {
    policy: RetryPolicy,
    retry: u32,
}

impl PolicyBackoff {
    fn new(policy: &RetryPolicy) -> Self {
        Self {
            policy: *policy,
            retry: 0,
        }
    }
}

impl Iterator for PolicyBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.retry >= self.policy.max_retries {
            return None;
        }
        let delay = self.policy.delay(self.retry);
        self.retry += 1;
        Some(delay)
    }
}

/// Waits `delay` before a retry, or less: the wait ends as soon as the transport is
/// connected again after an outage seen during it, since the retry can succeed from then
/// on (and one started earlier would fail the same way). A failure that left the
/// transport connected (a closed channel, an injected fault) waits the whole delay; a
/// closed transport ends the wait at once, as a retry then fails for good.
async fn pause(mut status: watch::Receiver<TransportStatus>, delay: Duration) {
    let deadline = Instant::now() + delay;
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
    let status = transport.status();
    let mut retry = 0_u32;
    (|| transport.publish(exchange, routing_key, make(), options))
        .retry(PolicyBackoff::new(policy))
        .sleep(move |delay| pause(status.clone(), delay))
        .when(TransportError::is_connection_error)
        .adjust(|_, delay| {
            // No retry that would start at or past the deadline.
            delay.filter(|&delay| deadline.is_none_or(|d| Instant::now() + delay < d))
        })
        .notify(|error, delay| {
            retry += 1;
            tracing::warn!(%error, exchange, routing_key, retry, ?delay, "publish failed; retrying");
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_is_the_policys_delays() {
        let delays: Vec<Duration> = PolicyBackoff::new(&RetryPolicy::default()).collect();
        assert_eq!(
            delays,
            [2, 3, 4].map(Duration::from_secs),
            "nameko's RPC_RETRY_POLICY"
        );
        let policy = RetryPolicy::new(
            5,
            Duration::from_millis(100),
            Duration::from_millis(300),
            Duration::from_millis(500),
        );
        let delays: Vec<u128> = PolicyBackoff::new(&policy).map(|d| d.as_millis()).collect();
        assert_eq!(delays, [100, 400, 500, 500, 500]);
        assert_eq!(PolicyBackoff::new(&RetryPolicy::none()).next(), None);
    }
}
