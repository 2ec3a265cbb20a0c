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
use crate::uri::AmqpUri;

/// How long a connection attempt may take when neither the options nor the URI say.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection-level events, for noticing a lost connection.
pub(crate) type Events = std::pin::Pin<Box<dyn Stream<Item = Event> + Send>>;

/// One lapin connection with the transport's channels on it. A reconnection makes a new
/// session with the next generation number; nothing of a dead session is reused.
pub(crate) struct Session {
    generation: u64,
    connection: Connection,
    management: Mutex<Option<Channel>>,
    publisher: Publisher,
}

impl Session {
    /// Opens a connection, bounded by the connect timeout.
    pub(crate) async fn open(
        uri: &AmqpUri,
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
            uri.to_lapin(heartbeat),
            properties,
            options.tls.to_lapin(),
            runtime,
        );
        let connection = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(from_connect(&e, |text| uri.scrub(text))),
            Err(_) => {
                return Err(TransportError::Timeout(format!(
                    "connecting to {uri} took longer than {timeout:?}"
                )));
            }
        };
        let events: Events = Box::pin(connection.events_listener());
        Ok((
            Self {
                generation,
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
