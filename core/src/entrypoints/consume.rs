//! The generic AMQP consumer entrypoint (nameko's `@consume(queue)`): a worker per message
//! of any queue, with the decoded JSON body as the method's one argument.

use async_trait::async_trait;

use super::queue::{QueuePlan, QueueRunner, Settling, check_one_payload};
use crate::config::queue_options_for;
use crate::extension::{
    Channel, DescribeContext, Description, Entrypoint, EntrypointContext, ExtensionError,
    Operation, Payload,
};
use crate::messaging::ExchangeDef;
use crate::method::Method;
use crate::retry::RetrySetting;
use crate::transport::FieldValue;
use crate::transport::QueueOptions;
use crate::transport::topology::{Declaration, Topology};

/// What a `consume` entrypoint consumes (nameko's `@consume(queue)`).
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
    /// The retry policy of failed deliveries ([`crate::retry`]); `DEFAULT_RETRY`'s by
    /// default.
    pub retry: RetrySetting,
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
            retry: RetrySetting::FromConfig,
        }
    }
}

/// Consumes a queue: runs its method with each message's JSON body.
///
/// ```
/// use nameko_core::entrypoints::Consume;
/// use nameko_core::messaging::ExchangeDef;
/// use nameko_core::transport::ExchangeKind;
///
/// let consume = Consume::new("audit-log")
///     .bind(ExchangeDef::new("audit", ExchangeKind::Topic), "audit.#")
///     .requeue_on_error(true);
/// assert_eq!(consume.config().routing_key, "audit.#");
/// ```
#[derive(Debug)]
pub struct Consume {
    config: ConsumeConfig,
    runner: QueueRunner,
}

impl Consume {
    /// Consume the durable queue `queue`.
    #[must_use]
    pub fn new(queue: impl Into<String>) -> Self {
        Self::from_config(ConsumeConfig::new(queue))
    }

    /// A consumer as `config` says.
    #[must_use]
    pub fn from_config(config: ConsumeConfig) -> Self {
        Self {
            config,
            runner: QueueRunner::default(),
        }
    }

    /// What it consumes.
    #[must_use]
    pub fn config(&self) -> &ConsumeConfig {
        &self.config
    }

    /// Binds the queue to `exchange` with `routing_key`.
    #[must_use]
    pub fn bind(mut self, exchange: ExchangeDef, routing_key: impl Into<String>) -> Self {
        self.config.exchange = Some(exchange);
        self.config.routing_key = routing_key.into();
        self
    }

    /// Sets the queue's declaration options.
    #[must_use]
    pub fn queue_options(mut self, options: QueueOptions) -> Self {
        self.config.queue_options = options;
        self
    }

    /// Sets requeue on error.
    #[must_use]
    pub fn requeue_on_error(mut self, requeue: bool) -> Self {
        self.config.requeue_on_error = requeue;
        self
    }

    /// Sets the prefetch window.
    #[must_use]
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.config.prefetch = Some(prefetch);
        self
    }

    /// Sets the retry policy: a [`Backoff`](crate::retry::Backoff), or `None` for no
    /// retries whatever `DEFAULT_RETRY` says.
    #[must_use]
    pub fn retry(mut self, retry: impl Into<RetrySetting>) -> Self {
        self.config.retry = retry.into();
        self
    }

    /// Adds an argument of the queue (`x-max-priority`, `x-message-ttl`,
    /// `x-max-length`, `x-overflow`, `x-dead-letter-exchange`, `x-queue-type`, ...).
    ///
    /// ```
    /// use nameko_core::entrypoints::Consume;
    ///
    /// let consume = Consume::new("jobs").queue_argument("x-max-priority", 10);
    /// assert!(consume.config().queue_options.arguments.contains_key("x-max-priority"));
    /// ```
    #[must_use]
    pub fn queue_argument(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.config.queue_options = self.config.queue_options.with_argument(key, value);
        self
    }

    fn plan(&self, ctx: &EntrypointContext) -> Result<QueuePlan, ExtensionError> {
        let config = &self.config;
        let mut topology = Topology::new();
        if let Some(exchange) = &config.exchange {
            topology.record(Declaration::exchange(
                exchange.name.clone(),
                exchange.kind,
                exchange.options(),
            ));
        }
        let choice = ctx
            .container()
            .settings()
            .queue_type
            .for_entrypoint(ctx.container().service_name(), ctx.method().name);
        topology.record(Declaration::queue(
            config.queue.clone(),
            queue_options_for(&config.queue, config.queue_options.clone(), choice)?,
        ));
        if let Some(exchange) = &config.exchange {
            topology.record(Declaration::binding(
                config.queue.clone(),
                exchange.name.clone(),
                config.routing_key.clone(),
            ));
        }
        Ok(QueuePlan {
            topology,
            queue: config.queue.clone(),
            settling: Settling {
                requeue_on_error: config.requeue_on_error,
                requeue_delay: ctx.container().settings().requeue_delay,
            },
            prefetch: config.prefetch,
            retry: config
                .retry
                .resolve(ctx.container().config(), config.requeue_on_error)
                .map_err(|e| ExtensionError::msg(format!("DEFAULT_RETRY: {e}")))?,
            attributes: Vec::new(),
        })
    }
}

#[async_trait]
impl Entrypoint for Consume {
    fn kind(&self) -> &'static str {
        "consume"
    }

    /// Receives the messages of its queue (bound to its exchange, if any).
    fn describe(&self, _ctx: &DescribeContext<'_>) -> Description {
        let config = &self.config;
        let mut channel = Channel::queue(config.queue.clone(), config.queue_options.clone());
        if let Some(exchange) = &config.exchange {
            channel = channel.bound_to(exchange.clone(), config.routing_key.clone());
        }
        Description::operation(Operation::receive(channel, Payload::FirstParameter))
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        check_one_payload("consume", method)
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let plan = self.plan(ctx)?;
        self.runner.setup(ctx, plan).await
    }

    async fn start(&self) -> Result<(), ExtensionError> {
        self.runner.start("consumer").await
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
