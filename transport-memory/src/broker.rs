//! The broker: shared state behind one lock, and the handle tests and services hold.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nameko_transport::TransportStatus;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::connection::{ConnectOptions, Connection, MemoryTransport, Phase};
use crate::ids::ConnectionId;
use crate::inspect::PublishLog;
use crate::recovery;
use crate::state::State;
use crate::ttl;

/// What every handle to one broker shares.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) idle_timeout: Duration,
    state: Mutex<State>,
    /// Woken whenever the broker becomes idle while someone waits for it.
    pub(crate) idle: Notify,
    pub(crate) idle_waiters: AtomicUsize,
    /// Wakes the message-TTL timer.
    pub(crate) ttl_notify: Arc<Notify>,
    pub(crate) ttl_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The timer holds a weak reference; woken, it finds the broker gone and ends.
        self.ttl_notify.notify_one();
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Runs one broker operation under the lock: queues due to expire go first; after
    /// it, consumers that received something are woken, idle waiters too, and recovery
    /// tasks spawned, outside the lock.
    pub(crate) fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut State) -> R) -> R {
        let (result, recoveries, idle, ttl_wake, wakes) = {
            let mut state = self.state.lock();
            state.expire_due();
            let result = f(&mut state);
            let recoveries = std::mem::take(&mut state.pending_recoveries);
            let idle = self.idle_waiters.load(Ordering::Acquire) > 0 && state.is_idle();
            let ttl_wake = std::mem::take(&mut state.ttl_wake);
            let wakes = std::mem::take(&mut state.wakes);
            (result, recoveries, idle, ttl_wake, wakes)
        };
        wakes.wake();
        if ttl_wake {
            ttl::wake(self);
        }
        if idle {
            self.idle.notify_waiters();
        }
        for conn in recoveries {
            recovery::spawn(self, conn);
        }
        result
    }
}

/// A deterministic in-process AMQP broker.
///
/// Cheap to clone: clones are handles to the same broker. [`connect`](Self::connect)
/// opens connections ([`MemoryTransport`]s), so a whole cluster of services can share one
/// broker in one process. Tests can look inside (`queues`, `published`, ...), wait for
/// quiet with [`run_until_idle`](Self::run_until_idle) and inject faults
/// (`drop_connection`, `fail_next_publish`, `restart`, `set_available`).
///
/// ```
/// use nameko_memory::MemoryBroker;
///
/// let broker = MemoryBroker::new();
/// let service_a = broker.connect();
/// let service_b = broker.connect();
/// assert_ne!(service_a.id(), service_b.id());
/// assert_eq!(broker.connections().len(), 2);
/// ```
#[derive(Clone)]
pub struct MemoryBroker {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for MemoryBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBroker")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

/// Configures a [`MemoryBroker`].
///
/// ```
/// use std::time::Duration;
/// use nameko_memory::{MemoryBroker, PublishLog};
///
/// let broker = MemoryBroker::builder()
///     .name("cluster-under-test")
///     .publish_log(PublishLog::Off)
///     .idle_timeout(Duration::from_secs(1))
///     .build();
/// assert!(broker.published().is_empty());
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct MemoryBrokerBuilder {
    name: String,
    publish_log: PublishLog,
    idle_timeout: Duration,
}

impl MemoryBrokerBuilder {
    /// Names the broker; connections report `memory://<name>` as their endpoint.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How much of the publish log to keep (default: the last 10,000 publishes).
    pub fn publish_log(mut self, log: PublishLog) -> Self {
        self.publish_log = log;
        self
    }

    /// The bound of [`MemoryBroker::run_until_idle`] (default: 5 seconds).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Builds the broker.
    #[must_use]
    pub fn build(self) -> MemoryBroker {
        let shared = Arc::new_cyclic(|weak| Shared {
            name: self.name,
            idle_timeout: self.idle_timeout,
            state: Mutex::new(State::new(weak.clone(), self.publish_log)),
            idle: Notify::new(),
            idle_waiters: AtomicUsize::new(0),
            ttl_notify: Arc::new(Notify::new()),
            ttl_task: Mutex::new(None),
        });
        MemoryBroker { shared }
    }
}

impl MemoryBroker {
    /// A broker with default settings.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a broker.
    pub fn builder() -> MemoryBrokerBuilder {
        MemoryBrokerBuilder {
            name: "memory".to_owned(),
            publish_log: PublishLog::default(),
            idle_timeout: Duration::from_secs(5),
        }
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The broker's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Opens a connection that recovers from broker-side drops.
    ///
    /// Works outside a tokio runtime; recovery then runs on the runtime of the first
    /// call made through the connection after a drop.
    #[must_use]
    pub fn connect(&self) -> MemoryTransport {
        self.connect_with(ConnectOptions::default())
    }

    /// Opens a connection with `options`.
    ///
    /// While the broker is unavailable ([`set_available(false)`](Self::set_available))
    /// the connection starts out reconnecting, and connects once the broker is back.
    #[must_use]
    pub fn connect_with(&self, options: ConnectOptions) -> MemoryTransport {
        let (status_tx, status_rx) = watch::channel(TransportStatus::Connected);
        let id = self.shared.with(|state| {
            let id = ConnectionId(state.next_id());
            let mut connection = Connection::new(&options, status_tx);
            if !state.available {
                connection.set_phase(Phase::Reconnecting {
                    attempt: 1,
                    reason: "broker unavailable".to_owned(),
                });
                connection.recovering = true;
                state.pending_recoveries.push(id);
            }
            tracing::debug!(connection = %id, name = ?options.name, "connection opened");
            state.connections.insert(id, connection);
            id
        });
        MemoryTransport::new(Arc::clone(&self.shared), id, status_rx)
    }
}
