//! Everything a service file needs: `use nameko::prelude::*;`.

pub use crate::{
    Dependencies, NamekoError, consume, dummy, event_handler, once, rpc, service, timer,
};
pub use nameko_core::config::Config;
pub use nameko_core::container::ServiceContainer;
pub use nameko_core::context::ContextData;
pub use nameko_core::entrypoints::HandlerType;
pub use nameko_core::errors::{RemoteError, RpcError, ServiceError};
pub use nameko_core::events::{EventDispatcher, EventError, StandaloneDispatcher};
pub use nameko_core::messaging::Publisher;
pub use nameko_core::rpc::{ClusterRpcProxy, RpcProxy, RpcReply, ServiceRpcProxy};
pub use nameko_core::runner::ServiceRunner;
pub use nameko_core::wire::CallArgs;
pub use nameko_core::worker::WorkerContext;
pub use serde_json::{Value, json};
