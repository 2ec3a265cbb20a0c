#![doc = include_str!("../README.md")]

#[allow(unused_extern_crates)]
extern crate self as nameko;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod cli;
pub mod connect;
pub mod logging;
pub mod prelude;
pub mod serve;
pub mod shell;

pub use connect::{connect, connect_or_memory};

/// Implements the extension traits (`Entrypoint`, `SharedExtension`,
/// `DependencyProvider`), whose methods are async: `#[nameko::async_trait]` on the `impl`.
pub use async_trait::async_trait;
pub use nameko_core::{
    config, container, context, dependency, errors, events, extension, messaging, method, publish,
    rpc, runner, service, transport, wire, worker,
};
pub use nameko_macros::{
    Dependencies, NamekoError, consume, dummy, event_handler, once, rpc, service, timer,
};

/// The built-in entrypoints, and the macros of their attributes (`#[rpc]`,
/// `#[event_handler(...)]`, `#[timer(...)]`, `#[consume(...)]`, `#[once(...)]`,
/// `#[dummy]`), which `#[service]` expands.
pub mod entrypoints {
    pub use nameko_core::entrypoints::*;
    pub use nameko_macros::{consume, dummy, event_handler, once, rpc, timer};
}

/// The in-process broker (`AMQP_URI: memory://`).
pub mod memory {
    pub use nameko_memory::*;
}

/// The RabbitMQ transport (`AMQP_URI: amqp://` or `amqps://`).
pub mod amqp {
    pub use nameko_amqp::*;
}

/// The testing toolkit (cargo feature `testing`, off by default: enable it in the
/// `[dev-dependencies]` of the crates whose tests use it).
///
/// ```toml
/// [dev-dependencies]
/// nameko = { version = "0.1", features = ["testing"] }
/// ```
#[cfg(feature = "testing")]
pub mod testing {
    pub use nameko_testing::*;
}
