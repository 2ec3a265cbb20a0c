//! Exchanges and routing: which queues a routing key reaches.

use std::collections::HashMap;
use std::sync::Arc;

use nameko_transport::{ExchangeKind, FieldTable, FieldValue};

use crate::ids::{NameBuild, QueueId};
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
    /// Binding arguments: what a headers exchange matches.
    pub(crate) arguments: FieldTable,
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
    /// Exchanges bound to this one: (destination, key, compiled topic pattern).
    pub(crate) exchange_bindings: Vec<(Arc<str>, Arc<str>, Option<TopicPattern>)>,
    /// Routing key to the queues it reaches, each once. Cleared whenever bindings change.
    routes: HashMap<Arc<str>, Arc<[QueueId]>, NameBuild>,
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
            exchange_bindings: Vec::new(),
            routes: HashMap::default(),
        }
    }

    /// Adds a binding; binding the same queue with the same key again changes nothing.
    /// Returns whether it was new.
    #[cfg(test)]
    pub(crate) fn bind(&mut self, queue: QueueId, queue_name: Arc<str>, key: Arc<str>) -> bool {
        self.bind_with(queue, queue_name, key, FieldTable::new())
    }

    /// Binds with arguments; false when the same binding exists.
    pub(crate) fn bind_with(
        &mut self,
        queue: QueueId,
        queue_name: Arc<str>,
        key: Arc<str>,
        arguments: FieldTable,
    ) -> bool {
        if self
            .bindings
            .iter()
            .any(|b| b.queue == queue && b.key == key && b.arguments == arguments)
        {
            return false;
        }
        let pattern = (self.kind == ExchangeKind::Topic).then(|| TopicPattern::new(&key));
        self.bindings.push(Binding {
            queue,
            queue_name,
            key,
            pattern,
            arguments,
        });
        self.routes.clear();
        true
    }

    /// Removes every binding of `queue`.
    /// Binds exchange `destination` to this one; false when the binding exists.
    pub(crate) fn bind_exchange(&mut self, destination: Arc<str>, key: Arc<str>) -> bool {
        if self
            .exchange_bindings
            .iter()
            .any(|(d, k, _)| *d == destination && *k == key)
        {
            return false;
        }
        let pattern = (self.kind == ExchangeKind::Topic).then(|| TopicPattern::new(&key));
        self.exchange_bindings.push((destination, key, pattern));
        true
    }

    /// The exchanges bound to this one that a message with `routing_key` goes on to.
    pub(crate) fn next_exchanges(&self, routing_key: &str) -> Vec<Arc<str>> {
        let words: Vec<&str> = if self.kind == ExchangeKind::Topic {
            topic::split(routing_key).collect()
        } else {
            Vec::new()
        };
        self.exchange_bindings
            .iter()
            .filter(|(_, key, pattern)| match self.kind {
                ExchangeKind::Fanout => true,
                ExchangeKind::Topic => pattern.as_ref().is_some_and(|p| p.matches_words(&words)),
                ExchangeKind::Headers => false,
                _ => **key == *routing_key,
            })
            .map(|(destination, _, _)| Arc::clone(destination))
            .collect()
    }

    pub(crate) fn unbind_queue(&mut self, queue: QueueId) {
        self.bindings.retain(|b| b.queue != queue);
        self.routes.clear();
    }

    /// The queues `routing_key` reaches, each once.
    /// The queues a message reaches: by its headers on a headers exchange, by its
    /// routing key on any other.
    pub(crate) fn route_message(
        &mut self,
        routing_key: &str,
        headers: &FieldTable,
    ) -> Arc<[QueueId]> {
        self.route_keyed(routing_key, headers).0
    }

    /// The queues a message reaches, and its routing key as the route cache holds it
    /// (for the message to share rather than copy), when the cache holds it.
    pub(crate) fn route_keyed(
        &mut self,
        routing_key: &str,
        headers: &FieldTable,
    ) -> (Arc<[QueueId]>, Option<Arc<str>>) {
        match self.kind {
            ExchangeKind::Headers => (self.route_headers(headers), None),
            ExchangeKind::Fanout => (self.route(routing_key), None),
            _ => {
                if let Some((key, hit)) = self.routes.get_key_value(routing_key) {
                    return (Arc::clone(hit), Some(Arc::clone(key)));
                }
                let queues = self.route(routing_key);
                let key = self
                    .routes
                    .get_key_value(routing_key)
                    .map(|(k, _)| Arc::clone(k));
                (queues, key)
            }
        }
    }

    fn route_headers(&self, headers: &FieldTable) -> Arc<[QueueId]> {
        let mut queues: Vec<QueueId> = self
            .bindings
            .iter()
            .filter(|b| headers_match(&b.arguments, headers))
            .map(|b| b.queue)
            .collect();
        queues.sort_unstable();
        queues.dedup();
        queues.into()
    }

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
            // Headers exchanges route by headers (`route_message`); a key alone matches
            // only bindings without arguments to match.
            ExchangeKind::Headers => self
                .bindings
                .iter()
                .filter(|b| headers_match(&b.arguments, &FieldTable::new()))
                .map(|b| b.queue)
                .collect(),
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
        self.routes.insert(Arc::from(key), Arc::clone(&queues));
        queues
    }
}

/// RabbitMQ's headers matching: `x-match` `all` (the default) or `any`, over the
/// binding's arguments not starting with `x-` (or all of them with `all-with-x` and
/// `any-with-x`); integers compare by value whatever their width.
fn headers_match(arguments: &FieldTable, headers: &FieldTable) -> bool {
    let mode = arguments
        .get("x-match")
        .and_then(FieldValue::as_str)
        .unwrap_or("all");
    let (any, with_x) = match mode {
        "any" => (true, false),
        "any-with-x" => (true, true),
        "all-with-x" => (false, true),
        _ => (false, false),
    };
    let mut wanted = arguments
        .iter()
        .filter(|(k, _)| *k != "x-match" && (with_x || !k.starts_with("x-")))
        .peekable();
    if wanted.peek().is_none() {
        return !any;
    }
    let mut matches = wanted.map(|(key, value)| {
        headers
            .get(key)
            .is_some_and(|h| match (h.as_i64(), value.as_i64()) {
                (Some(a), Some(b)) => a == b,
                _ => h == value,
            })
    });
    if any {
        matches.any(|m| m)
    } else {
        matches.all(|m| m)
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
    fn headers_match_all_or_any_by_value() {
        let mut h = exchange(ExchangeKind::Headers);
        let any = FieldTable::new()
            .with("x-match", "any")
            .with("backoff", 1000);
        let all = FieldTable::new().with("a", 1).with("b", "x");
        h.bind_with(QueueId(1), "q1".into(), "".into(), any);
        h.bind_with(QueueId(2), "q2".into(), "".into(), all);
        let headers = FieldTable::new()
            .with("backoff", FieldValue::I64(1000))
            .with("a", 1);
        assert_eq!(&*h.route_message("ignored", &headers), &[QueueId(1)]);
        let both = headers.with("b", "x");
        assert_eq!(&*h.route_message("", &both), &[QueueId(1), QueueId(2)]);
        assert!(h.route_message("", &FieldTable::new()).is_empty());
    }

    #[test]
    fn rebinding_is_idempotent() {
        let mut d = exchange(ExchangeKind::Direct);
        assert!(d.bind(QueueId(1), "q1".into(), "k".into()));
        assert!(!d.bind(QueueId(1), "q1".into(), "k".into()));
        assert_eq!(d.bindings.len(), 1);
    }
}
