//! The `#[ws_rpc]` entrypoint: nameko's `nameko.web.websocket.rpc`.

use std::fmt;
use std::sync::Arc;

use nameko_core::context::ContextData;
use nameko_core::errors::RemoteError;
use nameko_core::extension::{Entrypoint, EntrypointContext, ExtensionError, SpawnError};
use nameko_core::method::{Method, Output};
use nameko_core::wire::CallArgs;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::server::WebSocketServer;

/// A WebSocket RPC entrypoint: `#[ws_rpc]` on a service method builds one (see
/// [`ws_rpc!`](crate::ws_rpc)).
///
/// A frame `{"method": "echo", "data": {"value": 1}, "correlation_id": 7}` on `/ws`
/// calls `echo` with the socket's id first and `data` as keyword arguments, in a worker
/// of its own (counted against `max_workers`, with the context data the web server's
/// hook took from the upgrade request), and the socket is answered
/// `{"type": "result", "success": true, "data": <result>, "correlation_id": 7}`, or
/// `"success": false` with nameko's error dict under `"error"`.
#[derive(Default)]
pub struct WsRpc {
    registered: Mutex<Option<(Arc<WebSocketServer>, &'static str, &'static str)>>,
}

impl fmt::Debug for WsRpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsRpc").finish_non_exhaustive()
    }
}

impl WsRpc {
    /// An entrypoint for the method it is attached to.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait::async_trait]
impl Entrypoint for WsRpc {
    fn kind(&self) -> &'static str {
        "websocket_rpc"
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        if method.params.is_empty() {
            return Err(ExtensionError::definition(format!(
                "`{0}` is a WebSocket method: it takes the socket id first, `async fn {0}(&self, socket_id: String, ...)`",
                method.name
            )));
        }
        Ok(())
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let server = WebSocketServer::of(ctx.container())?;
        server.register(Arc::new(WsMethod { ctx: ctx.clone() }))?;
        *self.registered.lock() = Some((server, ctx.container().service_name(), ctx.method().name));
        Ok(())
    }

    async fn close(&self) {
        if let Some((server, service, method)) = self.registered.lock().take() {
            server.unregister(service, method);
        }
    }

    async fn kill(&self) {
        self.close().await;
    }
}

/// A method served on `/ws`.
pub(crate) struct WsMethod {
    ctx: EntrypointContext,
}

impl WsMethod {
    pub(crate) fn name(&self) -> &'static str {
        self.ctx.method().name
    }

    pub(crate) fn service(&self) -> &'static str {
        self.ctx.container().service_name()
    }

    /// Runs the method for a socket, in a worker, and returns what it returned.
    pub(crate) async fn call(
        &self,
        socket_id: &str,
        kwargs: Map<String, Value>,
        context: ContextData,
    ) -> Result<Value, RemoteError> {
        let workers = self.ctx.workers();
        let args = CallArgs {
            args: vec![Value::String(socket_id.to_owned())],
            kwargs,
        };
        let call = workers
            .bind(self.name(), args)
            .map_err(|e| e.to_remote_error())?;
        let slot = workers.slot().await.map_err(|error| match error {
            SpawnError::Killed => killed(),
            other => {
                let message = other.to_string();
                RemoteError::new(
                    "Exception",
                    "builtins.Exception",
                    [message.clone()],
                    message,
                )
            }
        })?;
        let worker = workers.start(slot, call, context, &[]);
        let (sender, receiver) = oneshot::channel();
        workers.spawn(worker, move |worker| async move {
            let run = worker.run().await;
            let result = match run.result() {
                Ok(Output::Json(value)) => Ok(value.clone()),
                Ok(_) => Err(RemoteError::type_error(
                    "the method returned a value that cannot be sent on a WebSocket",
                )),
                Err(error) => Err(error.clone()),
            };
            let _ = sender.send(result);
            run.finish().await;
        });
        receiver.await.unwrap_or_else(|_| Err(killed()))
    }
}

fn killed() -> RemoteError {
    RemoteError::new(
        "ContainerBeingKilled",
        "nameko.exceptions.ContainerBeingKilled",
        Vec::<String>::new(),
        "",
    )
}
