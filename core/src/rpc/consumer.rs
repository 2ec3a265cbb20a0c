//! The RPC entrypoint: one consumer on `rpc-<service>` for all of a service's RPC methods.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::config::RetryPolicy;
use crate::container::{ContainerContext, ContainerError, Driver, ResultHandler, Spawner};
use crate::context::ContextData;
use crate::errors::RemoteError;
use crate::publish::publish_made_with_retry;
use crate::transport::{
    Acker, ConsumeOptions, Consumer, Delivery, ExchangeKind, ExchangeOptions, Message, Properties,
    PublishOptions, PublishOutcome, QueueOptions, Transport,
};
use crate::wire::{self, CallArgs};
use crate::worker::WorkerResult;

/// How long a stopping consumer waits for deliveries its broker had already sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Consumes `rpc-<service>` and runs a worker per request.
pub(crate) struct RpcDriver {
    methods: Vec<&'static str>,
    settings: Option<Arc<Settings>>,
    task: Mutex<Option<JoinHandle<Option<Consumer>>>>,
    consumer: tokio::sync::Mutex<Option<Consumer>>,
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
            task: Mutex::new(None),
            consumer: tokio::sync::Mutex::new(None),
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
        let transport = ctx.transport();
        transport
            .declare_exchange(
                &settings.exchange,
                ExchangeKind::Topic,
                ExchangeOptions::durable(),
            )
            .await
            .map_err(|e| {
                ContainerError::transport(format!("declaring exchange `{}`", settings.exchange), e)
            })?;
        transport
            .declare_queue(&settings.queue, QueueOptions::durable())
            .await
            .map_err(|e| {
                ContainerError::transport(format!("declaring queue `{}`", settings.queue), e)
            })?;
        transport
            .bind_queue(
                &settings.queue,
                &settings.exchange,
                &wire::rpc_binding(service),
            )
            .await
            .map_err(|e| {
                ContainerError::transport(format!("binding queue `{}`", settings.queue), e)
            })?;
        self.settings = Some(Arc::new(settings));
        Ok(())
    }

    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError> {
        let Some(settings) = self.settings.clone() else {
            return Err(ContainerError::Definition(
                "RPC entrypoint started before setup".to_owned(),
            ));
        };
        let consumer = settings
            .ctx
            .transport()
            .consume(
                &settings.queue,
                ConsumeOptions::with_prefetch(settings.prefetch),
            )
            .await
            .map_err(|e| ContainerError::transport(format!("consuming `{}`", settings.queue), e))?;
        let task = tokio::spawn(consume(settings, spawner, consumer));
        *self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        Ok(())
    }

    async fn stop(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Ok(consumer) = task.await
        {
            *self.consumer.lock().await = consumer;
        }
    }

    async fn close(&self) {
        let consumer = self.consumer.lock().await.take();
        if let Some(consumer) = consumer
            && let Err(error) = consumer.close().await
        {
            tracing::debug!(%error, "closing the RPC consumer");
        }
    }

    async fn kill(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.consumer.lock().await.take();
    }
}

async fn consume(
    settings: Arc<Settings>,
    spawner: Arc<dyn Spawner>,
    mut consumer: Consumer,
) -> Option<Consumer> {
    let ctx = settings.ctx.clone();
    loop {
        let next = tokio::select! {
            biased;
            () = ctx.stopping().cancelled() => break,
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                if !handle(&settings, spawner.as_ref(), delivery).await {
                    break;
                }
            }
            Some(Err(error)) => {
                if !ctx.stopping().is_cancelled() {
                    ctx.crash(format!(
                        "the RPC consumer of `{}` failed: {error}",
                        settings.queue
                    ));
                }
                return Some(consumer);
            }
            None => {
                if !ctx.stopping().is_cancelled() {
                    ctx.crash(format!("the RPC consumer of `{}` ended", settings.queue));
                }
                return Some(consumer);
            }
        }
    }
    give_back_unstarted(&mut consumer, &settings.queue).await;
    Some(consumer)
}

/// Cancels a consumer and requeues what it had received but not started.
pub(crate) async fn give_back_unstarted(consumer: &mut Consumer, queue: &str) {
    if let Err(error) = consumer.cancel().await {
        tracing::debug!(%error, queue, "cancelling consumer");
    }
    let drain = async {
        let mut requeued = 0_usize;
        while let Some(Ok(delivery)) = consumer.next().await {
            if delivery.nack(true).await.is_ok() {
                requeued += 1;
            }
        }
        requeued
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
        Ok(0) => {}
        Ok(requeued) => tracing::info!(queue, requeued, "requeued messages that had not started"),
        Err(_) => tracing::warn!(
            queue,
            "consumer did not end after cancel; closing it requeues the rest"
        ),
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
        Some(ct) => {
            let media = ct.split(';').next().unwrap_or_default().trim();
            if media.eq_ignore_ascii_case(wire::CONTENT_TYPE_JSON) {
                Ok(())
            } else {
                Err(format!(
                    "Unsupported content type `{ct}`; nameko RPC requests must be `{}`",
                    wire::CONTENT_TYPE_JSON
                ))
            }
        }
    }
}

fn settle(result: Result<(), crate::transport::TransportError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle the request; the broker will redeliver it");
    }
}

/// Sends the reply to one request, then settles the request.
struct Replier {
    settings: Arc<Settings>,
    reply_to: String,
    correlation_id: Option<String>,
}

impl Replier {
    /// Answers a request that runs no worker, and acks it.
    async fn refuse(self, error: RemoteError, acker: Acker) -> bool {
        tracing::warn!(exc_type = %error.exc_type, value = %error.value, "refusing RPC request");
        self.send(&Err(error), acker).await;
        true
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
