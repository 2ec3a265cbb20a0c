//! Generic AMQP messaging (nameko's `nameko.messaging`): a [`Publisher`] dependency that
//! publishes to any exchange (the `consume` entrypoint that runs a worker per message of
//! any queue is [`crate::entrypoints::Consume`]).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::config::RetryPolicy;
use crate::dependency::{DependencyProvider, ProviderError};
use crate::events::{EVENT_ERROR, EventError};
use crate::extension::ContainerContext;
use crate::extension::instrumentation::{self, Outgoing};
use crate::publish::publish_with_retry;
use crate::transport::{
    ExchangeKind, ExchangeOptions, FieldTable, FieldValue, Message, Properties, PublishOptions,
    PublishOutcome, Transport,
};
use crate::wire;
use crate::worker::WorkerContext;

/// An exchange a publisher publishes to, or a consumer binds its queue to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangeDef {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: ExchangeKind,
    /// Declared durable.
    pub durable: bool,
    /// Declared auto-delete.
    pub auto_delete: bool,
}

impl ExchangeDef {
    /// A durable exchange of this kind.
    #[must_use]
    pub fn new(name: impl Into<String>, kind: ExchangeKind) -> Self {
        Self {
            name: name.into(),
            kind,
            durable: true,
            auto_delete: false,
        }
    }

    /// The options it is declared with.
    #[must_use]
    pub fn options(&self) -> ExchangeOptions {
        let mut options = ExchangeOptions::default().with_auto_delete(self.auto_delete);
        options.durable = self.durable;
        options
    }
}

/// Publishes messages to one exchange (or the default exchange): nameko's `Publisher`.
///
/// Messages are JSON, persistent and confirmed; they carry the worker's context data and
/// call id stack as headers, which win over extra headers of the same name.
///
/// ```no_run
/// # async fn f(publisher: nameko_core::messaging::Publisher) -> Result<(), nameko_core::events::EventError> {
/// use nameko_core::transport::FieldTable;
///
/// publisher.publish("audit", serde_json::json!({"action": "login"})).await?;
/// publisher.publish_with_headers("audit", serde_json::json!(1), FieldTable::new().with("kind", "x")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Publisher {
    transport: Arc<dyn Transport>,
    exchange: Arc<str>,
    retry: RetryPolicy,
    headers: Arc<FieldTable>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    /// The exchange messages go to (`""` is the default exchange).
    #[must_use]
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// Publishes `payload` with `routing_key`.
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    pub async fn publish(
        &self,
        routing_key: &str,
        payload: impl Serialize,
    ) -> Result<(), EventError> {
        self.publish_with_headers(routing_key, payload, FieldTable::new())
            .await
    }

    /// Publishes `payload` with `routing_key` and extra headers.
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    pub async fn publish_with_headers(
        &self,
        routing_key: &str,
        payload: impl Serialize,
        headers: FieldTable,
    ) -> Result<(), EventError> {
        self.publish_with(routing_key, payload, headers, MessageOptions::new())
            .await
    }

    /// Publishes `payload` with `routing_key`, extra headers, and a priority or an
    /// expiration.
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    pub async fn publish_with(
        &self,
        routing_key: &str,
        payload: impl Serialize,
        headers: FieldTable,
        options: MessageOptions,
    ) -> Result<(), EventError> {
        let body = wire::json::to_vec(&payload).map_err(|e| EventError::Payload(e.to_string()))?;
        let (context, traced) = instrumentation::begin(
            &Outgoing::Message {
                exchange: &self.exchange,
                routing_key,
            },
            &self.headers,
        );
        let mut all: FieldTable = headers;
        all.extend(
            context
                .iter()
                .map(|(k, v): (&str, &FieldValue)| (k.to_owned(), v.clone())),
        );
        let message = Message::new(body, options.apply(Properties::json().with_headers(all)));
        let send = async {
            let outcome = publish_with_retry(
                self.transport.as_ref(),
                &self.exchange,
                routing_key,
                message,
                PublishOptions::default(),
                &self.retry,
                None,
            )
            .await?;
            match outcome {
                PublishOutcome::Nacked => Err(EventError::Refused),
                _ => Ok(()),
            }
        };
        instrumentation::finish(send, traced, EVENT_ERROR).await
    }
}

/// Per-message delivery options of a publish or an event: priority (for queues with
/// `x-max-priority`) and expiration (a per-message TTL).
///
/// ```
/// use std::time::Duration;
/// use nameko_core::messaging::MessageOptions;
/// use nameko_core::transport::Properties;
///
/// let options = MessageOptions::new().priority(9).expiration(Duration::from_secs(30));
/// let properties = options.apply(Properties::json());
/// assert_eq!(properties.priority, Some(9));
/// assert_eq!(properties.expiration.as_deref(), Some("30000"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageOptions {
    /// The message's priority, 0 to 255 (a queue caps it at its `x-max-priority`).
    pub priority: Option<u8>,
    /// How long the message may wait in a queue before it expires.
    pub expiration: Option<std::time::Duration>,
}

impl MessageOptions {
    /// No options: what `publish` and `dispatch` send.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the priority.
    #[must_use]
    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the expiration (whole milliseconds).
    #[must_use]
    pub fn expiration(mut self, expiration: std::time::Duration) -> Self {
        self.expiration = Some(expiration);
        self
    }

    /// Writes the options into a message's properties.
    #[must_use]
    pub fn apply(&self, mut properties: Properties) -> Properties {
        if let Some(priority) = self.priority {
            properties.priority = Some(priority);
        }
        if let Some(expiration) = self.expiration {
            properties.expiration = Some(expiration.as_millis().to_string());
        }
        properties
    }
}

/// Provides a [`Publisher`] to one exchange, declaring it when the container starts.
#[derive(Debug)]
pub struct PublisherProvider {
    exchange: Option<ExchangeDef>,
    state: Option<(Arc<dyn Transport>, RetryPolicy)>,
}

impl PublisherProvider {
    /// Publishes to `exchange`, declared at start.
    #[must_use]
    pub fn new(exchange: ExchangeDef) -> Self {
        Self {
            exchange: Some(exchange),
            state: None,
        }
    }

    /// Publishes to the default exchange (routing key = queue name).
    #[must_use]
    pub fn default_exchange() -> Self {
        Self {
            exchange: None,
            state: None,
        }
    }
}

impl DependencyProvider for PublisherProvider {
    type Output = Publisher;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let transport = container.transport().clone();
        if let Some(exchange) = &self.exchange {
            transport
                .declare_exchange(&exchange.name, exchange.kind, exchange.options())
                .await
                .map_err(|e| {
                    ProviderError::with_source(
                        format!("cannot declare exchange `{}`: {e}", exchange.name),
                        e,
                    )
                })?;
        }
        let retry = container
            .config()
            .rpc_retry_policy()
            .map_err(ProviderError::config)?;
        self.state = Some((transport, retry));
        Ok(())
    }

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<Publisher, ProviderError> {
        let Some((transport, retry)) = &self.state else {
            return Err(ProviderError::new(
                "publisher used before its container started",
            ));
        };
        Ok(Publisher {
            transport: transport.clone(),
            exchange: Arc::from(self.exchange.as_ref().map_or("", |e| e.name.as_str())),
            retry: *retry,
            headers: worker.outgoing_headers().clone(),
        })
    }
}
