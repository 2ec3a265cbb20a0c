//! Automatic recovery: notice a lost connection, reconnect with backoff, declare again
//! what was declared, and re-attach the consumers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::Event;
use nameko_transport::topology::Declaration;
use nameko_transport::{TransportError, TransportStatus};

use crate::connection::{Events, Session};
use crate::consumer::Attachment;
use crate::transport::{Inner, Signals};

/// How often the supervisor looks at the connection when nothing woke it.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Watches the connection for as long as the transport lives, and recovers it when lost.
pub(crate) async fn supervise(
    inner: Weak<Inner>,
    signals: Arc<Signals>,
    mut session: Arc<Session>,
    mut events: Events,
) {
    loop {
        let Some(reason) = wait_for_loss(&session, &mut events, &signals).await else {
            return;
        };
        let Some(transport) = inner.upgrade() else {
            return;
        };
        if signals.is_closing() {
            return;
        }
        let broker = &transport.uri.brokers()[session.broker()];
        tracing::warn!(endpoint = %transport.uri, %broker, %reason, "lost the connection to the broker");
        *transport.session.write() = None;
        transport.known_exchanges.write().clear();
        drop(transport);
        let lost = session.broker();
        match reconnect(&inner, &signals, session.generation() + 1, lost, reason).await {
            Some((new_session, new_events)) => {
                session = new_session;
                events = new_events;
            }
            None => return,
        }
    }
}

/// Waits until the connection is lost (returning why) or the transport closes (`None`).
async fn wait_for_loss(
    session: &Session,
    events: &mut Events,
    signals: &Signals,
) -> Option<String> {
    let mut reason = None;
    loop {
        if signals.is_closing() {
            return None;
        }
        if !session.is_alive() {
            return Some(reason.unwrap_or_else(|| "connection closed".to_owned()));
        }
        tokio::select! {
            event = events.next() => match event {
                Some(Event::Error(error)) => reason = Some(error.to_string()),
                Some(_) => {}
                None => {
                    // lapin dropped the connection's event source: it is gone.
                    tokio::time::sleep(CHECK_INTERVAL).await;
                }
            },
            () = signals.wake.notified() => {}
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
}

/// Reconnects with the policy's backoff and restores topology and consumers. Returns the
/// new session, or `None` when the transport closed or the policy gave up.
async fn reconnect(
    inner: &Weak<Inner>,
    signals: &Signals,
    generation: u64,
    lost: usize,
    mut reason: String,
) -> Option<(Arc<Session>, Events)> {
    let mut delays = inner.upgrade()?.options.reconnect.backoff();
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        let transport = inner.upgrade()?;
        let Some(delay) = delays.next() else {
            tracing::error!(endpoint = %transport.uri, attempts = attempt - 1, %reason, "giving up reconnecting to the broker");
            give_up(&transport);
            return None;
        };
        transport
            .status
            .send_replace(TransportStatus::Reconnecting {
                attempt,
                reason: reason.clone(),
            });
        drop(transport);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = wait_closing(signals) => return None,
        }
        let transport = inner.upgrade()?;
        if signals.is_closing() {
            return None;
        }
        tracing::info!(endpoint = %transport.uri, attempt, "reconnecting to the broker");
        let order = crate::connection::broker_order(
            transport.uri.brokers().len(),
            transport.uri.failover(),
            Some(lost),
        );
        let (session, events) = match Session::open(
            &transport.uri,
            &transport.options,
            generation,
            &order,
        )
        .await
        {
            Ok(opened) => opened,
            Err(error) => {
                tracing::warn!(endpoint = %transport.uri, attempt, %error, "reconnection failed");
                reason = error.to_string();
                continue;
            }
        };
        let session = Arc::new(session);
        if let Err(error) = restore(&transport, &session).await {
            tracing::warn!(endpoint = %transport.uri, attempt, %error, "connection lost again while restoring");
            reason = error.to_string();
            continue;
        }
        if signals.is_closing() {
            let _ = session.close().await;
            return None;
        }
        *transport.session.write() = Some(Arc::clone(&session));
        transport.status.send_replace(TransportStatus::Connected);
        tracing::info!(endpoint = %transport.uri, broker = %transport.uri.brokers()[session.broker()], attempt, "reconnected to the broker");
        return Some((session, events));
    }
}

async fn wait_closing(signals: &Signals) {
    while !signals.is_closing() {
        tokio::select! {
            () = signals.wake.notified() => {}
            () = tokio::time::sleep(CHECK_INTERVAL) => {}
        }
    }
}

/// The policy gave up: the transport is closed for good.
fn give_up(transport: &Inner) {
    *transport.session.write() = None;
    transport.consumers.abandon_all();
    transport.status.send_replace(TransportStatus::Closed);
}

/// Declares the recorded topology again and re-attaches every consumer. A declaration or
/// a consumer the broker refuses is skipped (and the consumer told why); losing the new
/// connection fails the whole restore.
async fn restore(transport: &Inner, session: &Session) -> Result<(), TransportError> {
    let topology = transport.topology.lock().clone();
    for declaration in topology.iter() {
        if let Err(error) = redeclare(session, declaration).await {
            if !session.is_alive() {
                return Err(error);
            }
            tracing::warn!(?declaration, %error, "could not declare again after reconnecting");
        }
    }
    for (spec, reattach) in transport.consumers.snapshot() {
        let result = Attachment::start(session, &spec).await;
        if let Err(error) = &result {
            if !session.is_alive() {
                return Err(error.clone());
            }
            tracing::warn!(consumer = %spec.tag, queue = %spec.queue, %error, "could not re-create consumer after reconnecting");
        }
        // A consumer that ended in the meantime has dropped its receiver.
        let _ = reattach.send(result);
    }
    if session.is_alive() {
        Ok(())
    } else {
        Err(TransportError::Disconnected(
            "connection lost while restoring".to_owned(),
        ))
    }
}

async fn redeclare(session: &Session, declaration: &Declaration) -> Result<(), TransportError> {
    let channel = session.management().await?;
    crate::declare::declare(&channel, declaration)
        .await
        .map(drop)
}
