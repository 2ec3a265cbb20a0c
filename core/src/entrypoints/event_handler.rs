//! The event handler entrypoint (nameko's `@event_handler`).
//!
//! A handler consumes a queue bound to the source service's `<source>.events` topic
//! exchange with the event type as routing key, named and flagged by handler type exactly
//! as nameko names and flags it, so that Rust and Python services share them.

use std::sync::Arc;

use async_trait::async_trait;

use super::queue::{QueuePlan, QueueRunner, Settling, check_one_payload};
use crate::config::queue_options_for;
use crate::events::event_exchange_options;
use crate::extension::{
    Channel, DescribeContext, Description, Entrypoint, EntrypointContext, ExtensionError,
    Operation, Payload,
};
use crate::messaging::ExchangeDef;
use crate::method::Method;
use crate::retry::RetrySetting;
use crate::transport::topology::{Declaration, Topology};
use crate::transport::{ExchangeKind, ExchangeOptions, QueueOptions};
use crate::transport::{FieldTable, FieldValue};
use crate::wire;

/// How an event reaches the instances of handling services (nameko's handler types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HandlerType {
    /// Each event goes to one instance of each handling service (the default).
    #[default]
    ServicePool,
    /// Each event goes to one handler in the whole cluster.
    Singleton,
    /// Each event goes to every instance.
    Broadcast,
}

impl HandlerType {
    /// nameko's constant for the type: `service_pool`, `singleton` or `broadcast`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServicePool => "service_pool",
            Self::Singleton => "singleton",
            Self::Broadcast => "broadcast",
        }
    }
}

/// What an event handler listens to and how.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventHandlerConfig {
    /// The service that dispatches the events.
    pub source_service: String,
    /// The event type (the routing key on `<source>.events`).
    pub event_type: String,
    /// Who gets each event.
    pub handler_type: HandlerType,
    /// Keep events in a durable queue while the service is down (nameko's default).
    pub reliable_delivery: bool,
    /// Requeue an event whose handler failed, instead of dropping it.
    pub requeue_on_error: bool,
    /// Suffix of a broadcast handler's queue, unique per instance; a random one when
    /// `None` (then `reliable_delivery` must be off, as in nameko).
    pub broadcast_identifier: Option<String>,
    /// The retry policy of failed deliveries ([`crate::retry`]); `DEFAULT_RETRY`'s by
    /// default.
    pub retry: RetrySetting,
    /// Extra arguments of the handler's queue: `x-max-priority`, `x-message-ttl`,
    /// `x-max-length`, `x-overflow`, `x-dead-letter-exchange`, `x-queue-type`, ...
    pub queue_arguments: FieldTable,
}

impl EventHandlerConfig {
    /// A service-pool handler with reliable delivery, nameko's defaults.
    #[must_use]
    pub fn new(source_service: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self {
            source_service: source_service.into(),
            event_type: event_type.into(),
            handler_type: HandlerType::ServicePool,
            reliable_delivery: true,
            requeue_on_error: false,
            broadcast_identifier: None,
            retry: RetrySetting::FromConfig,
            queue_arguments: FieldTable::new(),
        }
    }
}

/// The queue an event handler consumes, named as nameko names it:
///
/// - service pool: `evt-<source>-<event_type>--<service>.<method>`
/// - singleton: `evt-<source>-<event_type>`
/// - broadcast: `evt-<source>-<event_type>--<service>.<method>-<identifier>`
///
/// ```
/// use nameko_core::entrypoints::{EventHandlerConfig, handler_queue_name};
///
/// let cfg = EventHandlerConfig::new("order_service", "order_placed");
/// assert_eq!(handler_queue_name(&cfg, "notification_service", "on_order", None),
///            "evt-order_service-order_placed--notification_service.on_order");
/// ```
#[must_use]
pub fn handler_queue_name(
    config: &EventHandlerConfig,
    service: &str,
    method: &str,
    identifier: Option<&str>,
) -> String {
    let base = format!("evt-{}-{}", config.source_service, config.event_type);
    match config.handler_type {
        HandlerType::ServicePool => format!("{base}--{service}.{method}"),
        HandlerType::Singleton => base,
        HandlerType::Broadcast => format!(
            "{base}--{service}.{method}-{}",
            identifier.unwrap_or_default()
        ),
    }
}

/// How an event handler's queue is declared, by handler type and reliable delivery, as
/// nameko declares it (an exclusive broadcast queue is non-durable and auto-deleted, as
/// RabbitMQ reports the queue kombu declares).
#[must_use]
pub fn handler_queue_options(config: &EventHandlerConfig) -> QueueOptions {
    let exclusive = config.handler_type == HandlerType::Broadcast && !config.reliable_delivery;
    let mut options = if exclusive {
        QueueOptions::default()
            .with_exclusive(true)
            .with_auto_delete(true)
    } else {
        QueueOptions::durable().with_auto_delete(!config.reliable_delivery)
    };
    for (key, value) in config.queue_arguments.iter() {
        options = options.with_argument(key, value.clone());
    }
    options
}

/// An event handler: runs its method with each event's payload.
///
/// ```
/// use nameko_core::entrypoints::{EventHandler, HandlerType};
///
/// let handler = EventHandler::new("order_service", "order_placed")
///     .handler_type(HandlerType::Broadcast)
///     .reliable_delivery(false);
/// assert_eq!(handler.config().handler_type, HandlerType::Broadcast);
/// ```
#[derive(Debug)]
pub struct EventHandler {
    config: EventHandlerConfig,
    runner: QueueRunner,
}

impl EventHandler {
    /// A service-pool handler of `event_type` events from `source_service`, with reliable
    /// delivery: nameko's defaults.
    #[must_use]
    pub fn new(source_service: impl Into<String>, event_type: impl Into<String>) -> Self {
        Self::from_config(EventHandlerConfig::new(source_service, event_type))
    }

    /// A handler as `config` says.
    #[must_use]
    pub fn from_config(config: EventHandlerConfig) -> Self {
        Self {
            config,
            runner: QueueRunner::default(),
        }
    }

    /// What it listens to and how.
    #[must_use]
    pub fn config(&self) -> &EventHandlerConfig {
        &self.config
    }

    /// Sets the handler type.
    #[must_use]
    pub fn handler_type(mut self, handler_type: HandlerType) -> Self {
        self.config.handler_type = handler_type;
        self
    }

    /// Sets reliable delivery.
    #[must_use]
    pub fn reliable_delivery(mut self, reliable: bool) -> Self {
        self.config.reliable_delivery = reliable;
        self
    }

    /// Sets requeue on error.
    #[must_use]
    pub fn requeue_on_error(mut self, requeue: bool) -> Self {
        self.config.requeue_on_error = requeue;
        self
    }

    /// Sets the broadcast identifier.
    #[must_use]
    pub fn broadcast_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.config.broadcast_identifier = Some(identifier.into());
        self
    }

    /// Sets the retry policy: a [`Backoff`](crate::retry::Backoff), or `None` for no
    /// retries whatever `DEFAULT_RETRY` says.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nameko_core::entrypoints::EventHandler;
    /// use nameko_core::retry::Backoff;
    ///
    /// let handler = EventHandler::new("jobs", "job_submitted")
    ///     .retry(Backoff::schedule(3, [1, 2, 4].map(Duration::from_secs)))
    ///     .queue_argument("x-max-priority", 10);
    /// assert_eq!(handler.config().queue_arguments.len(), 1);
    /// ```
    #[must_use]
    pub fn retry(mut self, retry: impl Into<RetrySetting>) -> Self {
        self.config.retry = retry.into();
        self
    }

    /// Adds an argument of the handler's queue (`x-max-priority`, `x-message-ttl`,
    /// `x-max-length`, `x-overflow`, `x-dead-letter-exchange`, `x-queue-type`, ...).
    #[must_use]
    pub fn queue_argument(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.config.queue_arguments.insert(key, value);
        self
    }

    fn plan(&self, ctx: &EntrypointContext) -> Result<QueuePlan, ExtensionError> {
        let config = &self.config;
        let settings = ctx.container().settings();
        let identifier = match (&config.handler_type, &config.broadcast_identifier) {
            (HandlerType::Broadcast, Some(id)) => Some(id.clone()),
            (HandlerType::Broadcast, None) => Some(uuid::Uuid::new_v4().simple().to_string()),
            _ => None,
        };
        let exchange_options = if settings.declare_event_exchanges {
            event_exchange_options(settings)
        } else {
            ExchangeOptions::passive()
        };
        let exchange = wire::event_exchange(&config.source_service);
        let queue = handler_queue_name(
            config,
            ctx.container().service_name(),
            ctx.method().name,
            identifier.as_deref(),
        );
        let queue_options = queue_options_for(
            &queue,
            handler_queue_options(config),
            settings
                .queue_type
                .for_entrypoint(ctx.container().service_name(), ctx.method().name),
        )?;
        Ok(QueuePlan {
            topology: Topology::new()
                .with(Declaration::exchange(
                    exchange.clone(),
                    ExchangeKind::Topic,
                    exchange_options,
                ))
                .with(Declaration::queue(queue.clone(), queue_options))
                .with(Declaration::binding(
                    queue.clone(),
                    exchange,
                    config.event_type.clone(),
                )),
            queue,
            settling: Settling {
                requeue_on_error: config.requeue_on_error,
                requeue_delay: settings.requeue_delay,
            },
            prefetch: None,
            retry: config
                .retry
                .resolve(ctx.container().config(), config.requeue_on_error)
                .map_err(|e| ExtensionError::msg(format!("DEFAULT_RETRY: {e}")))?,
            attributes: vec![
                ("source_service", Arc::from(config.source_service.as_str())),
                ("event_type", Arc::from(config.event_type.as_str())),
            ],
        })
    }
}

#[async_trait]
impl Entrypoint for EventHandler {
    fn kind(&self) -> &'static str {
        "event_handler"
    }

    /// Receives the events on its queue, bound to `<source>.events` with the event type;
    /// a broadcast queue's random identifier is the parameter `{identifier}`.
    fn describe(&self, ctx: &DescribeContext<'_>) -> Description {
        let config = &self.config;
        let random =
            config.handler_type == HandlerType::Broadcast && config.broadcast_identifier.is_none();
        let identifier = match config.handler_type {
            HandlerType::Broadcast => Some(
                config
                    .broadcast_identifier
                    .clone()
                    .unwrap_or_else(|| "{identifier}".to_owned()),
            ),
            _ => None,
        };
        let queue = handler_queue_name(
            config,
            ctx.service_name(),
            ctx.method().name,
            identifier.as_deref(),
        );
        let mut exchange = ExchangeDef::new(
            wire::event_exchange(&config.source_service),
            ExchangeKind::Topic,
        );
        exchange.auto_delete = ctx.settings().auto_delete_event_exchanges;
        let mut channel = Channel::queue(queue, handler_queue_options(config))
            .bound_to(exchange, config.event_type.clone());
        if random {
            channel = channel.parameter(
                "identifier",
                "A random identifier of each service instance (32 hex digits).",
            );
        }
        Description::operation(
            Operation::receive(channel, Payload::FirstParameter).summary(format!(
                "Handles `{}` events of `{}` ({} handler{}{}).",
                config.event_type,
                config.source_service,
                config.handler_type.as_str(),
                if config.reliable_delivery {
                    ", reliable delivery"
                } else {
                    ""
                },
                if config.requeue_on_error {
                    ", requeued on error"
                } else {
                    ""
                },
            )),
        )
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        if self.config.handler_type == HandlerType::Broadcast
            && self.config.reliable_delivery
            && self.config.broadcast_identifier.is_none()
        {
            return Err(ExtensionError::definition(
                "EventHandlerConfigurationError: you are using the default broadcast identifier, which is not compatible with reliable delivery",
            ));
        }
        check_one_payload("event_handler", method)
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let plan = self.plan(ctx)?;
        self.runner.setup(ctx, plan).await
    }

    async fn start(&self) -> Result<(), ExtensionError> {
        self.runner.start("event handler").await
    }

    async fn stop(&self) {
        self.runner.stop().await;
    }

    async fn close(&self) {
        self.runner.close().await;
    }

    async fn kill(&self) {
        self.runner.kill().await;
    }
}
