//! Waiting until nothing is in flight.

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::broker::MemoryBroker;
use crate::connection::Phase;
use crate::ids::ConnectionId;
use crate::inspect::QueueInfo;
use crate::state::State;

/// [`MemoryBroker::run_until_idle`] gave up: something was still in flight.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub struct NotIdle {
    /// How long it waited.
    pub waited: Duration,
    /// Queues with deliveries not yet settled, or ready messages a consumer could take.
    pub busy_queues: Vec<QueueInfo>,
    /// Connections still reconnecting to an available broker.
    pub reconnecting: Vec<ConnectionId>,
}

impl fmt::Display for NotIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "broker not idle after {:?}:", self.waited)?;
        for q in &self.busy_queues {
            write!(
                f,
                " queue '{}' (ready {}, unacked {}, consumers {});",
                q.name, q.ready, q.unacked, q.consumers
            )?;
        }
        for c in &self.reconnecting {
            write!(f, " {c} reconnecting;")?;
        }
        Ok(())
    }
}

impl MemoryBroker {
    /// Whether nothing is in flight; see [`run_until_idle`](Self::run_until_idle).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.shared.with(|state| state.is_idle())
    }

    /// Waits until nothing is in flight, for at most the broker's idle timeout (5 seconds
    /// unless [configured](crate::MemoryBrokerBuilder::idle_timeout)).
    ///
    /// Idle means:
    ///
    /// - no delivery has been handed to a consumer and not yet settled (a worker still
    ///   processing a message, or a message sitting unread in a consumer's stream, counts
    ///   as in flight), and
    /// - no connection is reconnecting while the broker is available.
    ///
    /// Messages ready in a queue that has no consumer, or whose consumers' prefetch
    /// windows are full, do not count by themselves; in the second case the unsettled
    /// deliveries filling those windows do. A ready message and a consumer with room
    /// never coexist: delivery happens inside the call that makes it possible. Tasks that
    /// have not yet published are invisible to the broker.
    ///
    /// # Errors
    ///
    /// [`NotIdle`], listing the busy queues and reconnecting connections, if the bound
    /// passes first.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use futures_util::StreamExt;
    /// use nameko_transport::{
    ///     ConsumeOptions, Message, Properties, PublishOptions, QueueOptions, Transport,
    /// };
    /// use nameko_memory::MemoryBroker;
    ///
    /// let broker = MemoryBroker::new();
    /// let conn = broker.connect();
    /// conn.declare_queue("work", QueueOptions::default()).await?;
    /// let mut consumer = conn.consume("work", ConsumeOptions::default()).await?;
    /// tokio::spawn(async move {
    ///     while let Some(Ok(delivery)) = consumer.next().await {
    ///         delivery.ack().await.ok();
    ///     }
    /// });
    /// conn.publish("", "work", Message::new("job", Properties::json()), PublishOptions::default())
    ///     .await?;
    /// assert!(!broker.is_idle()); // delivered, not yet acked
    /// broker.run_until_idle().await.expect("the worker acks");
    /// # Ok::<(), nameko_transport::TransportError>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_until_idle(&self) -> Result<(), NotIdle> {
        self.run_until_idle_within(self.shared.idle_timeout).await
    }

    /// [`run_until_idle`](Self::run_until_idle) with an explicit bound.
    ///
    /// # Errors
    ///
    /// [`NotIdle`] if `timeout` passes first.
    pub async fn run_until_idle_within(&self, timeout: Duration) -> Result<(), NotIdle> {
        let shared = &self.shared;
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        shared.idle_waiters.fetch_add(1, Ordering::AcqRel);
        let _waiting = WaiterGuard(self);
        loop {
            let notified = shared.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let idle = shared.with(|state| {
                state.request_stalled_recoveries();
                state.is_idle()
            });
            if idle {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(shared.with(|state| not_idle(state, started.elapsed())));
            }
        }
    }
}

/// Keeps the count of idle waiters right, however the wait ends.
struct WaiterGuard<'a>(&'a MemoryBroker);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.shared.idle_waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

fn not_idle(state: &State, waited: Duration) -> NotIdle {
    let mut busy_queues: Vec<QueueInfo> = state
        .queues
        .values()
        .filter(|q| q.unacked > 0 || (!q.ready.is_empty() && !q.consumers.is_empty()))
        .map(QueueInfo::of)
        .collect();
    busy_queues.sort_by(|a, b| a.name.cmp(&b.name));
    let reconnecting = if state.available {
        state
            .connections
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Reconnecting { .. }))
            .map(|(id, _)| *id)
            .collect()
    } else {
        Vec::new()
    };
    NotIdle {
        waited,
        busy_queues,
        reconnecting,
    }
}
