//! Consumers: the broker's record of one, the stream the application reads, and the
//! handle that settles a delivery.

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_core::Stream;
use nameko_transport::{
    ConsumeOptions, ConsumerStream, Delivery, SettleTag, Settlement, TransportError,
};

use crate::broker::Shared;
use crate::ids::{ConnectionId, ConsumerId, QueueId};
use crate::mailbox;
use crate::queue::QueuedMessage;

/// What travels to a consumer stream: a delivery (or the error that ends the stream),
/// stamped with the consumer's epoch when it was sent.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) epoch: u64,
    pub(crate) item: Result<Delivery, TransportError>,
}

/// A delivery not yet settled: where it came from, kept for requeueing.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) queue: QueueId,
    pub(crate) message: QueuedMessage,
}

/// The broker's record of a consumer.
///
/// It outlives a lost connection: with recovery on, the consumer is detached from its
/// queue, its unsettled deliveries are requeued, its epoch moves on (so deliveries still
/// buffered in the stream are dropped unseen), and it is attached again on reconnect.
#[derive(Debug)]
pub(crate) struct ConsumerState {
    pub(crate) tag: Arc<str>,
    pub(crate) queue_name: Arc<str>,
    /// The queue it receives from; `None` while detached (cancelled, queue deleted or
    /// connection lost).
    pub(crate) queue: Option<QueueId>,
    pub(crate) connection: ConnectionId,
    pub(crate) options: ConsumeOptions,
    pub(crate) unacked: BTreeMap<u64, InFlight>,
    pub(crate) next_tag: u64,
    pub(crate) epoch: Arc<AtomicU64>,
    /// Settles its deliveries; shared by their ackers.
    pub(crate) acks: Arc<ConsumerAcks>,
    /// The way to the stream; `None` once the stream was told to end.
    pub(crate) tx: Option<mailbox::Sender>,
    /// Cancelled by its owner: never attached again.
    pub(crate) cancelled: bool,
}

impl ConsumerState {
    /// Whether the prefetch window has room for another delivery.
    pub(crate) fn has_capacity(&self) -> bool {
        self.options.prefetch == 0 || self.unacked.len() < usize::from(self.options.prefetch)
    }

    /// Sends a final error to the stream and ends it.
    pub(crate) fn end_with(&mut self, error: TransportError) {
        if let Some(tx) = self.tx.take()
            && let Ok(Some(waker)) = tx.send(Item {
                epoch: self.epoch.load(Ordering::Acquire),
                item: Err(error),
            })
        {
            waker.wake();
        }
    }
}

/// Settles the deliveries of one in-memory consumer, each by its tag; every delivery's
/// [`Acker`](nameko_transport::Acker) shares it.
#[derive(Debug)]
pub(crate) struct ConsumerAcks {
    pub(crate) shared: Weak<Shared>,
    pub(crate) consumer: ConsumerId,
}

impl SettleTag for ConsumerAcks {
    fn settle_tag(&self, tag: u64, how: Settlement) -> Result<(), TransportError> {
        let Some(shared) = self.shared.upgrade() else {
            return Err(TransportError::Disconnected(
                "the broker is gone".to_owned(),
            ));
        };
        shared.with(|state| state.settle(self.consumer, tag, how))
    }
}

/// The stream of deliveries of one in-memory consumer.
///
/// Dropping it closes the consumer: unsettled deliveries go back to the queue.
pub(crate) struct MemoryConsumer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) id: ConsumerId,
    pub(crate) tag: String,
    pub(crate) rx: mailbox::Receiver,
    pub(crate) epoch: Arc<AtomicU64>,
    pub(crate) closed: bool,
}

impl fmt::Debug for MemoryConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConsumer")
            .field("tag", &self.tag)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl MemoryConsumer {
    fn close_now(&mut self) -> Result<(), TransportError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let result = self.shared.with(|state| state.close_consumer(self.id));
        // Deliveries still buffered were requeued by the broker; drop them unseen.
        drop(self.rx.close());
        result
    }
}

impl Stream for MemoryConsumer {
    type Item = Result<Delivery, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.closed {
            return Poll::Ready(None);
        }
        loop {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Item { epoch, item })) => {
                    // A delivery sent before the connection was lost has been requeued.
                    if item.is_ok() && epoch != self.epoch.load(Ordering::Acquire) {
                        continue;
                    }
                    return Poll::Ready(Some(item));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[async_trait]
impl ConsumerStream for MemoryConsumer {
    fn tag(&self) -> &str {
        &self.tag
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        if self.closed {
            return Ok(());
        }
        self.shared.with(|state| state.cancel_consumer(self.id))
    }

    async fn close(&mut self) -> Result<(), TransportError> {
        self.close_now()
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        let _ = self.close_now();
    }
}
