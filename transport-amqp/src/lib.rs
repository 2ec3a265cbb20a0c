//! nameko-amqp: the RabbitMQ transport of nameko-rs, on [lapin].
//!
//! [`AmqpTransport`] implements nameko-transport's
//! [`Transport`](nameko_transport::Transport) on one AMQP 0-9-1 connection, so
//! that Rust services run on the same broker as Python nameko services and exchange
//! byte-identical messages with them: every AMQP property and header type is carried
//! without loss (see [`FieldValue`](nameko_transport::FieldValue)), headers are
//! always sent, and publisher confirms and mandatory returns give nameko's
//! `UnknownService` detection.
//!
//! ```no_run
//! use std::time::Duration;
//! use nameko_amqp::{AmqpOptions, AmqpTransport, Startup};
//! use nameko_transport::{ConsumeOptions, Transport};
//! use futures_util::StreamExt as _;
//!
//! # async fn run() -> Result<(), nameko_transport::TransportError> {
//! let options = AmqpOptions::new()
//!     .connection_name("greeting-service")
//!     .heartbeat(Duration::from_secs(60))
//!     .startup(Startup::WaitForBroker);
//! let transport = AmqpTransport::connect_with("amqp://guest:guest@localhost/", options).await?;
//! let mut consumer = transport.consume("rpc-greeting", ConsumeOptions::with_prefetch(10)).await?;
//! while let Some(delivery) = consumer.next().await {
//!     let delivery = delivery?;
//!     // ... handle it, then:
//!     delivery.ack().await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Connection management and recovery are described on [`AmqpTransport`]; the URI format
//! on [`AmqpUri`]; the options on [`AmqpOptions`]. With the `management` feature,
//! `nameko_amqp::management` is a client of RabbitMQ's management HTTP API (virtual
//! hosts, permissions, queue listings).
//!
//! [lapin]: https://docs.rs/lapin

mod connection;
mod consumer;
mod convert;
mod declare;
mod error;
mod options;
mod publish;
mod recovery;
mod transport;
mod uri;

#[cfg(feature = "management")]
pub mod management;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use options::{AmqpOptions, ClientIdentity, DEFAULT_HEARTBEAT, ReconnectPolicy, Startup};
pub use transport::{AmqpTransport, capabilities};
pub use uri::{AmqpUri, BrokerAddress, Failover, InvalidUri, Scheme};
