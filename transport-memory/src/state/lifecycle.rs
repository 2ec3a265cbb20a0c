//! Connections: closing, broker-side drops, recovery, and broker restarts.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use nameko_transport::topology::Declaration;
use nameko_transport::{TransportError, TransportStatus};
use tokio::time::Instant;

use super::{State, not_found_queue};
use crate::connection::Phase;
use crate::ids::{ConnectionId, QueueId};
use crate::queue::{Queue, QueuedMessage};

impl State {
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
        connection.status.send_replace(TransportStatus::Closed);
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
        for declaration in topology.iter() {
            let result = match declaration {
                Declaration::Exchange {
                    name,
                    kind,
                    options,
                } => self.declare_exchange(name, *kind, *options),
                Declaration::Queue { name, options } => {
                    self.declare_queue_as(conn, name, options, true).map(drop)
                }
                Declaration::Binding {
                    queue,
                    exchange,
                    routing_key,
                    arguments,
                } => self.bind_queue_with(conn, queue, exchange, routing_key, arguments.clone()),
                Declaration::ExchangeBinding {
                    destination,
                    source,
                    routing_key,
                } => self.bind_exchange(destination, source, routing_key),
            };
            if let Err(error) = result {
                tracing::debug!(connection = %conn, ?declaration, %error,
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
