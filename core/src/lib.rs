//! nameko-core: the broker-independent core of nameko-rs.
//!
//! - [`transport`]: the [`Transport`](transport::Transport) trait every broker backend
//!   implements, with messages, AMQP field tables, deliveries and consumers.
//! - [`config`]: nameko's configuration keys with typed access.

pub mod config;
pub mod transport;
