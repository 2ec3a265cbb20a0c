//! The WebSocket hub dependency: nameko's `WebSocketHubProvider` and `WebSocketHub`.

use std::fmt;
use std::sync::Arc;

use nameko_core::container::ContainerContext;
use nameko_core::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko_core::errors::NamekoError;
use nameko_core::worker::WorkerContext;
use serde_json::Value;

use super::server::{Shared, WebSocketServer};

/// nameko's `ConnectionNotFound`: no socket of that id is connected.
///
/// ```
/// use nameko_core::errors::IntoRemoteError;
/// use nameko_web::websocket::ConnectionNotFound;
///
/// let remote = ConnectionNotFound("3f2c".to_owned()).into_remote_error();
/// assert_eq!(remote.exc_path, "nameko.exceptions.ConnectionNotFound");
/// assert_eq!(remote.exc_args, ["3f2c"]);
/// assert_eq!(remote.value, "3f2c");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConnectionNotFound(pub String);

impl NamekoError for ConnectionNotFound {
    fn exc_type() -> &'static str {
        "ConnectionNotFound"
    }

    fn exc_path() -> &'static str {
        "nameko.exceptions.ConnectionNotFound"
    }
}

/// The hub of the process's WebSocket server, as a service field: subscribe sockets to
/// channels, push events to a channel or to one socket.
///
/// A pushed event reaches a socket as `{"type": "event", "event": <event>, "data":
/// <data>}`. A socket's subscriptions go when it disconnects. Pushing never waits: each
/// socket has a bounded send queue (`WEBSOCKET_SEND_QUEUE`), and a socket whose queue
/// is full (its client does not read, or more frames than the queue holds were pushed
/// faster than the connection takes them) is closed.
///
/// ```
/// use nameko::prelude::*;
/// use nameko::web::ws_rpc;
/// use nameko::web::websocket::{ConnectionNotFound, WebSocketHub};
///
/// #[derive(Dependencies)]
/// struct Chat {
///     hub: WebSocketHub,
/// }
///
/// #[service(name = "chat")]
/// impl Chat {
///     #[ws_rpc]
///     async fn join(&self, socket_id: String, room: String) -> Result<Vec<String>, ConnectionNotFound> {
///         self.hub.subscribe(&socket_id, &room)?;
///         Ok(self.hub.get_subscriptions(&socket_id))
///     }
///
///     #[ws_rpc]
///     async fn say(&self, socket_id: String, room: String, text: String) -> usize {
///         self.hub.broadcast(&room, "said", json!({"from": socket_id, "text": text}))
///     }
/// }
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct WebSocketHub {
    shared: Arc<Shared>,
}

impl fmt::Debug for WebSocketHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketHub").finish_non_exhaustive()
    }
}

impl WebSocketHub {
    /// Subscribes a socket to a channel.
    ///
    /// # Errors
    ///
    /// [`ConnectionNotFound`] when no socket of that id is connected.
    pub fn subscribe(&self, socket_id: &str, channel: &str) -> Result<(), ConnectionNotFound> {
        self.shared.subscribe(socket_id, channel)
    }

    /// Unsubscribes a socket from a channel (nothing happens when it was not
    /// subscribed, or is not connected).
    pub fn unsubscribe(&self, socket_id: &str, channel: &str) {
        self.shared.unsubscribe(socket_id, channel);
    }

    /// The channels a socket is subscribed to, sorted (none for a socket that is not
    /// connected).
    #[must_use]
    pub fn get_subscriptions(&self, socket_id: &str) -> Vec<String> {
        self.shared.subscriptions(socket_id)
    }

    /// Pushes an event to every socket subscribed to `channel`; returns to how many it
    /// was queued.
    pub fn broadcast(&self, channel: &str, event: &str, data: Value) -> usize {
        self.shared.broadcast(channel, event, data)
    }

    /// Pushes an event to one socket; returns whether that socket is connected.
    #[must_use = "false when the socket is not connected"]
    pub fn unicast(&self, socket_id: &str, event: &str, data: Value) -> bool {
        self.shared.unicast(socket_id, event, data)
    }
}

/// The provider of [`WebSocketHub`] fields: every hub of the process is the hub of the
/// process's [`WebSocketServer`].
#[derive(Debug, Default)]
pub struct WebSocketHubProvider {
    server: Option<Arc<WebSocketServer>>,
}

impl DependencyProvider for WebSocketHubProvider {
    type Output = WebSocketHub;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let server =
            WebSocketServer::of(container).map_err(|e| ProviderError::new(e.to_string()))?;
        self.server = Some(server);
        Ok(())
    }

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<WebSocketHub, ProviderError> {
        let server = self
            .server
            .as_ref()
            .ok_or_else(|| ProviderError::new("the WebSocket hub was not set up"))?;
        Ok(WebSocketHub {
            shared: server.shared().clone(),
        })
    }
}

impl Dependency for WebSocketHub {
    type Provider = WebSocketHubProvider;

    fn provider(_field: &'static str) -> WebSocketHubProvider {
        WebSocketHubProvider::default()
    }
}
