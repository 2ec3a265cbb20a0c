//! nameko-core: the broker-independent core of nameko-rs.
//!
//! Layers, from the bottom:
//!
//! - [`transport`]: the [`Transport`](transport::Transport) trait every broker backend
//!   implements, with messages, AMQP field tables, deliveries, consumers and declared
//!   topology: the `nameko-transport` crate, re-exported.
//! - [`json`], [`wire`], [`errors`], [`context`], [`config`]: JSON exactly as Python
//!   writes it, nameko's message bodies and names,
//!   its error dict, context data and call id stacks, its configuration keys.
//! - [`method`], [`worker`]: entrypoint methods (binding arguments, converting results)
//!   and what a worker knows about its call.
//! - [`extension`], [`dependency`]: the public extension API every entrypoint, shared
//!   extension and dependency provider is built on.
//! - [`service`], [`container`], [`runner`]: what a service is made of, and running it.
//! - [`entrypoints`]: the built-in entrypoints (RPC, event handlers, timers, consumers,
//!   `once`), written on the extension API.
//! - [`rpc`], [`events`], [`messaging`], [`publish`]: the clients services use (RPC
//!   proxies, event dispatchers, publishers).
//! - [`sensitive`]: redacting the sensitive arguments of a call wherever it is shown.

pub mod config;
pub mod container;
pub mod context;
pub mod dependency;
pub mod entrypoints;
pub mod errors;
pub mod events;
pub mod extension;
pub mod json;
pub mod messaging;
pub mod method;
pub mod publish;
pub mod retry;
pub mod rpc;
pub mod runner;
pub mod sensitive;
pub mod service;
#[doc(inline)]
pub use nameko_transport as transport;
pub mod wire;
pub mod worker;

/// schemars, which makes the JSON schemas of services' parameters and results.
#[doc(no_inline)]
pub use schemars;
