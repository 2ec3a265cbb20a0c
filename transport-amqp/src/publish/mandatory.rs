//! Mandatory publishes: which of them the broker returned.
//!
//! lapin hands a `basic.return` to whichever confirm it completes next, and completes
//! the confirms of one multiple-ack in the order of a hash map, so a returned message can
//! arrive with any confirm of the batch that acks its publish, or of an earlier one. The
//! [`Ledger`] of a channel keeps every mandatory publish from before it is sent until
//! its outcome is known, and gives each returned message to the publish it is a copy of.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use lapin::message::BasicReturnMessage;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{Channel, Confirmation, PublisherConfirm};
use nameko_transport::TransportError;
use parking_lot::{Mutex, RwLock};

use super::{Outgoing, publish_error};
use crate::connection::Session;

/// What the broker said of one mandatory publish, its return given to the right one.
#[derive(Debug)]
pub(super) enum Settled {
    Acked,
    Returned(u16, ShortString),
    Nacked,
    NotRequested,
}

/// The confirm channel for mandatory publishes, replaced when the broker closes it, with
/// the ledger of what is unsettled on it.
#[derive(Default)]
pub(super) struct MandatoryChannel {
    current: RwLock<Option<Arc<Tracked>>>,
    reopen: tokio::sync::Mutex<()>,
}

impl MandatoryChannel {
    /// Publishes `outgoing` with the mandatory flag and waits for its outcome.
    ///
    /// Dropped before the outcome is known, the publish goes on in a task of its own
    /// (see [`Settling`]), so that the other publishes of the channel still learn theirs.
    pub(super) async fn publish(
        &self,
        session: &Session,
        outgoing: Outgoing<'_>,
    ) -> Result<Settled, TransportError> {
        let exchange = outgoing.exchange;
        let tracked = self.get(session).await?;
        let id = tracked.ledger.lock().open(Fingerprint::of(&outgoing));
        let send = {
            let tracked = Arc::clone(&tracked);
            let body = outgoing.message.body.clone();
            let (exchange, routing_key) = (outgoing.exchange_name, outgoing.routing_key);
            let properties = outgoing.properties;
            async move {
                let options = BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                };
                tracked
                    .channel
                    .basic_publish(exchange, routing_key, options, &body, properties)
                    .await
            }
        };
        Settling {
            tracked,
            id,
            stage: Stage::Sending {
                send: Box::pin(send),
                started: false,
            },
            orphan: false,
        }
        .await
        .map_err(|e| publish_error(&e, exchange))
    }

    async fn get(&self, session: &Session) -> Result<Arc<Tracked>, TransportError> {
        if let Some(tracked) = self.usable() {
            return Ok(tracked);
        }
        let _reopening = self.reopen.lock().await;
        if let Some(tracked) = self.usable() {
            return Ok(tracked);
        }
        let tracked = Arc::new(Tracked {
            channel: session.confirm_channel().await?,
            ledger: Mutex::default(),
        });
        *self.current.write() = Some(Arc::clone(&tracked));
        Ok(tracked)
    }

    fn usable(&self) -> Option<Arc<Tracked>> {
        self.current
            .read()
            .as_ref()
            .filter(|t| t.channel.status().connected())
            .cloned()
    }
}

/// A mandatory publish channel and its ledger.
struct Tracked {
    channel: Channel,
    ledger: Mutex<Ledger>,
}

/// What identifies a published message in a `basic.return`, which carries a copy of it.
#[derive(Debug)]
struct Fingerprint {
    exchange: ShortString,
    routing_key: ShortString,
    correlation_id: Option<ShortString>,
    message_id: Option<ShortString>,
    body: Bytes,
}

impl Fingerprint {
    fn of(outgoing: &Outgoing<'_>) -> Self {
        Self {
            exchange: outgoing.exchange_name.clone(),
            routing_key: outgoing.routing_key.clone(),
            correlation_id: outgoing.properties.correlation_id().clone(),
            message_id: outgoing.properties.message_id().clone(),
            body: outgoing.message.body.clone(),
        }
    }

    fn matches(&self, returned: &BasicReturnMessage) -> bool {
        let delivery = &returned.delivery;
        self.exchange == delivery.exchange
            && self.routing_key == delivery.routing_key
            && self.correlation_id == *delivery.properties.correlation_id()
            && self.message_id == *delivery.properties.message_id()
            && self.body[..] == delivery.data[..]
    }
}

/// The mandatory publishes not yet settled on one channel, in the order they were opened.
///
/// A returned message comes with a confirm completed in the same multiple-ack as its
/// publish's or an earlier one, so with the confirm of a publish opened before its own
/// was seen complete. A publish is therefore settled once its confirm was seen complete
/// and so were those of every publish opened before that: their returns are in hand
/// then. Each poll of a publish sweeps the ledger, polling the confirms that may have
/// completed (see [`ConfirmWake`]), and wakes the publishers it settles.
#[derive(Default)]
struct Ledger {
    next: u64,
    entries: VecDeque<Entry>,
    /// Returned messages not yet claimed by the publish they are a copy of.
    unclaimed: Vec<BasicReturnMessage>,
}

struct Entry {
    id: u64,
    fingerprint: Fingerprint,
    /// The confirm, once sent and until it completes.
    confirm: Option<PublisherConfirm>,
    /// What the confirm said, once it completed.
    result: Option<Result<Settled, lapin::Error>>,
    /// The first id not yet opened when this publish's confirm was seen complete.
    seen_at: Option<u64>,
    /// Whether every publish opened before `seen_at` has its confirm's result too.
    settled: bool,
    /// The task waiting for this publish, if any.
    waker: Option<Waker>,
    /// What the confirm is polled with.
    wake: Arc<ConfirmWake>,
    /// `wake` as a waker, made once.
    confirm_waker: Waker,
    /// Whether the confirm was polled once, so that lapin knows `confirm_waker`.
    polled: bool,
    /// Nobody waits for it any more; the entry stays until it is settled, so that its
    /// return, if any, is claimed by it and not by another publish.
    abandoned: bool,
}

/// The waker a confirm is polled with: it notes that the confirm may have completed, then
/// wakes the publisher waiting on it, if any.
///
/// lapin completes a confirm and then wakes whoever polled it last, so a confirm polled
/// once and not woken since is still pending: a sweep polls only the confirms never
/// polled and those woken since their last poll. With many publishes in flight, that
/// makes a sweep a poll of the confirms that completed instead of all of them.
#[derive(Default)]
struct ConfirmWake {
    woken: AtomicBool,
    publisher: AtomicWaker,
}

impl ConfirmWake {
    /// Whether the confirm was woken since this was last asked.
    fn take_woken(&self) -> bool {
        self.woken.load(Ordering::Acquire) && self.woken.swap(false, Ordering::AcqRel)
    }
}

impl Wake for ConfirmWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.publisher.wake();
    }
}

impl Ledger {
    /// Opens an entry before its message is sent, so that a return is never seen without
    /// the publish it belongs to.
    fn open(&mut self, fingerprint: Fingerprint) -> u64 {
        let id = self.next;
        self.next += 1;
        let wake = Arc::new(ConfirmWake::default());
        self.entries.push_back(Entry {
            id,
            fingerprint,
            confirm: None,
            result: None,
            seen_at: None,
            settled: false,
            waker: None,
            confirm_waker: Waker::from(Arc::clone(&wake)),
            wake,
            polled: false,
            abandoned: false,
        });
        id
    }

    fn sent(&mut self, id: u64, confirm: PublisherConfirm) {
        if let Some(entry) = self.entry(id) {
            entry.confirm = Some(confirm);
        }
    }

    fn entry(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Polls the unresolved confirms that may have completed (never polled, or woken
    /// since their last poll) and notes when each was first seen complete; returns the
    /// messages they carried back and the id of the oldest publish still unresolved.
    fn poll_confirms(&mut self, returns: &mut Vec<BasicReturnMessage>) -> u64 {
        let mut oldest_unresolved = u64::MAX;
        for entry in &mut self.entries {
            if let Some(confirm) = entry.confirm.as_mut()
                && (!entry.polled || entry.wake.take_woken())
            {
                entry.polled = true;
                if let Poll::Ready(result) =
                    Pin::new(confirm).poll(&mut Context::from_waker(&entry.confirm_waker))
                {
                    entry.confirm = None;
                    entry.result = Some(result.map(|confirmation| match confirmation {
                        Confirmation::Ack(returned) => {
                            returns.extend(returned);
                            Settled::Acked
                        }
                        Confirmation::Nack(returned) => {
                            returns.extend(returned);
                            Settled::Nacked
                        }
                        Confirmation::NotRequested => Settled::NotRequested,
                    }));
                }
            }
            match entry.result {
                Some(_) if entry.seen_at.is_none() => entry.seen_at = Some(self.next),
                Some(_) => {}
                None => oldest_unresolved = oldest_unresolved.min(entry.id),
            }
        }
        oldest_unresolved
    }

    /// Polls what may have completed, settles the publishes whose returns are all in hand
    /// and wakes their publishers (except `current`).
    fn sweep(&mut self, current: &Waker) {
        let mut returns = Vec::new();
        let oldest_unresolved = self.poll_confirms(&mut returns);
        for returned in returns {
            self.give_back(returned);
        }
        let unclaimed = &mut self.unclaimed;
        self.entries.retain_mut(|entry| {
            if !entry.settled {
                match entry.seen_at {
                    Some(seen_at) if seen_at <= oldest_unresolved => entry.settled = true,
                    _ => return true,
                }
                if let Some(waker) = &entry.waker
                    && !waker.will_wake(current)
                {
                    waker.wake_by_ref();
                }
            }
            // Settled with nobody to take it: its return, if any, goes with it.
            if entry.abandoned {
                Self::claim(unclaimed, &entry.fingerprint);
            }
            !entry.abandoned
        });
    }

    /// Keeps `returned` for the publish it is a copy of to claim when it is settled.
    ///
    /// Publishes with the same fingerprint go to the same exchange with the same routing
    /// key, so they are returned alike, and each claims one of their returns; which one
    /// does not matter. (The order of their returns need not be the order in which they
    /// were opened, so a return is not tied to one of them early.)
    fn give_back(&mut self, returned: BasicReturnMessage) {
        if self
            .entries
            .iter()
            .any(|e| e.fingerprint.matches(&returned))
        {
            self.unclaimed.push(returned);
        } else {
            tracing::warn!(
                exchange = %returned.delivery.exchange,
                routing_key = %returned.delivery.routing_key,
                "a returned message matches no unsettled publish"
            );
        }
    }

    /// Takes a return of a message like `fingerprint`'s, if one came back.
    fn claim(
        unclaimed: &mut Vec<BasicReturnMessage>,
        fingerprint: &Fingerprint,
    ) -> Option<BasicReturnMessage> {
        let index = unclaimed.iter().position(|r| fingerprint.matches(r))?;
        Some(unclaimed.swap_remove(index))
    }

    /// Sweeps, then takes the outcome of publish `id` if it is settled, or keeps `waker` to
    /// be woken when it may be.
    fn poll_settled(&mut self, id: u64, waker: &Waker) -> Poll<Result<Settled, lapin::Error>> {
        let Some(entry) = self.entry(id) else {
            return Poll::Ready(Ok(Settled::NotRequested));
        };
        entry.abandoned = false;
        entry.wake.publisher.register(waker);
        if !entry.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            entry.waker = Some(waker.clone());
        }
        self.sweep(waker);
        let Some(index) = self.entries.iter().position(|e| e.id == id) else {
            return Poll::Ready(Ok(Settled::NotRequested));
        };
        if !self.entries[index].settled {
            return Poll::Pending;
        }
        let Some(entry) = self.entries.remove(index) else {
            return Poll::Pending;
        };
        let returned = Self::claim(&mut self.unclaimed, &entry.fingerprint);
        Poll::Ready(match (entry.result, returned) {
            (Some(Ok(Settled::Acked | Settled::NotRequested)), Some(returned)) => {
                Ok(Settled::Returned(returned.reply_code, returned.reply_text))
            }
            (Some(result), _) => result,
            (None, _) => Ok(Settled::NotRequested),
        })
    }

    /// Nobody waits for publish `id` any more. Returns whether its entry stays: it does
    /// once the message may have gone, until the publish is settled.
    fn abandon(&mut self, id: u64, sent: bool) -> bool {
        let Some(index) = self.entries.iter().position(|e| e.id == id) else {
            return false;
        };
        let entry = &mut self.entries[index];
        if sent || entry.confirm.is_some() || entry.result.is_some() {
            entry.abandoned = true;
            entry.waker = None;
            drop(entry.wake.publisher.take());
            return true;
        }
        // Never sent: nothing comes back for it, and nothing waits for it any more.
        self.entries.remove(index);
        self.wake_unsettled();
        false
    }

    /// Wakes the publishers whose confirm completed but that are not settled: an entry
    /// they waited for is gone.
    fn wake_unsettled(&self) {
        for entry in &self.entries {
            if entry.seen_at.is_some()
                && !entry.settled
                && let Some(waker) = &entry.waker
            {
                waker.wake_by_ref();
            }
        }
    }
}

/// The send future of a mandatory publish, owning what it sends.
type SendFuture = Pin<Box<dyn Future<Output = Result<PublisherConfirm, lapin::Error>> + Send>>;

/// Where a mandatory publish is.
enum Stage {
    /// Its frames are being handed to lapin; once polled, lapin has its confirm.
    Sending { send: SendFuture, started: bool },
    /// Its confirm is in the ledger.
    Confirming,
    /// Its outcome was taken.
    Done,
}

/// Sends a mandatory publish and waits until it is settled.
///
/// Dropped before that, it goes on as a spawned task when lapin may already have the
/// message (a send once polled, or a confirm in the ledger): lapin may give that
/// publish's confirm the return of another, and it must be seen for the other to be
/// settled. A spawned one is an orphan; when it is dropped in turn (the runtime shutting
/// down), its entry is left abandoned.
struct Settling {
    tracked: Arc<Tracked>,
    id: u64,
    stage: Stage,
    orphan: bool,
}

impl Future for Settling {
    type Output = Result<Settled, lapin::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Stage::Sending { send, started } = &mut this.stage {
            *started = true;
            match send.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(confirm)) => {
                    this.tracked.ledger.lock().sent(this.id, confirm);
                    this.stage = Stage::Confirming;
                }
                Poll::Ready(Err(e)) => {
                    // The channel refused it: nothing was sent.
                    this.tracked.ledger.lock().abandon(this.id, false);
                    this.stage = Stage::Done;
                    return Poll::Ready(Err(e));
                }
            }
        }
        if !matches!(this.stage, Stage::Confirming) {
            return Poll::Ready(Ok(Settled::NotRequested));
        }
        let settled = this.tracked.ledger.lock().poll_settled(this.id, cx.waker());
        if settled.is_ready() {
            this.stage = Stage::Done;
        }
        settled
    }
}

impl Drop for Settling {
    fn drop(&mut self) {
        // An orphan is not spawned again.
        let runtime = if self.orphan {
            None
        } else {
            tokio::runtime::Handle::try_current().ok()
        };
        // Without a task to finish the send, its confirm never reaches the ledger: the
        // entry goes, and with it the chance to see what lapin gives that confirm.
        let sent = match &self.stage {
            Stage::Done => return,
            Stage::Sending { started, .. } => *started && runtime.is_some(),
            Stage::Confirming => true,
        };
        let stays = self.tracked.ledger.lock().abandon(self.id, sent);
        let Some(runtime) = runtime.filter(|_| stays) else {
            return;
        };
        let orphan = Self {
            tracked: Arc::clone(&self.tracked),
            id: self.id,
            stage: std::mem::replace(&mut self.stage, Stage::Done),
            orphan: true,
        };
        runtime.spawn(async move {
            let _ = orphan.await;
        });
    }
}
