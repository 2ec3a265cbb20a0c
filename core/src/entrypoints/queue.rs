//! What event handlers and generic consumers share: consume one queue, run a worker per
//! message with the decoded body as its one argument, ack when it finished.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::consumer::{ConsumerTask, DeliveryHandler, settle};
use crate::context::ContextData;
use crate::extension::{EntrypointContext, ExtensionError, Observers, Settlement, Workers};
use crate::method::Method;
use crate::retry::{Backoff, Handled, Retrier};
use crate::transport::topology::Topology;
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
    /// The exchange, queue and binding to declare.
    pub(crate) topology: Topology,
    /// The queue to consume.
    pub(crate) queue: String,
    pub(crate) settling: Settling,
    pub(crate) prefetch: Option<u16>,
    /// The retry policy, if the entrypoint has one.
    pub(crate) retry: Option<Backoff>,
    /// Attributes every worker gets (an event handler's `source_service` and
    /// `event_type`).
    pub(crate) attributes: Vec<(&'static str, Arc<str>)>,
}

/// Checks that a queue entrypoint's method takes the message payload, and only it.
pub(crate) fn check_one_payload(attr: &str, method: &Method) -> Result<(), ExtensionError> {
    if method.params.len() == 1 {
        Ok(())
    } else {
        Err(ExtensionError::definition(format!(
            "a `#[{attr}]` method takes exactly one argument besides `&self`: the message payload (`{}` takes {})",
            method.name,
            method.params.len()
        )))
    }
}

/// The running part of a queue entrypoint.
#[derive(Debug, Default)]
pub(crate) struct QueueRunner {
    setup: Option<(EntrypointContext, QueuePlan)>,
    consumer: ConsumerTask,
}

impl QueueRunner {
    /// Declares what the plan consumes.
    pub(crate) async fn setup(
        &mut self,
        ctx: &EntrypointContext,
        mut plan: QueuePlan,
    ) -> Result<(), ExtensionError> {
        if let Some(policy) = &plan.retry {
            let transport = Arc::clone(ctx.container().transport());
            if let Some(dead) = Retrier::new(policy.clone(), &plan.queue, transport).declarations()
            {
                plan.topology.record(dead);
            }
        }
        plan.topology
            .declare(ctx.container().transport().as_ref())
            .await?;
        self.setup = Some((ctx.clone(), plan));
        Ok(())
    }

    /// Starts consuming; `what` names the entrypoint kind in logs.
    pub(crate) async fn start(&self, what: &'static str) -> Result<(), ExtensionError> {
        let Some((ctx, plan)) = &self.setup else {
            return Err(ExtensionError::msg("queue entrypoint started before setup"));
        };
        let container = ctx.container();
        let settings = container.settings();
        let prefetch = plan.prefetch.unwrap_or(settings.prefetch_count);
        let handler = Arc::new(Loop {
            workers: ctx.workers().clone(),
            method: ctx.method().name,
            what,
            queue: plan.queue.clone(),
            max_size: settings.max_message_size,
            settling: plan.settling,
            stopping: container.stopping().clone(),
            observers: container.observers().clone(),
            attributes: plan.attributes.clone(),
            retry: plan.retry.as_ref().map(|policy| {
                Arc::new(Retrier::new(
                    policy.clone(),
                    &plan.queue,
                    Arc::clone(container.transport()),
                ))
            }),
        });
        self.consumer
            .start(
                container,
                &plan.queue,
                prefetch,
                format!("the {what} `{}`", ctx.method().name),
                handler,
            )
            .await
    }

    pub(crate) async fn stop(&self) {
        self.consumer.stop().await;
    }

    pub(crate) async fn close(&self) {
        self.consumer.close().await;
    }

    pub(crate) async fn kill(&self) {
        self.consumer.kill().await;
    }
}

struct Loop {
    workers: Workers,
    method: &'static str,
    what: &'static str,
    queue: String,
    max_size: usize,
    settling: Settling,
    stopping: CancellationToken,
    retry: Option<Arc<Retrier>>,
    observers: Observers,
    attributes: Vec<(&'static str, Arc<str>)>,
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

impl DeliveryHandler for Loop {
    async fn handle(&self, delivery: Delivery) -> bool {
        let (mut message, info, acker) = delivery.into_parts();
        let payload = match decode_body(&message, self.max_size) {
            Ok(payload) => payload,
            Err(problem) => {
                tracing::error!(queue = %self.queue, routing_key = %info.routing_key, %problem, "cannot read message; rejected");
                settle(acker.reject(false).await);
                self.observers
                    .message_settled(&self.queue, Settlement::Rejected, 1);
                return true;
            }
        };
        let call = match self
            .workers
            .bind(self.method, CallArgs::positional(vec![payload]))
        {
            Ok(call) => call,
            Err(error) => {
                tracing::error!(queue = %self.queue, %error, "message does not fit the {}; rejected", self.what);
                settle(acker.reject(false).await);
                self.observers
                    .message_settled(&self.queue, Settlement::Rejected, 1);
                return true;
            }
        };
        let Ok(slot) = self.workers.slot().await else {
            settle(acker.nack(true).await);
            self.observers
                .message_settled(&self.queue, Settlement::Requeued, 1);
            return false;
        };
        let mut worker = if self.retry.is_some() {
            // A retry re-publishes the message with its headers.
            let (context, parent_stack) = ContextData::from_headers(&message.properties.headers);
            self.workers.start(slot, call, context, &parent_stack)
        } else {
            let headers = std::mem::take(&mut message.properties.headers);
            let (context, parent_stack) = ContextData::from_owned_headers(headers);
            self.workers
                .start_with_parents(slot, call, context, parent_stack)
        };
        for (key, value) in &self.attributes {
            worker.set_attribute(key, value.clone());
        }
        // Only an entrypoint with a retry policy keeps the message past this point.
        let retry = self.retry.as_ref().map(|retrier| {
            let attempt = Retrier::attempt_of(&message.properties.headers);
            worker.set_attempt(attempt);
            (Arc::clone(retrier), attempt, message)
        });
        let settling = self.settling;
        let redelivered = info.redelivered;
        let stopping = self.stopping.clone();
        let queue = self.queue.clone();
        let observers = self.observers.clone();
        self.workers.spawn(worker, move |worker| async move {
            let run = worker.run().await;
            // The failure path of a retrying entrypoint alone copies the error and the
            // call id stack.
            let retry = match (run.result(), retry) {
                (Err(error), Some(retry)) => {
                    Some((retry, error.clone(), run.context().call_id_stack().to_vec()))
                }
                _ => None,
            };
            let failed = run.result().is_err();
            match (failed, retry) {
                (true, Some(((retrier, attempt, message), error, stack))) => {
                    match retrier.failed(message, attempt, &error, &stack).await {
                        Ok(handled) => {
                            settle(acker.ack().await);
                            let settlement = match handled {
                                Handled::Retried => Settlement::Retried,
                                Handled::DeadLettered => Settlement::DeadLettered,
                            };
                            observers.message_settled(&queue, settlement, 1);
                        }
                        Err(error) => {
                            tracing::error!(%queue, %error, "cannot re-publish a failed delivery for its retry; requeued");
                            requeue(acker, true, settling.requeue_delay, stopping).await;
                            observers.message_settled(&queue, Settlement::Requeued, 1);
                        }
                    }
                }
                (true, None) if settling.requeue_on_error => {
                    requeue(acker, redelivered, settling.requeue_delay, stopping).await;
                    observers.message_settled(&queue, Settlement::Requeued, 1);
                }
                _ => settle(acker.ack().await),
            }
            run.finish().await;
        });
        true
    }
}

async fn requeue(acker: Acker, redelivered: bool, delay: Duration, stopping: CancellationToken) {
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
