//! One live connection to the broker and the channels the transport keeps on it.

use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties, ConnectionStatus, Event};
use nameko_transport::TransportError;
use parking_lot::RwLock;
use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};

use crate::error::{from_connect, from_lapin};
use crate::options::{AmqpOptions, DEFAULT_HEARTBEAT};
use crate::publish::Publisher;
use crate::uri::{AmqpUri, BrokerAddress, Failover};

/// How long a connection attempt may take when neither the options nor the URI say.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection-level events, for noticing a lost connection.
pub(crate) type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// One lapin connection with the transport's channels on it. A reconnection makes a new
/// session with the next generation number; nothing of a dead session is reused.
pub(crate) struct Session {
    generation: u64,
    broker: usize,
    connection: Connection,
    management: Mutex<Option<Channel>>,
    publisher: Publisher,
}

impl Session {
    /// Opens a connection to one of the URI's brokers, trying them in `order` (indexes
    /// into [`AmqpUri::brokers`]) until one answers. A refused login ends the search (the
    /// users of a cluster are the same on every node); otherwise the error names every
    /// broker tried and why it failed.
    pub(crate) async fn open(
        uri: &AmqpUri,
        options: &AmqpOptions,
        generation: u64,
        order: &[usize],
    ) -> Result<(Self, Events), TransportError> {
        let mut failures = Vec::new();
        let mut last = None;
        for &index in order {
            let broker = &uri.brokers()[index];
            match Self::open_on(uri, broker, index, options, generation).await {
                Ok(opened) => return Ok(opened),
                Err(error @ TransportError::AccessRefused(_)) => return Err(error),
                Err(error) => {
                    if order.len() > 1 {
                        tracing::debug!(%broker, %error, "broker did not answer; trying the next");
                    }
                    failures.push(format!("{broker}: {error}"));
                    last = Some(error);
                }
            }
        }
        match (last, failures.len()) {
            (Some(error), 1) => Err(error),
            (Some(TransportError::Timeout(_)), _)
                if failures.iter().all(|f| f.contains("took longer")) =>
            {
                Err(TransportError::Timeout(format!(
                    "no broker of {uri} answered: {}",
                    failures.join("; ")
                )))
            }
            _ => Err(TransportError::Connect(format!(
                "no broker of {uri} answered: {}",
                failures.join("; ")
            ))),
        }
    }

    /// Opens a connection to `broker`, bounded by the connect timeout.
    async fn open_on(
        uri: &AmqpUri,
        broker: &BrokerAddress,
        index: usize,
        options: &AmqpOptions,
        generation: u64,
    ) -> Result<(Self, Events), TransportError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TransportError::Connect(
                "the AMQP transport needs a tokio runtime".to_owned(),
            ));
        }
        let heartbeat = options
            .heartbeat
            .or(uri.heartbeat())
            .unwrap_or(DEFAULT_HEARTBEAT);
        let mut properties = ConnectionProperties::default()
            .with_client_property("product".into(), "nameko-rs".into())
            .with_client_property("version".into(), env!("CARGO_PKG_VERSION").into());
        if let Some(name) = &options.connection_name {
            properties = properties.with_connection_name(name.as_str().into());
        }
        let timeout = options
            .connect_timeout
            .or(uri.connection_timeout())
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let runtime = lapin::runtime::default_runtime()
            .map_err(|e| TransportError::Connect(uri.scrub(&e.to_string())))?;
        let connect = Connection::connect_uri_with_config(
            uri.to_lapin(broker, heartbeat),
            properties,
            options.tls.to_lapin(),
            runtime,
        );
        let connection = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(from_connect(&e, |text| uri.scrub(text))),
            Err(_) => {
                return Err(TransportError::Timeout(format!(
                    "connecting to {broker} took longer than {timeout:?}"
                )));
            }
        };
        let events: Events = Box::pin(connection.events_listener());
        Ok((
            Self {
                generation,
                broker: index,
                connection,
                management: Mutex::new(None),
                publisher: Publisher::new(),
            },
            events,
        ))
    }

    /// The number of this connection: 1 for the first, one more per reconnection.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The index in [`AmqpUri::brokers`] of the broker this session is connected to.
    pub(crate) fn broker(&self) -> usize {
        self.broker
    }

    /// Whether the connection is up.
    pub(crate) fn is_alive(&self) -> bool {
        self.connection.status().connected()
    }

    /// The connection's state, to hand to what outlives a borrow of the session.
    pub(crate) fn status(&self) -> ConnectionStatus {
        self.connection.status().clone()
    }

    /// The publish channels.
    pub(crate) fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Opens a new channel.
    pub(crate) async fn channel(&self) -> Result<Channel, TransportError> {
        self.connection
            .create_channel()
            .await
            .map_err(|e| from_lapin(&e))
    }

    /// Opens a new channel in confirm mode.
    pub(crate) async fn confirm_channel(&self) -> Result<Channel, TransportError> {
        let channel = self.channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| from_lapin(&e))?;
        Ok(channel)
    }

    /// The management channel, for declarations, held exclusively until the guard drops.
    ///
    /// Declarations run one at a time: RabbitMQ closes a channel on a refused declaration,
    /// and that must fail only the declaration that caused it. A closed channel is
    /// replaced by a new one here.
    pub(crate) async fn management(&self) -> Result<MappedMutexGuard<'_, Channel>, TransportError> {
        let mut guard = self.management.lock().await;
        let usable = guard.as_ref().is_some_and(|c| c.status().connected());
        if !usable {
            *guard = Some(self.channel().await?);
        }
        MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| TransportError::Other("no management channel".to_owned()))
    }

    /// Closes the connection (consumers end, the broker requeues unsettled deliveries).
    pub(crate) async fn close(&self) -> Result<(), TransportError> {
        if !self.is_alive() {
            return Ok(());
        }
        self.connection
            .close(200, "OK".into())
            .await
            .map_err(|e| from_lapin(&e))
    }
}

/// A channel shared by many tasks, replaced when the broker closes it.
pub(crate) struct SharedChannel {
    current: RwLock<Option<Arc<Channel>>>,
    reopen: Mutex<()>,
    confirm: bool,
}

impl SharedChannel {
    pub(crate) fn new(confirm: bool) -> Self {
        Self {
            current: RwLock::new(None),
            reopen: Mutex::new(()),
            confirm,
        }
    }

    /// The open channel, opening a new one if there is none or the last one was closed.
    pub(crate) async fn get(&self, session: &Session) -> Result<Arc<Channel>, TransportError> {
        if let Some(channel) = self.usable() {
            return Ok(channel);
        }
        let _reopening = self.reopen.lock().await;
        if let Some(channel) = self.usable() {
            return Ok(channel);
        }
        let channel = if self.confirm {
            session.confirm_channel().await?
        } else {
            session.channel().await?
        };
        let channel = Arc::new(channel);
        *self.current.write() = Some(Arc::clone(&channel));
        Ok(channel)
    }

    fn usable(&self) -> Option<Arc<Channel>> {
        self.current
            .read()
            .as_ref()
            .filter(|c| c.status().connected())
            .cloned()
    }
}

/// The order in which to try the brokers of a URI listing `count`: for the first
/// connection (`lost` is `None`) as written, for a reconnection starting with the broker
/// after the one lost and ending with it; shuffled with [`Failover::Shuffle`] (the lost
/// broker still last).
pub(crate) fn broker_order(count: usize, failover: Failover, lost: Option<usize>) -> Vec<usize> {
    let start = lost.map_or(0, |lost| (lost + 1) % count.max(1));
    let mut order: Vec<usize> = (0..count).map(|i| (start + i) % count).collect();
    if failover == Failover::Shuffle {
        let others = if lost.is_some() {
            count.saturating_sub(1)
        } else {
            count
        };
        fastrand::shuffle(&mut order[..others]);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lost_broker_is_tried_last() {
        assert_eq!(broker_order(3, Failover::InOrder, None), [0, 1, 2]);
        assert_eq!(broker_order(3, Failover::InOrder, Some(0)), [1, 2, 0]);
        assert_eq!(broker_order(3, Failover::InOrder, Some(2)), [0, 1, 2]);
        assert_eq!(broker_order(1, Failover::InOrder, Some(0)), [0]);
        for _ in 0..50 {
            let order = broker_order(4, Failover::Shuffle, Some(1));
            assert_eq!(order[3], 1, "{order:?}");
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
        let firsts: std::collections::HashSet<usize> = (0..200)
            .map(|_| broker_order(3, Failover::Shuffle, None)[0])
            .collect();
        assert_eq!(
            firsts.len(),
            3,
            "shuffling starts with every broker sometimes"
        );
    }
}
