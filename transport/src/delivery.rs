//! Deliveries, their settlement, and consumers.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

use crate::{Message, Properties, SharedStr, TransportError};

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Settlement {
    /// Processed: remove it from the queue.
    Ack,
    /// Negatively acknowledged; requeued when `requeue` is true, dropped otherwise.
    Nack {
        /// Put the message back at the head of its queue, marked redelivered.
        requeue: bool,
    },
    /// Rejected; requeued when `requeue` is true, dropped otherwise.
    Reject {
        /// Put the message back at the head of its queue, marked redelivered.
        requeue: bool,
    },
}

/// The backend side of settling one delivery. Implemented by transports.
#[async_trait]
pub trait Settle: Send + Sync + fmt::Debug + 'static {
    /// Settles the delivery this handle belongs to.
    async fn settle(self: Box<Self>, how: Settlement) -> Result<(), TransportError>;
}

/// The backend side of settling deliveries at once, without waiting on anything: one
/// handle, shared by every delivery of a consumer, settles each by its tag. Implemented
/// by transports whose settlement is a synchronous step (the in-memory broker); an
/// [`Acker`] made from one holds the handle and the tag, so handing out a delivery and
/// settling it allocate nothing.
pub trait SettleTag: Send + Sync + fmt::Debug + 'static {
    /// Settles the delivery with tag `tag`.
    ///
    /// # Errors
    ///
    /// As [`Acker::ack`].
    fn settle_tag(&self, tag: u64, how: Settlement) -> Result<(), TransportError>;
}

/// How an [`Acker`] reaches its backend.
#[derive(Debug)]
enum Handle {
    Boxed(Box<dyn Settle>),
    Tagged(Arc<dyn SettleTag>, u64),
}

/// The right to settle one delivery: ack it, nack it or reject it, once.
///
/// Requeueing is always explicit. Dropping an `Acker` without settling leaves the message
/// unacknowledged; the broker delivers it again once the consumer's channel closes.
#[derive(Debug)]
#[must_use = "a delivery that is never settled is redelivered only when its consumer closes"]
pub struct Acker {
    inner: Handle,
}

impl Acker {
    /// Wraps a backend settlement handle.
    pub fn new(inner: Box<dyn Settle>) -> Self {
        Self {
            inner: Handle::Boxed(inner),
        }
    }

    /// The right to settle delivery `tag` through a consumer's shared handle; see
    /// [`SettleTag`].
    pub fn tagged(handle: Arc<dyn SettleTag>, tag: u64) -> Self {
        Self {
            inner: Handle::Tagged(handle, tag),
        }
    }

    /// Acknowledges the delivery.
    ///
    /// # Errors
    ///
    /// [`TransportError::Disconnected`] if the channel it came on is gone (the broker
    /// redelivers the message).
    pub async fn ack(self) -> Result<(), TransportError> {
        self.settle(Settlement::Ack).await
    }

    /// Negatively acknowledges the delivery, requeueing it when `requeue` is true.
    ///
    /// # Errors
    ///
    /// As [`Acker::ack`].
    pub async fn nack(self, requeue: bool) -> Result<(), TransportError> {
        self.settle(Settlement::Nack { requeue }).await
    }

    /// Rejects the delivery, requeueing it when `requeue` is true.
    ///
    /// # Errors
    ///
    /// As [`Acker::ack`].
    pub async fn reject(self, requeue: bool) -> Result<(), TransportError> {
        self.settle(Settlement::Reject { requeue }).await
    }

    /// Settles the delivery as `how` says.
    ///
    /// # Errors
    ///
    /// As [`Acker::ack`].
    pub async fn settle(self, how: Settlement) -> Result<(), TransportError> {
        match self.inner {
            Handle::Boxed(inner) => inner.settle(how).await,
            Handle::Tagged(handle, tag) => handle.settle_tag(tag, how),
        }
    }
}

/// Where and how a message was delivered.
///
/// The names are [`SharedStr`]s, which read and compare as strings: a broker that holds
/// them already hands them to every delivery without copying them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryInfo {
    /// The exchange the message was published to (`""` for the default exchange).
    pub exchange: SharedStr,
    /// The routing key it was published with.
    pub routing_key: SharedStr,
    /// Whether it was delivered before and requeued.
    pub redelivered: bool,
    /// The delivery tag, unique per consumer channel.
    pub delivery_tag: u64,
    /// The tag of the consumer it was delivered to.
    pub consumer_tag: SharedStr,
}

impl DeliveryInfo {
    /// Delivery information, as a backend builds it.
    #[must_use]
    pub fn new(
        exchange: impl Into<SharedStr>,
        routing_key: impl Into<SharedStr>,
        redelivered: bool,
        delivery_tag: u64,
        consumer_tag: impl Into<SharedStr>,
    ) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            redelivered,
            delivery_tag,
            consumer_tag: consumer_tag.into(),
        }
    }
}

/// A message delivered to a consumer, to be settled exactly once.
#[derive(Debug)]
pub struct Delivery {
    message: Message,
    info: DeliveryInfo,
    acker: Acker,
}

impl Delivery {
    /// Assembles a delivery; used by transports.
    pub fn new(message: Message, info: DeliveryInfo, acker: Acker) -> Self {
        Self {
            message,
            info,
            acker,
        }
    }

    /// The message.
    #[must_use]
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.message.body
    }

    /// The properties.
    #[must_use]
    pub fn properties(&self) -> &Properties {
        &self.message.properties
    }

    /// Exchange, routing key, redelivered flag and tags.
    #[must_use]
    pub fn info(&self) -> &DeliveryInfo {
        &self.info
    }

    /// The routing key the message was published with.
    #[must_use]
    pub fn routing_key(&self) -> &str {
        &self.info.routing_key
    }

    /// Whether the message was delivered before.
    #[must_use]
    pub fn redelivered(&self) -> bool {
        self.info.redelivered
    }

    /// Splits the delivery into its message, its information and the right to settle it.
    pub fn into_parts(self) -> (Message, DeliveryInfo, Acker) {
        (self.message, self.info, self.acker)
    }

    /// Acknowledges the delivery.
    ///
    /// # Errors
    ///
    /// See [`Acker::ack`].
    pub async fn ack(self) -> Result<(), TransportError> {
        self.acker.ack().await
    }

    /// Negatively acknowledges the delivery.
    ///
    /// # Errors
    ///
    /// See [`Acker::ack`].
    pub async fn nack(self, requeue: bool) -> Result<(), TransportError> {
        self.acker.nack(requeue).await
    }

    /// Rejects the delivery.
    ///
    /// # Errors
    ///
    /// See [`Acker::ack`].
    pub async fn reject(self, requeue: bool) -> Result<(), TransportError> {
        self.acker.reject(requeue).await
    }
}

/// The backend side of a consumer. Implemented by transports.
///
/// The stream yields deliveries until the consumer is cancelled or closed; an `Err` item
/// means the consumer cannot go on (its queue was deleted, or the transport closed) and is
/// the last item.
#[async_trait]
pub trait ConsumerStream:
    Stream<Item = Result<Delivery, TransportError>> + Send + Unpin + fmt::Debug
{
    /// The consumer tag.
    fn tag(&self) -> &str;

    /// Stops new deliveries. Deliveries already handed out can still be settled; the
    /// stream yields what it has buffered and then ends.
    async fn cancel(&mut self) -> Result<(), TransportError>;

    /// Cancels and closes the consumer's channel: every delivery not yet settled goes
    /// back to its queue, marked redelivered.
    async fn close(&mut self) -> Result<(), TransportError>;
}

/// A stream of [`Delivery`]s from one queue.
///
/// Dropping a consumer closes it, as [`Consumer::close`] does.
#[derive(Debug)]
#[must_use = "a consumer does nothing unless its deliveries are read"]
pub struct Consumer {
    inner: Box<dyn ConsumerStream>,
}

impl Consumer {
    /// Wraps a backend consumer.
    pub fn new(inner: Box<dyn ConsumerStream>) -> Self {
        Self { inner }
    }

    /// The consumer tag.
    #[must_use]
    pub fn tag(&self) -> &str {
        self.inner.tag()
    }

    /// Stops new deliveries; see [`ConsumerStream::cancel`].
    ///
    /// # Errors
    ///
    /// [`TransportError::Disconnected`] if the connection is gone (which cancels the
    /// consumer anyway).
    pub async fn cancel(&mut self) -> Result<(), TransportError> {
        self.inner.cancel().await
    }

    /// Closes the consumer, requeueing every unsettled delivery; see
    /// [`ConsumerStream::close`].
    ///
    /// # Errors
    ///
    /// As [`Consumer::cancel`].
    pub async fn close(mut self) -> Result<(), TransportError> {
        self.inner.close().await
    }
}

impl Stream for Consumer {
    type Item = Result<Delivery, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.inner).poll_next(cx)
    }
}
