//! `QUEUE_TYPE`: classic or quorum queues, for every service, one service, or one
//! entrypoint.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use super::ConfigError;
use super::keys::QUEUE_TYPE;
use crate::transport::{FieldValue, QueueOptions};

/// The type of a queue RabbitMQ keeps: fixed when the queue is declared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QueueType {
    /// A classic queue: what Python nameko declares, and the default. Kept on the node
    /// it was declared on (unless mirrored by a policy).
    #[default]
    Classic,
    /// A quorum queue: replicated on a majority of the cluster's nodes (Raft), so that it
    /// and its messages survive a node going down. Durable only, never exclusive nor
    /// auto-deleted.
    Quorum,
}

impl QueueType {
    /// The name RabbitMQ gives the type (`x-queue-type`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Quorum => "quorum",
        }
    }
}

impl fmt::Display for QueueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one queue is to be declared: its type and, for a quorum queue, how many times a
/// message may be delivered before RabbitMQ drops it (`x-delivery-limit`; none by
/// default: a message is redelivered as often as it is returned).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct QueueKind {
    /// The queue's type.
    pub queue_type: QueueType,
    /// `x-delivery-limit`, quorum queues only.
    pub delivery_limit: Option<u32>,
}

impl QueueKind {
    /// A quorum queue without a delivery limit.
    #[must_use]
    pub fn quorum() -> Self {
        Self {
            queue_type: QueueType::Quorum,
            delivery_limit: None,
        }
    }

    /// The same kind with this delivery limit.
    #[must_use]
    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = Some(limit);
        self
    }
}

/// The queue kind chosen for one queue, and whether the configuration named that
/// entrypoint itself (rather than its service or the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueChoice {
    /// The kind to declare.
    pub kind: QueueKind,
    /// Whether `QUEUE_TYPE` named the entrypoint (`service.method`) itself.
    pub explicit: bool,
}

impl QueueChoice {
    /// A kind that came from the service's entry or the default.
    #[must_use]
    pub fn inherited(kind: QueueKind) -> Self {
        Self {
            kind,
            explicit: false,
        }
    }

    /// A kind the configuration gave this entrypoint by name.
    #[must_use]
    pub fn named(kind: QueueKind) -> Self {
        Self {
            kind,
            explicit: true,
        }
    }
}

/// `QUEUE_TYPE`, read: the kind of queue each RPC, event handler and consume queue is
/// declared as. Reply queues are always classic (one per process, short-lived).
///
/// The value is `classic` or `quorum` for every service, or a mapping whose keys are
/// `default`, a service name (its RPC queue and its handlers' queues) or
/// `service.method` (one event handler or consume entrypoint), and whose values are a
/// type or `{type: quorum, delivery_limit: N}`. The most specific key wins.
///
/// ```
/// use nameko_core::config::{Config, QueueType};
/// use serde_json::json;
///
/// let config = Config::from_value(json!({
///     "QUEUE_TYPE": {
///         "default": "quorum",
///         "legacy": "classic",
///         "orders.on_payment": {"type": "quorum", "delivery_limit": 20},
///     }
/// }))?;
/// let types = config.settings()?.queue_type;
/// assert_eq!(types.for_service("orders").kind.queue_type, QueueType::Quorum);
/// assert_eq!(types.for_service("legacy").kind.queue_type, QueueType::Classic);
/// let handler = types.for_entrypoint("orders", "on_payment");
/// assert_eq!(handler.kind.delivery_limit, Some(20));
/// assert!(handler.explicit);
/// # Ok::<(), nameko_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueTypes {
    default: QueueKind,
    by_name: BTreeMap<String, QueueKind>,
}

impl QueueTypes {
    /// Every queue of this kind.
    #[must_use]
    pub fn all(kind: QueueKind) -> Self {
        Self {
            default: kind,
            by_name: BTreeMap::new(),
        }
    }

    /// The kind of a service's queues (its RPC queue): the service's own entry, else the
    /// default.
    #[must_use]
    pub fn for_service(&self, service: &str) -> QueueChoice {
        QueueChoice {
            kind: self.by_name.get(service).copied().unwrap_or(self.default),
            explicit: false,
        }
    }

    /// The kind of one entrypoint's queue: `service.method`, else the service's entry,
    /// else the default.
    #[must_use]
    pub fn for_entrypoint(&self, service: &str, method: &str) -> QueueChoice {
        match self.by_name.get(&format!("{service}.{method}")) {
            Some(kind) => QueueChoice {
                kind: *kind,
                explicit: true,
            },
            None => self.for_service(service),
        }
    }
}

/// Why a queue cannot be declared as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue `{queue}` cannot be a quorum queue: {reason} (QUEUE_TYPE)")]
#[non_exhaustive]
pub struct QueueTypeError {
    /// The queue.
    pub queue: String,
    /// What quorum queues do not allow.
    pub reason: &'static str,
}

/// `options` for `queue` with the arguments of `choice`. A quorum queue must be durable,
/// not exclusive and not auto-deleted; a queue that is not (an event handler without
/// reliable delivery) stays classic when the service or the default asked for quorum,
/// and is an error when its entrypoint was named.
///
/// ```
/// use nameko_core::config::{QueueChoice, QueueKind, queue_options_for};
/// use nameko_core::transport::{FieldValue, QueueOptions};
///
/// let choice = QueueChoice::inherited(QueueKind::quorum().with_delivery_limit(5));
/// let options = queue_options_for("rpc-orders", QueueOptions::durable(), choice)?;
/// assert_eq!(options.arguments.get("x-queue-type"), Some(&FieldValue::String("quorum".into())));
/// assert_eq!(options.arguments.get("x-delivery-limit"), Some(&FieldValue::I32(5)));
///
/// let transient = QueueOptions::durable().with_auto_delete(true);
/// assert_eq!(queue_options_for("evt-a-b--c.d", transient.clone(), choice)?, transient);
/// let named = QueueChoice::named(QueueKind::quorum());
/// assert!(queue_options_for("evt-a-b--c.d", transient, named).is_err());
/// # Ok::<(), nameko_core::config::QueueTypeError>(())
/// ```
///
/// # Errors
///
/// [`QueueTypeError`] when the entrypoint was named for a quorum queue its options do
/// not allow.
pub fn queue_options_for(
    queue: &str,
    mut options: QueueOptions,
    choice: QueueChoice,
) -> Result<QueueOptions, QueueTypeError> {
    if choice.kind.queue_type != QueueType::Quorum {
        return Ok(options);
    }
    let refused = if !options.durable {
        Some("it is not durable")
    } else if options.exclusive {
        Some("it is exclusive")
    } else if options.auto_delete {
        Some("it is auto-deleted (an event handler without reliable delivery)")
    } else {
        None
    };
    if let Some(reason) = refused {
        if choice.explicit {
            return Err(QueueTypeError {
                queue: queue.to_owned(),
                reason,
            });
        }
        tracing::debug!(queue, reason, "declared as a classic queue");
        return Ok(options);
    }
    options.arguments.insert(
        "x-queue-type".to_owned(),
        FieldValue::String("quorum".into()),
    );
    if let Some(limit) = choice.kind.delivery_limit {
        let limit = i32::try_from(limit).map_or(FieldValue::I64(limit.into()), FieldValue::I32);
        options
            .arguments
            .insert("x-delivery-limit".to_owned(), limit);
    }
    Ok(options)
}

/// The rule of `QUEUE_TYPE`: unset or null means classic everywhere.
pub(super) fn queue_type(value: Option<&Value>) -> Result<QueueTypes, ConfigError> {
    match value {
        None | Some(Value::Null) => Ok(QueueTypes::default()),
        Some(Value::Object(entries)) => {
            let mut types = QueueTypes::default();
            for (name, value) in entries {
                let key = format!("{QUEUE_TYPE}.{name}");
                let kind = kind(&key, value)?;
                if name == "default" {
                    types.default = kind;
                } else if name.is_empty() || name.matches('.').count() > 1 {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: "keys are `default`, a service name or `service.method`".to_owned(),
                    });
                } else {
                    types.by_name.insert(name.clone(), kind);
                }
            }
            Ok(types)
        }
        Some(other) => Ok(QueueTypes::all(kind(QUEUE_TYPE, other)?)),
    }
}

const EXPECTED: &str =
    "`classic`, `quorum`, or a mapping such as {type: quorum, delivery_limit: 20}";

fn kind(key: &str, value: &Value) -> Result<QueueKind, ConfigError> {
    match value {
        Value::String(name) => Ok(QueueKind {
            queue_type: type_named(key, name)?,
            delivery_limit: None,
        }),
        Value::Object(fields) => {
            let mut kind = QueueKind::default();
            for (field, value) in fields {
                match (field.as_str(), value) {
                    ("type", Value::String(name)) => kind.queue_type = type_named(key, name)?,
                    ("delivery_limit", Value::Null) => {}
                    ("delivery_limit", Value::Number(n)) => {
                        let limit = n.as_u64().and_then(|n| u32::try_from(n).ok());
                        kind.delivery_limit = Some(limit.ok_or_else(|| ConfigError::Invalid {
                            key: format!("{key}.delivery_limit"),
                            reason: "must be an integer from 0 to 4294967295".to_owned(),
                        })?);
                    }
                    _ => {
                        return Err(ConfigError::Invalid {
                            key: format!("{key}.{field}"),
                            reason: format!("unknown or wrongly typed field; expected {EXPECTED}"),
                        });
                    }
                }
            }
            if kind.delivery_limit.is_some() && kind.queue_type != QueueType::Quorum {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    reason: "a delivery limit needs `type: quorum` (classic queues have none)"
                        .to_owned(),
                });
            }
            Ok(kind)
        }
        other => Err(super::error::wrong(key, EXPECTED, other)),
    }
}

fn type_named(key: &str, name: &str) -> Result<QueueType, ConfigError> {
    match name.to_ascii_lowercase().as_str() {
        "classic" => Ok(QueueType::Classic),
        "quorum" => Ok(QueueType::Quorum),
        "stream" => Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: "stream queues are not supported (they are not consumed with acks as nameko consumes)"
                .to_owned(),
        }),
        _ => Err(ConfigError::Invalid {
            key: key.to_owned(),
            reason: format!("unknown queue type `{name}`; expected `classic` or `quorum`"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_most_specific_entry_wins() {
        let types = queue_type(Some(&json!({
            "default": "quorum",
            "a": "classic",
            "a.h": {"type": "quorum", "delivery_limit": 3},
        })))
        .unwrap();
        assert_eq!(types.for_service("b").kind, QueueKind::quorum());
        assert_eq!(types.for_service("a").kind.queue_type, QueueType::Classic);
        assert_eq!(
            types.for_entrypoint("a", "h"),
            QueueChoice {
                kind: QueueKind::quorum().with_delivery_limit(3),
                explicit: true
            }
        );
        assert_eq!(
            types.for_entrypoint("a", "other").kind.queue_type,
            QueueType::Classic
        );
        assert_eq!(queue_type(None).unwrap(), QueueTypes::default());
        assert_eq!(
            queue_type(Some(&json!("Quorum"))).unwrap(),
            QueueTypes::all(QueueKind::quorum())
        );
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for (value, says) in [
            (json!("mirrored"), "unknown queue type `mirrored`"),
            (json!("stream"), "stream queues are not supported"),
            (json!(3), "`classic`, `quorum`"),
            (
                json!({"a": {"type": "quorum", "limit": 3}}),
                "QUEUE_TYPE.a.limit",
            ),
            (
                json!({"a": {"type": "classic", "delivery_limit": 3}}),
                "needs `type: quorum`",
            ),
            (
                json!({"a": {"type": "quorum", "delivery_limit": -1}}),
                "from 0 to",
            ),
            (json!({"a.b.c": "quorum"}), "`service.method`"),
        ] {
            let error = queue_type(Some(&value)).unwrap_err().to_string();
            assert!(error.contains(says), "{value}: {error}");
        }
    }
}
