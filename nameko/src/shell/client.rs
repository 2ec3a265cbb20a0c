//! The shell's connection to the cluster: one [`ClusterRpcProxy`] (restarted with new
//! context data when `n.context(...)` changes it), a [`StandaloneDispatcher`] for
//! `n.dispatch_event`, and the timeout `n.timeout(...)` sets.

use std::sync::Arc;
use std::time::Duration;

use nameko_core::config::Config;
use nameko_core::context::ContextData;
use nameko_core::errors::RpcError;
use nameko_core::events::StandaloneDispatcher;
use nameko_core::rpc::{ClusterRpcProxy, RpcReply};
use nameko_core::transport::Transport;
use nameko_core::wire::CallArgs;
use serde_json::Value;

use super::error::ShellError;

/// A connection to the cluster, for one shell.
#[derive(Debug)]
pub(crate) struct Client {
    transport: Arc<dyn Transport>,
    config: Config,
    /// Started on first use, and again after the context changed or a start failed.
    proxy: Option<ClusterRpcProxy>,
    context: ContextData,
    timeout: Duration,
    default_timeout: Duration,
    dispatcher: StandaloneDispatcher,
}

impl Client {
    /// A client on `transport`; its proxy starts (declaring a reply queue) at once.
    pub(crate) async fn start(
        transport: Arc<dyn Transport>,
        config: Config,
    ) -> Result<Self, RpcError> {
        let bad_config =
            |e: nameko_core::config::ConfigError| RpcError::InvalidArguments(e.to_string());
        let default_timeout = config.rpc_timeout().map_err(bad_config)?;
        let dispatcher =
            StandaloneDispatcher::new(transport.clone(), &config).map_err(bad_config)?;
        let mut client = Self {
            transport,
            config,
            proxy: None,
            context: ContextData::new(),
            timeout: default_timeout,
            default_timeout,
            dispatcher,
        };
        client.proxy().await?;
        Ok(client)
    }

    /// The configuration the shell runs with.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The context data sent with every call.
    pub(crate) fn context(&self) -> &ContextData {
        &self.context
    }

    /// Replaces the context data of the calls that follow.
    pub(crate) fn set_context(&mut self, context: ContextData) {
        self.context = context;
        // Calls still waiting keep the old proxy's reply queue alive until they finish.
        self.proxy = None;
    }

    /// The timeout of the calls that follow.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sets the timeout of the calls that follow; `None` restores `RPC_TIMEOUT`.
    pub(crate) fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout.unwrap_or(self.default_timeout);
    }

    async fn proxy(&mut self) -> Result<&ClusterRpcProxy, RpcError> {
        if self.proxy.is_none() {
            let proxy = ClusterRpcProxy::start_with_context(
                self.transport.clone(),
                &self.config,
                self.context.clone(),
            );
            let proxy = tokio::time::timeout(self.timeout, proxy)
                .await
                .map_err(|_| RpcError::Timeout(self.timeout))??;
            self.proxy = Some(proxy);
        }
        self.proxy.as_ref().ok_or(RpcError::Stopped)
    }

    /// Sends a call; the reply is awaited separately.
    pub(crate) async fn call_async(
        &mut self,
        service: &str,
        method: &str,
        args: CallArgs,
    ) -> Result<RpcReply<Value>, ShellError> {
        let timeout = self.timeout;
        let call_error = |error| ShellError::Call {
            service: service.to_owned(),
            method: method.to_owned(),
            error: Box::new(error),
        };
        let proxy = self.proxy().await.map_err(call_error)?;
        proxy
            .service(service)
            .with_timeout(timeout)
            .call_async::<Value>(method, args)
            .await
            .map_err(call_error)
    }

    /// Calls and waits for the result.
    pub(crate) async fn call(
        &mut self,
        service: &str,
        method: &str,
        args: CallArgs,
    ) -> Result<Value, ShellError> {
        let reply = self.call_async(service, method, args).await?;
        reply.result().await.map_err(|error| ShellError::Call {
            service: service.to_owned(),
            method: method.to_owned(),
            error: Box::new(error),
        })
    }

    /// Dispatches an event as `source`, waiting at most the call timeout for the broker.
    pub(crate) async fn dispatch(
        &self,
        source: &str,
        event_type: &str,
        payload: Value,
    ) -> Result<(), ShellError> {
        let dispatch = self.dispatcher.dispatch(source, event_type, payload);
        match tokio::time::timeout(self.timeout, dispatch).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(ShellError::Event(Box::new(error))),
            Err(_) => Err(ShellError::EventTimeout(self.timeout)),
        }
    }

    /// Stops the proxy; the transport is its owner's to close.
    pub(crate) async fn close(self) {
        if let Some(proxy) = &self.proxy {
            proxy.stop().await;
        }
    }
}
