//! The web server: one per process, shared by every service of the process (nameko's
//! `WebServer` shared extension), on hyper.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use nameko_core::context::ContextData;
use nameko_core::extension::{ContainerContext, ExtensionError, SharedExtension, SharedExtensions};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;
use tracing::Instrument;

use crate::config::{ContextDataHook, ServerSettings, WebConfig};
use crate::error::WebError;
use crate::request::Request;
use crate::response::{self, Response};
use crate::routes::{Handler, Matched, Mount, Route, Table};
use crate::rule::Rule;
use crate::{Body, HttpService};

/// The key of the process's web server among the process-wide shared extensions.
const KEY: &str = "web";

/// The remote address of a connection, in the extensions of every request it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The process's web server: every `#[http]` route of every service of the process, and
/// the tower services other extensions mount on it (a WebSocket endpoint at `/ws`,
/// metrics at `/metrics`), behind one listener at `WEB_SERVER_ADDRESS`.
///
/// An extension of another crate gets it with [`WebServer::of`] during its `setup` (so
/// that the container starts and stops the server with its own life), and adds its
/// service with [`WebServer::route`] (one path) or [`WebServer::nest`] (a path and
/// everything under it), and takes it off with [`WebServer::unmount`] when it stops:
///
/// ```
/// use std::convert::Infallible;
/// use nameko_core::extension::{ContainerContext, ExtensionError};
/// use nameko_web::{Body, WebServer};
///
/// /// During a `setup`: `/metrics` answers with the text of the process's metrics.
/// fn mount_metrics(ctx: &ContainerContext) -> Result<u64, ExtensionError> {
///     let server = WebServer::of(ctx)?;
///     let service = tower::service_fn(|_request: http::Request<Body>| async {
///         Ok::<_, Infallible>(http::Response::new(Body::from("requests_total 1\n")))
///     });
///     Ok(server.route("/metrics", "metrics", service)?)
/// }
/// ```
///
/// A mounted service receives the request as hyper read it (with its body not read yet,
/// and hyper's upgrade handle in its extensions, for WebSockets), and [`RemoteAddr`] in
/// its extensions; the layers of [`WebConfig`] wrap it as they wrap every route.
pub struct WebServer {
    table: Arc<RwLock<Arc<Table>>>,
    settings: Mutex<Option<ServerSettings>>,
    web_config: Mutex<WebConfig>,
    next_id: AtomicU64,
    running: Mutex<Option<Running>>,
    local_addr: Mutex<Option<SocketAddr>>,
    linger: bool,
}

struct Running {
    stop_accepting: CancellationToken,
    kill: CancellationToken,
    accept: JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl fmt::Debug for WebServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebServer")
            .field("local_addr", &*self.local_addr.lock())
            .finish_non_exhaustive()
    }
}

impl Default for WebServer {
    fn default() -> Self {
        Self::new()
    }
}

impl WebServer {
    /// A server with no routes, not configured.
    #[must_use]
    pub fn new() -> Self {
        Self {
            table: Arc::new(RwLock::new(Arc::new(Table::default()))),
            settings: Mutex::new(None),
            web_config: Mutex::new(WebConfig::new()),
            next_id: AtomicU64::new(1),
            running: Mutex::new(None),
            local_addr: Mutex::new(None),
            linger: false,
        }
    }

    /// A server of the process of its own, under `key` (not the key of the server of
    /// [`WebServer::of`]), listening at the address of the configuration key
    /// `address_key` (`METRICS_ADDRESS`), with the other settings of [`WebServer::of`]
    /// and none of the [`WebConfig`] layers: for endpoints kept off the public port
    /// (metrics, health probes), or served by a process that serves no HTTP.
    ///
    /// Unlike the server of [`WebServer::of`], it keeps accepting while its containers
    /// stop gracefully, until their workers have finished: a readiness probe hears that
    /// the process is stopping instead of finding the port closed.
    ///
    /// # Errors
    ///
    /// A configuration error, `address_key` missing or not `[host:]port`, or `key`
    /// being the key of the process's main server.
    pub fn dedicated(
        ctx: &ContainerContext,
        key: &str,
        address_key: &str,
    ) -> Result<Arc<Self>, ExtensionError> {
        if key == KEY {
            return Err(ExtensionError::msg(format!(
                "`{KEY}` is the key of the process's main web server: give a dedicated server another key"
            )));
        }
        let server = ctx.process_shared(key, || Self {
            linger: true,
            ..Self::new()
        });
        let mut settings = server.settings.lock();
        if settings.is_none() {
            let mut read = ServerSettings::from_config(ctx.config())
                .map_err(|e| ExtensionError::msg(e.to_string()))?;
            let address = ctx
                .config()
                .get_str(address_key)
                .map_err(|e| ExtensionError::msg(e.to_string()))?
                .ok_or_else(|| ExtensionError::msg(format!("`{address_key}` is not set")))?;
            read.address = crate::config::parse_address(address)
                .map_err(|e| ExtensionError::msg(format!("{address_key}: {e}")))?;
            *settings = Some(read);
        }
        drop(settings);
        Ok(server)
    }

    /// The process's web server, as the extensions of a container use it: made by the
    /// first one that asks, configured from that container's configuration
    /// (`WEB_SERVER_ADDRESS`, `MAX_HTTP_BODY`, `HTTP_HEADER_TIMEOUT`,
    /// `MAX_HTTP_CONNECTIONS`, `SHUTDOWN_TIMEOUT`) and the [`WebConfig`] state given to the
    /// runner. Call it during an extension's `setup`: the container then starts the server
    /// with it, and stops it with the last container that uses it.
    ///
    /// # Errors
    ///
    /// A configuration error.
    pub fn of(ctx: &ContainerContext) -> Result<Arc<Self>, ExtensionError> {
        let server = ctx.process_shared(KEY, Self::new);
        let mut settings = server.settings.lock();
        if settings.is_none() {
            *settings = Some(
                ServerSettings::from_config(ctx.config())
                    .map_err(|e| ExtensionError::msg(e.to_string()))?,
            );
            if let Some(config) = ctx.states().get::<WebConfig>() {
                *server.web_config.lock() = config.clone();
            }
        }
        drop(settings);
        Ok(server)
    }

    /// The process's web server in a scope of shared extensions, if a container made one
    /// (a test cluster's, a runner's).
    #[must_use]
    pub fn in_scope(scope: &SharedExtensions) -> Option<Arc<Self>> {
        scope.get::<Self>(KEY)
    }

    /// Where it listens, once started (the port chosen for port 0).
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self.local_addr.lock()
    }

    /// The settings it was configured with.
    #[must_use]
    pub fn settings(&self) -> Option<ServerSettings> {
        self.settings.lock().clone()
    }

    /// Answers requests for exactly `path` (`/metrics`) with `service`, whatever their
    /// method; `name` is for messages. Returns the id [`WebServer::unmount`] takes.
    ///
    /// # Errors
    ///
    /// [`WebError::MountPath`] for a path that is not `/something`, [`WebError::Clash`]
    /// naming the mount already at that path.
    pub fn route<S, B>(&self, path: &str, name: &str, service: S) -> Result<u64, WebError>
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<crate::BoxError>,
    {
        self.mount(path, name, service, false)
    }

    /// Answers requests for `prefix` and every path under it (`/ws`, `/ws/room/1`) with
    /// `service`. Returns the id [`WebServer::unmount`] takes.
    ///
    /// # Errors
    ///
    /// As [`WebServer::route`].
    pub fn nest<S, B>(&self, prefix: &str, name: &str, service: S) -> Result<u64, WebError>
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<crate::BoxError>,
    {
        self.mount(prefix, name, service, true)
    }

    fn mount<S, B>(&self, path: &str, name: &str, service: S, nested: bool) -> Result<u64, WebError>
    where
        S: tower::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: http_body::Body<Data = bytes::Bytes> + Send + Sync + 'static,
        B::Error: Into<crate::BoxError>,
    {
        if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') {
            return Err(WebError::MountPath(path.to_owned()));
        }
        let service =
            BoxCloneSyncService::new(service.map_response(|r: http::Response<B>| r.map(Body::new)));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.change(|table| {
            table.add_mount(Mount {
                id,
                path: path.to_owned(),
                nested,
                name: name.to_owned(),
                service,
            })
        })?;
        Ok(id)
    }

    /// An `#[http]` route whose service stopped while the server goes on (for other
    /// services of the process): answered 503 rather than 404 until a service that
    /// serves the same rule starts.
    pub(crate) fn retire_route(&self, id: u64) {
        let _ = self.change(|table| {
            table.retire(id);
            Ok(())
        });
    }

    /// Takes a route or a mount off.
    pub fn unmount(&self, id: u64) {
        let _ = self.change(|table| {
            table.remove(id);
            Ok(())
        });
    }

    /// Runs the `#[http]` entrypoint `service.method` on a request built by hand, through
    /// the same path as a client's request (worker, hooks, error answers), without the
    /// network: the testing toolkit's `entrypoint_hook` for HTTP methods. The request's
    /// path must match the entrypoint's rule; its variables are taken from it.
    ///
    /// # Errors
    ///
    /// [`WebError::NoEntrypoint`] when no such entrypoint is served,
    /// [`WebError::PathMismatch`] when the path does not match its rule.
    pub async fn call_entrypoint(
        &self,
        service: &str,
        method: &str,
        request: Request,
    ) -> Result<Response, WebError> {
        let owner = format!("{service}.{method}");
        let table = self.table.read().clone();
        let route = table
            .route_of(&owner)
            .ok_or_else(|| WebError::NoEntrypoint(owner.clone()))?;
        let values = route
            .rule
            .matches(request.path())
            .ok_or_else(|| WebError::PathMismatch {
                path: request.path().to_owned(),
                rule: route.rule.as_str().to_owned(),
            })?;
        let handler = route.handler.clone();
        drop(table);
        let response = handler(request.with_path_values(values)).await;
        Ok(Response::from_http(response).await)
    }

    pub(crate) fn add_route(
        &self,
        rule: Rule,
        methods: &str,
        owner: String,
        handler: Handler,
    ) -> Result<u64, WebError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let route = Route::new(id, rule, methods, owner, handler)?;
        self.change(|table| table.add_route(route))?;
        Ok(id)
    }

    pub(crate) fn default_context_hook(&self) -> Option<ContextDataHook> {
        self.web_config.lock().context_hook()
    }

    /// The context data of a request by the server's hook
    /// ([`WebConfig::context_data_from_headers`]; empty without one, as in nameko): what
    /// an extension that serves requests of its own (a WebSocket upgrade) gives the
    /// workers it starts for them.
    #[must_use]
    pub fn context_data_from_headers(&self, request: &Request) -> ContextData {
        self.default_context_hook()
            .map_or_else(ContextData::new, |hook| hook(request))
    }

    fn change(&self, f: impl FnOnce(&mut Table) -> Result<(), WebError>) -> Result<(), WebError> {
        let mut guard = self.table.write();
        let mut table = Table::clone(&guard);
        f(&mut table)?;
        *guard = Arc::new(table);
        Ok(())
    }
}

#[async_trait::async_trait]
impl SharedExtension for WebServer {
    async fn start(&self) -> Result<(), ExtensionError> {
        if self.running.lock().is_some() {
            return Ok(());
        }
        let settings = self.settings.lock().clone().ok_or_else(|| {
            ExtensionError::msg("the web server was not configured: get it with WebServer::of")
        })?;
        let listener = TcpListener::bind(settings.address)
            .await
            .map_err(|source| {
                ExtensionError::msg(
                    WebError::Bind {
                        address: settings.address,
                        source,
                    }
                    .to_string(),
                )
            })?;
        let local = listener
            .local_addr()
            .map_err(|e| ExtensionError::msg(format!("web server address: {e}")))?;
        *self.local_addr.lock() = Some(local);
        tracing::info!(address = %local, "web server listening");

        let dispatcher = Dispatcher {
            table: self.table.clone(),
            max_body: settings.max_body,
            body_timeout: settings.header_timeout,
        };
        let base: HttpService = BoxCloneSyncService::new(dispatcher);
        let service = self.web_config.lock().apply_layers(base);
        let stop_accepting = CancellationToken::new();
        let kill = CancellationToken::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            service,
            settings.clone(),
            stop_accepting.clone(),
            kill.clone(),
        ));
        *self.running.lock() = Some(Running {
            stop_accepting,
            kill,
            accept,
            shutdown_timeout: settings.shutdown_timeout,
        });
        Ok(())
    }

    async fn stop(&self) {
        if self.linger {
            return;
        }
        if let Some(running) = &*self.running.lock() {
            running.stop_accepting.cancel();
        }
    }

    async fn close(&self) {
        let running = self.running.lock().take();
        let Some(running) = running else { return };
        running.stop_accepting.cancel();
        let Running {
            kill,
            mut accept,
            shutdown_timeout,
            ..
        } = running;
        if tokio::time::timeout(shutdown_timeout, &mut accept)
            .await
            .is_err()
        {
            tracing::warn!(
                timeout = ?shutdown_timeout,
                "requests still in flight after SHUTDOWN_TIMEOUT: closing their connections"
            );
            kill.cancel();
            let _ = accept.await;
        }
        *self.local_addr.lock() = None;
        tracing::info!("web server stopped");
    }

    async fn kill(&self) {
        let running = self.running.lock().take();
        if let Some(running) = running {
            running.stop_accepting.cancel();
            running.kill.cancel();
            let _ = running.accept.await;
        }
        *self.local_addr.lock() = None;
    }
}

/// Decodes a request path as werkzeug does (`%32` is `2`; invalid UTF-8 replaced).
pub(crate) fn decode_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// Accepts connections until stopped, at most `max_connections` at once, then lets the
/// open ones finish their requests.
async fn accept_loop(
    listener: TcpListener,
    service: HttpService,
    settings: ServerSettings,
    stop_accepting: CancellationToken,
    kill: CancellationToken,
) {
    let connections_open = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            biased;
            () = stop_accepting.cancelled() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            biased;
            () = stop_accepting.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait, and let connections close.
                    tracing::warn!(%error, "web server cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let hyper_service = ConnectionService {
            service: service.clone(),
            remote,
        };
        // With upgrades: a WebSocket takes the connection over (and leaves this
        // task, and the count of connections, once upgraded).
        let connection = builder
            .serve_connection(TokioIo::new(stream), hyper_service)
            .with_upgrades();
        let kill = kill.clone();
        let stopping = stop_accepting.clone();
        connections_open.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    biased;
                    () = kill.cancelled() => break,
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, %remote, "HTTP connection ended with an error");
                        }
                        break;
                    }
                    () = stopping.cancelled(), if !shutting_down => {
                        // Finish the request in flight, then close.
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    connections_open.close();
    tokio::select! {
        () = connections_open.wait() => {}
        () = kill.cancelled() => {}
    }
}

/// The server's service as hyper calls it for one connection.
#[derive(Clone)]
struct ConnectionService {
    service: HttpService,
    remote: SocketAddr,
}

impl hyper::service::Service<http::Request<Incoming>> for ConnectionService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tower::util::Oneshot<HttpService, http::Request<Body>>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        request.extensions_mut().insert(RemoteAddr(self.remote));
        let request = request.map(box_incoming);
        self.service.clone().oneshot(request)
    }
}

fn box_incoming(body: Incoming) -> Body {
    Body::new(body)
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<Body>> for Dispatcher {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let dispatcher = self.clone();
        Box::pin(async move { Ok(dispatcher.dispatch(request).await) })
    }
}

/// Finds what answers a request and runs it.
#[derive(Clone)]
struct Dispatcher {
    table: Arc<RwLock<Arc<Table>>>,
    max_body: usize,
    body_timeout: Duration,
}

impl Dispatcher {
    async fn dispatch(&self, request: http::Request<Body>) -> http::Response<Body> {
        let path = decode_path(request.uri().path());
        let span = tracing::debug_span!("http_request", method = %request.method(), path = %path);
        let answer = AssertUnwindSafe(self.answer(request, path).instrument(span))
            .catch_unwind()
            .await;
        answer.unwrap_or_else(|_| {
            tracing::error!("the web server panicked while answering a request");
            Response::new("Error: the server failed while answering\n")
                .with_status(500)
                .into_http()
        })
    }

    async fn answer(&self, request: http::Request<Body>, path: String) -> http::Response<Body> {
        let table = self.table.read().clone();
        match table.lookup(request.method().as_str(), &path) {
            Matched::Mount(service) => match service.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            },
            Matched::Route(handler, values) => {
                let remote = request.extensions().get::<RemoteAddr>().map(|r| r.0);
                let (parts, body) = request.into_parts();
                let too_large = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|n| n > self.max_body as u64);
                if too_large {
                    return response::payload_too_large();
                }
                let read = Limited::new(body, self.max_body).collect();
                let body = match tokio::time::timeout(self.body_timeout, read).await {
                    Ok(Ok(collected)) => collected.to_bytes(),
                    Ok(Err(error)) => {
                        if error.is::<http_body_util::LengthLimitError>() {
                            return response::payload_too_large();
                        }
                        tracing::debug!(%error, "request body could not be read");
                        return response::bad_request(
                            "The browser (or proxy) sent a request that this server could not understand.",
                        );
                    }
                    Err(_) => {
                        return response::bad_request("The request body did not arrive in time.");
                    }
                };
                handler(Request::from_parts(parts, path, body, remote, values)).await
            }
            Matched::Redirect => {
                let host = request
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                let mut location = format!("http://{host}{}/", request.uri().path());
                if let Some(query) = request.uri().query() {
                    location.push('?');
                    location.push_str(query);
                }
                response::redirect(&location)
            }
            Matched::MethodNotAllowed(allowed) => response::method_not_allowed(&allowed),
            Matched::NotFound => response::not_found(),
        }
    }
}
