#![doc = include_str!("../README.md")]

#[allow(unused_extern_crates)]
extern crate self as nameko;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod asyncapi;
pub mod cli;
pub mod connect;
pub mod logging;
pub mod prelude;
pub mod serve;
pub mod shell;

pub use asyncapi::asyncapi;
pub use connect::{connect, connect_or_memory};

pub use nameko_core::{
    config, container, context, dependency, errors, events, extension, messaging, method, publish,
    retry, rpc, runner, sensitive, service, transport, wire, worker,
};
pub use nameko_macros::{
    Dependencies, NamekoError, client, consume, dummy, event_handler, once, rpc, service, timer,
};

/// The built-in entrypoints: the macros `#[service]` calls for the attributes `#[rpc]`,
/// `#[event_handler(...)]`, `#[timer(...)]`, `#[consume(...)]`, `#[once(...)]` and
/// `#[dummy]` (each page lists the attribute's arguments), and the entrypoint types they
/// build.
///
/// | attribute | fires on | nameko |
/// |---|---|---|
/// | [`#[rpc]`](macro@rpc) | a request on `rpc-<service>` with routing key `<service>.<method>` | `@rpc` |
/// | [`#[event_handler("source", "event_type", ...)]`](macro@event_handler) | an event of `<source>.events` | `@event_handler` |
/// | [`#[timer(interval = 5, eager = true)]`](macro@timer) | every `interval` seconds | `@timer` |
/// | [`#[consume(queue = "q", ...)]`](macro@consume) | a message on any queue | `@consume` |
/// | [`#[once(args...)]`](macro@once) | once, when the container starts | `testing.services.once` |
/// | [`#[dummy]`](macro@dummy) | only through `testing::entrypoint_hook` | `testing.services.dummy` |
///
/// The attributes are in scope with `use nameko::prelude::*;`. An entrypoint of another
/// crate is an attribute of the same kind: `#[service]` turns `#[path(args)]` into
/// `path!(args)` (see [`extension`]).
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

/// HTTP entrypoints: `#[http("GET", "/get/<int:value>")]`, nameko's `@http` on werkzeug's
/// rules, served by one hyper server per process (the `web` feature, on by default).
#[cfg(feature = "web")]
pub mod web {
    pub use nameko_web::*;
}

/// The testing toolkit (cargo feature `testing`, off by default: enable it in the
/// `[dev-dependencies]` of the crates whose tests use it).
///
/// ```toml
/// [dev-dependencies]
/// nameko = { version = "0.1", features = ["testing"] }
/// ```
#[cfg(feature = "testing")]
#[doc(inline)]
pub use nameko_testing as testing;

/// The attribute the object-safe traits of [`extension`] (entrypoints, shared
/// extensions) are implemented with.
#[doc(no_inline)]
pub use async_trait::async_trait;
/// schemars, for the JSON schemas of your parameters and results in the services'
/// AsyncAPI document (see [`asyncapi`](mod@asyncapi)): derive `JsonSchema` with
/// `#[derive(nameko::schemars::JsonSchema)]` and `#[schemars(crate = "nameko::schemars")]`
/// without adding schemars to your `Cargo.toml`.
///
/// ```
/// #[derive(nameko::schemars::JsonSchema)]
/// #[schemars(crate = "nameko::schemars")]
/// struct Order {
///     id: u64,
///     items: Vec<String>,
/// }
///
/// let schema = nameko::schemars::schema_for!(Order);
/// assert_eq!(schema.get("required"), Some(&nameko::serde_json::json!(["id", "items"])));
/// ```
#[doc(no_inline)]
pub use nameko_core::schemars;
/// serde, for the types of your parameters and results: derive with
/// `#[derive(nameko::serde::Deserialize)]` and `#[serde(crate = "nameko::serde")]`
/// without adding serde to your `Cargo.toml`.
///
/// ```
/// #[derive(nameko::serde::Deserialize, nameko::serde::Serialize)]
/// #[serde(crate = "nameko::serde")]
/// struct Order {
///     id: u64,
///     items: Vec<String>,
/// }
///
/// let order: Order = nameko::serde_json::from_str(r#"{"id": 1, "items": ["tea"]}"#).unwrap();
/// assert_eq!(order.items, ["tea"]);
/// ```
#[doc(no_inline)]
pub use serde;
/// serde_json, whose `Value` and `json!` are in the prelude.
#[doc(no_inline)]
pub use serde_json;
/// tracing, for your services' logs: `nameko::tracing::info!(order_id, "placed")`.
#[doc(no_inline)]
pub use tracing;
