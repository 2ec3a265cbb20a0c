//! Messages and their AMQP properties.

use bytes::Bytes;

use crate::FieldTable;

/// Whether the broker writes a message to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryMode {
    /// Delivery mode 1: kept in memory only.
    Transient,
    /// Delivery mode 2: written to disk on durable queues. Everything nameko sends is
    /// persistent.
    Persistent,
}

impl DeliveryMode {
    /// The AMQP number of this mode (1 or 2).
    #[must_use]
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Transient => 1,
            Self::Persistent => 2,
        }
    }

    /// The mode for an AMQP number; anything but 2 is transient, as RabbitMQ reads it.
    #[must_use]
    pub fn from_u8(mode: u8) -> Self {
        if mode == 2 {
            Self::Persistent
        } else {
            Self::Transient
        }
    }
}

/// The AMQP basic properties of a message: everything nameko reads or writes, and the
/// rest of the AMQP 0-9-1 property list so that nothing is lost on the way through.
///
/// ```
/// use nameko_transport::{DeliveryMode, Properties};
///
/// let props = Properties::json()
///     .with_correlation_id("6f1c…")
///     .with_reply_to("0b5e…");
/// assert_eq!(props.content_type.as_deref(), Some("application/json"));
/// assert_eq!(props.delivery_mode, Some(DeliveryMode::Persistent));
/// ```
#[derive(Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Properties {
    /// MIME type of the body; nameko sends and requires `application/json`.
    pub content_type: Option<String>,
    /// Encoding of the body; nameko sends `utf-8`.
    pub content_encoding: Option<String>,
    /// Application headers; nameko carries context data here as `nameko.<key>`.
    pub headers: FieldTable,
    /// Persistence of the message.
    pub delivery_mode: Option<DeliveryMode>,
    /// Priority, 0 to 9; nameko always sends 0.
    pub priority: Option<u8>,
    /// Matches an RPC reply to its request.
    pub correlation_id: Option<String>,
    /// Routing key of the reply queue an RPC reply is published to.
    pub reply_to: Option<String>,
    /// Per-message time to live, in milliseconds, as a decimal string.
    pub expiration: Option<String>,
    /// Application message identifier.
    pub message_id: Option<String>,
    /// Seconds since the Unix epoch.
    pub timestamp: Option<u64>,
    /// The AMQP `type` property.
    pub kind: Option<String>,
    /// The AMQP `user-id` property (checked by RabbitMQ against the connection's user).
    pub user_id: Option<String>,
    /// The AMQP `app-id` property.
    pub app_id: Option<String>,
    /// The AMQP `cluster-id` property (deprecated in AMQP 0-9-1, carried for completeness).
    pub cluster_id: Option<String>,
}

impl Clone for Properties {
    fn clone(&self) -> Self {
        Self {
            content_type: self.content_type.clone(),
            content_encoding: self.content_encoding.clone(),
            headers: self.headers.clone(),
            delivery_mode: self.delivery_mode,
            priority: self.priority,
            correlation_id: self.correlation_id.clone(),
            reply_to: self.reply_to.clone(),
            expiration: self.expiration.clone(),
            message_id: self.message_id.clone(),
            timestamp: self.timestamp,
            kind: self.kind.clone(),
            user_id: self.user_id.clone(),
            app_id: self.app_id.clone(),
            cluster_id: self.cluster_id.clone(),
        }
    }

    /// Copies field by field, reusing the strings `self` already has: a broker that
    /// keeps a copy of every message it delivers can keep it in recycled properties
    /// without allocating.
    fn clone_from(&mut self, source: &Self) {
        self.content_type.clone_from(&source.content_type);
        self.content_encoding.clone_from(&source.content_encoding);
        self.headers.clone_from(&source.headers);
        self.delivery_mode = source.delivery_mode;
        self.priority = source.priority;
        self.correlation_id.clone_from(&source.correlation_id);
        self.reply_to.clone_from(&source.reply_to);
        self.expiration.clone_from(&source.expiration);
        self.message_id.clone_from(&source.message_id);
        self.timestamp = source.timestamp;
        self.kind.clone_from(&source.kind);
        self.user_id.clone_from(&source.user_id);
        self.app_id.clone_from(&source.app_id);
        self.cluster_id.clone_from(&source.cluster_id);
    }
}

impl Properties {
    /// The properties nameko puts on every JSON message: `application/json`, `utf-8`,
    /// persistent, priority 0, empty headers.
    #[must_use]
    pub fn json() -> Self {
        Self {
            content_type: Some("application/json".to_owned()),
            content_encoding: Some("utf-8".to_owned()),
            delivery_mode: Some(DeliveryMode::Persistent),
            priority: Some(0),
            ..Self::default()
        }
    }

    /// Sets the content type.
    #[must_use]
    pub fn with_content_type(mut self, value: impl Into<String>) -> Self {
        self.content_type = Some(value.into());
        self
    }

    /// Sets the content encoding.
    #[must_use]
    pub fn with_content_encoding(mut self, value: impl Into<String>) -> Self {
        self.content_encoding = Some(value.into());
        self
    }

    /// Replaces the headers.
    #[must_use]
    pub fn with_headers(mut self, headers: FieldTable) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the delivery mode.
    #[must_use]
    pub fn with_delivery_mode(mut self, mode: DeliveryMode) -> Self {
        self.delivery_mode = Some(mode);
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the correlation id.
    #[must_use]
    pub fn with_correlation_id(mut self, value: impl Into<String>) -> Self {
        self.correlation_id = Some(value.into());
        self
    }

    /// Sets the reply-to routing key.
    #[must_use]
    pub fn with_reply_to(mut self, value: impl Into<String>) -> Self {
        self.reply_to = Some(value.into());
        self
    }

    /// Sets the expiration (milliseconds, as AMQP carries it: a string).
    #[must_use]
    pub fn with_expiration(mut self, value: impl Into<String>) -> Self {
        self.expiration = Some(value.into());
        self
    }

    /// Sets the message id.
    #[must_use]
    pub fn with_message_id(mut self, value: impl Into<String>) -> Self {
        self.message_id = Some(value.into());
        self
    }

    /// Sets the timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, seconds: u64) -> Self {
        self.timestamp = Some(seconds);
        self
    }

    /// Sets the AMQP `type` property.
    #[must_use]
    pub fn with_kind(mut self, value: impl Into<String>) -> Self {
        self.kind = Some(value.into());
        self
    }

    /// Sets the AMQP `user-id` property.
    #[must_use]
    pub fn with_user_id(mut self, value: impl Into<String>) -> Self {
        self.user_id = Some(value.into());
        self
    }

    /// Sets the AMQP `app-id` property.
    #[must_use]
    pub fn with_app_id(mut self, value: impl Into<String>) -> Self {
        self.app_id = Some(value.into());
        self
    }
}

/// A message: a body and its properties.
///
/// The body is [`Bytes`], so handing a message to a transport, routing it to several
/// queues and delivering it never copies it.
///
/// ```
/// use nameko_transport::{Message, Properties};
///
/// let msg = Message::new(r#"{"args": [], "kwargs": {}}"#, Properties::json());
/// assert_eq!(msg.body.len(), 26);
/// ```
#[derive(Debug, PartialEq)]
pub struct Message {
    /// The payload.
    pub body: Bytes,
    /// The AMQP properties.
    pub properties: Properties,
}

impl Clone for Message {
    fn clone(&self) -> Self {
        Self {
            body: self.body.clone(),
            properties: self.properties.clone(),
        }
    }

    /// Copies the body (a reference count) and the properties into `self`, reusing its
    /// strings; see [`Properties`].
    fn clone_from(&mut self, source: &Self) {
        self.body.clone_from(&source.body);
        self.properties.clone_from(&source.properties);
    }
}

impl Message {
    /// A message with this body and these properties.
    #[must_use]
    pub fn new(body: impl Into<Bytes>, properties: Properties) -> Self {
        Self {
            body: body.into(),
            properties,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_from_copies_every_property() {
        let full = Properties::json()
            .with_correlation_id("c")
            .with_reply_to("r")
            .with_expiration("10")
            .with_message_id("m")
            .with_timestamp(7)
            .with_kind("k")
            .with_user_id("u")
            .with_app_id("a")
            .with_headers(FieldTable::new().with("h", 1));
        let mut full = full;
        full.cluster_id = Some("cl".to_owned());
        let mut copy = Properties::default().with_correlation_id("a much longer old value");
        copy.clone_from(&full);
        assert_eq!(copy, full);
        assert_eq!(full.clone(), full);
        let mut emptied = full.clone();
        emptied.clone_from(&Properties::default());
        assert_eq!(emptied, Properties::default());
        let message = Message::new("body", full);
        let mut into = Message::new("", Properties::default());
        into.clone_from(&message);
        assert_eq!(into, message);
    }
}
