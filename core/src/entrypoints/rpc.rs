//! The RPC entrypoint (nameko's `@rpc`): every RPC method of a service registers with one
//! [`RpcConsumer`], a shared extension that consumes `rpc-<service>` and runs a worker per
//! request.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::consumer::{ConsumerTask, DeliveryHandler, settle};
use crate::config::{RetryPolicy, queue_options_for};
use crate::context::ContextData;
use crate::errors::RemoteError;
use crate::extension::{
    Channel, Collector, DescribeContext, Description, Entrypoint, EntrypointContext,
    ExtensionError, Operation, Payload, Settlement, SharedExtension, Workers,
};
use crate::messaging::ExchangeDef;
use crate::method::Output;
use crate::publish::publish_made_with_retry;
use crate::retry::{Backoff, Retrier, RetrySetting};
use crate::transport::topology::{Declaration, Topology};
use crate::transport::{
    Acker, Delivery, ExchangeKind, ExchangeOptions, Message, Properties, PublishOptions,
    PublishOutcome, QueueOptions, Transport,
};
use crate::wire::{self, CallArgs};

/// An RPC method: requests on `rpc-<service>` with routing key `<service>.<method>`.
#[derive(Debug, Default, Clone)]
pub struct Rpc {
    retry: Option<Backoff>,
}

impl Rpc {
    /// The RPC entrypoint.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Retries a failed call after a delay held by the broker, as event handlers do
    /// ([`crate::retry`]), answering the caller only once: with the first success, or
    /// with the error of the last attempt. Opt-in per method (`DEFAULT_RETRY` does not
    /// apply); the caller's timeout must cover the delays.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nameko_core::entrypoints::Rpc;
    /// use nameko_core::retry::Backoff;
    ///
    /// let rpc = Rpc::new().retry(Backoff::schedule(2, [Duration::from_millis(500)]));
    /// # drop(rpc);
    /// ```
    #[must_use]
    pub fn retry(mut self, retry: impl Into<RetrySetting>) -> Self {
        self.retry = match retry.into() {
            RetrySetting::Policy(policy) => Some(policy),
            _ => None,
        };
        self
    }
}

#[async_trait]
impl Entrypoint for Rpc {
    fn kind(&self) -> &'static str {
        "rpc"
    }

    /// Receives requests on `rpc-<service>` (bound to `rpc_exchange` with `<service>.*`),
    /// routed by `<service>.<method>`, and replies to each caller.
    fn describe(&self, ctx: &DescribeContext<'_>) -> Description {
        let service = ctx.service_name();
        let exchange = ExchangeDef::new(ctx.settings().rpc_exchange.clone(), ExchangeKind::Topic);
        let channel = Channel::queue(wire::rpc_queue(service), QueueOptions::durable())
            .bound_to(exchange, wire::rpc_binding(service));
        let mut operation = Operation::receive(channel, Payload::Arguments)
            .reply(Payload::Reply)
            .routing_key(format!("{service}.{}", ctx.method().name));
        if self.retry.is_some() {
            operation = operation.summary(
                "A failed call is retried after a delay held by the broker; the caller is answered once.",
            );
        }
        Description::operation(operation)
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let workers = ctx.workers().clone();
        let consumer = ctx
            .container()
            .shared("", move || RpcConsumer::new(workers));
        consumer.methods.register(ctx.method().name);
        if let Some(policy) = &self.retry {
            consumer
                .retries
                .register((ctx.method().name, policy.clone()));
        }
        Ok(())
    }
}

/// Consumes `rpc-<service>` for every RPC method of a container (nameko's `RpcConsumer`):
/// checks each request, runs its worker, publishes the reply, then acks the request.
#[derive(Debug)]
pub struct RpcConsumer {
    workers: Workers,
    methods: Collector<&'static str>,
    retries: Collector<(&'static str, Backoff)>,
    settings: OnceLock<Arc<Settings>>,
    consumer: ConsumerTask,
}

#[derive(Debug)]
struct Settings {
    service: &'static str,
    queue: String,
    exchange: String,
    prefetch: u16,
    max_size: usize,
    retry: RetryPolicy,
    methods: Vec<&'static str>,
    /// The methods with a retry policy; empty for most services.
    retries: Vec<(&'static str, Arc<Retrier>)>,
}

impl RpcConsumer {
    fn new(workers: Workers) -> Self {
        Self {
            workers,
            methods: Collector::new(),
            retries: Collector::new(),
            settings: OnceLock::new(),
            consumer: ConsumerTask::default(),
        }
    }
}

#[async_trait]
impl SharedExtension for RpcConsumer {
    async fn setup(&self) -> Result<(), ExtensionError> {
        let ctx = self.workers.container();
        let config = ctx.settings();
        let service = ctx.service_name();
        let settings = Settings {
            service,
            queue: wire::rpc_queue(service),
            exchange: config.rpc_exchange.clone(),
            prefetch: config.prefetch_count,
            max_size: config.max_message_size,
            retry: config.rpc_retry_policy,
            methods: self.methods.items(),
            retries: self
                .retries
                .items()
                .into_iter()
                .map(|(method, policy)| {
                    let queue = wire::rpc_queue(service);
                    let retrier = Retrier::new(policy, &queue, Arc::clone(ctx.transport()));
                    (method, Arc::new(retrier))
                })
                .collect(),
        };
        Topology::new()
            .with(Declaration::exchange(
                settings.exchange.clone(),
                ExchangeKind::Topic,
                ExchangeOptions::durable(),
            ))
            .with(Declaration::queue(
                settings.queue.clone(),
                queue_options_for(
                    &settings.queue,
                    QueueOptions::durable(),
                    config.queue_type.for_service(service),
                )?,
            ))
            .with(Declaration::binding(
                settings.queue.clone(),
                settings.exchange.clone(),
                wire::rpc_binding(service),
            ))
            .declare(ctx.transport().as_ref())
            .await?;
        let _ = self.settings.set(Arc::new(settings));
        Ok(())
    }

    async fn start(&self) -> Result<(), ExtensionError> {
        let Some(settings) = self.settings.get().cloned() else {
            return Err(ExtensionError::msg("RPC consumer started before setup"));
        };
        let handler = Arc::new(RpcHandler {
            settings: settings.clone(),
            workers: self.workers.clone(),
        });
        self.consumer
            .start(
                self.workers.container(),
                &settings.queue,
                settings.prefetch,
                "the RPC entrypoint".to_owned(),
                handler,
            )
            .await
    }

    async fn stop(&self) {
        self.consumer.stop().await;
    }

    async fn close(&self) {
        self.consumer.close().await;
    }

    async fn kill(&self) {
        self.consumer.kill().await;
    }
}

struct RpcHandler {
    settings: Arc<Settings>,
    workers: Workers,
}

impl DeliveryHandler for RpcHandler {
    async fn handle(&self, delivery: Delivery) -> bool {
        handle(&self.settings, &self.workers, delivery).await
    }
}

/// Handles one request; `false` when the container is stopping and the request went back
/// to the queue.
async fn handle(settings: &Arc<Settings>, workers: &Workers, delivery: Delivery) -> bool {
    let (message, info, acker) = delivery.into_parts();
    let Message {
        body,
        mut properties,
    } = message;
    let Some(reply_to) = properties.reply_to.take() else {
        tracing::error!(
            routing_key = %info.routing_key,
            correlation_id = properties.correlation_id.as_deref().unwrap_or(""),
            "RPC request without reply_to: no reply is possible; rejected"
        );
        settle(acker.reject(false).await);
        workers
            .container()
            .observers()
            .message_settled(&settings.queue, Settlement::Rejected, 1);
        return true;
    };
    let reply = Replier {
        transport: workers.container().transport().clone(),
        settings: settings.clone(),
        reply_to,
        correlation_id: properties.correlation_id.take(),
    };
    if body.len() > settings.max_size {
        let message = format!(
            "Message body of {} bytes is larger than MAX_MESSAGE_SIZE ({} bytes)",
            body.len(),
            settings.max_size
        );
        return reply
            .refuse(RemoteError::malformed_request(message), acker)
            .await;
    }
    if let Err(message) = check_content_type(&properties) {
        return reply
            .refuse(RemoteError::malformed_request(message), acker)
            .await;
    }
    let args = match CallArgs::from_body(&body) {
        Ok(args) => args,
        Err(message) => {
            return reply
                .refuse(RemoteError::malformed_request(message), acker)
                .await;
        }
    };
    let method = info
        .routing_key
        .strip_prefix(settings.service)
        .and_then(|rest| rest.strip_prefix('.'))
        .or_else(|| retried_method(settings, &info.routing_key, &properties))
        .filter(|m| settings.methods.contains(m));
    let Some(method) = method else {
        let name = info.routing_key.rsplit('.').next().unwrap_or_default();
        return reply
            .refuse(RemoteError::method_not_found(name), acker)
            .await;
    };
    let call = match workers.bind(method, args) {
        Ok(call) => call,
        Err(error) => return reply.refuse(error.to_remote_error(), acker).await,
    };
    let slot = match workers.try_slot() {
        Some(slot) => slot,
        None => match workers.slot().await {
            Ok(slot) => slot,
            Err(_) => {
                settle(acker.nack(true).await);
                workers.container().observers().message_settled(
                    &settings.queue,
                    Settlement::Requeued,
                    1,
                );
                return false;
            }
        },
    };
    let retrier = if settings.retries.is_empty() {
        None
    } else {
        settings
            .retries
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, retrier)| Arc::clone(retrier))
    };
    let mut worker = if retrier.is_some() {
        // A retry re-publishes the request with its headers.
        let (context, parent_stack) = ContextData::from_headers(&properties.headers);
        workers.start(slot, call, context, &parent_stack)
    } else {
        let headers = std::mem::take(&mut properties.headers);
        let (context, parent_stack) = ContextData::from_owned_headers(headers);
        workers.start_with_parents(slot, call, context, parent_stack)
    };
    let retry = retrier.map(|retrier| {
        let attempt = Retrier::attempt_of(&properties.headers);
        worker.set_attempt(attempt);
        let routing_key = format!("{}.{method}", settings.service);
        (retrier, attempt, body, properties, routing_key)
    });
    workers.spawn(worker, move |worker| async move {
        let run = worker.run().await;
        if let Some(retry) = retry
            && let Err(error) = run.result()
        {
            let error = error.clone();
            let stack = run.context().call_id_stack().to_vec();
            let (retrier, attempt, body, mut properties, routing_key) = retry;
            properties.reply_to = Some(reply.reply_to.clone());
            properties.correlation_id.clone_from(&reply.correlation_id);
            if !properties.headers.contains_key(RPC_METHOD_ID_HEADER) {
                properties.headers.insert(RPC_METHOD_ID_HEADER, routing_key);
            }
            let message = Message::new(body, properties);
            match retrier.retry(message, attempt, &error, &stack).await {
                Ok(true) => {
                    // Answered by a later attempt.
                    settle(acker.ack().await);
                    run.finish().await;
                    return;
                }
                Ok(false) => {}
                Err(problem) => {
                    tracing::error!(%problem, "cannot re-publish a failed request for its retry; answering with its error");
                }
            }
        }
        let body = encode_reply(run.result());
        reply.send(body, acker).await;
        run.finish().await;
    });
    true
}

/// The header naming the method of a retried request (it comes back with the service's
/// queue as routing key), as nameko-amqp-retry names it.
const RPC_METHOD_ID_HEADER: &str = "nameko.rpc_method_id";

/// The method of a request that came back from its retry delay: named by its
/// `nameko.rpc_method_id` header, when the service has retrying methods.
fn retried_method(
    settings: &Settings,
    routing_key: &str,
    properties: &Properties,
) -> Option<&'static str> {
    if settings.retries.is_empty() || routing_key != settings.queue {
        return None;
    }
    let name = properties
        .headers
        .get(RPC_METHOD_ID_HEADER)
        .and_then(crate::transport::FieldValue::as_str)?
        .strip_prefix(settings.service)?
        .strip_prefix('.')?;
    settings.methods.iter().copied().find(|m| *m == name)
}

fn check_content_type(properties: &Properties) -> Result<(), String> {
    match properties.content_type.as_deref() {
        None | Some("") => Err(format!(
            "Message has no content type; nameko RPC requests must be `{}`",
            wire::CONTENT_TYPE_JSON
        )),
        Some(ct) if wire::is_json_content_type(ct) => Ok(()),
        Some(ct) => Err(format!(
            "Unsupported content type `{ct}`; nameko RPC requests must be `{}`",
            wire::CONTENT_TYPE_JSON
        )),
    }
}

/// Sends the reply to one request, then settles the request.
struct Replier {
    transport: Arc<dyn Transport>,
    settings: Arc<Settings>,
    reply_to: String,
    correlation_id: Option<String>,
}

impl Replier {
    /// Answers a request that runs no worker, and acks it. Boxed: this rare way would
    /// otherwise make the future of every request as large as a reply's publish.
    fn refuse(self, error: RemoteError, acker: Acker) -> BoxFuture<'static, bool> {
        Box::pin(async move {
            tracing::warn!(exc_type = %error.exc_type, value = %error.value, "refusing RPC request");
            let body = wire::reply_body(None, Some(&error));
            self.send(body, acker).await;
            true
        })
    }

    /// Publishes the reply and acks the request once the broker confirmed it; requeues
    /// the request if the reply cannot be published.
    async fn send(self, body: Bytes, acker: Acker) {
        let message = || {
            let mut properties = Properties::json();
            properties.correlation_id.clone_from(&self.correlation_id);
            Message::new(body.clone(), properties)
        };
        let outcome = publish_made_with_retry(
            self.transport.as_ref(),
            &self.settings.exchange,
            &self.reply_to,
            message,
            PublishOptions::default(),
            &self.settings.retry,
            None,
        )
        .await;
        match outcome {
            Ok(
                PublishOutcome::Confirmed | PublishOutcome::Sent | PublishOutcome::Returned { .. },
            ) => {
                settle(acker.ack().await);
            }
            Ok(outcome) => {
                tracing::error!(
                    ?outcome,
                    "the broker refused the reply; requeueing the request"
                );
                settle(acker.nack(true).await);
            }
            Err(error) => {
                tracing::error!(%error, "could not publish the reply; requeueing the request");
                settle(acker.nack(true).await);
            }
        }
    }
}

/// The reply body of a worker's result; a native output has no JSON form and answers
/// `null`.
fn encode_reply(result: &Result<Output, RemoteError>) -> Bytes {
    match result {
        Ok(Output::Json(value)) => wire::reply_body(Some(value), None),
        Ok(_) => wire::reply_body(None, None),
        Err(error) => wire::reply_body(None, Some(error)),
    }
}
