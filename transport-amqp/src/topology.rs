//! The record of what a transport declared, replayed in order after a reconnection.

use nameko_transport::{ExchangeKind, ExchangeOptions, QueueOptions};

/// One declaration to replay.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Declaration {
    Exchange {
        name: String,
        kind: ExchangeKind,
        options: ExchangeOptions,
    },
    Queue {
        name: String,
        options: QueueOptions,
    },
    Binding {
        queue: String,
        exchange: String,
        routing_key: String,
    },
}

/// Every exchange, queue and binding declared through a transport and not deleted since,
/// in the order they were first declared.
#[derive(Debug, Default)]
pub(crate) struct Topology {
    declarations: Vec<Declaration>,
}

impl Topology {
    /// Records a successful exchange declaration (passive ones are not recorded).
    pub(crate) fn exchange(&mut self, name: &str, kind: ExchangeKind, options: ExchangeOptions) {
        let declaration = Declaration::Exchange {
            name: name.to_owned(),
            kind,
            options,
        };
        self.upsert(
            &declaration,
            |d| matches!(d, Declaration::Exchange { name: n, .. } if n == name),
        );
    }

    /// Records a successful queue declaration.
    pub(crate) fn queue(&mut self, name: &str, options: &QueueOptions) {
        let declaration = Declaration::Queue {
            name: name.to_owned(),
            options: options.clone(),
        };
        self.upsert(
            &declaration,
            |d| matches!(d, Declaration::Queue { name: n, .. } if n == name),
        );
    }

    /// Records a successful binding.
    pub(crate) fn binding(&mut self, queue: &str, exchange: &str, routing_key: &str) {
        let declaration = Declaration::Binding {
            queue: queue.to_owned(),
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
        };
        if !self.declarations.contains(&declaration) {
            self.declarations.push(declaration);
        }
    }

    /// Forgets a deleted queue and its bindings.
    pub(crate) fn delete_queue(&mut self, name: &str) {
        self.declarations.retain(|d| match d {
            Declaration::Queue { name: n, .. } => n != name,
            Declaration::Binding { queue, .. } => queue != name,
            Declaration::Exchange { .. } => true,
        });
    }

    /// Forgets a deleted exchange and the bindings to it.
    pub(crate) fn delete_exchange(&mut self, name: &str) {
        self.declarations.retain(|d| match d {
            Declaration::Exchange { name: n, .. } => n != name,
            Declaration::Binding { exchange, .. } => exchange != name,
            Declaration::Queue { .. } => true,
        });
    }

    /// The declarations to replay, in order.
    pub(crate) fn snapshot(&self) -> Vec<Declaration> {
        self.declarations.clone()
    }

    fn upsert(&mut self, declaration: &Declaration, same: impl Fn(&Declaration) -> bool) {
        match self.declarations.iter_mut().find(|d| same(d)) {
            Some(existing) => existing.clone_from(declaration),
            None => self.declarations.push(declaration.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletions_remove_dependent_bindings_and_keep_order() {
        let mut t = Topology::default();
        t.exchange("x", ExchangeKind::Topic, ExchangeOptions::durable());
        t.queue("q1", &QueueOptions::durable());
        t.binding("q1", "x", "a.*");
        t.queue("q2", &QueueOptions::default());
        t.binding("q2", "x", "#");
        t.binding("q2", "x", "#");
        t.queue("q1", &QueueOptions::durable());
        t.delete_queue("q2");
        assert_eq!(
            t.snapshot(),
            vec![
                Declaration::Exchange {
                    name: "x".into(),
                    kind: ExchangeKind::Topic,
                    options: ExchangeOptions::durable()
                },
                Declaration::Queue {
                    name: "q1".into(),
                    options: QueueOptions::durable()
                },
                Declaration::Binding {
                    queue: "q1".into(),
                    exchange: "x".into(),
                    routing_key: "a.*".into()
                },
            ]
        );
        t.delete_exchange("x");
        assert_eq!(t.snapshot().len(), 1);
    }
}
