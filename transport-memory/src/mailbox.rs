//! The way deliveries travel from the broker to a consumer's stream: a queue the broker
//! fills under its lock, and the consumer's task, woken once the lock is released.
//!
//! Waking a task from under the broker's lock would make every other task that needs
//! the broker wait for the wake (on a multi-thread runtime, a wake from outside the
//! runtime's threads is a system call). So [`Sender::send`] hands back the waker of a
//! consumer that waits, and the broker wakes it after unlocking ([`Wakes`]). A consumer
//! woken once takes everything queued since: further sends before it runs wake nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::consumer::Item;

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    /// The consumer's task, while it waits for an item.
    waker: Option<Waker>,
    /// The broker dropped its end: the stream ends after the queued items.
    sender_gone: bool,
    /// The stream is closed: nothing more is accepted.
    receiver_gone: bool,
}

/// A channel from the broker to one consumer stream.
pub(crate) fn channel() -> (Sender, Receiver) {
    let inner = Arc::new(Mutex::new(Inner::default()));
    (Sender(Arc::clone(&inner)), Receiver(inner))
}

/// The consumer stream is closed: it takes nothing more.
#[derive(Debug)]
pub(crate) struct Closed;

/// The broker's end; dropping it ends the stream after what it queued.
#[derive(Debug)]
pub(crate) struct Sender(Arc<Mutex<Inner>>);

impl Sender {
    /// Queues an item. `Ok` with the consumer's waker when it waits for one: the caller
    /// wakes it (after releasing the broker's lock). `Err` when the stream is closed
    /// (the item is dropped).
    pub(crate) fn send(&self, item: Item) -> Result<Option<Waker>, Closed> {
        let mut inner = self.0.lock();
        if inner.receiver_gone {
            drop(inner);
            drop(item);
            return Err(Closed);
        }
        inner.items.push_back(item);
        Ok(inner.waker.take())
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let waker = {
            let mut inner = self.0.lock();
            inner.sender_gone = true;
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The consumer stream's end.
#[derive(Debug)]
pub(crate) struct Receiver(Arc<Mutex<Inner>>);

impl Receiver {
    /// The next item; `None` once the sender is gone and everything was taken.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        let mut inner = self.0.lock();
        if let Some(item) = inner.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if inner.sender_gone {
            return Poll::Ready(None);
        }
        match &inner.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Accepts nothing more; returns what was queued, for the caller to drop.
    pub(crate) fn close(&mut self) -> VecDeque<Item> {
        let mut inner = self.0.lock();
        inner.receiver_gone = true;
        inner.waker = None;
        std::mem::take(&mut inner.items)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.close());
    }
}

/// Tasks to wake once the broker's lock is released.
#[derive(Debug, Default)]
pub(crate) enum Wakes {
    /// None.
    #[default]
    None,
    /// One: the usual case, without allocating.
    One(Waker),
    /// Several (a message routed to several queues, deliveries requeued at once).
    Many(Vec<Waker>),
}

impl Wakes {
    /// Adds a task to wake.
    pub(crate) fn push(&mut self, waker: Waker) {
        match std::mem::take(self) {
            Self::None => *self = Self::One(waker),
            Self::One(first) => *self = Self::Many(vec![first, waker]),
            Self::Many(mut all) => {
                all.push(waker);
                *self = Self::Many(all);
            }
        }
    }

    /// Wakes them all.
    pub(crate) fn wake(self) {
        match self {
            Self::None => {}
            Self::One(waker) => waker.wake(),
            Self::Many(all) => all.into_iter().for_each(Waker::wake),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn item(epoch: u64) -> Item {
        Item {
            epoch,
            item: Err(nameko_transport::TransportError::Closed),
        }
    }

    #[test]
    fn a_waiting_consumer_is_woken_once_for_a_batch() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = channel();
        assert!(rx.poll_recv(&mut cx).is_pending());
        let mut wakes = Wakes::default();
        for epoch in 0..3 {
            if let Some(waker) = tx.send(item(epoch)).expect("open") {
                wakes.push(waker);
            }
        }
        assert!(matches!(wakes, Wakes::One(_)));
        wakes.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        for epoch in 0..3 {
            match rx.poll_recv(&mut cx) {
                Poll::Ready(Some(got)) => assert_eq!(got.epoch, epoch),
                other => panic!("expected item {epoch}, got {other:?}"),
            }
        }
        assert!(rx.poll_recv(&mut cx).is_pending());
        drop(tx);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
        assert!(matches!(rx.poll_recv(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_closed_stream_refuses_items_and_hands_back_its_queue() {
        let (tx, mut rx) = channel();
        assert!(matches!(tx.send(item(1)), Ok(None)));
        assert_eq!(rx.close().len(), 1);
        assert!(tx.send(item(2)).is_err());
    }

    #[test]
    fn wakes_collect_several() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let mut wakes = Wakes::default();
        for _ in 0..3 {
            wakes.push(Waker::from(Arc::clone(&counter)));
        }
        wakes.wake();
        assert_eq!(counter.0.load(Ordering::SeqCst), 3);
    }
}
