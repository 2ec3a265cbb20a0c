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
    routing_key: Arc<str>,
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
        let message = self.shells.wrap(message);
        if self.log == PublishLog::Off {
            // The queues hold the only references, so that delivery can hand the message
            // itself to a consumer.
            return self
                .route_and_enqueue(conn, exchange, routing_key, message, options)
                .map(|routed| routed.outcome);
        }
        let logged = Arc::clone(&message);
        let result = self.route_and_enqueue(conn, exchange, routing_key, message, options);
        let (exchange, routing_key, outcome, queues) = match result {
            Ok(Routed {
                exchange,
                routing_key,
                outcome,
                queues,
            }) => (exchange, routing_key, Ok(outcome), queues),
            Err(error) => (Arc::from(exchange), Arc::from(routing_key), Err(error), 0),
        };
        self.publish_seq += 1;
        self.log_publish(Published {
            sequence: self.publish_seq,
            connection: conn,
            exchange,
            routing_key,
            message: logged,
            outcome: outcome.clone(),
            queues,
        });
        outcome
    }

    fn route_and_enqueue(
        &mut self,
        conn: ConnectionId,
        exchange: &str,
        routing_key: &str,
        message: Arc<Message>,
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
        let (exchange_name, targets, routing_key) =
            self.targets(exchange, routing_key, &message.properties.headers)?;
        let mut queued = Some(QueuedMessage {
            message,
            exchange: Arc::clone(&exchange_name),
            routing_key: Arc::clone(&routing_key),
            redelivered: false,
            expires_at: None,
            priority: 0,
        });
        let mut refused = false;
        let last = targets.len().saturating_sub(1);
        for (i, &id) in targets.iter().enumerate() {
            let Some(q) = self.queues.get_mut(&id) else {
                continue;
            };
            if q.down {
                // Lost with its node: what is routed to it meanwhile is dropped.
                continue;
            }
            // The last queue takes the message itself, the others share it.
            let copy = if i == last {
                queued.take()
            } else {
                queued.clone()
            };
            let Some(copy) = copy else {
                continue;
            };
            if q.policy.is_none() && message_ttl.is_none() {
                q.ready.push_back(copy);
                self.dispatch(id);
            } else {
                refused |= !self.enqueue(id, copy, message_ttl);
            }
        }
        let outcome = if targets.is_empty() && options.mandatory {
            tracing::debug!(
                exchange,
                routing_key = &*routing_key,
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
            routing_key,
            outcome,
            queues: targets.len(),
        })
    }

    /// The exchange's shared name, the queues a message reaches through it, and the
    /// routing key as a shared string (the one the broker already holds, when it does).
    pub(super) fn targets(
        &mut self,
        exchange: &str,
        routing_key: &str,
        headers: &FieldTable,
    ) -> Result<(Arc<str>, Arc<[QueueId]>, Arc<str>), TransportError> {
        if exchange.is_empty() {
            let default = Arc::clone(&self.default_exchange);
            return Ok(match self.queue_names.get_key_value(routing_key) {
                Some((name, id)) => {
                    let targets = self
                        .queues
                        .get(id)
                        .map_or_else(|| Arc::from([*id]), |q| Arc::clone(&q.route));
                    (default, targets, Arc::clone(name))
                }
                None => (default, Arc::from([]), Arc::from(routing_key)),
            });
        }
        let Some(x) = self.exchanges.get_mut(exchange) else {
            return Err(not_found_exchange(exchange));
        };
        let name = Arc::clone(&x.name);
        let (queues, key) = x.route_keyed(routing_key, headers);
        let key = key.unwrap_or_else(|| Arc::from(routing_key));
        if x.exchange_bindings.is_empty() {
            return Ok((name, queues, key));
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
        Ok((name, all.into(), key))
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
