//! `x-expires`: leases, checked lazily against tokio's clock.

use tokio::time::Instant;

use super::State;
use crate::ids::QueueId;
use crate::queue::Queue;

impl State {
    /// Deletes every queue whose `x-expires` ran out by `now`.
    pub(crate) fn expire_due(&mut self) {
        if self.ttl_next.is_some_and(|at| at <= Instant::now()) {
            self.expire_messages();
        }
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
    pub(super) fn touch(&mut self, id: QueueId, now: Instant) {
        if let Some(q) = self.queues.get_mut(&id) {
            q.last_used = now;
            if let Some(at) = q.expiry_deadline() {
                self.next_expiry = Some(self.next_expiry.map_or(at, |n| n.min(at)));
            }
        }
    }
}
