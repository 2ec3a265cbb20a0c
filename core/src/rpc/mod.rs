//! RPC clients: the shared reply queue, and the proxies that call services (from a
//! service, or from any code). The RPC entrypoint is [`crate::entrypoints::Rpc`].

mod proxy;
mod reply;
mod standalone;

pub use proxy::{
    CallResult, IntoArgs, RpcBackend, RpcProxy, RpcProxyProvider, RpcReply, RpcRequest,
};
pub use reply::{PendingReply, ReplyListener};
pub use standalone::{ClusterRpcProxy, STANDALONE_OWNER, ServiceRpcProxy};
