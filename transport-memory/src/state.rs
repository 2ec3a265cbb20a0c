//! The broker's state and every operation on it. All of it runs under the broker's lock,
//! synchronously: routing, delivery to consumers and requeueing happen inside the call
//! that caused them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use nameko_core::transport::{
    Acker, ConsumeOptions, Delivery, DeliveryInfo, ExchangeKind, ExchangeOptions, Message,
    PublishOptions, PublishOutcome, QueueDeclared, QueueOptions, Settlement, TransportError,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::broker::Shared;
use crate::connection::{Connection, Declared, Phase};
use crate::consumer::{ConsumerState, InFlight, Item, MemoryAcker, MemoryConsumer};
use crate::exchange::Exchange;
use crate::ids::{ConnectionId, ConsumerId, IdBuild, QueueId};
use crate::inspect::{PublishLog, Published};
use crate::queue::{Queue, QueueShape, QueuedMessage, parse_expires};

/// Longest name or routing key AMQP can carry (a short string).
const MAX_NAME_LEN: usize = 255;

/// Where a publish went.
struct Routed {
    exchange: Arc<str>,
    outcome: PublishOutcome,
    queues: usize,
}

/// Everything the broker knows.
#[derive(Debug)]
pub(crate) struct State {
    shared: Weak<Shared>,
    pub(crate) exchanges: HashMap<Arc<str>, Exchange>,
    pub(crate) queues: HashMap<QueueId, Queue, IdBuild>,
    pub(crate) queue_names: HashMap<Arc<str>, QueueId>,
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
            exchanges: HashMap::new(),
            queues: HashMap::default(),
            queue_names: HashMap::new(),
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
    pub(crate) fn record(&mut self, conn: ConnectionId, declared: Declared) {
        if let Some(c) = self.connections.get_mut(&conn) {
            c.record(declared);
        }
    }

    // ----- expiry -----------------------------------------------------------------------

    /// Deletes every queue whose `x-expires` ran out by `now`.
    pub(crate) fn expire_due(&mut self) {
        let Some(next) = self.next_expiry else {
            return;
        };
        let now = Instant::now();
        if next > now {
            return;
        }
        let due: Vec<QueueId> = self
            .queues
            .values()
            .filter(|q| q.expiry_deadline().is_some_and(|at| at <= now))
            .map(|q| q.id)
            .collect();
        for id in due {
            if let Some(q) = self.queues.get(&id) {
                tracing::debug!(queue = %q.name, "queue expired");
            }
            self.remove_queue(id);
        }
        self.next_expiry = self
            .queues
            .values()
            .filter_map(Queue::expiry_deadline)
            .min();
    }

    /// Starts (or renews) a queue's expiry lease.
    fn touch(&mut self, id: QueueId, now: Instant) {
        if let Some(q) = self.queues.get_mut(&id) {
            q.last_used = now;
            if let Some(at) = q.expiry_deadline() {
                self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
            }
        }
    }

    // ----- exchanges --------------------------------------------------------------------

    pub(crate) fn declare_exchange(
        &mut self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeOptions,
    ) -> Result<(), TransportError> {
        check_name("exchange name", name)?;
        if name.is_empty() {
            return Err(default_exchange_refused("declare"));
        }
        if let Some(x) = self.exchanges.get(name) {
            if options.passive {
                return Ok(());
            }
            let received = (kind, options.durable, options.auto_delete);
            let current = (x.kind, x.durable, x.auto_delete);
            if received != current {
                let (arg, got, now) = if kind == x.kind {
                    if options.durable == x.durable {
                        (
                            "auto_delete",
                            options.auto_delete.to_string(),
                            x.auto_delete.to_string(),
                        )
                    } else {
                        (
                            "durable",
                            options.durable.to_string(),
                            x.durable.to_string(),
                        )
                    }
                } else {
                    ("type", kind.to_string(), x.kind.to_string())
                };
                return Err(TransportError::PreconditionFailed(format!(
                    "inequivalent arg '{arg}' for exchange '{name}' in vhost '/': received \
                     '{got}' but current is '{now}'"
                )));
            }
            return Ok(());
        }
        if options.passive {
            return Err(not_found_exchange(name));
        }
        if name.starts_with("amq.") {
            return Err(TransportError::AccessRefused(format!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        tracing::debug!(exchange = name, %kind, durable = options.durable, "exchange declared");
        let name: Arc<str> = name.into();
        self.exchanges.insert(
            Arc::clone(&name),
            Exchange::new(name, kind, options.durable, options.auto_delete),
        );
        Ok(())
    }

    pub(crate) fn delete_exchange(&mut self, name: &str) -> Result<(), TransportError> {
        if name.is_empty() {
            return Err(default_exchange_refused("delete"));
        }
        match self.exchanges.get(name) {
            None => return Ok(()),
            Some(x) if x.builtin => {
                return Err(TransportError::AccessRefused(format!(
                    "deletion of system exchange '{name}' is not allowed"
                )));
            }
            Some(_) => {}
        }
        self.remove_exchange(name);
        Ok(())
    }

    fn remove_exchange(&mut self, name: &str) {
        let Some(exchange) = self.exchanges.remove(name) else {
            return;
        };
        tracing::debug!(exchange = name, "exchange deleted");
        for binding in &exchange.bindings {
            if let Some(q) = self.queues.get_mut(&binding.queue) {
                q.bindings.retain(|(x, _)| **x != *name);
            }
        }
    }

    // ----- queues -----------------------------------------------------------------------

    pub(crate) fn declare_queue(
        &mut self,
        conn: ConnectionId,
        name: &str,
        options: &QueueOptions,
    ) -> Result<QueueDeclared, TransportError> {
        self.declare_queue_as(conn, name, options, false)
    }

    /// Declares a queue; `replay` allows the reserved `amq.` prefix, for redeclaring a
    /// server-named queue on reconnection.
    fn declare_queue_as(
        &mut self,
        conn: ConnectionId,
        name: &str,
        options: &QueueOptions,
        replay: bool,
    ) -> Result<QueueDeclared, TransportError> {
        check_name("queue name", name)?;
        let now = Instant::now();
        if let Some((id, q)) = self.queue_named(name) {
            q.check_access(conn)?;
            if !options.passive {
                q.check_equivalent(&QueueShape {
                    durable: options.durable,
                    exclusive: options.exclusive,
                    auto_delete: options.auto_delete,
                    arguments: options.arguments.clone(),
                })?;
            }
            let declared = QueueDeclared::new(
                &*q.name,
                u32::try_from(q.ready.len()).unwrap_or(u32::MAX),
                u32::try_from(q.consumers.len()).unwrap_or(u32::MAX),
            );
            // Any declaration, passive too, renews an x-expires lease, as on RabbitMQ.
            self.touch(id, now);
            return Ok(declared);
        }
        if options.passive {
            return Err(not_found_queue(name));
        }
        if name.starts_with("amq.") && !replay {
            return Err(TransportError::AccessRefused(format!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        let name: Arc<str> = if name.is_empty() {
            let id = uuid::Uuid::new_v4().simple().to_string();
            format!("amq.gen-{}", &id[..22]).into()
        } else {
            name.into()
        };
        let expires = parse_expires(&name, &options.arguments)?;
        let id = QueueId(self.next_id());
        let shape = QueueShape {
            durable: options.durable,
            exclusive: options.exclusive,
            auto_delete: options.auto_delete,
            arguments: options.arguments.clone(),
        };
        let owner = options.exclusive.then_some(conn);
        tracing::debug!(queue = %name, durable = options.durable, exclusive = options.exclusive,
            auto_delete = options.auto_delete, "queue declared");
        self.queues.insert(
            id,
            Queue::new(id, Arc::clone(&name), shape, owner, expires, now),
        );
        self.queue_names.insert(Arc::clone(&name), id);
        self.touch(id, now);
        Ok(QueueDeclared::new(&*name, 0, 0))
    }

    pub(crate) fn bind_queue(
        &mut self,
        conn: ConnectionId,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        check_name("routing key", routing_key)?;
        if exchange.is_empty() {
            return Err(default_exchange_refused("bind"));
        }
        let Some((qid, q)) = self.queue_named(queue) else {
            return Err(not_found_queue(queue));
        };
        q.check_access(conn)?;
        let queue_name = Arc::clone(&q.name);
        let Some(x) = self.exchanges.get_mut(exchange) else {
            return Err(not_found_exchange(exchange));
        };
        let key: Arc<str> = routing_key.into();
        if x.bind(qid, queue_name, Arc::clone(&key)) {
            tracing::debug!(queue, exchange, routing_key, "queue bound");
            let exchange_name = Arc::clone(&x.name);
            if let Some(q) = self.queues.get_mut(&qid) {
                q.bindings.push((exchange_name, key));
            }
        }
        Ok(())
    }

    pub(crate) fn delete_queue(
        &mut self,
        conn: ConnectionId,
        name: &str,
    ) -> Result<u32, TransportError> {
        let Some((id, q)) = self.queue_named(name) else {
            return Ok(0);
        };
        q.check_access(conn)?;
        Ok(self.remove_queue(id))
    }

    /// Deletes a queue with its bindings, ending its consumers' streams. Returns how
    /// many messages were ready in it.
    pub(crate) fn remove_queue(&mut self, id: QueueId) -> u32 {
        let Some(queue) = self.queues.remove(&id) else {
            return 0;
        };
        tracing::debug!(queue = %queue.name, ready = queue.ready.len(), "queue deleted");
        self.queue_names.remove(&queue.name);
        let mut emptied = Vec::new();
        for (exchange, _) in &queue.bindings {
            if let Some(x) = self.exchanges.get_mut(exchange) {
                x.unbind_queue(id);
                if x.auto_delete && x.bindings.is_empty() {
                    emptied.push(Arc::clone(exchange));
                }
            }
        }
        for exchange in emptied {
            self.remove_exchange(&exchange);
        }
        for cid in &queue.consumers {
            if let Some(c) = self.consumers.get_mut(cid) {
                c.queue = None;
                c.end_with(TransportError::NotFound(format!(
                    "queue '{}' in vhost '/' was deleted",
                    queue.name
                )));
            }
        }
        u32::try_from(queue.ready.len()).unwrap_or(u32::MAX)
    }

    // ----- publishing -------------------------------------------------------------------

    pub(crate) fn publish(
        &mut self,
        conn: ConnectionId,
        exchange: &str,
        routing_key: &str,
        message: Message,
        options: PublishOptions,
    ) -> Result<PublishOutcome, TransportError> {
        self.check_usable(conn)?;
        let message = Arc::new(message);
        let routing_key: Arc<str> = routing_key.into();
        let result = self.route_and_enqueue(conn, exchange, &routing_key, &message, options);
        if self.log == PublishLog::Off {
            return result.map(|routed| routed.outcome);
        }
        let (exchange, outcome, queues) = match result {
            Ok(Routed {
                exchange,
                outcome,
                queues,
            }) => (exchange, Ok(outcome), queues),
            Err(error) => (Arc::from(exchange), Err(error), 0),
        };
        self.publish_seq += 1;
        self.log_publish(Published {
            sequence: self.publish_seq,
            connection: conn,
            exchange,
            routing_key,
            message,
            outcome: outcome.clone(),
            queues,
        });
        outcome
    }

    fn route_and_enqueue(
        &mut self,
        conn: ConnectionId,
        exchange: &str,
        routing_key: &Arc<str>,
        message: &Arc<Message>,
        options: PublishOptions,
    ) -> Result<Routed, TransportError> {
        if let Some(c) = self.connections.get_mut(&conn)
            && c.fail_publishes > 0
        {
            c.fail_publishes -= 1;
            return Err(TransportError::Injected(
                "publish failed by injection on this connection".to_owned(),
            ));
        }
        if self.fail_publishes > 0 {
            self.fail_publishes -= 1;
            return Err(TransportError::Injected(
                "publish failed by injection".to_owned(),
            ));
        }
        check_name("routing key", routing_key)?;
        let (exchange_name, targets): (Arc<str>, Arc<[QueueId]>) = if exchange.is_empty() {
            let targets = self
                .queue_names
                .get(&**routing_key)
                .map_or_else(|| Arc::from([]), |id| Arc::from([*id]));
            (Arc::clone(&self.default_exchange), targets)
        } else {
            let Some(x) = self.exchanges.get_mut(exchange) else {
                return Err(not_found_exchange(exchange));
            };
            (Arc::clone(&x.name), x.route(routing_key))
        };
        let outcome = if targets.is_empty() && options.mandatory {
            tracing::debug!(
                exchange,
                routing_key = &**routing_key,
                "mandatory message returned: no route"
            );
            PublishOutcome::Returned {
                reply_code: 312,
                reply_text: "NO_ROUTE".to_owned(),
            }
        } else if options.confirm {
            PublishOutcome::Confirmed
        } else {
            PublishOutcome::Sent
        };
        if !targets.is_empty() {
            let queued = QueuedMessage {
                message: Arc::clone(message),
                exchange: Arc::clone(&exchange_name),
                routing_key: Arc::clone(routing_key),
                redelivered: false,
            };
            for &id in targets.iter() {
                if let Some(q) = self.queues.get_mut(&id) {
                    q.ready.push_back(queued.clone());
                    self.dispatch(id);
                }
            }
        }
        Ok(Routed {
            exchange: exchange_name,
            outcome,
            queues: targets.len(),
        })
    }

    fn log_publish(&mut self, record: Published) {
        if let PublishLog::Capped(cap) = self.log {
            if cap == 0 {
                return;
            }
            while self.published.len() >= cap {
                self.published.pop_front();
            }
        }
        self.published.push_back(record);
    }

    // ----- consuming and delivery -------------------------------------------------------

    pub(crate) fn consume(
        &mut self,
        shared: &Arc<Shared>,
        conn: ConnectionId,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<MemoryConsumer, TransportError> {
        let Some((qid, q)) = self.queue_named(queue) else {
            return Err(not_found_queue(queue));
        };
        let queue_name = Arc::clone(&q.name);
        self.check_can_attach(conn, qid, options.exclusive)?;
        let Some(connection) = self.connections.get_mut(&conn) else {
            return Err(TransportError::Closed);
        };
        let tag: Arc<str> = match &options.consumer_tag {
            Some(tag) => {
                let in_use = connection
                    .consumers
                    .iter()
                    .any(|c| self.consumers.get(c).is_some_and(|c| *c.tag == **tag));
                if in_use {
                    return Err(TransportError::InvalidArgument(format!(
                        "attempt to reuse consumer tag '{tag}'"
                    )));
                }
                tag.as_str().into()
            }
            None => {
                let n = connection.next_consumer_tag;
                connection.next_consumer_tag += 1;
                format!("amq.ctag-{conn}-{n}").into()
            }
        };
        let id = ConsumerId(self.next_id());
        let (tx, rx) = mpsc::unbounded_channel();
        let epoch = Arc::new(AtomicU64::new(0));
        tracing::debug!(queue, tag = %tag, prefetch = options.prefetch, "consumer started");
        self.consumers.insert(
            id,
            ConsumerState {
                tag: Arc::clone(&tag),
                queue_name,
                queue: None,
                connection: conn,
                options,
                unacked: BTreeMap::new(),
                next_tag: 1,
                epoch: Arc::clone(&epoch),
                tx: Some(tx),
                cancelled: false,
            },
        );
        if let Some(c) = self.connections.get_mut(&conn) {
            c.consumers.push(id);
        }
        self.attach(id, qid);
        Ok(MemoryConsumer {
            shared: Arc::clone(shared),
            id,
            tag: tag.to_string(),
            rx,
            epoch,
            closed: false,
        })
    }

    /// Whether `conn` may start a consumer (exclusive or not) on queue `qid`.
    fn check_can_attach(
        &self,
        conn: ConnectionId,
        qid: QueueId,
        exclusive: bool,
    ) -> Result<(), TransportError> {
        let Some(q) = self.queues.get(&qid) else {
            return Err(TransportError::NotFound(format!(
                "queue {qid:?} no longer exists"
            )));
        };
        q.check_access(conn)?;
        if q.exclusive_consumer || (exclusive && !q.consumers.is_empty()) {
            return Err(TransportError::ResourceLocked(format!(
                "queue '{}' in vhost '/' in exclusive use",
                q.name
            )));
        }
        Ok(())
    }

    /// Puts a consumer on a queue and delivers what it can take.
    fn attach(&mut self, id: ConsumerId, qid: QueueId) {
        let (Some(c), Some(q)) = (self.consumers.get_mut(&id), self.queues.get_mut(&qid)) else {
            return;
        };
        c.queue = Some(qid);
        q.consumers.push(id);
        q.has_had_consumer = true;
        q.exclusive_consumer |= c.options.exclusive;
        if q.expires.is_some() && self.next_expiry.is_some() {
            // This queue can no longer expire; when no other can, the hot path stops
            // reading the clock.
            self.next_expiry = self
                .queues
                .values()
                .filter_map(Queue::expiry_deadline)
                .min();
        }
        self.dispatch(qid);
    }

    /// Takes a consumer off its queue: the queue's expiry lease restarts when it was the
    /// last one, and an auto-delete queue that lost its last consumer is deleted.
    fn detach(&mut self, id: ConsumerId) {
        let Some(c) = self.consumers.get_mut(&id) else {
            return;
        };
        let Some(qid) = c.queue.take() else {
            return;
        };
        let Some(q) = self.queues.get_mut(&qid) else {
            return;
        };
        if let Some(pos) = q.consumers.iter().position(|&x| x == id) {
            q.consumers.remove(pos);
            if q.next_consumer > pos {
                q.next_consumer -= 1;
            }
        }
        if q.consumers.is_empty() {
            q.exclusive_consumer = false;
            q.next_consumer = 0;
            if q.shape.auto_delete && q.has_had_consumer {
                tracing::debug!(queue = %q.name, "auto-delete queue lost its last consumer");
                self.remove_queue(qid);
                return;
            }
            self.touch(qid, Instant::now());
        } else if q.next_consumer >= q.consumers.len() {
            q.next_consumer = 0;
        }
    }

    /// Delivers ready messages of queue `qid` to its consumers, round-robin, as far as
    /// their prefetch windows allow.
    pub(crate) fn dispatch(&mut self, qid: QueueId) {
        let Some(q) = self.queues.get_mut(&qid) else {
            return;
        };
        while !q.ready.is_empty() && !q.consumers.is_empty() {
            let n = q.consumers.len();
            let Some(slot) = (0..n).map(|i| (q.next_consumer + i) % n).find(|&i| {
                self.consumers
                    .get(&q.consumers[i])
                    .is_some_and(ConsumerState::has_capacity)
            }) else {
                break;
            };
            let cid = q.consumers[slot];
            q.next_consumer = (slot + 1) % n;
            let Some(c) = self.consumers.get_mut(&cid) else {
                break;
            };
            let Some(tx) = &c.tx else {
                // A consumer whose stream ended cannot take more; it is detached below.
                q.consumers.remove(slot);
                q.next_consumer = 0;
                continue;
            };
            let Some(queued) = q.ready.pop_front() else {
                break;
            };
            let tag = c.next_tag;
            c.next_tag += 1;
            let info = DeliveryInfo::new(
                &*queued.exchange,
                &*queued.routing_key,
                queued.redelivered,
                tag,
                &*c.tag,
            );
            let acker = Acker::new(Box::new(MemoryAcker {
                shared: Weak::clone(&self.shared),
                consumer: cid,
                tag,
            }));
            let delivery = Delivery::new((*queued.message).clone(), info, acker);
            let item = Item {
                epoch: c.epoch.load(Ordering::Acquire),
                item: Ok(delivery),
            };
            if tx.send(item).is_err() {
                // The stream is gone without closing: put the message back and stop
                // delivering to it.
                q.ready.push_front(queued);
                c.tx = None;
                q.consumers.remove(slot);
                q.next_consumer = 0;
                continue;
            }
            c.unacked.insert(
                tag,
                InFlight {
                    queue: qid,
                    message: queued,
                },
            );
            q.unacked += 1;
            self.in_flight += 1;
        }
    }

    pub(crate) fn settle(
        &mut self,
        consumer: ConsumerId,
        tag: u64,
        how: Settlement,
    ) -> Result<(), TransportError> {
        let Some(c) = self.consumers.get_mut(&consumer) else {
            return Err(TransportError::Disconnected(format!(
                "delivery {tag} cannot be settled: its consumer is closed"
            )));
        };
        let Some(in_flight) = c.unacked.remove(&tag) else {
            return Err(TransportError::Disconnected(format!(
                "delivery {tag} of consumer '{}' cannot be settled: it was already settled or \
                 its connection was lost",
                c.tag
            )));
        };
        self.in_flight -= 1;
        let requeue = match how {
            Settlement::Ack => false,
            Settlement::Nack { requeue } | Settlement::Reject { requeue } => requeue,
        };
        let qid = in_flight.queue;
        if let Some(q) = self.queues.get_mut(&qid) {
            q.unacked -= 1;
            if requeue {
                let mut message = in_flight.message;
                message.redelivered = true;
                q.ready.push_front(message);
            }
            self.dispatch(qid);
        }
        Ok(())
    }

    /// Takes a consumer off its queue and requeues its unsettled deliveries — in that
    /// order, so that they go to the other consumers and not back to it.
    fn release(&mut self, id: ConsumerId) {
        self.detach(id);
        self.requeue_unacked(id);
    }

    /// Requeues every unsettled delivery of a consumer at the head of its queue, in the
    /// order they were delivered, marked redelivered.
    fn requeue_unacked(&mut self, id: ConsumerId) {
        let Some(c) = self.consumers.get_mut(&id) else {
            return;
        };
        let unacked = std::mem::take(&mut c.unacked);
        let mut touched = Vec::new();
        for (_, in_flight) in unacked.into_iter().rev() {
            self.in_flight -= 1;
            if let Some(q) = self.queues.get_mut(&in_flight.queue) {
                q.unacked -= 1;
                let mut message = in_flight.message;
                message.redelivered = true;
                q.ready.push_front(message);
                if !touched.contains(&in_flight.queue) {
                    touched.push(in_flight.queue);
                }
            }
        }
        for qid in touched {
            self.dispatch(qid);
        }
    }

    pub(crate) fn cancel_consumer(&mut self, id: ConsumerId) -> Result<(), TransportError> {
        let Some(c) = self.consumers.get_mut(&id) else {
            return Ok(());
        };
        c.cancelled = true;
        // The stream yields what it already has, then ends.
        c.tx = None;
        let conn = c.connection;
        tracing::debug!(tag = %c.tag, "consumer cancelled");
        self.detach(id);
        match self.connections.get(&conn).map(|c| &c.phase) {
            Some(Phase::Open) | None => Ok(()),
            Some(Phase::Reconnecting { reason, .. } | Phase::Lost(reason)) => Err(
                TransportError::Disconnected(format!("connection lost ({reason})")),
            ),
        }
    }

    pub(crate) fn close_consumer(&mut self, id: ConsumerId) -> Result<(), TransportError> {
        if !self.consumers.contains_key(&id) {
            return Ok(());
        }
        self.release(id);
        if let Some(c) = self.consumers.remove(&id) {
            tracing::debug!(tag = %c.tag, "consumer closed");
            if let Some(conn) = self.connections.get_mut(&c.connection) {
                conn.consumers.retain(|&x| x != id);
            }
        }
        Ok(())
    }

    // ----- connections ------------------------------------------------------------------

    /// Closes a connection for good: consumers end (unsettled deliveries requeued),
    /// exclusive queues go, and later calls fail with `Closed`.
    pub(crate) fn close_connection(&mut self, conn: ConnectionId) {
        let Some(connection) = self.connections.remove(&conn) else {
            return;
        };
        tracing::debug!(connection = %conn, "connection closed");
        for id in &connection.consumers {
            self.release(*id);
            // Dropping the sender ends the stream after what it buffered, which the
            // epoch bump turns into nothing: the deliveries were requeued.
            if let Some(mut c) = self.consumers.remove(id) {
                c.epoch.fetch_add(1, Ordering::AcqRel);
                c.tx = None;
            }
        }
        self.remove_exclusive_queues(conn);
        connection
            .status
            .send_replace(nameko_core::transport::TransportStatus::Closed);
    }

    fn remove_exclusive_queues(&mut self, conn: ConnectionId) {
        let owned: Vec<QueueId> = self
            .queues
            .values()
            .filter(|q| q.owner == Some(conn))
            .map(|q| q.id)
            .collect();
        for id in owned {
            self.remove_queue(id);
        }
    }

    /// The broker drops a connection: its consumers stop (their unsettled deliveries go
    /// back to their queues) and its exclusive queues are deleted. A recovering
    /// connection starts reconnecting; any other is lost for good.
    pub(crate) fn drop_connection(&mut self, conn: ConnectionId, reason: &str) -> bool {
        let Some(connection) = self.connections.get(&conn) else {
            return false;
        };
        if connection.phase != Phase::Open {
            return false;
        }
        tracing::debug!(connection = %conn, reason, "connection dropped by the broker");
        let recover = connection.recover;
        let consumers = connection.consumers.clone();
        for id in &consumers {
            self.release(*id);
            if let Some(c) = self.consumers.get_mut(id) {
                c.epoch.fetch_add(1, Ordering::AcqRel);
                if !recover {
                    c.end_with(TransportError::Disconnected(format!(
                        "connection lost ({reason})"
                    )));
                }
            }
        }
        if !recover {
            for id in &consumers {
                self.consumers.remove(id);
            }
        }
        self.remove_exclusive_queues(conn);
        if let Some(c) = self.connections.get_mut(&conn) {
            if recover {
                c.set_phase(Phase::Reconnecting {
                    attempt: 1,
                    reason: reason.to_owned(),
                });
                if !c.recovering {
                    c.recovering = true;
                    self.pending_recoveries.push(conn);
                }
            } else {
                c.consumers.clear();
                c.set_phase(Phase::Lost(reason.to_owned()));
            }
        }
        true
    }

    /// Reconnects `conn`: replays its declarations in order, resumes its consumers with
    /// their original options, and marks it connected.
    pub(crate) fn recover(&mut self, conn: ConnectionId) {
        let Some(connection) = self.connections.get(&conn) else {
            return;
        };
        let topology = connection.topology.clone();
        let consumers = connection.consumers.clone();
        for declared in topology {
            let result = match &declared {
                Declared::Exchange {
                    name,
                    kind,
                    options,
                } => self.declare_exchange(name, *kind, *options),
                Declared::Queue { name, options } => {
                    self.declare_queue_as(conn, name, options, true).map(drop)
                }
                Declared::Binding {
                    queue,
                    exchange,
                    key,
                } => self.bind_queue(conn, queue, exchange, key),
            };
            if let Err(error) = result {
                tracing::debug!(connection = %conn, ?declared, %error,
                    "redeclaration failed during recovery");
            }
        }
        let mut ended = Vec::new();
        for id in consumers {
            let Some(c) = self.consumers.get(&id) else {
                continue;
            };
            if c.cancelled || c.tx.is_none() || c.queue.is_some() {
                continue;
            }
            let exclusive = c.options.exclusive;
            let found = self.queue_names.get(&*c.queue_name).copied();
            let attach = found
                .ok_or_else(|| not_found_queue(&c.queue_name))
                .and_then(|qid| self.check_can_attach(conn, qid, exclusive).map(|()| qid));
            match attach {
                Ok(qid) => self.attach(id, qid),
                Err(error) => {
                    tracing::debug!(connection = %conn, %error, "consumer not resumed");
                    if let Some(c) = self.consumers.get_mut(&id) {
                        c.end_with(error);
                    }
                    ended.push(id);
                }
            }
        }
        if let Some(c) = self.connections.get_mut(&conn) {
            c.consumers.retain(|id| !ended.contains(id));
            c.recovering = false;
            c.set_phase(Phase::Open);
        }
        for id in ended {
            self.consumers.remove(&id);
        }
        tracing::debug!(connection = %conn, "connection recovered");
    }

    /// A broker restart: every connection is dropped; non-durable exchanges and queues
    /// and transient messages are lost.
    pub(crate) fn restart(&mut self) {
        let open: Vec<ConnectionId> = self.connections.keys().copied().collect();
        for conn in open {
            self.drop_connection(conn, "broker restarted");
        }
        let transient_queues: Vec<QueueId> = self
            .queues
            .values()
            .filter(|q| !q.shape.durable)
            .map(|q| q.id)
            .collect();
        for id in transient_queues {
            self.remove_queue(id);
        }
        let transient_exchanges: Vec<Arc<str>> = self
            .exchanges
            .values()
            .filter(|x| !x.durable)
            .map(|x| Arc::clone(&x.name))
            .collect();
        for name in transient_exchanges {
            self.remove_exchange(&name);
        }
        let now = Instant::now();
        for q in self.queues.values_mut() {
            q.ready.retain(QueuedMessage::is_persistent);
            q.last_used = now;
        }
        self.next_expiry = self
            .queues
            .values()
            .filter_map(Queue::expiry_deadline)
            .min();
        tracing::debug!("broker restarted");
    }
}
