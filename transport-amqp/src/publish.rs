//! Publishing: which channel a message goes on, and what the broker said about it.
//!
//! - Confirmed, not mandatory: one shared channel in confirm mode. Publishes from any
//!   number of tasks pipeline on it; each awaits only its own confirm.
//! - Confirmed and mandatory: a second shared channel in confirm mode, on which they
//!   pipeline too, with a ledger of what is unsettled on it ([`mandatory`]). lapin hands
//!   a `basic.return` to whichever confirm it completes next (with RabbitMQ's
//!   multiple-acks, any publish of the batch), so the ledger gives each returned message to
//!   the publish it is a copy of: same exchange, routing key, correlation and message ids,
//!   and body.
//! - Mandatory but not confirmed: as confirmed and mandatory, since only the confirm tells
//!   that no return is coming; the outcome is [`PublishOutcome::Returned`] or, when the
//!   message was routed, [`PublishOutcome::Sent`].
//! - Neither: a shared channel without confirms; the outcome is [`PublishOutcome::Sent`].

mod mandatory;

use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, PublisherConfirm};
use nameko_transport::{Message, PublishOptions, PublishOutcome, TransportError};

use self::mandatory::{MandatoryChannel, Settled};
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
                send(&channel, outgoing).await?;
                return Ok(PublishOutcome::Sent);
            }
            let channel = self.confirmed.get(session).await?;
            let confirm = send(&channel, outgoing).await?;
            return outcome(ConfirmGuard::new(confirm).wait().await, exchange, true);
        }
        Ok(match self.mandatory.publish(session, outgoing).await? {
            Settled::Nacked => PublishOutcome::Nacked,
            Settled::Returned(reply_code, reply_text) => PublishOutcome::Returned {
                reply_code,
                reply_text: reply_text.to_string(),
            },
            Settled::Acked if options.confirm => PublishOutcome::Confirmed,
            Settled::Acked | Settled::NotRequested => PublishOutcome::Sent,
        })
    }
}

/// Sends the message; the returned future resolves with the broker's confirm.
async fn send(
    channel: &Channel,
    outgoing: Outgoing<'_>,
) -> Result<PublisherConfirm, TransportError> {
    channel
        .basic_publish(
            outgoing.exchange_name,
            outgoing.routing_key,
            BasicPublishOptions::default(),
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
