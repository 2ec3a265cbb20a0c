//! RPC clients: the shared reply queue, and the proxies that call services (from a
//! service, or from any code). The RPC entrypoint is [`crate::entrypoints::Rpc`].

mod client;
mod proxy;
mod reply;
mod scripted;
mod standalone;
mod waiting;

pub use client::{
    CallError, Client, ClientProvider, ExpectedError, TypedError, TypedReply, call as typed_call,
};
pub use proxy::{
    CallResult, IntoArgs, RpcBackend, RpcProxy, RpcProxyProvider, RpcReply, RpcRequest,
};
pub use reply::{PendingReply, ReplyListener};
pub use scripted::{
    CallRecorder, ClientDouble, ClientRegistration, ScriptedBackend, ScriptedCall,
    client_registration, convert as scripted_convert,
};
pub use standalone::{ClusterRpcProxy, STANDALONE_OWNER, ServiceRpcProxy};
