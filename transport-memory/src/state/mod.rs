//! The broker's state and every operation on it. All of it runs under the broker's lock,
//! synchronously: routing, delivery to consumers and requeueing happen inside the call
//! that caused them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Weak};

use nameko_transport::topology::Declaration;
use nameko_transport::{ExchangeKind, TransportError};
use tokio::time::Instant;

use crate::broker::Shared;
use crate::connection::{Connection, Phase};
use crate::consumer::ConsumerState;
use crate::exchange::Exchange;
use crate::ids::{ConnectionId, ConsumerId, IdBuild, NameBuild, QueueId};
use crate::inspect::{PublishLog, Published};
use crate::mailbox::Wakes;
use crate::queue::Queue;
use crate::recycle::Shells;

mod declare;
mod delivery;
mod expiry;
mod lifecycle;
mod policy;
mod publish;

pub(crate) use policy::DeathReason;

/// Longest name or routing key AMQP can carry (a short string).
const MAX_NAME_LEN: usize = 255;

/// Everything the broker knows.
#[derive(Debug)]
pub(crate) struct State {
    shared: Weak<Shared>,
    pub(crate) exchanges: HashMap<Arc<str>, Exchange, NameBuild>,
    pub(crate) queues: HashMap<QueueId, Queue, IdBuild>,
    pub(crate) queue_names: HashMap<Arc<str>, QueueId, NameBuild>,
    pub(crate) consumers: HashMap<ConsumerId, ConsumerState, IdBuild>,
    pub(crate) connections: BTreeMap<ConnectionId, Connection>,
    next_id: u64,
    /// Deliveries handed out and not yet settled, over all consumers.
    pub(crate) in_flight: usize,
    pub(crate) available: bool,
    /// Broker-wide injected publish failures still to come.
    pub(crate) fail_publishes: u32,
    /// The earliest moment a queue may expire; nothing is checked before it.
    next_expiry: Option<Instant>,
    pub(crate) log: PublishLog,
    pub(crate) published: VecDeque<Published>,
    pub(crate) publish_seq: u64,
    /// Connections whose recovery task must be spawned once the lock is released.
    pub(crate) pending_recoveries: Vec<ConnectionId>,
    /// The default exchange's name, shared by every message published to it.
    default_exchange: Arc<str>,
    /// When the earliest queue head expires, if any message can.
    pub(crate) ttl_next: Option<Instant>,
    /// The broker's timer must be (started and) told of an earlier `ttl_next`.
    pub(crate) ttl_wake: bool,
    /// Empty `Arc`s for published messages.
    shells: Shells,
    /// Consumer tasks to wake once the lock is released.
    pub(crate) wakes: Wakes,
}

fn not_found_queue(name: &str) -> TransportError {
    TransportError::NotFound(format!("no queue '{name}' in vhost '/'"))
}

fn not_found_exchange(name: &str) -> TransportError {
    TransportError::NotFound(format!("no exchange '{name}' in vhost '/'"))
}

fn default_exchange_refused(what: &str) -> TransportError {
    TransportError::AccessRefused(format!(
        "operation {what} not permitted on the default exchange"
    ))
}

fn check_name(what: &str, name: &str) -> Result<(), TransportError> {
    if name.len() > MAX_NAME_LEN {
        return Err(TransportError::InvalidArgument(format!(
            "{what} is {} bytes long; AMQP allows {MAX_NAME_LEN}",
            name.len()
        )));
    }
    Ok(())
}

impl State {
    pub(crate) fn new(shared: Weak<Shared>, log: PublishLog) -> Self {
        let mut state = Self {
            shared,
            exchanges: HashMap::default(),
            queues: HashMap::default(),
            queue_names: HashMap::default(),
            consumers: HashMap::default(),
            connections: BTreeMap::new(),
            next_id: 1,
            in_flight: 0,
            available: true,
            fail_publishes: 0,
            next_expiry: None,
            log,
            published: VecDeque::new(),
            publish_seq: 0,
            pending_recoveries: Vec::new(),
            default_exchange: Arc::from(""),
            ttl_next: None,
            ttl_wake: false,
            shells: Shells::default(),
            wakes: Wakes::default(),
        };
        state.declare_builtin_exchanges();
        state
    }

    fn declare_builtin_exchanges(&mut self) {
        for (name, kind) in [
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
        ] {
            let name: Arc<str> = name.into();
            let mut exchange = Exchange::new(Arc::clone(&name), kind, true, false);
            exchange.builtin = true;
            self.exchanges.entry(name).or_insert(exchange);
        }
    }

    pub(crate) fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The queue with this name.
    fn queue_named(&self, name: &str) -> Option<(QueueId, &Queue)> {
        let id = *self.queue_names.get(name)?;
        self.queues.get(&id).map(|q| (id, q))
    }

    pub(crate) fn connection_mut(&mut self, id: ConnectionId) -> Option<&mut Connection> {
        self.connections.get_mut(&id)
    }

    /// Whether nothing is in flight: no delivery awaits settlement and no reconnection
    /// could proceed. (A ready message in a queue with a consumer able to take it is
    /// delivered at once, so it never outlives the operation that made it ready.)
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight == 0 && !self.reconnection_pending()
    }

    /// Whether some connection is reconnecting while the broker would accept it.
    pub(crate) fn reconnection_pending(&self) -> bool {
        self.available
            && self
                .connections
                .values()
                .any(|c| matches!(c.phase, Phase::Reconnecting { .. }))
    }

    /// Fails unless `conn` is open; asks for a recovery task if one is missing.
    pub(crate) fn check_usable(&mut self, conn: ConnectionId) -> Result<(), TransportError> {
        let Some(c) = self.connections.get_mut(&conn) else {
            return Err(TransportError::Closed);
        };
        match &c.phase {
            Phase::Open => Ok(()),
            Phase::Reconnecting { reason, .. } => {
                let error = TransportError::Disconnected(format!(
                    "connection lost ({reason}); reconnecting"
                ));
                if !c.recovering {
                    c.recovering = true;
                    self.pending_recoveries.push(conn);
                }
                Err(error)
            }
            Phase::Lost(reason) => Err(TransportError::Disconnected(format!(
                "connection lost ({reason})"
            ))),
        }
    }

    /// Asks for a recovery task for every reconnecting connection that has none (its
    /// drop happened where no runtime was at hand).
    pub(crate) fn request_stalled_recoveries(&mut self) {
        for (id, c) in &mut self.connections {
            if matches!(c.phase, Phase::Reconnecting { .. }) && !c.recovering {
                c.recovering = true;
                self.pending_recoveries.push(*id);
            }
        }
    }

    /// Remembers a declaration of `conn` for replay on reconnection.
    pub(crate) fn record(&mut self, conn: ConnectionId, declaration: Declaration) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.topology.record(declaration);
        }
    }
}
