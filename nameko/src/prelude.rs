//! Everything a service file needs: `use nameko::prelude::*;`.
//!
//! - the service macros: [`service`](macro@service), [`Dependencies`](derive@Dependencies),
//!   [`NamekoError`](derive@NamekoError);
//! - the built-in entrypoints, which `#[service]` calls for `#[rpc]`,
//!   `#[event_handler(...)]`, `#[timer(...)]`, `#[consume(...)]`, `#[once(...)]` and
//!   `#[dummy]` (documented in [`nameko::entrypoints`](crate::entrypoints)), and the
//!   [`HandlerType`] of event handlers;
//! - the dependencies a service struct holds: [`RpcProxy`], [`EventDispatcher`],
//!   [`Publisher`], [`ContextData`], [`State`], [`WorkerContext`];
//! - the errors: [`RpcError`] (a call failed), [`RemoteError`] (nameko's error dict),
//!   [`ServiceError`] (anything, with `?`), [`EventError`];
//! - running and calling services: [`Config`], [`ServiceContainer`], [`ServiceRunner`],
//!   [`ClusterRpcProxy`], [`ServiceRpcProxy`], [`RpcReply`], [`CallArgs`],
//!   [`StandaloneDispatcher`];
//! - JSON: [`Value`] and [`json!`].

pub use nameko_core::config::Config;
pub use nameko_core::container::ServiceContainer;
pub use nameko_core::context::ContextData;
pub use nameko_core::dependency::State;
pub use nameko_core::entrypoints::HandlerType;
pub use nameko_core::errors::{RemoteError, RpcError, ServiceError};
pub use nameko_core::events::{EventDispatcher, EventError, StandaloneDispatcher};
pub use nameko_core::messaging::Publisher;
pub use nameko_core::retry::Backoff;
pub use nameko_core::rpc::{ClusterRpcProxy, RpcProxy, RpcReply, ServiceRpcProxy};
pub use nameko_core::runner::ServiceRunner;
pub use nameko_core::wire::CallArgs;
pub use nameko_core::worker::WorkerContext;
pub use nameko_macros::{
    Dependencies, NamekoError, consume, dummy, event_handler, once, rpc, service, timer,
};
pub use serde_json::{Value, json};

#[cfg(feature = "web")]
pub use nameko_web::{Request, Response, http};
