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

/// Databases on sqlx: the `Database` dependency (nameko-sqlalchemy's), for PostgreSQL,
/// MySQL/MariaDB and SQLite (the `db` feature).
#[cfg(feature = "db")]
pub mod db {
    pub use nameko_sqlx::*;
}

/// The testing toolkit.
pub mod testing {
    pub use nameko_testing::*;
}
