//! Publishing: routing, enqueueing, and the publish log.

use std::sync::Arc;

use nameko_transport::{FieldTable, Message, PublishOptions, PublishOutcome, TransportError};

use super::{State, check_name, not_found_exchange};
use crate::ids::{ConnectionId, QueueId};
use crate::inspect::{PublishLog, Published};
use crate::policy::parse_expiration;
use crate::queue::QueuedMessage;

/// Where a publish went.
struct Routed {
    exchange: Arc<str>,
    outcome: PublishOutcome,
    queues: usize,
}

impl State {
    pub(crate) fn publish(
        &mut self,
        conn: ConnectionId,
        exchange: &str,
        routing_key: &str,
        message: Message,
        options: PublishOptions,
    ) -> Result<PublishOutcome, TransportError> {
        self.check_usable(conn)?;
        let message = Arc::new(message);
        let routing_key: Arc<str> = routing_key.into();
        let result = self.route_and_enqueue(conn, exchange, &routing_key, &message, options);
        if self.log == PublishLog::Off {
            return result.map(|routed| routed.outcome);
        }
        let (exchange, outcome, queues) = match result {
            Ok(Routed {
                exchange,
                outcome,
                queues,
            }) => (exchange, Ok(outcome), queues),
            Err(error) => (Arc::from(exchange), Err(error), 0),
        };
        self.publish_seq += 1;
        self.log_publish(Published {
            sequence: self.publish_seq,
            connection: conn,
            exchange,
            routing_key,
            message,
            outcome: outcome.clone(),
            queues,
        });
        outcome
    }

    fn route_and_enqueue(
        &mut self,
        conn: ConnectionId,
        exchange: &str,
        routing_key: &Arc<str>,
        message: &Arc<Message>,
        options: PublishOptions,
    ) -> Result<Routed, TransportError> {
        if let Some(c) = self.connections.get_mut(&conn)
            && c.fail_publishes > 0
        {
            c.fail_publishes -= 1;
            return Err(TransportError::Injected(
                "publish failed by injection on this connection".to_owned(),
            ));
        }
        if self.fail_publishes > 0 {
            self.fail_publishes -= 1;
            return Err(TransportError::Injected(
                "publish failed by injection".to_owned(),
            ));
        }
        check_name("routing key", routing_key)?;
        let message_ttl = match &message.properties.expiration {
            None => None,
            Some(expiration) => Some(parse_expiration(expiration)?),
        };
        let (exchange_name, targets) =
            self.targets(exchange, routing_key, &message.properties.headers)?;
        let queued = QueuedMessage {
            message: Arc::clone(message),
            exchange: Arc::clone(&exchange_name),
            routing_key: Arc::clone(routing_key),
            redelivered: false,
            expires_at: None,
            priority: 0,
        };
        let mut refused = false;
        for &id in targets.iter() {
            let Some(q) = self.queues.get_mut(&id) else {
                continue;
            };
            if q.down {
                // Lost with its node: what is routed to it meanwhile is dropped.
                continue;
            }
            if q.policy.is_none() && message_ttl.is_none() {
                q.ready.push_back(queued.clone());
                self.dispatch(id);
            } else {
                refused |= !self.enqueue(id, queued.clone(), message_ttl);
            }
        }
        let outcome = if targets.is_empty() && options.mandatory {
            tracing::debug!(
                exchange,
                routing_key = &**routing_key,
                "mandatory message returned: no route"
            );
            PublishOutcome::Returned {
                reply_code: 312,
                reply_text: "NO_ROUTE".to_owned(),
            }
        } else if options.confirm && refused {
            PublishOutcome::Nacked
        } else if options.confirm {
            PublishOutcome::Confirmed
        } else {
            PublishOutcome::Sent
        };
        Ok(Routed {
            exchange: exchange_name,
            outcome,
            queues: targets.len(),
        })
    }

    /// The exchange's shared name and the queues a message reaches through it.
    pub(super) fn targets(
        &mut self,
        exchange: &str,
        routing_key: &str,
        headers: &FieldTable,
    ) -> Result<(Arc<str>, Arc<[QueueId]>), TransportError> {
        if exchange.is_empty() {
            let targets = self
                .queue_names
                .get(routing_key)
                .map_or_else(|| Arc::from([]), |id| Arc::from([*id]));
            return Ok((Arc::clone(&self.default_exchange), targets));
        }
        let Some(x) = self.exchanges.get_mut(exchange) else {
            return Err(not_found_exchange(exchange));
        };
        let name = Arc::clone(&x.name);
        let queues = x.route_message(routing_key, headers);
        if x.exchange_bindings.is_empty() {
            return Ok((name, queues));
        }
        // Exchange-to-exchange bindings: every exchange reached routes too; each queue
        // gets one copy.
        let mut all: Vec<QueueId> = queues.to_vec();
        let mut seen = vec![Arc::clone(&name)];
        let mut pending = x.next_exchanges(routing_key);
        while let Some(next) = pending.pop() {
            if seen.contains(&next) {
                continue;
            }
            seen.push(Arc::clone(&next));
            if let Some(x) = self.exchanges.get_mut(&*next) {
                all.extend(x.route_message(routing_key, headers).iter());
                pending.extend(x.next_exchanges(routing_key));
            }
        }
        all.sort_unstable();
        all.dedup();
        Ok((name, all.into()))
    }

    fn log_publish(&mut self, record: Published) {
        if let PublishLog::Capped(cap) = self.log {
            if cap == 0 {
                return;
            }
            while self.published.len() >= cap {
                self.published.pop_front();
            }
        }
        self.published.push_back(record);
    }
}
