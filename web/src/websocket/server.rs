//! The process's WebSocket server: `/ws` on the web server, its sockets, the methods of
//! `#[ws_rpc]` entrypoints and the hub's channels (nameko's `WebSocketServer`).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use nameko_core::config::Config;
use nameko_core::extension::{ContainerContext, ExtensionError, SharedExtension};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::entrypoint::WsMethod;
use super::frame;
use super::hub::ConnectionNotFound;
use super::socket::{self, SocketHandle};
use crate::error::WebError;
use crate::request::Request;
use crate::server::{RemoteAddr, WebServer};
use crate::{Body, response};

/// The key of the process's WebSocket server among the process-wide shared extensions.
const KEY: &str = "websocket";
/// The path it answers.
pub const WEBSOCKET_PATH: &str = "/ws";
/// How long a client has to start talking WebSocket after the server agreed to upgrade.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// `WEBSOCKET_SEND_QUEUE`: frames queued for one socket before the socket is closed as
/// a client that does not read (close code 1008); default 256.
pub const WEBSOCKET_SEND_QUEUE: &str = "WEBSOCKET_SEND_QUEUE";
/// `MAX_WEBSOCKET_MESSAGE`: the largest message a client may send, in bytes; default
/// 1 MiB. A larger one closes the socket (close code 1009).
pub const MAX_WEBSOCKET_MESSAGE: &str = "MAX_WEBSOCKET_MESSAGE";
/// `MAX_WEBSOCKETS`: sockets connected at once; default 10,000. Further upgrades are
/// answered 503.
pub const MAX_WEBSOCKETS: &str = "MAX_WEBSOCKETS";

/// The WebSocket server's settings, read from the configuration of the first container
/// that uses it.
///
/// ```
/// use nameko_core::config::Config;
/// use nameko_web::websocket::WebSocketSettings;
///
/// let settings = WebSocketSettings::from_config(&Config::new().with("WEBSOCKET_SEND_QUEUE", 16)).unwrap();
/// assert_eq!(settings.send_queue, 16);
/// assert_eq!(settings.max_message, 1024 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketSettings {
    /// `WEBSOCKET_SEND_QUEUE`.
    pub send_queue: usize,
    /// `MAX_WEBSOCKET_MESSAGE`.
    pub max_message: usize,
    /// `MAX_WEBSOCKETS`.
    pub max_sockets: usize,
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        Self {
            send_queue: 256,
            max_message: 1024 * 1024,
            max_sockets: 10_000,
        }
    }
}

impl WebSocketSettings {
    /// Reads the settings from a configuration.
    ///
    /// # Errors
    ///
    /// [`WebError::Config`] for a value that is not a positive integer.
    pub fn from_config(config: &Config) -> Result<Self, WebError> {
        let defaults = Self::default();
        let read = |key: &str, default: usize| -> Result<usize, WebError> {
            match config.get_u64(key) {
                Ok(None) => Ok(default),
                Ok(Some(0)) => Err(WebError::Config(format!("{key} must be at least 1"))),
                Ok(Some(n)) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(e) => Err(WebError::Config(e.to_string())),
            }
        };
        Ok(Self {
            send_queue: read(WEBSOCKET_SEND_QUEUE, defaults.send_queue)?,
            max_message: read(MAX_WEBSOCKET_MESSAGE, defaults.max_message)?,
            max_sockets: read(MAX_WEBSOCKETS, defaults.max_sockets)?,
        })
    }
}

/// The process's WebSocket server: answers `/ws` on the process's [`WebServer`], keeps
/// the connected sockets, the methods of every `#[ws_rpc]` entrypoint of the process and
/// the channels of the [`WebSocketHub`](super::WebSocketHub).
///
/// `#[ws_rpc]` entrypoints and `WebSocketHub` dependencies get it with
/// [`WebSocketServer::of`]; one process has one, whatever the number of its services,
/// so a socket calls the methods of every service and a hub reaches every socket.
pub struct WebSocketServer {
    shared: Arc<Shared>,
    web: Mutex<Option<Arc<WebServer>>>,
    mounted: Mutex<Option<u64>>,
}

impl fmt::Debug for WebSocketServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketServer")
            .field("sockets", &self.shared.sockets.read().len())
            .field(
                "methods",
                &self.shared.methods.read().keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl WebSocketServer {
    fn new() -> Self {
        Self {
            shared: Arc::new(Shared::default()),
            web: Mutex::new(None),
            mounted: Mutex::new(None),
        }
    }

    /// The process's WebSocket server, made by the first extension that asks (during
    /// its `setup`), configured from that container's configuration; it uses the
    /// process's web server, at the same `WEB_SERVER_ADDRESS`.
    ///
    /// # Errors
    ///
    /// A configuration error.
    pub fn of(ctx: &ContainerContext) -> Result<Arc<Self>, ExtensionError> {
        let web = WebServer::of(ctx)?;
        let server = ctx.process_shared(KEY, Self::new);
        let mut settings = server.shared.settings.lock();
        if settings.is_none() {
            *settings = Some(WebSocketSettings::from_config(ctx.config())?);
            *server.web.lock() = Some(web);
        }
        drop(settings);
        Ok(server)
    }

    /// The number of sockets connected now.
    #[must_use]
    pub fn socket_count(&self) -> usize {
        self.shared.sockets.read().len()
    }

    /// The settings it was configured with.
    #[must_use]
    pub fn settings(&self) -> WebSocketSettings {
        self.shared.settings()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Serves `method` for `#[ws_rpc]`; a second method of the same name is refused.
    pub(crate) fn register(&self, method: Arc<WsMethod>) -> Result<(), ExtensionError> {
        let mut methods = self.shared.methods.write();
        if let Some(existing) = methods.get(method.name()) {
            return Err(ExtensionError::definition(format!(
                "WebSocket method `{}` of {} clashes with {}.{}: `/ws` serves one method of each name",
                method.name(),
                method.service(),
                existing.service(),
                existing.name()
            )));
        }
        methods.insert(method.name().to_owned(), method);
        Ok(())
    }

    /// Stops serving `method` of `service`.
    pub(crate) fn unregister(&self, service: &str, method: &str) {
        let mut methods = self.shared.methods.write();
        if methods.get(method).is_some_and(|m| m.service() == service) {
            methods.remove(method);
        }
    }
}

#[async_trait::async_trait]
impl SharedExtension for WebSocketServer {
    async fn start(&self) -> Result<(), ExtensionError> {
        let web = self.web.lock().clone().ok_or_else(|| {
            ExtensionError::msg(
                "the WebSocket server was not configured: get it with WebSocketServer::of",
            )
        })?;
        let life = Life {
            stopping: CancellationToken::new(),
            killed: CancellationToken::new(),
            tracker: TaskTracker::new(),
            shutdown_timeout: web
                .settings()
                .map_or(Duration::from_secs(30), |s| s.shutdown_timeout),
        };
        *self.shared.life.lock() = Some(life);
        if self.mounted.lock().is_none() {
            let shared = self.shared.clone();
            let web_for_hook = web.clone();
            let service = tower::service_fn(move |request: http::Request<Body>| {
                let shared = shared.clone();
                let web = web_for_hook.clone();
                async move { Ok::<_, Infallible>(shared.handshake(&web, request)) }
            });
            let id = web.route(WEBSOCKET_PATH, "websocket", service)?;
            *self.mounted.lock() = Some(id);
        }
        Ok(())
    }

    async fn stop(&self) {
        if let Some(life) = &*self.shared.life.lock() {
            life.stopping.cancel();
        }
    }

    async fn close(&self) {
        let life = self.shared.life.lock().clone();
        if let Some(life) = life {
            life.stopping.cancel();
            life.tracker.close();
            if tokio::time::timeout(life.shutdown_timeout, life.tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    timeout = ?life.shutdown_timeout,
                    "WebSocket calls still in flight after SHUTDOWN_TIMEOUT: closing their sockets"
                );
                life.killed.cancel();
                life.tracker.wait().await;
            }
        }
        self.unmount();
    }

    async fn kill(&self) {
        let life = self.shared.life.lock().clone();
        if let Some(life) = life {
            life.stopping.cancel();
            life.killed.cancel();
            life.tracker.close();
            let _ = tokio::time::timeout(Duration::from_secs(5), life.tracker.wait()).await;
        }
        self.unmount();
    }
}

impl WebSocketServer {
    fn unmount(&self) {
        if let Some(id) = self.mounted.lock().take()
            && let Some(web) = &*self.web.lock()
        {
            web.unmount(id);
        }
    }
}

/// One run of the server, from start to close.
#[derive(Clone)]
struct Life {
    stopping: CancellationToken,
    killed: CancellationToken,
    tracker: TaskTracker,
    shutdown_timeout: Duration,
}

/// What the server, its sockets and the hubs share.
#[derive(Default)]
pub(crate) struct Shared {
    settings: Mutex<Option<WebSocketSettings>>,
    life: Mutex<Option<Life>>,
    limit: Mutex<Option<Arc<Semaphore>>>,
    methods: RwLock<HashMap<String, Arc<WsMethod>>>,
    /// Lock order: `sockets`, then `channels`.
    sockets: RwLock<HashMap<Arc<str>, Arc<SocketHandle>>>,
    channels: RwLock<HashMap<String, HashSet<Arc<str>>>>,
}

impl Shared {
    pub(crate) fn settings(&self) -> WebSocketSettings {
        self.settings.lock().clone().unwrap_or_default()
    }

    /// Answers an upgrade request: 101 and a socket served in a task of its own.
    fn handshake(
        self: &Arc<Self>,
        web: &WebServer,
        mut request: http::Request<Body>,
    ) -> http::Response<Body> {
        if request.method() != http::Method::GET {
            return response::method_not_allowed(&[
                "GET".to_owned(),
                "HEAD".to_owned(),
                "OPTIONS".to_owned(),
            ]);
        }
        let headers = request.headers();
        let has_token = |name, token: &str| {
            headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        if !has_token(UPGRADE, "websocket") || !has_token(CONNECTION, "upgrade") {
            return response::bad_request(
                "The browser (or proxy) sent a request that this server could not understand.",
            );
        }
        if headers.get(SEC_WEBSOCKET_VERSION).is_none_or(|v| v != "13") {
            let mut answer = response::bad_request("Only WebSocket version 13 is supported.");
            *answer.status_mut() = StatusCode::UPGRADE_REQUIRED;
            answer
                .headers_mut()
                .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return answer;
        }
        let Some(key) = headers.get(SEC_WEBSOCKET_KEY) else {
            return response::bad_request("The WebSocket key is missing.");
        };
        let accept = derive_accept_key(key.as_bytes());
        let Some(life) = self
            .life
            .lock()
            .clone()
            .filter(|l| !l.stopping.is_cancelled())
        else {
            return response::unavailable();
        };
        let settings = self.settings();
        let limit = self
            .limit
            .lock()
            .get_or_insert_with(|| Arc::new(Semaphore::new(settings.max_sockets)))
            .clone();
        let Ok(permit) = limit.try_acquire_owned() else {
            tracing::warn!(
                max = settings.max_sockets,
                "MAX_WEBSOCKETS sockets connected: refusing another"
            );
            return response::unavailable();
        };
        let context = {
            let remote = request.extensions().get::<RemoteAddr>().map(|r| r.0);
            let (parts, _) = http::Request::new(()).into_parts();
            let mut parts = parts;
            parts.method = request.method().clone();
            parts.uri = request.uri().clone();
            parts.headers = request.headers().clone();
            let path = crate::server::decode_path(request.uri().path());
            web.context_data_from_headers(&Request::from_parts(
                parts,
                path,
                Bytes::new(),
                remote,
                Vec::new(),
            ))
        };
        let upgrade = hyper::upgrade::on(&mut request);
        let shared = self.clone();
        // Small buffers: a socket mostly waits (8 KiB to read, 16 KiB gathered before
        // a write; a larger message grows them while it is read or written).
        let config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(settings.max_message))
            .max_frame_size(Some(settings.max_message));
        life.tracker.clone().spawn(async move {
            let upgraded = tokio::select! {
                () = life.killed.cancelled() => return,
                upgraded = tokio::time::timeout(UPGRADE_TIMEOUT, upgrade) => upgraded,
            };
            match upgraded {
                Ok(Ok(upgraded)) => {
                    let stream = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    socket::serve(shared, stream, context, life.stopping.clone(), &life.killed)
                        .await;
                }
                Ok(Err(error)) => tracing::debug!(%error, "WebSocket upgrade failed"),
                Err(_) => tracing::debug!("WebSocket upgrade did not happen in time"),
            }
            drop(permit);
        });
        let mut answer = http::Response::new(Body::empty());
        *answer.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = answer.headers_mut();
        headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
        }
        answer
    }

    /// The answer to one frame of a socket.
    pub(crate) async fn answer(&self, socket: &SocketHandle, payload: &[u8]) -> Utf8Bytes {
        let request = match frame::parse(payload) {
            Ok(request) => request,
            Err(error) => return frame::error(&error, Value::Null),
        };
        let correlation_id = request.correlation_id;
        let method = request
            .method
            .and_then(|name| self.methods.read().get(&name).cloned());
        let Some(method) = method else {
            return frame::error(&frame::method_not_found(), correlation_id);
        };
        let outcome = match frame::keyword_arguments(request.data) {
            Ok(kwargs) => {
                method
                    .call(&socket.id, kwargs, socket.context.clone())
                    .await
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(data) => frame::result(data, correlation_id),
            Err(error) => frame::error(&error, correlation_id),
        }
    }

    pub(crate) fn add_socket(&self, socket: Arc<SocketHandle>) {
        self.sockets.write().insert(socket.id.clone(), socket);
    }

    /// Takes a socket off, with its subscriptions.
    pub(crate) fn remove_socket(&self, id: &str) {
        let mut sockets = self.sockets.write();
        let Some(socket) = sockets.remove(id) else {
            return;
        };
        let subscriptions = std::mem::take(&mut *socket.subscriptions.lock());
        let mut channels = self.channels.write();
        for channel in subscriptions {
            if let Some(members) = channels.get_mut(&channel) {
                members.remove(id);
                if members.is_empty() {
                    channels.remove(&channel);
                }
            }
        }
    }

    pub(crate) fn subscribe(&self, id: &str, channel: &str) -> Result<(), ConnectionNotFound> {
        let sockets = self.sockets.read();
        let socket = sockets
            .get(id)
            .ok_or_else(|| ConnectionNotFound(id.to_owned()))?;
        socket.subscriptions.lock().insert(channel.to_owned());
        self.channels
            .write()
            .entry(channel.to_owned())
            .or_default()
            .insert(socket.id.clone());
        Ok(())
    }

    pub(crate) fn unsubscribe(&self, id: &str, channel: &str) {
        let sockets = self.sockets.read();
        if let Some(socket) = sockets.get(id) {
            socket.subscriptions.lock().remove(channel);
        }
        let mut channels = self.channels.write();
        if let Some(members) = channels.get_mut(channel) {
            members.remove(id);
            if members.is_empty() {
                channels.remove(channel);
            }
        }
    }

    pub(crate) fn subscriptions(&self, id: &str) -> Vec<String> {
        self.sockets
            .read()
            .get(id)
            .map(|s| s.subscriptions.lock().iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn broadcast(&self, channel: &str, event: &str, data: Value) -> usize {
        let text = frame::event(event, data);
        let sockets = self.sockets.read();
        let channels = self.channels.read();
        let Some(members) = channels.get(channel) else {
            return 0;
        };
        members
            .iter()
            .filter_map(|id| sockets.get(id))
            .filter(|socket| socket.push(text.clone()))
            .count()
    }

    pub(crate) fn unicast(&self, id: &str, event: &str, data: Value) -> bool {
        let socket = self.sockets.read().get(id).cloned();
        match socket {
            Some(socket) if !socket.is_closing() => {
                socket.push(frame::event(event, data));
                true
            }
            _ => false,
        }
    }
}
