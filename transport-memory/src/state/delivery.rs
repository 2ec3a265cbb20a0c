//! Consumers and delivery: round-robin under prefetch windows, settlement, cancel
//! and close.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use nameko_transport::{
    Acker, ConsumeOptions, Delivery, DeliveryInfo, SettleTag, Settlement, TransportError,
};
use tokio::time::Instant;

use super::{DeathReason, State, not_found_queue};
use crate::broker::Shared;
use crate::connection::Phase;
use crate::consumer::{ConsumerAcks, ConsumerState, InFlight, Item, MemoryConsumer};
use crate::ids::{ConnectionId, ConsumerId, QueueId};
use crate::mailbox;
use crate::queue::Queue;

impl State {
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
        let (tx, rx) = mailbox::channel();
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
                acks: Arc::new(ConsumerAcks {
                    shared: Weak::clone(&self.shared),
                    consumer: id,
                }),
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
    pub(super) fn check_can_attach(
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
    pub(super) fn attach(&mut self, id: ConsumerId, qid: QueueId) {
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
        let mut expired = Vec::new();
        let mut now = None;
        while !q.ready.is_empty() && !q.consumers.is_empty() {
            if let Some(at) = q.ready.front().and_then(|m| m.expires_at)
                && at <= *now.get_or_insert_with(Instant::now)
            {
                expired.extend(q.ready.pop_front());
                continue;
            }
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
            let Some(mut queued) = q.ready.pop_front() else {
                break;
            };
            let tag = c.next_tag;
            c.next_tag += 1;
            let info = DeliveryInfo::new(
                &queued.exchange,
                &queued.routing_key,
                queued.redelivered,
                tag,
                &c.tag,
            );
            let acker = Acker::tagged(Arc::clone(&c.acks) as Arc<dyn SettleTag>, tag);
            let message = q.spares.deliver(&mut queued.message, &mut self.shells);
            let delivery = Delivery::new(message, info, acker);
            let item = Item {
                epoch: c.epoch.load(Ordering::Acquire),
                item: Ok(delivery),
            };
            match tx.send(item) {
                Ok(None) => {}
                Ok(Some(waker)) => self.wakes.push(waker),
                Err(_) => {
                    // The stream is gone without closing: put the message back and stop
                    // delivering to it.
                    q.requeue_front(queued);
                    c.tx = None;
                    q.consumers.remove(slot);
                    q.next_consumer = 0;
                    continue;
                }
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
        let next_expiry = q.ready.front().and_then(|m| m.expires_at);
        for message in expired {
            self.dead_letter(qid, message, DeathReason::Expired);
        }
        if let Some(at) = next_expiry {
            self.schedule_expiry(at);
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
        // `None` for an ack; for a reject or nack, whether it asked for a requeue.
        let rejected = match how {
            Settlement::Ack => None,
            Settlement::Nack { requeue } | Settlement::Reject { requeue } => Some(requeue),
        };
        let qid = in_flight.queue;
        if let Some(q) = self.queues.get_mut(&qid) {
            q.unacked -= 1;
            match rejected {
                Some(true) => {
                    let mut message = in_flight.message;
                    message.redelivered = true;
                    q.requeue_front(message);
                }
                Some(false) if q.policy.is_some() => {
                    self.dead_letter(qid, in_flight.message, DeathReason::Rejected);
                }
                // Acked, or dropped for good: done with.
                _ => q.spares.give_back(in_flight.message.message),
            }
            self.dispatch(qid);
        }
        Ok(())
    }

    /// Takes a consumer off its queue and requeues its unsettled deliveries — in that
    /// order, so that they go to the other consumers and not back to it.
    pub(super) fn release(&mut self, id: ConsumerId) {
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
                q.requeue_front(message);
                if !touched.contains(&in_flight.queue) {
                    touched.push(in_flight.queue);
                }
            }
        }
        for qid in touched {
            self.dispatch(qid);
        }
    }

    /// Marks queue `name` down or up again; a queue going down ends its consumers with
    /// RabbitMQ's error. Whether the queue exists.
    pub(crate) fn set_queue_down(&mut self, name: &str, down: bool) -> bool {
        let Some(&qid) = self.queue_names.get(name) else {
            return false;
        };
        let Some(q) = self.queues.get_mut(&qid) else {
            return false;
        };
        q.down = down;
        if !down {
            self.dispatch(qid);
            return true;
        }
        tracing::debug!(queue = name, "queue down");
        let consumers = q.consumers.clone();
        for cid in consumers {
            if let Some(c) = self.consumers.get_mut(&cid) {
                c.end_with(crate::queue::queue_down(name));
            }
            self.detach(cid);
        }
        true
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
}
