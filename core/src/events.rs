//! Dispatching events (nameko's `EventDispatcher`; handling them is
//! [`crate::entrypoints::EventHandler`]).
//!
//! An event is published to the source service's `<service>.events` topic exchange with
//! the event type as routing key and the payload, any JSON value, as the body.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::config::{Config, ConfigError, RetryPolicy, Settings};
use crate::dependency::{Dependency, DependencyProvider, ProviderError};
use crate::errors::{IntoRemoteError, RemoteError, RpcError};
use crate::extension::ContainerContext;
use crate::extension::instrumentation::{self, Outgoing, Traced};
use crate::messaging::MessageOptions;
use crate::publish::publish_with_retry;
use crate::transport::{
    ExchangeKind, ExchangeOptions, FieldTable, Message, Properties, PublishOptions, PublishOutcome,
    Transport, TransportError,
};
use crate::wire;
use crate::worker::WorkerContext;

/// The error type a failed dispatch is reported under (see [`EventError`]).
pub(crate) const EVENT_ERROR: &str = "EventError";

/// An event could not be dispatched.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The payload could not be serialized.
    #[error("cannot serialize the event payload: {0}")]
    Payload(String),
    /// The transport failed (after retries).
    #[error("cannot publish the event: {0}")]
    Transport(#[from] TransportError),
    /// The broker refused the event (publisher confirm `nack`).
    #[error("the broker refused the event")]
    Refused,
}

impl crate::rpc::ExpectedError for EventError {
    /// Not rebuilt: a typed client's caller gets the remote `EventError` as
    /// [`CallError::Rpc`](crate::rpc::CallError::Rpc).
    fn from_rpc_error(error: RpcError) -> Result<Self, RpcError> {
        Err(error)
    }

    fn to_remote_error(&self) -> RemoteError {
        self.clone().into_remote_error()
    }
}

impl IntoRemoteError for EventError {
    /// A failed dispatch or publish: `EventError` (`nameko_rs.EventError`).
    fn into_remote_error(self) -> RemoteError {
        let message = self.to_string();
        RemoteError::new(
            "EventError",
            "nameko_rs.EventError",
            [message.clone()],
            message,
        )
    }
}

/// The options `<service>.events` is declared with: topic, durable, auto-delete as
/// `AUTO_DELETE_EVENT_EXCHANGES` says.
#[must_use]
pub fn event_exchange_options(settings: &Settings) -> ExchangeOptions {
    ExchangeOptions::durable().with_auto_delete(settings.auto_delete_event_exchanges)
}

/// Where an [`EventDispatcher`]'s events go: the broker, or a test double.
#[async_trait]
pub trait EventBackend: Send + Sync + fmt::Debug + 'static {
    /// Publishes one event from `source` with these headers.
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    async fn dispatch(
        &self,
        source: &str,
        event_type: &str,
        payload: Value,
        headers: &FieldTable,
    ) -> Result<(), EventError>;

    /// Publishes one event with a priority or an expiration. Backends that keep events
    /// in memory (test doubles) may ignore them: the default does.
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    async fn dispatch_with(
        &self,
        source: &str,
        event_type: &str,
        payload: Value,
        headers: &FieldTable,
        options: MessageOptions,
    ) -> Result<(), EventError> {
        let _ = options;
        self.dispatch(source, event_type, payload, headers).await
    }
}

/// Publishes events to `<source>.events` on a transport.
#[derive(Debug)]
pub(crate) struct LiveEvents {
    transport: Arc<dyn Transport>,
    retry: RetryPolicy,
    declare: Option<ExchangeOptions>,
    declared: Mutex<HashSet<String>>,
}

impl LiveEvents {
    fn new(transport: Arc<dyn Transport>, settings: &Settings) -> Self {
        Self {
            transport,
            retry: settings.rpc_retry_policy,
            declare: settings
                .declare_event_exchanges
                .then(|| event_exchange_options(settings)),
            declared: Mutex::default(),
        }
    }

    async fn ensure_exchange(&self, exchange: &str) -> Result<(), TransportError> {
        let Some(options) = self.declare else {
            return Ok(());
        };
        if self.declared.lock().contains(exchange) {
            return Ok(());
        }
        self.transport
            .declare_exchange(exchange, ExchangeKind::Topic, options)
            .await?;
        // Handlers of events from any source bind to the all-events exchange.
        self.transport
            .declare_exchange(wire::ALL_EVENTS_EXCHANGE, ExchangeKind::Topic, options)
            .await?;
        if let Err(error) = self
            .transport
            .bind_exchange(wire::ALL_EVENTS_EXCHANGE, exchange, "#")
            .await
        {
            tracing::debug!(%error, exchange, "events not bound to the all-events exchange");
        }
        self.declared.lock().insert(exchange.to_owned());
        Ok(())
    }
}

#[async_trait]
impl EventBackend for LiveEvents {
    async fn dispatch(
        &self,
        source: &str,
        event_type: &str,
        payload: Value,
        headers: &FieldTable,
    ) -> Result<(), EventError> {
        self.dispatch_with(source, event_type, payload, headers, MessageOptions::new())
            .await
    }

    async fn dispatch_with(
        &self,
        source: &str,
        event_type: &str,
        payload: Value,
        headers: &FieldTable,
        options: MessageOptions,
    ) -> Result<(), EventError> {
        let exchange = wire::event_exchange(source);
        self.ensure_exchange(&exchange).await?;
        let body = wire::json::to_vec(&payload).map_err(|e| EventError::Payload(e.to_string()))?;
        let properties = options.apply(Properties::json().with_headers(headers.clone()));
        let outcome = publish_with_retry(
            self.transport.as_ref(),
            &exchange,
            event_type,
            Message::new(body, properties),
            PublishOptions::default(),
            &self.retry,
            None,
        )
        .await?;
        match outcome {
            PublishOutcome::Nacked => Err(EventError::Refused),
            _ => Ok(()),
        }
    }
}

/// Dispatches events as the worker's service: nameko's `EventDispatcher`.
///
/// Events carry the worker's context data and call id stack, so handlers continue the
/// stack.
///
/// ```no_run
/// # async fn f(events: nameko_core::events::EventDispatcher) -> Result<(), nameko_core::events::EventError> {
/// events.dispatch("order_placed", serde_json::json!({"order_id": 42})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct EventDispatcher {
    backend: Arc<dyn EventBackend>,
    source: Arc<str>,
    headers: Arc<FieldTable>,
}

impl fmt::Debug for EventDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventDispatcher")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl EventDispatcher {
    /// A dispatcher publishing as `source` through `backend`, with `headers` on every
    /// event.
    #[must_use]
    pub fn new(
        backend: Arc<dyn EventBackend>,
        source: impl Into<Arc<str>>,
        headers: Arc<FieldTable>,
    ) -> Self {
        Self {
            backend,
            source: source.into(),
            headers,
        }
    }

    /// The service events are dispatched as.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Dispatches an event: published to `<service>.events` with routing key
    /// `event_type` and `payload` as the body, persistent, confirmed by the broker.
    ///
    /// # Errors
    ///
    /// See [`EventError`]. An event nobody listens to is not an error (it is dropped,
    /// as in nameko).
    pub async fn dispatch(
        &self,
        event_type: &str,
        payload: impl Serialize,
    ) -> Result<(), EventError> {
        let payload =
            serde_json::to_value(payload).map_err(|e| EventError::Payload(e.to_string()))?;
        let (headers, traced) = self.begin(event_type);
        let send = self
            .backend
            .dispatch(&self.source, event_type, payload, &headers);
        instrumentation::finish(send, traced, EVENT_ERROR).await
    }

    fn begin(&self, event_type: &str) -> (Arc<FieldTable>, Option<Traced>) {
        instrumentation::begin(
            &Outgoing::Event {
                source: &self.source,
                event_type,
            },
            &self.headers,
        )
    }

    /// Dispatches an event with a priority (for handler queues with `max_priority`) or
    /// an expiration (a per-message TTL).
    ///
    /// ```no_run
    /// # async fn f(events: nameko_core::events::EventDispatcher) -> Result<(), nameko_core::events::EventError> {
    /// use nameko_core::messaging::MessageOptions;
    /// events.dispatch_with("order_placed", serde_json::json!({"order_id": 42}), MessageOptions::new().priority(9)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    pub async fn dispatch_with(
        &self,
        event_type: &str,
        payload: impl Serialize,
        options: MessageOptions,
    ) -> Result<(), EventError> {
        let payload =
            serde_json::to_value(payload).map_err(|e| EventError::Payload(e.to_string()))?;
        let (headers, traced) = self.begin(event_type);
        let send = self
            .backend
            .dispatch_with(&self.source, event_type, payload, &headers, options);
        instrumentation::finish(send, traced, EVENT_ERROR).await
    }
}

/// Provides an [`EventDispatcher`] for the container's service.
#[derive(Debug, Default)]
pub struct EventDispatcherProvider {
    backend: Option<Arc<LiveEvents>>,
    source: Option<Arc<str>>,
}

impl DependencyProvider for EventDispatcherProvider {
    type Output = EventDispatcher;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let backend = Arc::new(LiveEvents::new(
            container.transport().clone(),
            container.settings(),
        ));
        let exchange = wire::event_exchange(container.service_name());
        backend.ensure_exchange(&exchange).await.map_err(|e| {
            ProviderError::with_source(format!("cannot declare `{exchange}`: {e}"), e)
        })?;
        self.backend = Some(backend);
        self.source = Some(Arc::from(container.service_name()));
        Ok(())
    }

    async fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> Result<EventDispatcher, ProviderError> {
        match (&self.backend, &self.source) {
            (Some(backend), Some(source)) => Ok(EventDispatcher::new(
                backend.clone(),
                source.clone(),
                worker.outgoing_headers().clone(),
            )),
            _ => Err(ProviderError::new(
                "event dispatcher used before its container started",
            )),
        }
    }
}

impl Dependency for EventDispatcher {
    type Provider = EventDispatcherProvider;

    fn provider(_field: &'static str) -> EventDispatcherProvider {
        EventDispatcherProvider::default()
    }
}

/// Dispatches events as any service, from code that is not a service: nameko's
/// standalone `event_dispatcher`. Its events carry no headers, as Python's.
///
/// ```no_run
/// # async fn f(transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), Box<dyn std::error::Error>> {
/// use nameko_core::config::Config;
/// use nameko_core::events::StandaloneDispatcher;
///
/// let dispatch = StandaloneDispatcher::new(transport, &Config::new())?;
/// dispatch.dispatch("order_service", "order_placed", serde_json::json!({"order_id": 1})).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct StandaloneDispatcher {
    backend: Arc<LiveEvents>,
    headers: Arc<FieldTable>,
}

impl StandaloneDispatcher {
    /// A dispatcher on `transport`, following `DECLARE_EVENT_EXCHANGES`,
    /// `AUTO_DELETE_EVENT_EXCHANGES` and `RPC_RETRY_POLICY`.
    ///
    /// # Errors
    ///
    /// A configuration value of the wrong type.
    pub fn new(transport: Arc<dyn Transport>, config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            backend: Arc::new(LiveEvents::new(transport, &config.settings()?)),
            headers: Arc::new(FieldTable::new()),
        })
    }

    /// Dispatches an event claiming to come from `source`.
    ///
    /// # Errors
    ///
    /// See [`EventError`].
    pub async fn dispatch(
        &self,
        source: &str,
        event_type: &str,
        payload: impl Serialize,
    ) -> Result<(), EventError> {
        let payload =
            serde_json::to_value(payload).map_err(|e| EventError::Payload(e.to_string()))?;
        let (headers, traced) =
            instrumentation::begin(&Outgoing::Event { source, event_type }, &self.headers);
        let send = self.backend.dispatch(source, event_type, payload, &headers);
        instrumentation::finish(send, traced, EVENT_ERROR).await
    }

    /// A dispatcher bound to one source service, as an [`EventDispatcher`].
    #[must_use]
    pub fn as_service(&self, source: &str) -> EventDispatcher {
        EventDispatcher::new(self.backend.clone(), source, self.headers.clone())
    }
}
