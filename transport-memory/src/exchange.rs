//! Exchanges and routing: which queues a routing key reaches.

use std::collections::HashMap;
use std::sync::Arc;

use nameko_transport::ExchangeKind;

use crate::ids::QueueId;
use crate::topic::{self, TopicPattern};

/// Routing keys remembered per exchange before the route cache starts over.
const ROUTE_CACHE_CAPACITY: usize = 4096;

/// One binding of a queue to an exchange.
#[derive(Debug)]
pub(crate) struct Binding {
    pub(crate) queue: QueueId,
    pub(crate) queue_name: Arc<str>,
    pub(crate) key: Arc<str>,
    /// The compiled pattern, for topic exchanges.
    pattern: Option<TopicPattern>,
}

/// An exchange with its bindings and a cache of routing decisions.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) name: Arc<str>,
    pub(crate) kind: ExchangeKind,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
    /// Predeclared by the broker (`amq.direct`, ...): cannot be deleted.
    pub(crate) builtin: bool,
    pub(crate) bindings: Vec<Binding>,
    /// Routing key to the queues it reaches, each once. Cleared whenever bindings change.
    routes: HashMap<Box<str>, Arc<[QueueId]>>,
}

impl Exchange {
    pub(crate) fn new(
        name: Arc<str>,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
    ) -> Self {
        Self {
            name,
            kind,
            durable,
            auto_delete,
            builtin: false,
            bindings: Vec::new(),
            routes: HashMap::new(),
        }
    }

    /// Adds a binding; binding the same queue with the same key again changes nothing.
    /// Returns whether it was new.
    pub(crate) fn bind(&mut self, queue: QueueId, queue_name: Arc<str>, key: Arc<str>) -> bool {
        if self
            .bindings
            .iter()
            .any(|b| b.queue == queue && b.key == key)
        {
            return false;
        }
        let pattern = (self.kind == ExchangeKind::Topic).then(|| TopicPattern::new(&key));
        self.bindings.push(Binding {
            queue,
            queue_name,
            key,
            pattern,
        });
        self.routes.clear();
        true
    }

    /// Removes every binding of `queue`.
    pub(crate) fn unbind_queue(&mut self, queue: QueueId) {
        self.bindings.retain(|b| b.queue != queue);
        self.routes.clear();
    }

    /// The queues `routing_key` reaches, each once.
    pub(crate) fn route(&mut self, routing_key: &str) -> Arc<[QueueId]> {
        let key = if self.kind == ExchangeKind::Fanout {
            ""
        } else {
            routing_key
        };
        if let Some(hit) = self.routes.get(key) {
            return Arc::clone(hit);
        }
        let mut queues: Vec<QueueId> = match self.kind {
            ExchangeKind::Fanout => self.bindings.iter().map(|b| b.queue).collect(),
            ExchangeKind::Topic => {
                let words: Vec<&str> = topic::split(routing_key).collect();
                self.bindings
                    .iter()
                    .filter(|b| b.pattern.as_ref().is_some_and(|p| p.matches_words(&words)))
                    .map(|b| b.queue)
                    .collect()
            }
            // Direct, and any kind added later: exact key.
            _ => self
                .bindings
                .iter()
                .filter(|b| *b.key == *routing_key)
                .map(|b| b.queue)
                .collect(),
        };
        queues.sort_unstable();
        queues.dedup();
        let queues: Arc<[QueueId]> = queues.into();
        if self.routes.len() >= ROUTE_CACHE_CAPACITY {
            self.routes.clear();
        }
        self.routes.insert(key.into(), Arc::clone(&queues));
        queues
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(kind: ExchangeKind) -> Exchange {
        Exchange::new("x".into(), kind, false, false)
    }

    #[test]
    fn topic_routes_each_queue_once_and_cache_follows_bindings() {
        let mut x = exchange(ExchangeKind::Topic);
        x.bind(QueueId(1), "q1".into(), "a.*".into());
        x.bind(QueueId(1), "q1".into(), "#".into());
        x.bind(QueueId(2), "q2".into(), "b.#".into());
        assert_eq!(&*x.route("a.b"), &[QueueId(1)]);
        assert_eq!(&*x.route("b"), &[QueueId(1), QueueId(2)]);
        x.unbind_queue(QueueId(1));
        assert_eq!(&*x.route("a.b"), &[]);
        assert_eq!(&*x.route("b.c"), &[QueueId(2)]);
    }

    #[test]
    fn direct_matches_exact_keys_and_fanout_ignores_them() {
        let mut d = exchange(ExchangeKind::Direct);
        d.bind(QueueId(1), "q1".into(), "k".into());
        assert_eq!(&*d.route("k"), &[QueueId(1)]);
        assert!(d.route("k.x").is_empty());
        let mut f = exchange(ExchangeKind::Fanout);
        f.bind(QueueId(1), "q1".into(), "a".into());
        f.bind(QueueId(2), "q2".into(), "b".into());
        assert_eq!(&*f.route("anything"), &[QueueId(1), QueueId(2)]);
    }

    #[test]
    fn rebinding_is_idempotent() {
        let mut d = exchange(ExchangeKind::Direct);
        assert!(d.bind(QueueId(1), "q1".into(), "k".into()));
        assert!(!d.bind(QueueId(1), "q1".into(), "k".into()));
        assert_eq!(d.bindings.len(), 1);
    }
}
