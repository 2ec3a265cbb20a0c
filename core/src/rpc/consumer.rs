//! The RPC entrypoint: one consumer on `rpc-<service>` for all of a service's RPC methods.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;

use crate::config::RetryPolicy;
use crate::consumer_loop::{ConsumerTask, DeliveryHandler, Topology, settle};
use crate::container::{ContainerContext, ContainerError, Driver, ResultHandler, Spawner};
use crate::context::ContextData;
use crate::errors::RemoteError;
use crate::publish::publish_made_with_retry;
use crate::transport::{
    Acker, Delivery, ExchangeKind, ExchangeOptions, Message, Properties, PublishOptions,
    PublishOutcome, QueueOptions, Transport,
};
use crate::wire::{self, CallArgs};
use crate::worker::WorkerResult;

/// Consumes `rpc-<service>` and runs a worker per request.
pub(crate) struct RpcDriver {
    methods: Vec<&'static str>,
    settings: Option<Arc<Settings>>,
    consumer: ConsumerTask,
}

struct Settings {
    ctx: ContainerContext,
    service: &'static str,
    queue: String,
    exchange: String,
    prefetch: u16,
    max_size: usize,
    retry: RetryPolicy,
    methods: Vec<&'static str>,
}

impl RpcDriver {
    pub(crate) fn new(methods: Vec<&'static str>) -> Self {
        Self {
            methods,
            settings: None,
            consumer: ConsumerTask::default(),
        }
    }
}

#[async_trait]
impl Driver for RpcDriver {
    async fn setup(&mut self, ctx: &ContainerContext) -> Result<(), ContainerError> {
        let config = ctx.config();
        let service = ctx.service_name();
        let settings = Settings {
            ctx: ctx.clone(),
            service,
            queue: wire::rpc_queue(service),
            exchange: config.rpc_exchange()?.to_owned(),
            prefetch: config.prefetch_count()?,
            max_size: config.max_message_size()?,
            retry: config.rpc_retry_policy()?,
            methods: self.methods.clone(),
        };
        Topology {
            exchange: Some((
                settings.exchange.clone(),
                ExchangeKind::Topic,
                ExchangeOptions::durable(),
            )),
            queue: settings.queue.clone(),
            queue_options: QueueOptions::durable(),
            routing_key: wire::rpc_binding(service),
        }
        .declare(ctx.transport().as_ref())
        .await?;
        self.settings = Some(Arc::new(settings));
        Ok(())
    }

    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError> {
        let Some(settings) = self.settings.clone() else {
            return Err(ContainerError::Definition(
                "RPC entrypoint started before setup".to_owned(),
            ));
        };
        let handler = Arc::new(RpcHandler {
            settings: settings.clone(),
            spawner,
        });
        self.consumer
            .start(
                &settings.ctx,
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
    spawner: Arc<dyn Spawner>,
}

#[async_trait]
impl DeliveryHandler for RpcHandler {
    async fn handle(&self, delivery: Delivery) -> bool {
        handle(&self.settings, self.spawner.as_ref(), delivery).await
    }
}

/// Handles one request; `false` when the container is stopping and the request went back
/// to the queue.
async fn handle(settings: &Arc<Settings>, spawner: &dyn Spawner, delivery: Delivery) -> bool {
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
        return true;
    };
    let reply = Replier {
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
        .filter(|m| settings.methods.contains(m));
    let Some(method) = method else {
        let name = info.routing_key.rsplit('.').next().unwrap_or_default();
        return reply
            .refuse(RemoteError::method_not_found(name), acker)
            .await;
    };
    let call = match spawner.bind(method, args) {
        Ok(call) => call,
        Err(error) => return reply.refuse(error.to_remote_error(), acker).await,
    };
    let slot = match spawner.try_worker_slot() {
        Some(slot) => slot,
        None => match spawner.worker_slot().await {
            Ok(slot) => slot,
            Err(_) => {
                settle(acker.nack(true).await);
                return false;
            }
        },
    };
    let (context, parent_stack) = ContextData::from_headers(&properties.headers);
    let on_result: ResultHandler = Box::new(move |_worker, result| {
        Box::pin(async move {
            reply.send(&result, acker).await;
            result
        })
    });
    spawner.spawn_detached(slot, call, context, &parent_stack, on_result);
    true
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
            self.send(&Err(error), acker).await;
            true
        })
    }

    /// Publishes the reply and acks the request once the broker confirmed it; requeues
    /// the request if the reply cannot be published.
    async fn send(self, result: &WorkerResult, acker: Acker) {
        let transport: &dyn Transport = self.settings.ctx.transport().as_ref();
        let body = Bytes::from(wire::encode_reply(result));
        let message = || {
            let mut properties = Properties::json();
            properties.correlation_id.clone_from(&self.correlation_id);
            Message::new(body.clone(), properties)
        };
        let outcome = publish_made_with_retry(
            transport,
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
