//! Looking inside the broker: queues, exchanges, bindings, connections and the log of
//! everything published.

use std::sync::Arc;

use nameko_transport::{
    ExchangeKind, FieldTable, Message, PublishOutcome, TransportError, TransportStatus,
};

use crate::broker::MemoryBroker;
use crate::connection::Phase;
use crate::ids::ConnectionId;
use crate::queue::Queue;
use crate::state::State;

/// How much of the publish log the broker keeps.
///
/// The log shares each message with the queues (no copies), but a long-running broker
/// should cap it or switch it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishLog {
    /// Keep nothing.
    Off,
    /// Keep the most recent publishes, at most this many.
    Capped(usize),
    /// Keep every publish.
    Unbounded,
}

impl Default for PublishLog {
    /// The last 10,000 publishes.
    fn default() -> Self {
        Self::Capped(10_000)
    }
}

/// One publish, as the broker saw it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Published {
    /// Order of the publish on this broker, from 1.
    pub sequence: u64,
    /// The connection that published.
    pub connection: ConnectionId,
    /// The exchange (`""` for the default exchange).
    pub exchange: Arc<str>,
    /// The routing key.
    pub routing_key: Arc<str>,
    /// The message, shared with the queues it was routed to.
    pub message: Arc<Message>,
    /// What the publisher was told.
    pub outcome: Result<PublishOutcome, TransportError>,
    /// How many queues it was routed to.
    pub queues: usize,
}

/// A queue, as [`MemoryBroker::queues`] shows it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The name.
    pub name: String,
    /// Survives a broker restart.
    pub durable: bool,
    /// Exclusive to [`owner`](Self::owner).
    pub exclusive: bool,
    /// The connection an exclusive queue belongs to.
    pub owner: Option<ConnectionId>,
    /// Deleted when its last consumer goes.
    pub auto_delete: bool,
    /// Declared arguments (`x-expires`, ...).
    pub arguments: FieldTable,
    /// Messages waiting to be delivered.
    pub ready: usize,
    /// Messages delivered and not yet settled.
    pub unacked: usize,
    /// Consumers receiving from the queue.
    pub consumers: usize,
}

impl QueueInfo {
    pub(crate) fn of(q: &Queue) -> Self {
        Self {
            name: q.name.to_string(),
            durable: q.shape.durable,
            exclusive: q.shape.exclusive,
            owner: q.owner,
            auto_delete: q.shape.auto_delete,
            arguments: q.shape.arguments.clone(),
            ready: q.ready.len(),
            unacked: q.unacked,
            consumers: q.consumers.len(),
        }
    }
}

/// An exchange, as [`MemoryBroker::exchanges`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangeInfo {
    /// The name.
    pub name: String,
    /// How it routes.
    pub kind: ExchangeKind,
    /// Survives a broker restart.
    pub durable: bool,
    /// Deleted when its last binding goes.
    pub auto_delete: bool,
}

/// A binding, as [`MemoryBroker::bindings`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct BindingInfo {
    /// The exchange.
    pub exchange: String,
    /// The bound queue.
    pub queue: String,
    /// The routing key (a pattern for topic exchanges).
    pub routing_key: String,
}

/// A connection, as [`MemoryBroker::connections`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// Its id.
    pub id: ConnectionId,
    /// The name given in [`ConnectOptions`](crate::ConnectOptions).
    pub name: Option<String>,
    /// Its state.
    pub status: TransportStatus,
    /// Consumers it holds, resumed or to be resumed.
    pub consumers: usize,
}

impl MemoryBroker {
    /// Every queue, sorted by name.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nameko_transport::{QueueOptions, Transport};
    /// use nameko_memory::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new();
    /// broker.connect().declare_queue("rpc-calc", QueueOptions::durable()).await?;
    /// let queues = broker.queues();
    /// assert_eq!(queues[0].name, "rpc-calc");
    /// assert_eq!((queues[0].ready, queues[0].unacked, queues[0].consumers), (0, 0, 0));
    /// # Ok::<(), nameko_transport::TransportError>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn queues(&self) -> Vec<QueueInfo> {
        self.inspect(|state| {
            let mut queues: Vec<QueueInfo> = state.queues.values().map(QueueInfo::of).collect();
            queues.sort_by(|a, b| a.name.cmp(&b.name));
            queues
        })
    }

    /// One queue, if it exists.
    #[must_use]
    pub fn queue(&self, name: &str) -> Option<QueueInfo> {
        self.inspect(|state| {
            state
                .queue_names
                .get(name)
                .and_then(|id| state.queues.get(id))
                .map(QueueInfo::of)
        })
    }

    /// Whether a queue exists. Unlike a passive declaration, this does not renew its
    /// `x-expires` lease.
    #[must_use]
    pub fn queue_exists(&self, name: &str) -> bool {
        self.inspect(|state| state.queue_names.contains_key(name))
    }

    /// Every exchange but the default one, sorted by name (the predeclared
    /// `amq.direct`, `amq.fanout` and `amq.topic` included).
    #[must_use]
    pub fn exchanges(&self) -> Vec<ExchangeInfo> {
        self.inspect(|state| {
            let mut exchanges: Vec<ExchangeInfo> = state
                .exchanges
                .values()
                .map(|x| ExchangeInfo {
                    name: x.name.to_string(),
                    kind: x.kind,
                    durable: x.durable,
                    auto_delete: x.auto_delete,
                })
                .collect();
            exchanges.sort_by(|a, b| a.name.cmp(&b.name));
            exchanges
        })
    }

    /// Every explicit binding (not the default exchange's implicit ones), sorted.
    #[must_use]
    pub fn bindings(&self) -> Vec<BindingInfo> {
        self.inspect(|state| {
            let mut bindings: Vec<BindingInfo> = state
                .exchanges
                .values()
                .flat_map(|x| {
                    x.bindings.iter().map(|b| BindingInfo {
                        exchange: x.name.to_string(),
                        queue: b.queue_name.to_string(),
                        routing_key: b.key.to_string(),
                    })
                })
                .collect();
            bindings.sort();
            bindings
        })
    }

    /// Every connection not closed by its owner, by id.
    #[must_use]
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.inspect(|state| {
            state
                .connections
                .iter()
                .map(|(id, c)| ConnectionInfo {
                    id: *id,
                    name: c.name.clone(),
                    status: match &c.phase {
                        Phase::Open => TransportStatus::Connected,
                        Phase::Reconnecting { attempt, reason } => TransportStatus::Reconnecting {
                            attempt: *attempt,
                            reason: reason.clone(),
                        },
                        Phase::Lost(_) => TransportStatus::Closed,
                    },
                    consumers: c.consumers.len(),
                })
                .collect()
        })
    }

    /// The publish log, oldest first.
    #[must_use]
    pub fn published(&self) -> Vec<Published> {
        self.inspect(|state| state.published.iter().cloned().collect())
    }

    /// Takes the publish log, leaving it empty.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nameko_transport::{Message, Properties, PublishOptions, PublishOutcome, Transport};
    /// use nameko_memory::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new();
    /// let conn = broker.connect();
    /// let options = PublishOptions::default().with_mandatory(true);
    /// conn.publish("", "nobody", Message::new("hi", Properties::json()), options).await?;
    /// let log = broker.take_published();
    /// assert_eq!(&*log[0].routing_key, "nobody");
    /// assert!(matches!(log[0].outcome, Ok(PublishOutcome::Returned { reply_code: 312, .. })));
    /// assert!(broker.published().is_empty());
    /// # Ok::<(), nameko_transport::TransportError>(())
    /// # }).unwrap();
    /// ```
    #[must_use]
    pub fn take_published(&self) -> Vec<Published> {
        self.inspect(|state| std::mem::take(&mut state.published).into())
    }

    /// Empties the publish log.
    pub fn clear_published(&self) {
        self.inspect(|state| state.published.clear());
    }

    /// Changes how much of the publish log is kept, trimming it to fit.
    pub fn set_publish_log(&self, log: PublishLog) {
        self.inspect(|state| {
            state.log = log;
            match log {
                PublishLog::Off => state.published.clear(),
                PublishLog::Capped(cap) => {
                    while state.published.len() > cap {
                        state.published.pop_front();
                    }
                }
                PublishLog::Unbounded => {}
            }
        });
    }

    fn inspect<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        self.shared.with(f)
    }
}
