//! Fault injection: dropped connections, failing publishes, restarts, an unavailable
//! broker.

use crate::broker::MemoryBroker;
use crate::ids::ConnectionId;

impl MemoryBroker {
    /// Drops a connection from the broker side, as a network failure or a broker
    /// closing it would: its unsettled deliveries go back to their queues (marked
    /// redelivered) and its exclusive queues are deleted. A recovering connection goes
    /// [`Reconnecting`](nameko_transport::TransportStatus::Reconnecting) and
    /// reconnects on its own; any other is lost, its consumers' streams ending with
    /// [`Disconnected`](nameko_transport::TransportError::Disconnected).
    ///
    /// Returns whether the connection was open.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nameko_transport::{Transport, TransportStatus};
    /// use nameko_memory::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new();
    /// let conn = broker.connect();
    /// let mut status = conn.status();
    /// assert!(broker.drop_connection(conn.id()));
    /// assert!(matches!(*status.borrow_and_update(), TransportStatus::Reconnecting { .. }));
    /// status.changed().await.unwrap();
    /// assert_eq!(*status.borrow(), TransportStatus::Connected);
    /// # });
    /// ```
    pub fn drop_connection(&self, id: ConnectionId) -> bool {
        self.shared
            .with(|state| state.drop_connection(id, "connection closed by the broker"))
    }

    /// Drops every open connection from the broker side; see
    /// [`drop_connection`](Self::drop_connection).
    pub fn drop_all_connections(&self) {
        self.shared.with(|state| {
            let ids: Vec<ConnectionId> = state.connections.keys().copied().collect();
            for id in ids {
                state.drop_connection(id, "connection closed by the broker");
            }
        });
    }

    /// Makes the next publish, on any connection, fail with
    /// [`TransportError::Injected`](nameko_transport::TransportError::Injected).
    pub fn fail_next_publish(&self) {
        self.fail_next_publishes(1);
    }

    /// Makes the next `count` publishes, on any connection, fail with
    /// [`TransportError::Injected`](nameko_transport::TransportError::Injected).
    pub fn fail_next_publishes(&self, count: u32) {
        self.shared.with(|state| {
            state.fail_publishes = state.fail_publishes.saturating_add(count);
        });
    }

    /// Restarts the broker: every connection is dropped (recovering ones reconnect),
    /// non-durable exchanges and queues are lost, and durable queues keep only their
    /// persistent messages — those that had been delivered now marked redelivered.
    /// Bindings survive where both the exchange and the queue do.
    pub fn restart(&self) {
        self.shared.with(|state| state.restart());
    }

    /// Makes queue `name` unavailable (`down`), or available again, as a classic queue is
    /// while the RabbitMQ cluster node it lives on is down: its consumers end with
    /// `NotFound` ("home node of durable queue ... is down or inaccessible", RabbitMQ's
    /// 404), declaring, binding, consuming or deleting it fails with that error (a
    /// connection recovering meanwhile cannot re-create its consumers), and messages
    /// routed to it are dropped. Back up, it has the messages it had.
    ///
    /// Returns whether the queue exists.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use nameko_transport::{ConsumeOptions, QueueOptions, Transport, TransportError};
    /// use nameko_memory::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new();
    /// let conn = broker.connect();
    /// conn.declare_queue("replies", QueueOptions::durable()).await?;
    /// assert!(broker.set_queue_down("replies", true));
    /// let refused = conn.consume("replies", ConsumeOptions::default()).await;
    /// assert!(matches!(refused, Err(TransportError::NotFound(m)) if m.contains("is down")));
    /// broker.set_queue_down("replies", false);
    /// conn.consume("replies", ConsumeOptions::default()).await?;
    /// # Ok::<(), TransportError>(())
    /// # }).unwrap();
    /// ```
    pub fn set_queue_down(&self, name: &str, down: bool) -> bool {
        self.shared.with(|state| state.set_queue_down(name, down))
    }

    /// Marks the broker up or down. While down, reconnection attempts fail and back off
    /// (100 ms doubling to 2 s, on tokio time) and new connections start out
    /// reconnecting. Marking it down does not drop existing connections; combine with
    /// [`drop_all_connections`](Self::drop_all_connections) or
    /// [`restart`](Self::restart) for an outage.
    pub fn set_available(&self, available: bool) {
        self.shared.with(|state| state.available = available);
    }

    /// Whether the broker accepts connections.
    #[must_use]
    pub fn is_available(&self) -> bool {
        self.shared.with(|state| state.available)
    }
}
