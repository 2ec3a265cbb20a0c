//! Publishing with nameko's retry policy.

use tokio::time::Instant;

use crate::config::RetryPolicy;
use crate::transport::{Message, PublishOptions, PublishOutcome, Transport, TransportError};

/// Publishes `message`, retrying per `policy` when the transport fails with a connection
/// error (never past `deadline`). A returned or nacked message is an outcome, not
/// retried.
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
    let mut retry = 0;
    loop {
        let attempt = if retry < policy.max_retries {
            message.clone()
        } else {
            return transport
                .publish(exchange, routing_key, message, options)
                .await;
        };
        match transport
            .publish(exchange, routing_key, attempt, options)
            .await
        {
            Err(error) if error.is_connection_error() => {
                let delay = policy.delay(retry);
                if deadline.is_some_and(|d| Instant::now() + delay >= d) {
                    return Err(error);
                }
                tracing::warn!(%error, exchange, routing_key, retry = retry + 1, ?delay, "publish failed; retrying");
                tokio::time::sleep(delay).await;
                retry += 1;
            }
            other => return other,
        }
    }
}
