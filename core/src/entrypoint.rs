//! Entrypoints: what makes a worker run.
//!
//! nameko's built-in entrypoints are all here: RPC, event handlers, timers, generic
//! AMQP consumers, and the test-only `once` and `dummy`. [`EntrypointKind`] describes one
//! entrypoint of a service; the container turns each into a running driver.

use std::time::Duration;

use crate::transport::{ExchangeKind, QueueOptions};
use crate::wire::CallArgs;

/// What triggers an entrypoint.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EntrypointKind {
    /// An RPC method: requests on `rpc-<service>` with routing key `<service>.<method>`.
    Rpc,
    /// An event handler (nameko's `@event_handler`).
    EventHandler(EventHandlerConfig),
    /// A timer (nameko's `@timer`).
    Timer(TimerConfig),
    /// A generic AMQP consumer (nameko's `@consume`).
    Consume(ConsumeConfig),
    /// Fires once when the container starts, with these arguments (nameko's
    /// `testing.services.once`).
    Once(CallArgs),
    /// Fires only when a test calls it through an entrypoint hook (nameko's
    /// `testing.services.dummy`).
    Dummy,
}

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }

    /// Sets the handler type.
    #[must_use]
    pub fn handler_type(mut self, handler_type: HandlerType) -> Self {
        self.handler_type = handler_type;
        self
    }

    /// Sets reliable delivery.
    #[must_use]
    pub fn reliable_delivery(mut self, reliable: bool) -> Self {
        self.reliable_delivery = reliable;
        self
    }

    /// Sets requeue on error.
    #[must_use]
    pub fn requeue_on_error(mut self, requeue: bool) -> Self {
        self.requeue_on_error = requeue;
        self
    }

    /// Sets the broadcast identifier.
    #[must_use]
    pub fn broadcast_identifier(mut self, identifier: impl Into<String>) -> Self {
        self.broadcast_identifier = Some(identifier.into());
        self
    }
}

/// When a timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerConfig {
    /// Time between two fires.
    pub interval: Duration,
    /// Fire once at start, before the first interval.
    pub eager: bool,
}

impl TimerConfig {
    /// A timer firing every `interval`, first after one interval.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            eager: false,
        }
    }

    /// Sets `eager`.
    #[must_use]
    pub fn eager(mut self, eager: bool) -> Self {
        self.eager = eager;
        self
    }
}

/// An exchange a consumer binds its queue to.
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
}

/// What a generic consumer consumes (nameko's `@consume(queue)`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConsumeConfig {
    /// The queue.
    pub queue: String,
    /// How the queue is declared.
    pub queue_options: QueueOptions,
    /// The exchange the queue is bound to, if any (declared too).
    pub exchange: Option<ExchangeDef>,
    /// The binding's routing key.
    pub routing_key: String,
    /// Requeue a message whose worker failed, instead of dropping it.
    pub requeue_on_error: bool,
    /// The consumer's prefetch window; `PREFETCH_COUNT` when `None`.
    pub prefetch: Option<u16>,
}

impl ConsumeConfig {
    /// Consume a durable queue of this name.
    #[must_use]
    pub fn new(queue: impl Into<String>) -> Self {
        Self {
            queue: queue.into(),
            queue_options: QueueOptions::durable(),
            exchange: None,
            routing_key: String::new(),
            requeue_on_error: false,
            prefetch: None,
        }
    }

    /// Binds the queue to `exchange` with `routing_key`.
    #[must_use]
    pub fn bind(mut self, exchange: ExchangeDef, routing_key: impl Into<String>) -> Self {
        self.exchange = Some(exchange);
        self.routing_key = routing_key.into();
        self
    }

    /// Sets the queue's declaration options.
    #[must_use]
    pub fn queue_options(mut self, options: QueueOptions) -> Self {
        self.queue_options = options;
        self
    }

    /// Sets requeue on error.
    #[must_use]
    pub fn requeue_on_error(mut self, requeue: bool) -> Self {
        self.requeue_on_error = requeue;
        self
    }

    /// Sets the prefetch window.
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = Some(prefetch);
        self
    }
}
