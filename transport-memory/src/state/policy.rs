//! Delivery policies: message TTL, max length with overflow, priority, and
//! dead-lettering with RabbitMQ's `x-death` header.
//!
//! As on RabbitMQ's classic queues, a message expires when it is at the head of its
//! queue: a broker timer (see `crate::ttl`) wakes at the earliest head's deadline, and
//! delivery never hands out a message past its deadline.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nameko_transport::{FieldTable, FieldValue};
use tokio::time::Instant;

use super::State;
use crate::ids::QueueId;
use crate::policy::Overflow;
use crate::queue::QueuedMessage;

/// Why a message was dead-lettered, as `x-death` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeathReason {
    Expired,
    Rejected,
    MaxLen,
}

impl DeathReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Rejected => "rejected",
            Self::MaxLen => "maxlen",
        }
    }
}

impl State {
    /// Puts a routed message into a queue that has delivery policies or a message with
    /// an expiration. Returns false when the queue refused it (`reject-publish`).
    pub(super) fn enqueue(
        &mut self,
        qid: QueueId,
        mut queued: QueuedMessage,
        message_ttl: Option<Duration>,
    ) -> bool {
        let now = Instant::now();
        let Some(q) = self.queues.get_mut(&qid) else {
            return true;
        };
        let mut dropped = Vec::new();
        let mut accepted = true;
        let mut refused = false;
        let ttl = match (message_ttl, q.policy.as_ref().and_then(|p| p.message_ttl)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        queued.expires_at = ttl.map(|ttl| now + ttl);
        if let Some(policy) = q.policy.as_deref() {
            queued.priority = policy.priority_of(queued.message.properties.priority);
            if let Some(max) = policy.max_length
                && q.ready.len() >= max
            {
                match policy.overflow {
                    Overflow::DropHead => {
                        while q.ready.len() >= max.max(1) {
                            match q.ready.pop_front() {
                                Some(head) => dropped.push(head),
                                None => break,
                            }
                        }
                        if max == 0 {
                            dropped.push(queued.clone());
                            accepted = false;
                        }
                    }
                    Overflow::RejectPublish => {
                        accepted = false;
                        refused = true;
                    }
                    Overflow::RejectPublishDlx => {
                        dropped.push(queued.clone());
                        accepted = false;
                        refused = true;
                    }
                }
            }
        }
        if accepted {
            let expires_at = queued.expires_at;
            q.push_ready(queued);
            if let Some(at) = expires_at {
                self.schedule_expiry(at);
            }
        }
        for message in dropped {
            self.dead_letter(qid, message, DeathReason::MaxLen);
        }
        self.dispatch(qid);
        !refused
    }

    /// Asks the broker's timer to wake by `at`.
    pub(super) fn schedule_expiry(&mut self, at: Instant) {
        if self.ttl_next.is_none_or(|next| at < next) {
            self.ttl_next = Some(at);
            self.ttl_wake = true;
        }
    }

    /// Dead-letters every queue head whose time has come, and returns when the next one
    /// is due.
    pub(crate) fn expire_messages(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let mut expired = Vec::new();
        for (id, q) in &mut self.queues {
            while q
                .ready
                .front()
                .and_then(|m| m.expires_at)
                .is_some_and(|at| at <= now)
            {
                if let Some(m) = q.ready.pop_front() {
                    expired.push((*id, m));
                }
            }
        }
        self.ttl_next = None;
        for (qid, message) in expired {
            tracing::debug!(queue = ?qid, "message expired");
            self.dead_letter(qid, message, DeathReason::Expired);
        }
        let next = self
            .queues
            .values()
            .filter_map(|q| q.ready.front().and_then(|m| m.expires_at))
            .min();
        self.ttl_next = match (self.ttl_next, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.ttl_next
    }

    /// Moves a message out of queue `from` for `reason`: to the queue's dead-letter
    /// exchange with `x-death` updated, or nowhere when it has none.
    pub(super) fn dead_letter(
        &mut self,
        from: QueueId,
        queued: QueuedMessage,
        reason: DeathReason,
    ) {
        let Some(q) = self.queues.get(&from) else {
            return;
        };
        let Some(dlx) = q
            .policy
            .as_ref()
            .and_then(|p| p.dead_letter_exchange.clone())
        else {
            tracing::debug!(queue = %q.name, reason = reason.as_str(), "message dropped");
            return;
        };
        let queue_name = Arc::clone(&q.name);
        let routing_key = q
            .policy
            .as_ref()
            .and_then(|p| p.dead_letter_routing_key.clone())
            .unwrap_or_else(|| Arc::clone(&queued.routing_key));
        let mut message = (*queued.message).clone();
        let original_expiration = message.properties.expiration.take();
        record_death(
            &mut message.properties.headers,
            &queue_name,
            reason,
            &queued.exchange,
            &queued.routing_key,
            original_expiration,
        );
        let targets = match self.targets(&dlx, &routing_key, &message.properties.headers) {
            Ok((_, targets, _)) => targets,
            Err(error) => {
                tracing::debug!(queue = %queue_name, %error, "dead-lettered message dropped");
                return;
            }
        };
        let message = Arc::new(message);
        for &target in targets.iter() {
            let Some(t) = self.queues.get(&target) else {
                continue;
            };
            if reason != DeathReason::Rejected && is_cycle(&t.name, &message.properties.headers) {
                tracing::debug!(queue = %t.name, "dead-letter cycle: message dropped");
                continue;
            }
            let entry = QueuedMessage {
                message: Arc::clone(&message),
                exchange: Arc::clone(&dlx),
                routing_key: Arc::clone(&routing_key),
                redelivered: false,
                expires_at: None,
                priority: 0,
            };
            self.enqueue(target, entry, None);
        }
    }
}

/// Records a death in the `x-death` header as RabbitMQ does: the entry of the same
/// queue and reason counts one more and moves to the front, or a new entry is added
/// at the front; `x-first-death-*` keep the first.
fn record_death(
    headers: &mut FieldTable,
    queue: &str,
    reason: DeathReason,
    exchange: &str,
    routing_key: &str,
    original_expiration: Option<String>,
) {
    let reason = reason.as_str();
    let mut deaths = match headers.remove("x-death") {
        Some(FieldValue::Array(deaths)) => deaths,
        _ => Vec::new(),
    };
    let same = deaths.iter().position(|d| {
        d.as_table().is_some_and(|t| {
            t.get("queue").and_then(FieldValue::as_str) == Some(queue)
                && t.get("reason").and_then(FieldValue::as_str) == Some(reason)
        })
    });
    let entry = match same.map(|i| deaths.remove(i)) {
        Some(FieldValue::Table(mut found)) => {
            let count = found.get("count").and_then(FieldValue::as_i64).unwrap_or(0);
            found.insert("count", FieldValue::I64(count + 1));
            found
        }
        _ => {
            let time = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut entry = FieldTable::new()
                .with("count", FieldValue::I64(1))
                .with("reason", reason)
                .with("queue", queue)
                .with("time", FieldValue::Timestamp(time))
                .with("exchange", exchange)
                .with(
                    "routing-keys",
                    FieldValue::Array(vec![FieldValue::from(routing_key)]),
                );
            if let Some(expiration) = original_expiration {
                entry.insert("original-expiration", expiration);
            }
            entry
        }
    };
    deaths.insert(0, FieldValue::Table(entry));
    headers.insert("x-death", FieldValue::Array(deaths));
    if !headers.contains_key("x-first-death-reason") {
        headers.insert("x-first-death-reason", reason);
        headers.insert("x-first-death-queue", queue);
        headers.insert("x-first-death-exchange", exchange);
    }
}

/// RabbitMQ's cycle check: dead-lettering into `queue` is a cycle when the message
/// already died there and every death since then was automatic (no rejection).
fn is_cycle(queue: &str, headers: &FieldTable) -> bool {
    let Some(deaths) = headers.get("x-death").and_then(FieldValue::as_array) else {
        return false;
    };
    let Some(at) = deaths.iter().position(|d| {
        d.as_table()
            .and_then(|t| t.get("queue"))
            .and_then(FieldValue::as_str)
            == Some(queue)
    }) else {
        return false;
    };
    deaths[..=at].iter().all(|d| {
        d.as_table()
            .and_then(|t| t.get("reason"))
            .and_then(FieldValue::as_str)
            != Some("rejected")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deaths_count_per_queue_and_reason_newest_first() {
        let mut headers = FieldTable::new();
        record_death(
            &mut headers,
            "a",
            DeathReason::Expired,
            "x",
            "k",
            Some("10".into()),
        );
        record_death(&mut headers, "b", DeathReason::Expired, "", "k", None);
        record_death(&mut headers, "a", DeathReason::Expired, "x", "k", None);
        let deaths = headers
            .get("x-death")
            .and_then(FieldValue::as_array)
            .expect("x-death");
        assert_eq!(deaths.len(), 2);
        let first = deaths[0].as_table().expect("table");
        assert_eq!(first.get("queue").and_then(FieldValue::as_str), Some("a"));
        assert_eq!(first.get("count").and_then(FieldValue::as_i64), Some(2));
        assert_eq!(
            first
                .get("original-expiration")
                .and_then(FieldValue::as_str),
            Some("10")
        );
        assert_eq!(
            headers
                .get("x-first-death-queue")
                .and_then(FieldValue::as_str),
            Some("a")
        );
        assert!(is_cycle("a", &headers));
        assert!(!is_cycle("c", &headers));
        record_death(&mut headers, "c", DeathReason::Rejected, "", "k", None);
        assert!(!is_cycle("a", &headers));
    }
}
