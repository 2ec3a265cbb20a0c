//! Consumers: a channel each (so the prefetch window is per consumer), deliveries mapped
//! to nameko-transport's, and transparent re-attachment after a reconnection.

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions,
};
use lapin::types::FieldTable as AmqpTable;
use lapin::{Channel, ConnectionStatus};
use nameko_transport::{
    Acker, ConsumeOptions, ConsumerStream, Delivery, DeliveryInfo, Message, Settle, Settlement,
    TransportError,
};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::connection::Session;
use crate::convert::{properties_from_amqp, short};
use crate::error::from_lapin;

/// What is needed to start (and restart) a consumer.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSpec {
    pub(crate) queue: String,
    pub(crate) options: ConsumeOptions,
    pub(crate) tag: String,
}

/// A consumer running on one session: its channel and lapin's stream of deliveries.
pub(crate) struct Attachment {
    generation: u64,
    channel: Channel,
    consumer: lapin::Consumer,
    connection: ConnectionStatus,
}

impl Attachment {
    /// Opens the consumer's channel, sets its prefetch window and starts consuming.
    pub(crate) async fn start(
        session: &Session,
        spec: &ConsumerSpec,
    ) -> Result<Self, TransportError> {
        let queue = short(&spec.queue, "queue name")?;
        let tag = short(&spec.tag, "consumer tag")?;
        let channel = session.channel().await?;
        channel
            .basic_qos(spec.options.prefetch, BasicQosOptions { global: false })
            .await
            .map_err(|e| from_lapin(&e))?;
        let consumer = channel
            .basic_consume(
                queue,
                tag,
                BasicConsumeOptions {
                    no_local: false,
                    no_ack: false,
                    exclusive: spec.options.exclusive,
                    nowait: false,
                },
                AmqpTable::default(),
            )
            .await
            .map_err(|e| from_lapin(&e))?;
        Ok(Self {
            generation: session.generation(),
            channel,
            consumer,
            connection: session.status(),
        })
    }
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attachment")
            .field("generation", &self.generation)
            .field("channel", &self.channel.id())
            .finish_non_exhaustive()
    }
}

/// What the transport sends a consumer after a reconnection: its new attachment, or why
/// it could not be re-created.
pub(crate) type Reattach = Result<Attachment, TransportError>;

/// A consumer as the transport keeps it, to re-create it after a reconnection.
#[derive(Debug)]
pub(crate) struct ConsumerEntry {
    pub(crate) spec: ConsumerSpec,
    pub(crate) reattach: mpsc::UnboundedSender<Reattach>,
}

/// The consumers of a transport, and whether it was closed by its owner.
#[derive(Debug, Default)]
pub(crate) struct Consumers {
    entries: Mutex<HashMap<u64, ConsumerEntry>>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

impl Consumers {
    /// Registers a consumer; returns its id and where its re-attachments arrive.
    pub(crate) fn register(&self, spec: ConsumerSpec) -> (u64, mpsc::UnboundedReceiver<Reattach>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.entries
            .lock()
            .insert(id, ConsumerEntry { spec, reattach: tx });
        (id, rx)
    }

    /// Forgets a consumer: it is not re-created any more.
    pub(crate) fn deregister(&self, id: u64) {
        self.entries.lock().remove(&id);
    }

    /// The consumers to re-create, with where to send their new attachments.
    pub(crate) fn snapshot(&self) -> Vec<(ConsumerSpec, mpsc::UnboundedSender<Reattach>)> {
        self.entries
            .lock()
            .values()
            .map(|e| (e.spec.clone(), e.reattach.clone()))
            .collect()
    }

    /// Marks the transport closed by its owner: every consumer ends.
    pub(crate) fn close_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.entries.lock().clear();
    }

    /// The transport gave up reconnecting: consumers waiting for a re-attachment end with
    /// [`TransportError::Disconnected`].
    pub(crate) fn abandon_all(&self) {
        self.entries.lock().clear();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Receiving, and re-created after a reconnection.
    Active,
    /// `basic.cancel` sent: yielding what was buffered, then ending.
    Cancelled,
    /// Ended; yields nothing more.
    Finished,
}

/// A consumer of the AMQP transport, as a [`ConsumerStream`].
pub(crate) struct AmqpConsumer {
    id: u64,
    tag: String,
    queue: String,
    registry: Arc<Consumers>,
    current: Option<Attachment>,
    reattach: mpsc::UnboundedReceiver<Reattach>,
    state: State,
}

impl AmqpConsumer {
    pub(crate) fn new(
        id: u64,
        spec: &ConsumerSpec,
        registry: Arc<Consumers>,
        attachment: Attachment,
        reattach: mpsc::UnboundedReceiver<Reattach>,
    ) -> Self {
        Self {
            id,
            tag: spec.tag.clone(),
            queue: spec.queue.clone(),
            registry,
            current: Some(attachment),
            reattach,
            state: State::Active,
        }
    }

    fn finish(&mut self) {
        if self.state != State::Finished {
            self.state = State::Finished;
            self.registry.deregister(self.id);
            self.reattach.close();
        }
    }

    fn delivery(&self, delivery: lapin::message::Delivery) -> Delivery {
        let lapin::message::Delivery {
            delivery_tag,
            exchange,
            routing_key,
            redelivered,
            properties,
            data,
            acker,
        } = delivery;
        let message = Message::new(Bytes::from(data), properties_from_amqp(&properties));
        let info = DeliveryInfo::new(
            exchange.as_str(),
            routing_key.as_str(),
            redelivered,
            delivery_tag,
            self.tag.as_str(),
        );
        Delivery::new(message, info, Acker::new(Box::new(AmqpSettle { acker })))
    }

    /// Whether the current attachment ended because its connection went away (so a
    /// re-attachment will follow) rather than because the consumer itself ended.
    fn lost_connection(&self) -> bool {
        self.state == State::Active
            && !self.registry.is_closed()
            && self
                .current
                .as_ref()
                .is_some_and(|a| !a.connection.connected())
    }
}

impl Stream for AmqpConsumer {
    type Item = Result<Delivery, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.state == State::Finished {
                return Poll::Ready(None);
            }
            match this.reattach.poll_recv(cx) {
                Poll::Ready(Some(Ok(attachment))) => {
                    let newer = this
                        .current
                        .as_ref()
                        .is_none_or(|c| attachment.generation > c.generation);
                    if this.state == State::Active && newer {
                        tracing::debug!(consumer = %this.tag, queue = %this.queue, "consumer re-attached");
                        this.current = Some(attachment);
                    }
                    continue;
                }
                Poll::Ready(Some(Err(error))) => {
                    if this.state == State::Active {
                        tracing::warn!(consumer = %this.tag, queue = %this.queue, %error, "consumer could not be re-created");
                        this.finish();
                        return Poll::Ready(Some(Err(error)));
                    }
                    continue;
                }
                Poll::Ready(None) if this.current.is_none() => {
                    // No attachment and none to come: the transport closed or gave up.
                    let closed = this.registry.is_closed();
                    this.finish();
                    return Poll::Ready(if closed {
                        None
                    } else {
                        Some(Err(TransportError::Disconnected(
                            "the connection was lost and the consumer cannot be re-created"
                                .to_owned(),
                        )))
                    });
                }
                Poll::Ready(None) | Poll::Pending => {}
            }
            let Some(current) = this.current.as_mut() else {
                // Waiting for the transport to reconnect.
                return Poll::Pending;
            };
            match Pin::new(&mut current.consumer).poll_next(cx) {
                Poll::Ready(Some(Ok(delivery))) => {
                    return Poll::Ready(Some(Ok(this.delivery(delivery))));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => {
                    if this.lost_connection() {
                        // Deliveries taken on the dead channel cannot be settled; the
                        // broker redelivers them to the re-created consumer.
                        this.current = None;
                        continue;
                    }
                    let cancelled_by_us = this.state == State::Cancelled;
                    let closed = this.registry.is_closed();
                    this.finish();
                    return Poll::Ready(match item {
                        Some(Err(e)) if !closed && !cancelled_by_us => Some(Err(from_lapin(&e))),
                        None if !cancelled_by_us && !closed => {
                            Some(Err(TransportError::NotFound(format!(
                                "the broker cancelled consumer {} (queue {} deleted?)",
                                this.tag, this.queue
                            ))))
                        }
                        _ => None,
                    });
                }
            }
        }
    }
}

#[async_trait]
impl ConsumerStream for AmqpConsumer {
    fn tag(&self) -> &str {
        &self.tag
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        if self.state != State::Active {
            return Ok(());
        }
        self.state = State::Cancelled;
        self.registry.deregister(self.id);
        let Some(current) = self.current.as_ref() else {
            // Not attached: nothing is consuming on the broker.
            self.finish();
            return Ok(());
        };
        if !current.channel.status().connected() {
            return if current.connection.connected() {
                Ok(())
            } else {
                Err(TransportError::Disconnected(
                    "the connection is gone; the consumer is cancelled with it".to_owned(),
                ))
            };
        }
        let tag = short(&self.tag, "consumer tag")?;
        current
            .channel
            .basic_cancel(tag, BasicCancelOptions { nowait: false })
            .await
            .map_err(|e| from_lapin(&e))
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.finish();
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        if !current.channel.status().connected() {
            return if current.connection.connected() {
                Ok(())
            } else {
                Err(TransportError::Disconnected(
                    "the connection is gone; the consumer is closed with it".to_owned(),
                ))
            };
        }
        current
            .channel
            .close(200, "OK".into())
            .await
            .map_err(|e| from_lapin(&e))
    }
}

impl Drop for AmqpConsumer {
    fn drop(&mut self) {
        self.finish();
        if let Some(current) = self.current.take()
            && current.channel.status().connected()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Closing waits for the broker; do it off the dropping thread. Without a
            // runtime, lapin closes the channel once its last handle is gone.
            runtime.spawn(async move {
                let _ = current.channel.close(200, "OK".into()).await;
            });
        }
    }
}

impl fmt::Debug for AmqpConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpConsumer")
            .field("tag", &self.tag)
            .field("queue", &self.queue)
            .field("state", &self.state)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

/// Settles one delivery on the channel it came on.
struct AmqpSettle {
    acker: lapin::Acker,
}

impl fmt::Debug for AmqpSettle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSettle").finish_non_exhaustive()
    }
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn settle(self: Box<Self>, how: Settlement) -> Result<(), TransportError> {
        let result = match how {
            Settlement::Ack => self.acker.ack(BasicAckOptions { multiple: false }).await,
            Settlement::Nack { requeue } => {
                self.acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue,
                    })
                    .await
            }
            Settlement::Reject { requeue } => {
                self.acker.reject(BasicRejectOptions { requeue }).await
            }
        };
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(TransportError::Disconnected(
                "the channel of this delivery is closed; the broker redelivers it".to_owned(),
            )),
            Err(e) => Err(TransportError::Disconnected(format!(
                "cannot settle the delivery ({e}); the broker redelivers it"
            ))),
        }
    }
}
