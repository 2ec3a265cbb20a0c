//! Connections: the broker's record of one, and [`MemoryTransport`], the
//! [`Transport`] a service uses.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use nameko_transport::topology::{Declaration, Topology};
use nameko_transport::{
    Capabilities, ConsumeOptions, Consumer, ExchangeKind, ExchangeOptions, FieldTable, Message,
    PublishOptions, PublishOutcome, QueueDeclared, QueueOptions, Transport, TransportError,
    TransportStatus,
};
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::broker::{MemoryBroker, Shared};
use crate::ids::{ConnectionId, ConsumerId};

/// Options of one connection to a [`MemoryBroker`].
///
/// ```
/// use nameko_memory::{ConnectOptions, MemoryBroker};
///
/// let broker = MemoryBroker::new();
/// // A connection that does not recover, to observe a fault as it happens.
/// let raw = broker.connect_with(ConnectOptions::default().with_recovery(false));
/// # drop(raw);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Reconnect after the broker drops the connection, redeclaring what it declared and
    /// resuming its consumers. On by default.
    pub recover: bool,
    /// A name shown in [`MemoryBroker::connections`], for tests and logs.
    pub name: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            recover: true,
            name: None,
        }
    }
}

impl ConnectOptions {
    /// Sets whether the connection recovers from broker-side drops.
    #[must_use]
    pub fn with_recovery(mut self, recover: bool) -> Self {
        self.recover = recover;
        self
    }

    /// Names the connection.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    Open,
    Reconnecting {
        attempt: u32,
        reason: String,
    },
    /// Dropped by the broker and not recovering.
    Lost(String),
}

/// The broker's record of a connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) name: Option<String>,
    pub(crate) phase: Phase,
    pub(crate) recover: bool,
    pub(crate) status: watch::Sender<TransportStatus>,
    /// What it declared and did not delete, declared again when it reconnects.
    pub(crate) topology: Topology,
    pub(crate) consumers: Vec<ConsumerId>,
    /// The runtime recovery tasks are spawned on.
    pub(crate) runtime: Option<Handle>,
    /// A recovery task is running (or about to be spawned).
    pub(crate) recovering: bool,
    /// Publishes still to fail by injection.
    pub(crate) fail_publishes: u32,
    pub(crate) next_consumer_tag: u64,
}

impl Connection {
    pub(crate) fn new(options: &ConnectOptions, status: watch::Sender<TransportStatus>) -> Self {
        Self {
            name: options.name.clone(),
            phase: Phase::Open,
            recover: options.recover,
            status,
            topology: Topology::new(),
            consumers: Vec::new(),
            runtime: Handle::try_current().ok(),
            recovering: false,
            fail_publishes: 0,
            next_consumer_tag: 1,
        }
    }

    /// Changes the phase and publishes the matching status.
    pub(crate) fn set_phase(&mut self, phase: Phase) {
        let status = match &phase {
            Phase::Open => TransportStatus::Connected,
            Phase::Reconnecting { attempt, reason } => TransportStatus::Reconnecting {
                attempt: *attempt,
                reason: reason.clone(),
            },
            Phase::Lost(_) => TransportStatus::Closed,
        };
        self.phase = phase;
        self.status.send_replace(status);
    }
}

/// One connection to a [`MemoryBroker`]: the [`Transport`] of the in-memory backend.
///
/// Cheap to clone; clones share the connection. Dropping the last clone closes it, as
/// [`Transport::close`] does. See the [crate documentation](crate) for the semantics.
///
/// ```
/// use nameko_transport::{Message, Properties, PublishOptions, QueueOptions, Transport};
/// use nameko_memory::MemoryBroker;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let broker = MemoryBroker::new();
/// let conn = broker.connect();
/// conn.declare_queue("jobs", QueueOptions::durable()).await?;
/// conn.publish("", "jobs", Message::new("work", Properties::json()), PublishOptions::default())
///     .await?;
/// assert_eq!(broker.queue("jobs").map(|q| q.ready), Some(1));
/// # Ok::<(), nameko_transport::TransportError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryTransport {
    inner: Arc<ConnectionHandle>,
}

/// The shared part of a [`MemoryTransport`]; closes the connection when dropped.
struct ConnectionHandle {
    shared: Arc<Shared>,
    id: ConnectionId,
    status: watch::Receiver<TransportStatus>,
}

impl Drop for ConnectionHandle {
    fn drop(&mut self) {
        self.shared.with(|state| state.close_connection(self.id));
    }
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("broker", &self.inner.shared.name)
            .field("id", &self.inner.id)
            .field("status", &*self.inner.status.borrow())
            .finish()
    }
}

impl MemoryTransport {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: ConnectionId,
        status: watch::Receiver<TransportStatus>,
    ) -> Self {
        Self {
            inner: Arc::new(ConnectionHandle { shared, id, status }),
        }
    }

    /// This connection's id, as the broker's inspection and fault injection know it.
    #[must_use]
    pub fn id(&self) -> ConnectionId {
        self.inner.id
    }

    /// The broker this connection belongs to.
    #[must_use]
    pub fn broker(&self) -> MemoryBroker {
        MemoryBroker::from_shared(Arc::clone(&self.inner.shared))
    }

    /// Makes the next `count` publishes on this connection fail with
    /// [`TransportError::Injected`] (in addition to any broker-wide injection).
    pub fn fail_next_publishes(&self, count: u32) {
        self.inner.shared.with(|state| {
            if let Some(conn) = state.connection_mut(self.inner.id) {
                conn.fail_publishes = conn.fail_publishes.saturating_add(count);
            }
        });
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    fn capabilities(&self) -> Capabilities {
        crate::capabilities()
    }

    fn endpoint(&self) -> String {
        format!("memory://{}", self.inner.shared.name)
    }

    fn status(&self) -> watch::Receiver<TransportStatus> {
        self.inner.status.clone()
    }

    async fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeOptions,
    ) -> Result<(), TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            state.declare_exchange(name, kind, options)?;
            if !options.passive {
                state.record(id, Declaration::exchange(name, kind, options));
            }
            Ok(())
        })
    }

    async fn delete_exchange(&self, name: &str) -> Result<(), TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            state.delete_exchange(name)?;
            if let Some(conn) = state.connection_mut(id) {
                conn.topology.forget_exchange(name);
            }
            Ok(())
        })
    }

    async fn declare_queue(
        &self,
        name: &str,
        options: QueueOptions,
    ) -> Result<QueueDeclared, TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            let declared = state.declare_queue(id, name, &options)?;
            if !options.passive {
                state.record(id, Declaration::queue(declared.name.clone(), options));
            }
            Ok(declared)
        })
    }

    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            state.bind_queue(id, queue, exchange, routing_key)?;
            state.record(id, Declaration::binding(queue, exchange, routing_key));
            Ok(())
        })
    }

    async fn bind_queue_with_arguments(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            state.bind_queue_with(id, queue, exchange, routing_key, arguments.clone())?;
            state.record(
                id,
                Declaration::binding_with_arguments(queue, exchange, routing_key, arguments),
            );
            Ok(())
        })
    }

    async fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            state.bind_exchange(destination, source, routing_key)?;
            state.record(
                id,
                Declaration::exchange_binding(destination, source, routing_key),
            );
            Ok(())
        })
    }

    async fn delete_queue(&self, name: &str) -> Result<u32, TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| {
            state.check_usable(id)?;
            let deleted = state.delete_queue(id, name);
            // Gone, or lost with its node (404): not declared again on reconnection.
            if matches!(deleted, Ok(_) | Err(TransportError::NotFound(_)))
                && let Some(conn) = state.connection_mut(id)
            {
                conn.topology.forget_queue(name);
            }
            deleted
        })
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: Message,
        options: PublishOptions,
    ) -> Result<PublishOutcome, TransportError> {
        let id = self.inner.id;
        self.shared()
            .with(|state| state.publish(id, exchange, routing_key, message, options))
    }

    async fn consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Consumer, TransportError> {
        let id = self.inner.id;
        let shared = Arc::clone(self.shared());
        let consumer = self.shared().with(|state| {
            state.check_usable(id)?;
            state.consume(&shared, id, queue, options)
        })?;
        Ok(Consumer::new(Box::new(consumer)))
    }

    async fn close(&self) -> Result<(), TransportError> {
        let id = self.inner.id;
        self.shared().with(|state| state.close_connection(id));
        Ok(())
    }
}
