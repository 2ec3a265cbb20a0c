//! Declaring and deleting exchanges and queues, and binding them.

use std::sync::Arc;

use nameko_transport::{
    ExchangeKind, ExchangeOptions, FieldTable, QueueDeclared, QueueOptions, TransportError,
};
use tokio::time::Instant;

use super::{State, check_name, default_exchange_refused, not_found_exchange, not_found_queue};
use crate::exchange::Exchange;
use crate::ids::{ConnectionId, QueueId};
use crate::policy::QueuePolicy;
use crate::queue::{Queue, QueueShape, parse_expires};

impl State {
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

    pub(crate) fn bind_exchange(
        &mut self,
        destination: &str,
        source: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        check_name("routing key", routing_key)?;
        if destination.is_empty() || source.is_empty() {
            return Err(default_exchange_refused("bind"));
        }
        let Some(d) = self.exchanges.get(destination) else {
            return Err(not_found_exchange(destination));
        };
        let destination = Arc::clone(&d.name);
        let Some(x) = self.exchanges.get_mut(source) else {
            return Err(not_found_exchange(source));
        };
        if x.bind_exchange(destination, routing_key.into()) {
            tracing::debug!(source, routing_key, "exchange bound to exchange");
        }
        Ok(())
    }

    pub(super) fn remove_exchange(&mut self, name: &str) {
        let Some(exchange) = self.exchanges.remove(name) else {
            return;
        };
        for other in self.exchanges.values_mut() {
            other.exchange_bindings.retain(|(d, _, _)| **d != *name);
        }
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
    pub(super) fn declare_queue_as(
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
        let policy = QueuePolicy::parse(&name, &options.arguments)?;
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
        let mut queue = Queue::new(id, Arc::clone(&name), shape, owner, expires, now);
        queue.policy = policy;
        self.queues.insert(id, queue);
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
        self.bind_queue_with(conn, queue, exchange, routing_key, FieldTable::new())
    }

    /// Binds with binding arguments (what a headers exchange matches).
    pub(crate) fn bind_queue_with(
        &mut self,
        conn: ConnectionId,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
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
        if x.bind_with(qid, queue_name, Arc::clone(&key), arguments) {
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
}
