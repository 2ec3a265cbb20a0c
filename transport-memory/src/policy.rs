//! Delivery policies of a queue, read from its arguments as RabbitMQ reads them:
//! `x-message-ttl`, `x-dead-letter-exchange`, `x-dead-letter-routing-key`,
//! `x-max-length` with `x-overflow`, and `x-max-priority`.

use std::sync::Arc;
use std::time::Duration;

use nameko_transport::{FieldTable, FieldValue, TransportError};

/// What a full queue does with one more message (`x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Drops (dead-letters) the oldest ready message: RabbitMQ's default.
    DropHead,
    /// Refuses the new message; a confirmed publish is nacked.
    RejectPublish,
    /// Refuses the new message and dead-letters it.
    RejectPublishDlx,
}

/// A queue's delivery policies; `None` on the queue when it has none, so the hot path
/// of a plain queue reads one pointer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueuePolicy {
    pub(crate) message_ttl: Option<Duration>,
    pub(crate) dead_letter_exchange: Option<Arc<str>>,
    pub(crate) dead_letter_routing_key: Option<Arc<str>>,
    pub(crate) max_length: Option<usize>,
    pub(crate) overflow: Overflow,
    pub(crate) max_priority: Option<u8>,
}

fn invalid(queue: &str, arg: &str, value: &FieldValue, why: &str) -> TransportError {
    TransportError::PreconditionFailed(format!(
        "invalid arg '{arg}' for queue '{queue}' in vhost '/': {value} {why}"
    ))
}

fn integer(value: &FieldValue) -> Option<i64> {
    match value {
        FieldValue::Timestamp(_) => None,
        other => other.as_i64(),
    }
}

impl QueuePolicy {
    /// Reads the policies from a queue's arguments; `Ok(None)` when it sets none.
    pub(crate) fn parse(
        queue: &str,
        arguments: &FieldTable,
    ) -> Result<Option<Box<Self>>, TransportError> {
        let mut policy = Self {
            message_ttl: None,
            dead_letter_exchange: None,
            dead_letter_routing_key: None,
            max_length: None,
            overflow: Overflow::DropHead,
            max_priority: None,
        };
        let mut any = false;
        for (key, value) in arguments.iter() {
            match key {
                "x-message-ttl" => {
                    let ms = integer(value).filter(|ms| *ms >= 0).ok_or_else(|| {
                        invalid(queue, key, value, "is not a non-negative integer")
                    })?;
                    policy.message_ttl = Some(Duration::from_millis(ms.unsigned_abs()));
                }
                "x-dead-letter-exchange" => {
                    let name = value
                        .as_str()
                        .ok_or_else(|| invalid(queue, key, value, "is not a string"))?;
                    policy.dead_letter_exchange = Some(name.into());
                }
                "x-dead-letter-routing-key" => {
                    let name = value
                        .as_str()
                        .ok_or_else(|| invalid(queue, key, value, "is not a string"))?;
                    policy.dead_letter_routing_key = Some(name.into());
                }
                "x-max-length" => {
                    let n = integer(value)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            invalid(queue, key, value, "is not a non-negative integer")
                        })?;
                    policy.max_length = Some(n);
                }
                "x-overflow" => {
                    policy.overflow = match value.as_str() {
                        Some("drop-head") => Overflow::DropHead,
                        Some("reject-publish") => Overflow::RejectPublish,
                        Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
                        _ => {
                            return Err(invalid(
                                queue,
                                key,
                                value,
                                "is not one of drop-head, reject-publish, reject-publish-dlx",
                            ));
                        }
                    };
                }
                "x-max-priority" => {
                    let n = integer(value)
                        .and_then(|n| u8::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| invalid(queue, key, value, "is not an integer 1..255"))?;
                    policy.max_priority = Some(n);
                }
                _ => continue,
            }
            any = true;
        }
        if policy.dead_letter_routing_key.is_some() && policy.dead_letter_exchange.is_none() {
            return Err(TransportError::PreconditionFailed(format!(
                "invalid arg 'x-dead-letter-routing-key' for queue '{queue}' in vhost '/': \
                 x-dead-letter-exchange is not set"
            )));
        }
        Ok(any.then(|| Box::new(policy)))
    }

    /// The priority a message takes in this queue (0 without `x-max-priority`).
    pub(crate) fn priority_of(&self, requested: Option<u8>) -> u8 {
        match self.max_priority {
            Some(max) => requested.unwrap_or(0).min(max),
            None => 0,
        }
    }
}

/// Reads a message's `expiration` property (milliseconds as text, as AMQP carries it).
pub(crate) fn parse_expiration(expiration: &str) -> Result<Duration, TransportError> {
    expiration
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            TransportError::PreconditionFailed(format!(
                "invalid expiration '{expiration}': not a non-negative number of milliseconds"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_without_policy_arguments_have_none() {
        let args = FieldTable::new()
            .with("x-expires", 1000)
            .with("x-queue-mode", "lazy");
        assert_eq!(QueuePolicy::parse("q", &args), Ok(None));
    }

    #[test]
    fn policy_arguments_are_read_and_checked() {
        let args = FieldTable::new()
            .with("x-message-ttl", 1500)
            .with("x-dead-letter-exchange", "")
            .with("x-max-length", 2)
            .with("x-overflow", "reject-publish")
            .with("x-max-priority", 10);
        let policy = QueuePolicy::parse("q", &args)
            .expect("valid")
            .expect("some");
        assert_eq!(policy.message_ttl, Some(Duration::from_millis(1500)));
        assert_eq!(policy.dead_letter_exchange.as_deref(), Some(""));
        assert_eq!(policy.max_length, Some(2));
        assert_eq!(policy.overflow, Overflow::RejectPublish);
        assert_eq!(policy.priority_of(Some(200)), 10);
        assert_eq!(policy.priority_of(None), 0);
        for bad in [
            FieldTable::new().with("x-message-ttl", -1),
            FieldTable::new().with("x-overflow", "drop-tail"),
            FieldTable::new().with("x-max-priority", 0),
            FieldTable::new().with("x-dead-letter-routing-key", "k"),
        ] {
            assert!(
                matches!(
                    QueuePolicy::parse("q", &bad),
                    Err(TransportError::PreconditionFailed(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(parse_expiration("250"), Ok(Duration::from_millis(250)));
        assert!(parse_expiration("soon").is_err());
    }
}
