//! RPC: the `rpc-<service>` entrypoint, the shared reply queue, and the proxies that call
//! services (from a service, or from any code).

mod consumer;
mod proxy;
mod reply;
mod standalone;

pub(crate) use consumer::RpcDriver;
pub use proxy::{IntoArgs, RpcBackend, RpcProxy, RpcProxyProvider, RpcReply, RpcRequest};
pub use reply::{PendingReply, ReplyListener};
pub use standalone::{ClusterRpcProxy, STANDALONE_OWNER, ServiceRpcProxy};
