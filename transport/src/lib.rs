//! nameko-transport: what nameko-rs needs from a message broker.
//!
//! [`Transport`] is the one trait every backend implements: declare exchanges and queues,
//! bind them, publish with confirms and mandatory routing, and consume with a prefetch
//! window and explicit settlement. It models the part of AMQP 0-9-1 that nameko relies on,
//! so the RPC engine, events and everything above run unchanged on RabbitMQ
//! (`nameko-amqp`) and on the deterministic in-process broker (`nameko-memory`).
//!
//! The trait is object safe: a runtime holds an `Arc<dyn Transport>` chosen at start-up.
//!
//! - [`Transport`], its options ([`ExchangeOptions`], [`QueueOptions`], [`PublishOptions`],
//!   [`ConsumeOptions`]) and results ([`QueueDeclared`], [`PublishOutcome`]);
//! - [`Message`] and its [`Properties`], with AMQP header values as [`FieldTable`] and
//!   [`FieldValue`], carried without loss between Python and Rust services;
//! - [`Consumer`], [`Delivery`] and [`Acker`]: what a consumer receives and how it settles it;
//! - [`topology`]: the exchanges, queues and bindings a client declared, as one
//!   [`Topology`](topology::Topology) that entrypoints declare and backends replay after
//!   a reconnection;
//! - [`TransportError`], [`TransportStatus`], and the [`Capabilities`] a backend reports;
//! - [`redact`]: hiding credentials (URI passwords, known secrets, `auth_token` values) in
//!   any text before it reaches a log or an error message, for the framework and every
//!   backend alike.
//!
//! The framework (`nameko-core`) re-exports this crate as `nameko_core::transport`; a
//! backend depends on this crate alone. Every backend proves itself against the same
//! behaviour cases, the suite of `nameko-transport-conformance`.
//!
//! ```
//! use nameko_transport::{Message, Properties, PublishOptions, QueueOptions, Transport};
//!
//! /// Sends one job through whichever broker the service was started on.
//! async fn send_job(transport: &dyn Transport) -> Result<(), nameko_transport::TransportError> {
//!     transport.declare_queue("jobs", QueueOptions::durable()).await?;
//!     let message = Message::new(r#"{"job": 1}"#, Properties::json());
//!     let outcome = transport.publish("", "jobs", message, PublishOptions::default()).await?;
//!     assert!(!outcome.is_returned());
//!     Ok(())
//! }
//! ```

mod delivery;
mod error;
mod field;
mod message;
pub mod redact;
mod shared_str;
pub mod topology;

use std::fmt;

use async_trait::async_trait;
use tokio::sync::watch;

pub use delivery::{
    Acker, Consumer, ConsumerStream, Delivery, DeliveryInfo, Settle, SettleTag, Settlement,
};
pub use error::TransportError;
pub use field::{FieldTable, FieldValue};
pub use message::{DeliveryMode, Message, Properties};
pub use shared_str::SharedStr;

/// The kind of an exchange, which decides how it routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExchangeKind {
    /// Routes to queues bound with exactly the message's routing key.
    Direct,
    /// Routes to every bound queue, ignoring the routing key.
    Fanout,
    /// Routes by dot-separated pattern: `*` matches one word, `#` zero or more.
    Topic,
    /// Routes on message headers matched against each binding's arguments
    /// (`x-match` `all` or `any`); the routing key is ignored.
    Headers,
}

impl ExchangeKind {
    /// The AMQP name of the kind: `direct`, `fanout` or `topic`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

impl fmt::Display for ExchangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Flags of an exchange declaration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ExchangeOptions {
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
    /// Only checks that the exchange exists ([`TransportError::NotFound`] otherwise).
    pub passive: bool,
}

impl ExchangeOptions {
    /// Durable, not auto-deleted: how nameko declares `nameko-rpc` and `<svc>.events`.
    #[must_use]
    pub fn durable() -> Self {
        Self {
            durable: true,
            ..Self::default()
        }
    }

    /// Sets `auto_delete`.
    #[must_use]
    pub fn with_auto_delete(mut self, auto_delete: bool) -> Self {
        self.auto_delete = auto_delete;
        self
    }

    /// Only check that the exchange exists.
    #[must_use]
    pub fn passive() -> Self {
        Self {
            passive: true,
            ..Self::default()
        }
    }
}

/// Flags and arguments of a queue declaration.
///
/// ```
/// use nameko_transport::{FieldValue, QueueOptions};
///
/// // nameko's reply queue: durable, not exclusive, removed 5 minutes after last use.
/// let opts = QueueOptions::durable().with_expires(300_000);
/// assert_eq!(opts.arguments.get("x-expires"), Some(&FieldValue::I32(300_000)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Survives a broker restart.
    pub durable: bool,
    /// Owned by the declaring connection: only it may consume, and the queue is deleted
    /// when that connection closes.
    pub exclusive: bool,
    /// Deleted when its last consumer goes away (once it has had one).
    pub auto_delete: bool,
    /// Only checks that the queue exists ([`TransportError::NotFound`] otherwise).
    pub passive: bool,
    /// Queue arguments such as `x-expires` (milliseconds unused before deletion).
    pub arguments: FieldTable,
}

impl QueueOptions {
    /// A durable queue, neither exclusive nor auto-deleted: nameko's `rpc-<service>`.
    #[must_use]
    pub fn durable() -> Self {
        Self {
            durable: true,
            ..Self::default()
        }
    }

    /// Only check that the queue exists.
    #[must_use]
    pub fn passive() -> Self {
        Self {
            passive: true,
            ..Self::default()
        }
    }

    /// Sets `durable`.
    #[must_use]
    pub fn with_durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Sets `exclusive`.
    #[must_use]
    pub fn with_exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Sets `auto_delete`.
    #[must_use]
    pub fn with_auto_delete(mut self, auto_delete: bool) -> Self {
        self.auto_delete = auto_delete;
        self
    }

    /// Sets the `x-expires` argument, in milliseconds, as an int32 the way py-amqp
    /// encodes it (so the declaration matches one made by Python nameko).
    #[must_use]
    pub fn with_expires(mut self, millis: u32) -> Self {
        let value = i32::try_from(millis).map_or(FieldValue::I64(millis.into()), FieldValue::I32);
        self.arguments.insert("x-expires", value);
        self
    }

    /// `x-dead-letter-exchange`: where expired, rejected and dropped messages go (`""`
    /// is the default exchange).
    #[must_use]
    pub fn with_dead_letter_exchange(self, exchange: impl Into<String>) -> Self {
        self.with_argument("x-dead-letter-exchange", exchange.into())
    }

    /// `x-dead-letter-routing-key`: the routing key of dead-lettered messages (their own
    /// by default).
    #[must_use]
    pub fn with_dead_letter_routing_key(self, key: impl Into<String>) -> Self {
        self.with_argument("x-dead-letter-routing-key", key.into())
    }

    /// `x-message-ttl`: how long a message may wait in the queue, in whole milliseconds.
    #[must_use]
    pub fn with_message_ttl(self, ttl: std::time::Duration) -> Self {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let value = i32::try_from(ms).map_or_else(
            |_| FieldValue::I64(i64::try_from(ms).unwrap_or(i64::MAX)),
            FieldValue::I32,
        );
        self.with_argument("x-message-ttl", value)
    }

    /// `x-max-length`: how many ready messages the queue holds.
    #[must_use]
    pub fn with_max_length(self, max: u32) -> Self {
        let value = i32::try_from(max).map_or(FieldValue::I64(max.into()), FieldValue::I32);
        self.with_argument("x-max-length", value)
    }

    /// `x-overflow`: what a full queue does, `drop-head` (the default),
    /// `reject-publish` or `reject-publish-dlx`.
    #[must_use]
    pub fn with_overflow(self, overflow: impl Into<String>) -> Self {
        self.with_argument("x-overflow", overflow.into())
    }

    /// `x-max-priority`: the queue delivers messages of higher priority (up to `max`)
    /// first.
    #[must_use]
    pub fn with_max_priority(self, max: u8) -> Self {
        self.with_argument("x-max-priority", FieldValue::I32(max.into()))
    }

    /// `x-queue-type`: `classic` or `quorum` (replicated; durable and not exclusive).
    #[must_use]
    pub fn with_queue_type(self, kind: impl Into<String>) -> Self {
        self.with_argument("x-queue-type", kind.into())
    }

    /// Adds a queue argument.
    #[must_use]
    pub fn with_argument(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.arguments.insert(key, value);
        self
    }
}

/// What the broker says about a declared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueDeclared {
    /// The queue's name (generated by the broker when the declaration named none).
    pub name: String,
    /// Messages ready in the queue.
    pub message_count: u32,
    /// Consumers on the queue.
    pub consumer_count: u32,
}

impl QueueDeclared {
    /// The result of a declaration, as a backend builds it.
    #[must_use]
    pub fn new(name: impl Into<String>, message_count: u32, consumer_count: u32) -> Self {
        Self {
            name: name.into(),
            message_count,
            consumer_count,
        }
    }
}

/// Options of one publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PublishOptions {
    /// Ask the broker to return the message if no queue is bound for it (nameko sets this
    /// on RPC requests to detect an unknown service).
    pub mandatory: bool,
    /// Wait for the broker to confirm the message (publisher confirms).
    pub confirm: bool,
}

impl Default for PublishOptions {
    /// Confirmed, not mandatory: nameko's publisher defaults.
    fn default() -> Self {
        Self {
            mandatory: false,
            confirm: true,
        }
    }
}

impl PublishOptions {
    /// Sets `mandatory`.
    #[must_use]
    pub fn with_mandatory(mut self, mandatory: bool) -> Self {
        self.mandatory = mandatory;
        self
    }

    /// Sets `confirm`.
    #[must_use]
    pub fn with_confirm(mut self, confirm: bool) -> Self {
        self.confirm = confirm;
        self
    }
}

/// What became of a published message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishOutcome {
    /// The broker confirmed it.
    Confirmed,
    /// Sent without asking for a confirm.
    Sent,
    /// Mandatory and unroutable: the broker returned it (`basic.return`, 312 `NO_ROUTE`).
    Returned {
        /// The AMQP reply code, 312 for `NO_ROUTE`.
        reply_code: u16,
        /// The broker's reason.
        reply_text: String,
    },
    /// The broker refused to take responsibility for it (`basic.nack`).
    Nacked,
}

impl PublishOutcome {
    /// Whether the message was returned as unroutable.
    #[must_use]
    pub fn is_returned(&self) -> bool {
        matches!(self, Self::Returned { .. })
    }
}

/// Options of a consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumeOptions {
    /// Most unsettled deliveries the consumer holds at once; 0 means no limit.
    pub prefetch: u16,
    /// Ask to be the queue's only consumer.
    pub exclusive: bool,
    /// A consumer tag; the transport makes one up when this is `None`.
    pub consumer_tag: Option<String>,
}

impl ConsumeOptions {
    /// Consumer options with this prefetch window.
    #[must_use]
    pub fn with_prefetch(prefetch: u16) -> Self {
        Self {
            prefetch,
            ..Self::default()
        }
    }

    /// Sets `exclusive`.
    #[must_use]
    pub fn with_exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }

    /// Sets the consumer tag.
    #[must_use]
    pub fn with_consumer_tag(mut self, tag: impl Into<String>) -> Self {
        self.consumer_tag = Some(tag.into());
        self
    }
}

/// What a backend guarantees, in the spirit of Watermill's test `Features`: the
/// conformance suite reads it to decide which cases apply and what they assert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// A short name of the backend, for reports.
    pub name: &'static str,
    /// Publishes can be confirmed by the broker.
    pub publisher_confirms: bool,
    /// Unroutable mandatory publishes come back as [`PublishOutcome::Returned`].
    pub mandatory_returns: bool,
    /// Exclusive queues are owned by their connection and vanish with it.
    pub exclusive_queues: bool,
    /// `x-expires` removes unused queues.
    pub queue_expiry: bool,
    /// Queue expiry follows tokio's clock, so a paused clock controls it.
    pub follows_tokio_clock: bool,
    /// Durable queues and persistent messages survive a broker restart.
    pub durable_across_restart: bool,
    /// Messages in one queue reach a single consumer in publish order.
    pub ordered_per_queue: bool,
    /// The broker can say when nothing is in flight (`run_until_idle`).
    pub idle_detection: bool,
    /// Connection loss and other faults can be injected by tests.
    pub fault_injection: bool,
    /// Delivery policies as RabbitMQ has them: per-message and per-queue message TTL
    /// (`expiration`, `x-message-ttl`), dead-lettering (`x-dead-letter-exchange`,
    /// `x-dead-letter-routing-key`, the `x-death` header), `x-max-length` with
    /// `x-overflow`, `x-max-priority`, headers exchanges with binding arguments, and
    /// exchange-to-exchange bindings.
    pub delivery_policies: bool,
}

impl Capabilities {
    /// Capabilities with every guarantee off; backends switch on what they offer.
    #[must_use]
    pub fn none(name: &'static str) -> Self {
        Self {
            name,
            publisher_confirms: false,
            mandatory_returns: false,
            exclusive_queues: false,
            queue_expiry: false,
            follows_tokio_clock: false,
            durable_across_restart: false,
            ordered_per_queue: false,
            idle_detection: false,
            fault_injection: false,
            delivery_policies: false,
        }
    }
}

/// The state of a transport's connection to its broker.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportStatus {
    /// Opening the first connection.
    Connecting,
    /// Connected; consumers are receiving.
    Connected,
    /// The connection was lost; reconnecting (`attempt` counts from 1).
    Reconnecting {
        /// Reconnection attempts made so far.
        attempt: u32,
        /// Why the last connection or attempt failed.
        reason: String,
    },
    /// Closed by its owner, or given up.
    Closed,
}

/// A message broker, as the framework uses it.
///
/// Every method is a single broker operation with AMQP 0-9-1 semantics; see the crate
/// docs of `nameko-memory` and `nameko-amqp` for the two backends. Implementations must be
/// cheap to share (`Arc<dyn Transport>`) and safe to call from many tasks at once.
#[async_trait]
pub trait Transport: Send + Sync + fmt::Debug + 'static {
    /// What this backend guarantees.
    fn capabilities(&self) -> Capabilities;

    /// A description of the broker endpoint for logs, with any password removed.
    fn endpoint(&self) -> String;

    /// The connection state, as a watch that changes on every transition.
    fn status(&self) -> watch::Receiver<TransportStatus>;

    /// Declares an exchange, or checks that an identical one exists.
    ///
    /// # Errors
    ///
    /// [`TransportError::PreconditionFailed`] if it exists with another kind or flags;
    /// [`TransportError::NotFound`] for a passive declaration of a missing exchange.
    async fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeOptions,
    ) -> Result<(), TransportError>;

    /// Deletes an exchange and its bindings. Deleting a missing exchange succeeds.
    ///
    /// # Errors
    ///
    /// Connection errors.
    async fn delete_exchange(&self, name: &str) -> Result<(), TransportError>;

    /// Declares a queue, or checks that an identical one exists. An empty name asks the
    /// broker to make one up.
    ///
    /// # Errors
    ///
    /// [`TransportError::PreconditionFailed`] if it exists with other flags or arguments;
    /// [`TransportError::ResourceLocked`] if it is exclusive to another connection;
    /// [`TransportError::NotFound`] for a passive declaration of a missing queue.
    async fn declare_queue(
        &self,
        name: &str,
        options: QueueOptions,
    ) -> Result<QueueDeclared, TransportError>;

    /// Binds a queue to an exchange with a routing key (a pattern for topic exchanges).
    ///
    /// # Errors
    ///
    /// [`TransportError::NotFound`] if the queue or the exchange is missing.
    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), TransportError>;

    /// Binds a queue to an exchange with binding arguments: for a
    /// [`ExchangeKind::Headers`] exchange, the headers to match and `x-match`.
    ///
    /// Without arguments this is [`bind_queue`](Self::bind_queue); a backend without
    /// binding arguments refuses any with [`TransportError::InvalidArgument`]. A
    /// recovering backend declares the binding again, with its arguments, after a
    /// reconnection, as it does every other binding.
    async fn bind_queue_with_arguments(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), TransportError> {
        if arguments.is_empty() {
            return self.bind_queue(queue, exchange, routing_key).await;
        }
        Err(TransportError::InvalidArgument(format!(
            "this transport does not support binding arguments (binding queue '{queue}' to \
             exchange '{exchange}')"
        )))
    }

    /// Binds exchange `destination` to exchange `source` (RabbitMQ's exchange-to-exchange
    /// binding): what `source` routes with a key matching `routing_key` is routed by
    /// `destination` too. Each queue still gets one copy of a message, whatever the paths
    /// to it. A recovering backend declares the binding again after a reconnection.
    ///
    /// # Errors
    ///
    /// [`TransportError::NotFound`] if an exchange is missing;
    /// [`TransportError::InvalidArgument`] from a backend without such bindings (the
    /// default).
    async fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        Err(TransportError::InvalidArgument(format!(
            "this transport does not bind exchanges to exchanges ('{destination}' to \
             '{source}' with key '{routing_key}')"
        )))
    }

    /// Deletes a queue, returning how many messages it held. Deleting a missing queue
    /// succeeds with 0. Its consumers end.
    ///
    /// # Errors
    ///
    /// [`TransportError::ResourceLocked`] if it is exclusive to another connection.
    async fn delete_queue(&self, name: &str) -> Result<u32, TransportError>;

    /// Publishes a message to an exchange (`""` is the default exchange, which routes to
    /// the queue named by the routing key) and waits for the broker's confirm when
    /// `options.confirm` is set.
    ///
    /// # Errors
    ///
    /// [`TransportError::NotFound`] if the exchange does not exist; connection errors.
    /// A returned or nacked message is not an error but a [`PublishOutcome`].
    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: Message,
        options: PublishOptions,
    ) -> Result<PublishOutcome, TransportError>;

    /// Starts consuming a queue.
    ///
    /// # Errors
    ///
    /// [`TransportError::NotFound`] if the queue is missing;
    /// [`TransportError::ResourceLocked`] if it is exclusive to another connection or has
    /// an exclusive consumer.
    async fn consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Consumer, TransportError>;

    /// Closes the connection: consumers end, unsettled deliveries go back to their queues,
    /// exclusive queues are deleted. Further calls fail with [`TransportError::Closed`].
    ///
    /// # Errors
    ///
    /// Errors while closing; the transport is closed regardless.
    async fn close(&self) -> Result<(), TransportError>;
}
