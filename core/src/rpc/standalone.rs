//! Standalone proxies: calling services from code that is not a service.

use std::sync::Arc;
use std::time::Duration;

use super::proxy::{LiveBackend, RpcProxy};
use super::reply::ReplyListener;
use crate::config::Config;
use crate::context::ContextData;
use crate::errors::RpcError;
use crate::transport::{FieldTable, Transport};

/// Owner name in the reply queue of standalone proxies, as Python nameko 2.x names it:
/// `rpc.reply-standalone_rpc_proxy-<uuid>`.
pub const STANDALONE_OWNER: &str = "standalone_rpc_proxy";

/// A proxy to every service of a cluster, for code that is not a service: nameko's
/// `ClusterRpcProxy` (and, through [`ClusterRpcProxy::service`], `ServiceRpcProxy`).
///
/// It has its own reply queue, shared by all its calls, which may be many at once from
/// many tasks. Its calls carry the context data it was given, and a call id stack rooted
/// at `standalone_rpc_proxy.call.<uuid>` (the same root for every call, as in nameko 2.x).
///
/// ```no_run
/// # async fn f(transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), nameko_core::errors::RpcError> {
/// use nameko_core::config::Config;
/// use nameko_core::rpc::ClusterRpcProxy;
///
/// let proxy = ClusterRpcProxy::start(transport, &Config::new()).await?;
/// let greeting: String = proxy.service("service_x").call("remote_method", ("hello",)).await?;
/// proxy.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ClusterRpcProxy {
    backend: Arc<LiveBackend>,
    headers: Arc<FieldTable>,
    context: ContextData,
    root_call_id: String,
    timeout: Duration,
}

impl ClusterRpcProxy {
    /// Declares the proxy's reply queue and starts listening on it.
    ///
    /// # Errors
    ///
    /// [`RpcError::Transport`] if the broker refuses; [`RpcError::InvalidArguments`] for
    /// a configuration value of the wrong type.
    pub async fn start(transport: Arc<dyn Transport>, config: &Config) -> Result<Self, RpcError> {
        Self::start_with_context(transport, config, ContextData::new()).await
    }

    /// As [`ClusterRpcProxy::start`], with context data sent on every call.
    ///
    /// # Errors
    ///
    /// As [`ClusterRpcProxy::start`].
    pub async fn start_with_context(
        transport: Arc<dyn Transport>,
        config: &Config,
        context: ContextData,
    ) -> Result<Self, RpcError> {
        let bad_config = |e: crate::config::ConfigError| RpcError::InvalidArguments(e.to_string());
        let settings = config.settings().map_err(bad_config)?;
        let exchange = settings.rpc_exchange;
        let timeout = settings.rpc_timeout;
        let retry = settings.rpc_retry_policy;
        let max_size = settings.max_message_size;
        let listener = Arc::new(ReplyListener::new(
            transport.clone(),
            exchange.clone(),
            STANDALONE_OWNER,
            max_size,
        ));
        listener.start().await?;
        let root_call_id = format!("{STANDALONE_OWNER}.call.{}", uuid::Uuid::new_v4());
        let headers = Arc::new(context.to_headers(std::slice::from_ref(&root_call_id)));
        Ok(Self {
            backend: Arc::new(LiveBackend {
                transport,
                exchange,
                listener,
                retry,
            }),
            headers,
            context,
            root_call_id,
            timeout,
        })
    }

    /// A proxy to one service (nameko's `proxy.service_name` / `proxy["name"]`).
    #[must_use]
    pub fn service(&self, name: &str) -> RpcProxy {
        RpcProxy::new(
            self.backend.clone(),
            name,
            self.headers.clone(),
            self.timeout,
        )
    }

    /// The same proxy with another default timeout for its calls.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The context data sent with every call.
    #[must_use]
    pub fn context(&self) -> &ContextData {
        &self.context
    }

    /// The root of the call id stack of every call.
    #[must_use]
    pub fn root_call_id(&self) -> &str {
        &self.root_call_id
    }

    /// The reply queue's name.
    #[must_use]
    pub fn reply_queue(&self) -> &str {
        self.backend.listener.queue()
    }

    /// Stops listening for replies; calls still waiting fail with [`RpcError::Stopped`].
    /// The reply queue is left for the broker to expire, as nameko does.
    pub async fn stop(&self) {
        self.backend.listener.stop().await;
    }
}

/// A proxy to one service, for code that is not a service: nameko's `ServiceRpcProxy`.
///
/// It derefs to an [`RpcProxy`], so `call`, `call_async` and `with_timeout` work on it
/// directly.
///
/// ```no_run
/// # async fn f(transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), nameko_core::errors::RpcError> {
/// use nameko_core::config::Config;
/// use nameko_core::rpc::ServiceRpcProxy;
///
/// let calculator = ServiceRpcProxy::start(transport, &Config::new(), "calculator").await?;
/// let sum: f64 = calculator.call("add", (1, 2)).await?;
/// calculator.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ServiceRpcProxy {
    cluster: ClusterRpcProxy,
    proxy: RpcProxy,
}

impl ServiceRpcProxy {
    /// Declares the proxy's reply queue and starts listening on it.
    ///
    /// # Errors
    ///
    /// As [`ClusterRpcProxy::start`].
    pub async fn start(
        transport: Arc<dyn Transport>,
        config: &Config,
        service: &str,
    ) -> Result<Self, RpcError> {
        Self::start_with_context(transport, config, service, ContextData::new()).await
    }

    /// As [`ServiceRpcProxy::start`], with context data sent on every call.
    ///
    /// # Errors
    ///
    /// As [`ClusterRpcProxy::start`].
    pub async fn start_with_context(
        transport: Arc<dyn Transport>,
        config: &Config,
        service: &str,
        context: ContextData,
    ) -> Result<Self, RpcError> {
        let cluster = ClusterRpcProxy::start_with_context(transport, config, context).await?;
        let proxy = cluster.service(service);
        Ok(Self { cluster, proxy })
    }

    /// The cluster proxy underneath, sharing the reply queue.
    #[must_use]
    pub fn cluster(&self) -> &ClusterRpcProxy {
        &self.cluster
    }

    /// Stops listening for replies; see [`ClusterRpcProxy::stop`].
    pub async fn stop(&self) {
        self.cluster.stop().await;
    }
}

impl std::ops::Deref for ServiceRpcProxy {
    type Target = RpcProxy;

    fn deref(&self) -> &RpcProxy {
        &self.proxy
    }
}
