//! The driver shared by event handlers and generic consumers: consume one queue, run a
//! worker per message with the decoded body as its one argument, ack when it finished.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::container::{ContainerContext, ContainerError, Driver, ResultHandler, Spawner};
use crate::context::ContextData;
use crate::rpc::give_back_unstarted;
use crate::transport::{
    Acker, ConsumeOptions, Consumer, Delivery, ExchangeKind, ExchangeOptions, Message,
    QueueOptions, TransportError,
};
use crate::wire::{self, CallArgs};

/// What a queue entrypoint declares before consuming.
#[derive(Debug, Clone)]
pub(crate) struct Topology {
    pub(crate) exchange: Option<(String, ExchangeKind, ExchangeOptions)>,
    pub(crate) queue: String,
    pub(crate) queue_options: QueueOptions,
    pub(crate) routing_key: String,
}

/// How a queue entrypoint settles its messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settling {
    pub(crate) requeue_on_error: bool,
    /// Wait before requeueing a message that failed again after a redelivery, so a
    /// message that always fails cannot spin in a hot loop.
    pub(crate) requeue_delay: Duration,
}

pub(crate) struct QueueDriver {
    entrypoint: &'static str,
    what: &'static str,
    topology: Topology,
    prefetch: Option<u16>,
    settling: Settling,
    ctx: Option<ContainerContext>,
    task: Mutex<Option<JoinHandle<Option<Consumer>>>>,
    consumer: tokio::sync::Mutex<Option<Consumer>>,
}

impl QueueDriver {
    pub(crate) fn new(
        entrypoint: &'static str,
        what: &'static str,
        topology: Topology,
        prefetch: Option<u16>,
        settling: Settling,
    ) -> Self {
        Self {
            entrypoint,
            what,
            topology,
            prefetch,
            settling,
            ctx: None,
            task: Mutex::new(None),
            consumer: tokio::sync::Mutex::new(None),
        }
    }
}

struct Loop {
    ctx: ContainerContext,
    entrypoint: &'static str,
    what: &'static str,
    queue: String,
    max_size: usize,
    settling: Settling,
}

#[async_trait]
impl Driver for QueueDriver {
    async fn setup(&mut self, ctx: &ContainerContext) -> Result<(), ContainerError> {
        let transport = ctx.transport();
        let t = &self.topology;
        if let Some((name, kind, options)) = &t.exchange {
            transport
                .declare_exchange(name, *kind, *options)
                .await
                .map_err(|e| {
                    ContainerError::transport(format!("declaring exchange `{name}`"), e)
                })?;
        }
        transport
            .declare_queue(&t.queue, t.queue_options.clone())
            .await
            .map_err(|e| ContainerError::transport(format!("declaring queue `{}`", t.queue), e))?;
        if let Some((exchange, _, _)) = &t.exchange {
            transport
                .bind_queue(&t.queue, exchange, &t.routing_key)
                .await
                .map_err(|e| {
                    ContainerError::transport(format!("binding queue `{}`", t.queue), e)
                })?;
        }
        self.ctx = Some(ctx.clone());
        Ok(())
    }

    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError> {
        let Some(ctx) = self.ctx.clone() else {
            return Err(ContainerError::Definition(format!(
                "`{}` started before setup",
                self.entrypoint
            )));
        };
        let prefetch = match self.prefetch {
            Some(p) => p,
            None => ctx.config().prefetch_count()?,
        };
        let max_size = ctx.config().max_message_size()?;
        let consumer = ctx
            .transport()
            .consume(
                &self.topology.queue,
                ConsumeOptions::with_prefetch(prefetch),
            )
            .await
            .map_err(|e| {
                ContainerError::transport(format!("consuming `{}`", self.topology.queue), e)
            })?;
        let state = Arc::new(Loop {
            ctx,
            entrypoint: self.entrypoint,
            what: self.what,
            queue: self.topology.queue.clone(),
            max_size,
            settling: self.settling,
        });
        let task = tokio::spawn(run(state, spawner, consumer));
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
            tracing::debug!(%error, queue = %self.topology.queue, "closing consumer");
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

async fn run(
    state: Arc<Loop>,
    spawner: Arc<dyn Spawner>,
    mut consumer: Consumer,
) -> Option<Consumer> {
    let ctx = state.ctx.clone();
    loop {
        let next = tokio::select! {
            biased;
            () = ctx.stopping().cancelled() => break,
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                if !handle(&state, spawner.as_ref(), delivery).await {
                    break;
                }
            }
            Some(Err(error)) => {
                if !ctx.stopping().is_cancelled() {
                    ctx.crash(format!(
                        "the {} `{}` lost its consumer of `{}`: {error}",
                        state.what, state.entrypoint, state.queue
                    ));
                }
                return Some(consumer);
            }
            None => {
                if !ctx.stopping().is_cancelled() {
                    ctx.crash(format!("the consumer of `{}` ended", state.queue));
                }
                return Some(consumer);
            }
        }
    }
    give_back_unstarted(&mut consumer, &state.queue).await;
    Some(consumer)
}

fn settle(result: Result<(), TransportError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle a message; the broker will redeliver it");
    }
}

/// Reads a message body as nameko does: JSON only.
pub(crate) fn decode_body(message: &Message, max_size: usize) -> Result<Value, String> {
    if message.body.len() > max_size {
        return Err(format!(
            "message body of {} bytes is larger than MAX_MESSAGE_SIZE ({max_size} bytes)",
            message.body.len()
        ));
    }
    match message.properties.content_type.as_deref() {
        Some(ct)
            if ct
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case(wire::CONTENT_TYPE_JSON) => {}
        Some(ct) => return Err(format!("unsupported content type `{ct}`")),
        None => return Err("message has no content type".to_owned()),
    }
    wire::json::parse_value(&message.body).map_err(|e| format!("invalid JSON: {e}"))
}

async fn handle(state: &Arc<Loop>, spawner: &dyn Spawner, delivery: Delivery) -> bool {
    let (message, info, acker) = delivery.into_parts();
    let payload = match decode_body(&message, state.max_size) {
        Ok(payload) => payload,
        Err(problem) => {
            tracing::error!(queue = %state.queue, routing_key = %info.routing_key, %problem, "cannot read message; rejected");
            settle(acker.reject(false).await);
            return true;
        }
    };
    let call = match spawner.bind(state.entrypoint, CallArgs::positional(vec![payload])) {
        Ok(call) => call,
        Err(error) => {
            tracing::error!(queue = %state.queue, %error, "message does not fit the {}; rejected", state.what);
            settle(acker.reject(false).await);
            return true;
        }
    };
    let slot = match spawner.worker_slot().await {
        Ok(slot) => slot,
        Err(_) => {
            settle(acker.nack(true).await);
            return false;
        }
    };
    let (context, parent_stack) = ContextData::from_headers(&message.properties.headers);
    let settling = state.settling;
    let redelivered = info.redelivered;
    let stopping = state.ctx.stopping().clone();
    let on_result: ResultHandler = Box::new(move |_worker, result| {
        Box::pin(async move {
            match (&result, settling.requeue_on_error) {
                (Err(_), true) => {
                    requeue(acker, redelivered, settling.requeue_delay, stopping).await;
                }
                _ => settle(acker.ack().await),
            }
            result
        })
    });
    spawner.spawn(slot, call, context, &parent_stack, Some(on_result));
    true
}

async fn requeue(
    acker: Acker,
    redelivered: bool,
    delay: Duration,
    stopping: tokio_util::sync::CancellationToken,
) {
    if redelivered && !delay.is_zero() {
        tracing::warn!(
            ?delay,
            "message failed again after a redelivery; requeueing after a delay"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stopping.cancelled() => {}
        }
    }
    settle(acker.nack(true).await);
}
