//! The driver shared by event handlers and generic consumers: consume one queue, run a
//! worker per message with the decoded body as its one argument, ack when it finished.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::consumer_loop::{ConsumerTask, DeliveryHandler, Topology, settle};
use crate::container::{ContainerContext, ContainerError, Driver, ResultHandler, Spawner};
use crate::context::ContextData;
use crate::entrypoint::{ConsumeConfig, EventHandlerConfig};
use crate::transport::{Acker, Delivery, Message};
use crate::wire::{self, CallArgs};

/// How a queue entrypoint settles its messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settling {
    pub(crate) requeue_on_error: bool,
    /// Wait before requeueing a message that failed again after a redelivery, so a
    /// message that always fails cannot spin in a hot loop.
    pub(crate) requeue_delay: Duration,
}

/// Everything a queue entrypoint needs to know to consume: what to declare, how to
/// settle, its prefetch window (`PREFETCH_COUNT` when `None`).
#[derive(Debug, Clone)]
pub(crate) struct QueuePlan {
    pub(crate) topology: Topology,
    pub(crate) settling: Settling,
    pub(crate) prefetch: Option<u16>,
}

/// What a queue entrypoint consumes.
#[derive(Debug, Clone)]
pub(crate) enum QueueSource {
    /// An `@event_handler`.
    Event(EventHandlerConfig),
    /// A `@consume`.
    Consume(ConsumeConfig),
}

impl QueueSource {
    fn what(&self) -> &'static str {
        match self {
            Self::Event(_) => "event handler",
            Self::Consume(_) => "consumer",
        }
    }

    fn plan(
        &self,
        entrypoint: &'static str,
        ctx: &ContainerContext,
    ) -> Result<QueuePlan, ContainerError> {
        match self {
            Self::Event(config) => crate::events::handler_plan(config, entrypoint, ctx),
            Self::Consume(config) => crate::messaging::consume_plan(config, ctx),
        }
    }
}

/// Runs an event handler or a `consume` entrypoint.
pub(crate) struct QueueDriver {
    entrypoint: &'static str,
    source: QueueSource,
    plan: Option<(ContainerContext, QueuePlan)>,
    consumer: ConsumerTask,
}

impl QueueDriver {
    pub(crate) fn new(entrypoint: &'static str, source: QueueSource) -> Self {
        Self {
            entrypoint,
            source,
            plan: None,
            consumer: ConsumerTask::default(),
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
    spawner: Arc<dyn Spawner>,
}

#[async_trait]
impl Driver for QueueDriver {
    async fn setup(&mut self, ctx: &ContainerContext) -> Result<(), ContainerError> {
        let plan = self.source.plan(self.entrypoint, ctx)?;
        plan.topology.declare(ctx.transport().as_ref()).await?;
        self.plan = Some((ctx.clone(), plan));
        Ok(())
    }

    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError> {
        let Some((ctx, plan)) = &self.plan else {
            return Err(ContainerError::Definition(format!(
                "`{}` started before setup",
                self.entrypoint
            )));
        };
        let prefetch = match plan.prefetch {
            Some(p) => p,
            None => ctx.config().prefetch_count()?,
        };
        let what = self.source.what();
        let handler = Arc::new(Loop {
            ctx: ctx.clone(),
            entrypoint: self.entrypoint,
            what,
            queue: plan.topology.queue.clone(),
            max_size: ctx.config().max_message_size()?,
            settling: plan.settling,
            spawner,
        });
        self.consumer
            .start(
                ctx,
                &plan.topology.queue,
                prefetch,
                format!("the {what} `{}`", self.entrypoint),
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

#[async_trait]
impl DeliveryHandler for Loop {
    async fn handle(&self, delivery: Delivery) -> bool {
        handle(self, self.spawner.as_ref(), delivery).await
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
        Some(ct) if wire::is_json_content_type(ct) => {}
        Some(ct) => return Err(format!("unsupported content type `{ct}`")),
        None => return Err("message has no content type".to_owned()),
    }
    wire::json::parse_value(&message.body).map_err(|e| format!("invalid JSON: {e}"))
}

async fn handle(state: &Loop, spawner: &dyn Spawner, delivery: Delivery) -> bool {
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
