//! Publishing: which channel a message goes on, and what the broker said about it.
//!
//! - Confirmed, not mandatory: one shared channel in confirm mode. Publishes from any
//!   number of tasks pipeline on it; each awaits only its own confirm.
//! - Confirmed and mandatory: a second shared channel in confirm mode, on which they
//!   pipeline too, with a [`Ledger`] of what is unconfirmed on it. lapin hands a
//!   `basic.return` to whichever confirm it completes next (with RabbitMQ's multiple-acks,
//!   any publish of the batch), so the ledger gives each returned message to the publish it
//!   is a copy of: same exchange, routing key, correlation and message ids, and body.
//! - Mandatory but not confirmed: as confirmed and mandatory, since only the confirm tells
//!   that no return is coming; the outcome is [`PublishOutcome::Returned`] or, when the
//!   message was routed, [`PublishOutcome::Sent`].
//! - Neither: a shared channel without confirms; the outcome is [`PublishOutcome::Sent`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use lapin::message::BasicReturnMessage;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};
use nameko_transport::{Message, PublishOptions, PublishOutcome, TransportError};
use parking_lot::{Mutex, RwLock};

use crate::connection::{Session, SharedChannel};
use crate::error::{from_lapin, reply_of};

/// The publish channels of one session.
pub(crate) struct Publisher {
    confirmed: SharedChannel,
    unconfirmed: SharedChannel,
    mandatory: MandatoryChannel,
}

/// A message converted for lapin, ready to go on any channel.
pub(crate) struct Outgoing<'a> {
    /// The exchange, for error messages.
    pub(crate) exchange: &'a str,
    pub(crate) exchange_name: ShortString,
    pub(crate) routing_key: ShortString,
    pub(crate) message: &'a Message,
    pub(crate) properties: BasicProperties,
}

impl Publisher {
    pub(crate) fn new() -> Self {
        Self {
            confirmed: SharedChannel::new(true),
            unconfirmed: SharedChannel::new(false),
            mandatory: MandatoryChannel::default(),
        }
    }

    /// Publishes and, when asked, waits for the broker's confirm.
    pub(crate) async fn publish(
        &self,
        session: &Session,
        outgoing: Outgoing<'_>,
        options: PublishOptions,
    ) -> Result<PublishOutcome, TransportError> {
        let exchange = outgoing.exchange;
        if !options.mandatory {
            if !options.confirm {
                let channel = self.unconfirmed.get(session).await?;
                send(&channel, outgoing, false).await?;
                return Ok(PublishOutcome::Sent);
            }
            let channel = self.confirmed.get(session).await?;
            let confirm = send(&channel, outgoing, false).await?;
            return outcome(ConfirmGuard::new(confirm).wait().await, exchange, true);
        }
        let tracked = self.mandatory.get(session).await?;
        let fingerprint = Fingerprint::of(&outgoing);
        let id = tracked.ledger.lock().open(fingerprint);
        let mut waiting = Waiting {
            tracked: &tracked,
            id,
        };
        let confirm = send(&tracked.channel, outgoing, true).await?;
        tracked.ledger.lock().sent(id, confirm);
        let result = (&mut waiting).await;
        waiting.id = Ledger::CLOSED;
        match result {
            Ok(Settled::Nacked) => Ok(PublishOutcome::Nacked),
            Ok(Settled::Returned(reply_code, reply_text)) => Ok(PublishOutcome::Returned {
                reply_code,
                reply_text: reply_text.to_string(),
            }),
            Ok(Settled::Acked) if options.confirm => Ok(PublishOutcome::Confirmed),
            Ok(Settled::Acked | Settled::NotRequested) => Ok(PublishOutcome::Sent),
            Err(e) => Err(publish_error(&e, exchange)),
        }
    }
}

/// Sends the message; the returned future resolves with the broker's confirm.
async fn send(
    channel: &Channel,
    outgoing: Outgoing<'_>,
    mandatory: bool,
) -> Result<PublisherConfirm, TransportError> {
    channel
        .basic_publish(
            outgoing.exchange_name,
            outgoing.routing_key,
            BasicPublishOptions {
                mandatory,
                immediate: false,
            },
            &outgoing.message.body,
            outgoing.properties,
        )
        .await
        .map_err(|e| publish_error(&e, outgoing.exchange))
}

/// The outcome of a confirm; `confirm` says whether the caller asked for one (a routed
/// message is then [`PublishOutcome::Confirmed`], otherwise [`PublishOutcome::Sent`]).
fn outcome(
    result: Result<Confirmation, lapin::Error>,
    exchange: &str,
    confirm: bool,
) -> Result<PublishOutcome, TransportError> {
    match result {
        Ok(Confirmation::Ack(None)) if confirm => Ok(PublishOutcome::Confirmed),
        Ok(Confirmation::Ack(None)) => Ok(PublishOutcome::Sent),
        Ok(Confirmation::Ack(Some(returned))) => Ok(PublishOutcome::Returned {
            reply_code: returned.reply_code,
            reply_text: returned.reply_text.to_string(),
        }),
        Ok(Confirmation::Nack(_)) => Ok(PublishOutcome::Nacked),
        Ok(Confirmation::NotRequested) => Ok(PublishOutcome::Sent),
        Err(e) => Err(publish_error(&e, exchange)),
    }
}

/// The error of a publish. A channel shared by many publishes is closed by the broker
/// because of one of them (a missing exchange, say); only the publish whose exchange the
/// broker names gets the broker's error, the others a retryable
/// [`TransportError::Disconnected`].
fn publish_error(err: &lapin::Error, exchange: &str) -> TransportError {
    match reply_of(err) {
        Some((code, text)) if code < 500 && !text.contains(&format!("'{exchange}'")) => {
            TransportError::Disconnected(format!(
                "the publish channel was closed by the broker because of another message: {text}"
            ))
        }
        _ => from_lapin(err),
    }
}

/// Waits for a confirm; if the publish is abandoned first, the confirm is awaited on a
/// spawned task so that lapin does not keep it forever.
struct ConfirmGuard {
    confirm: Option<PublisherConfirm>,
}

impl ConfirmGuard {
    fn new(confirm: PublisherConfirm) -> Self {
        Self {
            confirm: Some(confirm),
        }
    }

    async fn wait(mut self) -> Result<Confirmation, lapin::Error> {
        match self.confirm.as_mut() {
            Some(confirm) => {
                let result = confirm.await;
                self.confirm = None;
                result
            }
            None => Ok(Confirmation::NotRequested),
        }
    }
}

impl Drop for ConfirmGuard {
    fn drop(&mut self) {
        if let Some(confirm) = self.confirm.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = confirm.await;
            });
        }
    }
}

/// The confirm channel for mandatory publishes, replaced when the broker closes it, with
/// the ledger of what is unconfirmed on it.
#[derive(Default)]
struct MandatoryChannel {
    current: RwLock<Option<Arc<Tracked>>>,
    reopen: tokio::sync::Mutex<()>,
}

impl MandatoryChannel {
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

/// What the broker said of one mandatory publish, its return given to the right one.
#[derive(Debug)]
enum Settled {
    Acked,
    Returned(u16, ShortString),
    Nacked,
    NotRequested,
}

/// The mandatory publishes not yet settled on one channel, in the order they were opened.
///
/// Every poll of a publish sweeps the whole ledger: it polls each unresolved confirm
/// (with its own publisher's waker, so that the right task wakes) and keeps each returned
/// message that a confirm carries for a publish it is a copy of to claim. lapin attaches
/// a return to a confirm completed no later than the returned publish's own, hence to a
/// publish sent before that confirm was seen. So a publish is settled once its confirm
/// was seen complete, every publish opened before that has its confirm in the ledger (one
/// still being sent delays it, and wakes it when it is), and a pass over them all has run
/// since.
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
    /// Whether a pass that must have seen this publish's return, if any, has run.
    settled: bool,
    waker: Option<Waker>,
    /// The publisher stopped waiting; the entry stays until it is settled, so that its
    /// return, if any, is claimed by it and not by another publish.
    abandoned: bool,
}

impl Ledger {
    /// The id of no entry.
    const CLOSED: u64 = u64::MAX;

    /// Opens an entry before its message is sent, so that a return is never seen without
    /// the publish it belongs to.
    fn open(&mut self, fingerprint: Fingerprint) -> u64 {
        let id = self.next;
        self.next += 1;
        self.entries.push_back(Entry {
            id,
            fingerprint,
            confirm: None,
            result: None,
            seen_at: None,
            settled: false,
            waker: None,
            abandoned: false,
        });
        id
    }

    fn sent(&mut self, id: u64, confirm: PublisherConfirm) {
        if let Some(entry) = self.entry(id) {
            entry.confirm = Some(confirm);
        }
        self.wake_unsettled();
    }

    /// Whether publish `entry` may have been sent but its confirm is not in the ledger yet.
    fn unregistered(entry: &Entry) -> bool {
        entry.confirm.is_none() && entry.result.is_none()
    }

    /// Wakes the publishers whose confirm completed but that are not settled: they wait
    /// for publishes opened before to be in the ledger.
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

    fn entry(&mut self, id: u64) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Polls every unresolved confirm; returns the messages they carried back.
    ///
    /// A confirm seen complete here is one its publisher may be waiting on: lapin woke that
    /// publisher when the confirm completed, unless this poll came first and took the
    /// wake-up with it, so the publisher is woken again (except the current task).
    fn poll_confirms(&mut self, current: &Waker, returns: &mut Vec<BasicReturnMessage>) {
        for entry in &mut self.entries {
            let Some(confirm) = entry.confirm.as_mut() else {
                continue;
            };
            let waker = entry.waker.clone().unwrap_or_else(|| Waker::noop().clone());
            let Poll::Ready(result) = Pin::new(confirm).poll(&mut Context::from_waker(&waker))
            else {
                continue;
            };
            entry.confirm = None;
            if let Some(waker) = &entry.waker
                && !waker.will_wake(current)
            {
                waker.wake_by_ref();
            }
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

    fn sweep(&mut self, current: &Waker) {
        let mut returns = Vec::new();
        self.poll_confirms(current, &mut returns);
        for entry in &mut self.entries {
            if entry.result.is_some() && entry.seen_at.is_none() {
                entry.seen_at = Some(self.next);
            }
        }
        // A publish seen complete had its return, if any, on a confirm complete no later
        // than its own, so of a publish opened before it was seen: once all of those are
        // in the ledger, this second pass finds the return.
        self.poll_confirms(current, &mut returns);
        for returned in returns {
            self.give_back(returned);
        }
        let oldest_unregistered = self
            .entries
            .iter()
            .find(|e| Self::unregistered(e))
            .map_or(u64::MAX, |e| e.id);
        for entry in &mut self.entries {
            if let Some(seen_at) = entry.seen_at {
                entry.settled |= oldest_unregistered >= seen_at;
            }
        }
        let unclaimed = &mut self.unclaimed;
        self.entries.retain(|e| {
            let gone = e.abandoned && e.settled && e.result.is_some();
            if gone {
                Self::claim(unclaimed, &e.fingerprint);
            }
            !gone
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
                "a returned message matches no unconfirmed publish"
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
    /// be woken when its confirm completes.
    fn poll_settled(&mut self, id: u64, waker: &Waker) -> Poll<Result<Settled, lapin::Error>> {
        match self.entry(id) {
            Some(entry) => entry.waker = Some(waker.clone()),
            None => return Poll::Ready(Ok(Settled::NotRequested)),
        }
        // A confirm seen complete in the second pass of a sweep is settled by the next one
        // at the earliest; publishes still being sent delay it until they are in the ledger.
        for _ in 0..2 {
            self.sweep(waker);
            let Some(index) = self.entries.iter().position(|e| e.id == id) else {
                break;
            };
            let entry = &self.entries[index];
            if entry.result.is_none() {
                return Poll::Pending;
            }
            if entry.settled
                && let Some(entry) = self.entries.remove(index)
            {
                let returned = Self::claim(&mut self.unclaimed, &entry.fingerprint);
                return Poll::Ready(match (entry.result, returned) {
                    (Some(Ok(Settled::Acked | Settled::NotRequested)), Some(returned)) => {
                        Ok(Settled::Returned(returned.reply_code, returned.reply_text))
                    }
                    (Some(result), _) => result,
                    (None, _) => Ok(Settled::NotRequested),
                });
            }
        }
        Poll::Pending
    }

    /// The publisher of `id` stopped waiting.
    fn abandon(&mut self, id: u64) {
        match self.entries.iter().position(|e| e.id == id) {
            // Never sent: nothing can come back for it.
            Some(index)
                if self.entries[index].confirm.is_none()
                    && self.entries[index].result.is_none() =>
            {
                self.entries.remove(index);
            }
            Some(index) => {
                let entry = &mut self.entries[index];
                entry.abandoned = true;
                entry.waker = None;
            }
            None => {}
        }
        self.wake_unsettled();
    }
}

/// Waits for publish `id` to be settled; abandons it when dropped before.
struct Waiting<'a> {
    tracked: &'a Tracked,
    id: u64,
}

impl Future for Waiting<'_> {
    type Output = Result<Settled, lapin::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.tracked.ledger.lock().poll_settled(self.id, cx.waker())
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.id != Ledger::CLOSED {
            self.tracked.ledger.lock().abandon(self.id);
        }
    }
}
