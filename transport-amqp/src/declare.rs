//! Declarations on the management channel, through one code path: what the transport's
//! `declare_*` and `bind_*` calls make, and what recovery declares again after a
//! reconnection.

use lapin::Channel;
use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use nameko_transport::topology::Declaration;
use nameko_transport::{ExchangeKind, TransportError};

use crate::convert::{short, table_to_amqp};
use crate::error::from_lapin;

/// What a declaration made: the queue the broker declared (its name, for a server-named
/// queue, and its counts), or nothing for exchanges and bindings.
pub(crate) type Declared = Option<lapin::Queue>;

/// Makes `declaration` on `channel`, passive when its options say so.
///
/// # Errors
///
/// [`TransportError::InvalidArgument`] for a name or argument AMQP cannot carry (checked
/// before anything is sent), or the broker's refusal.
pub(crate) async fn declare(
    channel: &Channel,
    declaration: &Declaration,
) -> Result<Declared, TransportError> {
    let result = match declaration {
        Declaration::Exchange {
            name,
            kind,
            options,
        } => {
            let kind = match kind {
                ExchangeKind::Direct => lapin::ExchangeKind::Direct,
                ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
                ExchangeKind::Topic => lapin::ExchangeKind::Topic,
                ExchangeKind::Headers => lapin::ExchangeKind::Headers,
                other => {
                    return Err(TransportError::InvalidArgument(format!(
                        "unsupported exchange kind {other}"
                    )));
                }
            };
            let options = ExchangeDeclareOptions {
                passive: options.passive,
                durable: options.durable,
                auto_delete: options.auto_delete,
                internal: false,
                nowait: false,
            };
            let name = short(name, "exchange name")?;
            channel
                .exchange_declare(name, kind, options, lapin::types::FieldTable::default())
                .await
                .map(|()| None)
        }
        Declaration::Queue { name, options } => {
            let name = short(name, "queue name")?;
            let arguments = table_to_amqp(&options.arguments)?;
            let options = QueueDeclareOptions {
                passive: options.passive,
                durable: options.durable,
                exclusive: options.exclusive,
                auto_delete: options.auto_delete,
                nowait: false,
            };
            channel
                .queue_declare(name, options, arguments)
                .await
                .map(Some)
        }
        Declaration::Binding {
            queue,
            exchange,
            routing_key,
            arguments,
        } => {
            let queue = short(queue, "queue name")?;
            let exchange = short(exchange, "exchange name")?;
            let routing_key = short(routing_key, "routing key")?;
            let arguments = table_to_amqp(arguments)?;
            channel
                .queue_bind(
                    queue,
                    exchange,
                    routing_key,
                    QueueBindOptions::default(),
                    arguments,
                )
                .await
                .map(|()| None)
        }
        Declaration::ExchangeBinding {
            destination,
            source,
            routing_key,
        } => {
            let destination = short(destination, "exchange name")?;
            let source = short(source, "exchange name")?;
            let routing_key = short(routing_key, "routing key")?;
            channel
                .exchange_bind(
                    destination,
                    source,
                    routing_key,
                    ExchangeBindOptions::default(),
                    lapin::types::FieldTable::default(),
                )
                .await
                .map(|()| None)
        }
    };
    result.map_err(|e| from_lapin(&e))
}
