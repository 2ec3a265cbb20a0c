//! nameko-core: the broker-independent core of nameko-rs.
//!
//! - [`transport`]: the [`Transport`](transport::Transport) trait every broker backend
//!   implements, with messages, AMQP field tables, deliveries, consumers and declared
//!   topology: the `nameko-transport` crate, re-exported.
//! - [`wire`]: nameko's message bodies and names, and JSON exactly as Python writes it.
//! - [`service`], [`dependency`], [`entrypoint`], [`worker`]: what a service is made of.
//! - [`container`]: running a service: lifecycle, worker pool, graceful stop.
//! - [`rpc`]: the RPC entrypoint, reply queues and proxies.
//! - [`events`], [`timer`], [`messaging`]: events, timers and generic AMQP messaging.
//! - [`errors`]: nameko's error dict, service errors and caller errors.
//! - [`context`]: context data and call id stacks.
//! - [`config`]: nameko's configuration keys with typed access.

pub mod config;
mod consumer_loop;
pub mod container;
pub mod context;
pub mod dependency;
mod drivers;
pub mod entrypoint;
pub mod errors;
pub mod events;
pub mod messaging;
pub mod publish;
mod queue_driver;
pub mod rpc;
pub mod runner;
pub mod service;
pub mod timer;
#[doc(inline)]
pub use nameko_transport as transport;
pub mod wire;
pub mod worker;
