//! Queues: their messages, consumers, flags and the equivalence check of redeclarations.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use nameko_transport::{DeliveryMode, FieldTable, FieldValue, Message, TransportError};
use tokio::time::Instant;

use crate::ids::{ConnectionId, ConsumerId, QueueId};
use crate::policy::QueuePolicy;
use crate::recycle::SpareCopies;

/// A message waiting in a queue, or delivered and not yet settled.
///
/// The message is shared: routing to several queues, logging it and keeping it for
/// redelivery never copies it.
#[derive(Debug, Clone)]
pub(crate) struct QueuedMessage {
    pub(crate) message: Arc<Message>,
    pub(crate) exchange: Arc<str>,
    pub(crate) routing_key: Arc<str>,
    pub(crate) redelivered: bool,
    /// When the message expires in this queue (`expiration`, `x-message-ttl`).
    pub(crate) expires_at: Option<Instant>,
    /// Its priority in this queue (0 unless the queue has `x-max-priority`).
    pub(crate) priority: u8,
}

impl QueuedMessage {
    /// Whether it survives a broker restart in a durable queue.
    pub(crate) fn is_persistent(&self) -> bool {
        self.message.properties.delivery_mode == Some(DeliveryMode::Persistent)
    }
}

/// The declared shape of a queue, compared on redeclaration.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QueueShape {
    pub(crate) durable: bool,
    pub(crate) exclusive: bool,
    pub(crate) auto_delete: bool,
    pub(crate) arguments: FieldTable,
}

/// A queue.
#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) id: QueueId,
    pub(crate) name: Arc<str>,
    pub(crate) shape: QueueShape,
    /// The connection an exclusive queue belongs to.
    pub(crate) owner: Option<ConnectionId>,
    /// `x-expires`: deleted after being unused this long.
    pub(crate) expires: Option<Duration>,
    /// When the queue was last declared or last lost its consumers.
    pub(crate) last_used: Instant,
    pub(crate) ready: VecDeque<QueuedMessage>,
    /// Consumers receiving from the queue, in round-robin order.
    pub(crate) consumers: Vec<ConsumerId>,
    pub(crate) next_consumer: usize,
    pub(crate) exclusive_consumer: bool,
    pub(crate) has_had_consumer: bool,
    /// Deliveries from this queue not yet settled.
    pub(crate) unacked: usize,
    /// `(exchange, routing key)` of every binding of this queue.
    pub(crate) bindings: Vec<(Arc<str>, Arc<str>)>,
    /// TTL, dead-lettering, max length and priority, when the queue has any.
    pub(crate) policy: Option<Box<QueuePolicy>>,
    /// Unavailable, as a classic queue whose cluster node is down
    /// ([`MemoryBroker::set_queue_down`](crate::MemoryBroker::set_queue_down)).
    pub(crate) down: bool,
    /// Copies of settled deliveries, recycled for the next ones.
    pub(crate) spares: SpareCopies,
    /// The targets of a message published to the default exchange with this queue's name.
    pub(crate) route: Arc<[QueueId]>,
}

impl Queue {
    pub(crate) fn new(
        id: QueueId,
        name: Arc<str>,
        shape: QueueShape,
        owner: Option<ConnectionId>,
        expires: Option<Duration>,
        now: Instant,
    ) -> Self {
        Self {
            id,
            name,
            shape,
            owner,
            expires,
            last_used: now,
            ready: VecDeque::new(),
            consumers: Vec::new(),
            next_consumer: 0,
            exclusive_consumer: false,
            has_had_consumer: false,
            unacked: 0,
            bindings: Vec::new(),
            policy: None,
            down: false,
            spares: SpareCopies::default(),
            route: Arc::from([id]),
        }
    }

    /// Whether messages are ordered by priority (`x-max-priority`).
    fn by_priority(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|p| p.max_priority.is_some())
    }

    /// Adds a newly routed message: at the tail, or behind every message of its
    /// priority or higher in a priority queue.
    pub(crate) fn push_ready(&mut self, message: QueuedMessage) {
        if self.by_priority() {
            let at = self
                .ready
                .iter()
                .rposition(|m| m.priority >= message.priority)
                .map_or(0, |i| i + 1);
            self.ready.insert(at, message);
        } else {
            self.ready.push_back(message);
        }
    }

    /// Puts a message back for redelivery: at the head, or at the head of its priority
    /// in a priority queue.
    pub(crate) fn requeue_front(&mut self, message: QueuedMessage) {
        if self.by_priority() {
            let at = self
                .ready
                .iter()
                .position(|m| m.priority <= message.priority)
                .unwrap_or(self.ready.len());
            self.ready.insert(at, message);
        } else {
            self.ready.push_front(message);
        }
    }

    /// When the queue expires if nothing uses it before, if it can expire now.
    pub(crate) fn expiry_deadline(&self) -> Option<Instant> {
        if self.consumers.is_empty() {
            self.expires.map(|e| self.last_used + e)
        } else {
            None
        }
    }

    /// Whether `conn` may use this queue: it is not down, nor exclusive to another
    /// connection.
    pub(crate) fn check_access(&self, conn: ConnectionId) -> Result<(), TransportError> {
        if self.down {
            return Err(queue_down(&self.name));
        }
        match self.owner {
            Some(owner) if owner != conn => Err(TransportError::ResourceLocked(format!(
                "cannot obtain exclusive access to locked queue '{}' in vhost '/'. It could be \
                 originally declared on another connection or the exclusive property value does \
                 not match that of the original declaration.",
                self.name
            ))),
            _ => Ok(()),
        }
    }

    /// Checks a redeclaration against the queue as it is, as RabbitMQ does.
    pub(crate) fn check_equivalent(&self, shape: &QueueShape) -> Result<(), TransportError> {
        let current = &self.shape;
        for (arg, received, now) in [
            ("durable", shape.durable, current.durable),
            ("exclusive", shape.exclusive, current.exclusive),
            ("auto_delete", shape.auto_delete, current.auto_delete),
        ] {
            if received != now {
                return Err(TransportError::PreconditionFailed(format!(
                    "inequivalent arg '{arg}' for queue '{}' in vhost '/': received '{received}' \
                     but current is '{now}'",
                    self.name
                )));
            }
        }
        for key in CHECKED_ARGUMENTS {
            let (received, now) = (shape.arguments.get(key), current.arguments.get(key));
            if !equivalent(received, now) {
                return Err(TransportError::PreconditionFailed(format!(
                    "inequivalent arg '{key}' for queue '{}' in vhost '/': received {} but \
                     current is {}",
                    self.name,
                    describe(received),
                    describe(now)
                )));
            }
        }
        Ok(())
    }
}

/// The queue arguments RabbitMQ compares on redeclaration; others are not checked.
const CHECKED_ARGUMENTS: &[&str] = &[
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
    "x-delivery-limit",
    "x-queue-leader-locator",
];

/// Argument equality as RabbitMQ sees it: integers of any width are equal by value.
fn equivalent(a: Option<&FieldValue>, b: Option<&FieldValue>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (integer(a), integer(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        _ => false,
    }
}

fn integer(value: &FieldValue) -> Option<i64> {
    match value {
        FieldValue::Timestamp(_) => None,
        other => other.as_i64(),
    }
}

fn describe(value: Option<&FieldValue>) -> String {
    match value {
        None => "none".to_owned(),
        Some(v) => format!("the value '{v}'"),
    }
}

/// Reads and validates `x-expires` (a positive integer number of milliseconds).
pub(crate) fn parse_expires(
    queue: &str,
    arguments: &FieldTable,
) -> Result<Option<Duration>, TransportError> {
    let Some(value) = arguments.get("x-expires") else {
        return Ok(None);
    };
    match integer(value) {
        Some(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms.unsigned_abs()))),
        _ => Err(TransportError::PreconditionFailed(format!(
            "invalid arg 'x-expires' for queue '{queue}' in vhost '/': {value} is not a \
             positive integer"
        ))),
    }
}

/// What RabbitMQ answers for a classic queue whose node is down (404 `NOT_FOUND`).
pub(crate) fn queue_down(name: &str) -> TransportError {
    TransportError::NotFound(format!(
        "home node of durable queue '{name}' in vhost '/' is down or inaccessible"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_arguments_compare_by_value_across_widths() {
        assert!(equivalent(
            Some(&FieldValue::I32(1000)),
            Some(&FieldValue::I64(1000))
        ));
        assert!(!equivalent(
            Some(&FieldValue::I32(1000)),
            Some(&FieldValue::I32(999))
        ));
        assert!(!equivalent(None, Some(&FieldValue::I32(1))));
        assert!(equivalent(
            Some(&FieldValue::from("a")),
            Some(&FieldValue::from("a"))
        ));
    }

    #[test]
    fn x_expires_must_be_a_positive_integer() {
        let ok = FieldTable::new().with("x-expires", 1500);
        assert_eq!(
            parse_expires("q", &ok),
            Ok(Some(Duration::from_millis(1500)))
        );
        let zero = FieldTable::new().with("x-expires", 0);
        assert!(matches!(
            parse_expires("q", &zero),
            Err(TransportError::PreconditionFailed(_))
        ));
        let text = FieldTable::new().with("x-expires", "soon");
        assert!(parse_expires("q", &text).is_err());
        assert_eq!(parse_expires("q", &FieldTable::new()), Ok(None));
    }
}
