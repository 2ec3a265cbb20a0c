//! How the web server is configured: configuration keys, and from code the tower layers
//! and the context data hook ([`WebConfig`]).

use std::convert::Infallible;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nameko_core::config::Config;
use nameko_core::context::ContextData;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceExt};

use crate::error::WebError;
use crate::request::Request;
use crate::{Body, BoxError, HttpService};

/// `WEB_SERVER_ADDRESS`: where the process's web server listens, `[host:]port` (nameko's
/// key); default `0.0.0.0:8000`. Port 0 takes a free port.
pub const WEB_SERVER_ADDRESS: &str = "WEB_SERVER_ADDRESS";
/// `MAX_HTTP_BODY`: the largest request body read, in bytes; default 16 MiB. Larger
/// bodies are answered 413.
pub const MAX_HTTP_BODY: &str = "MAX_HTTP_BODY";
/// `HTTP_HEADER_TIMEOUT`: seconds a client has to send a request's headers; default 30.
/// A slower client is disconnected.
pub const HTTP_HEADER_TIMEOUT: &str = "HTTP_HEADER_TIMEOUT";
/// `MAX_HTTP_CONNECTIONS`: connections served at once; default 1024. Further clients
/// wait in the listen backlog until one closes.
pub const MAX_HTTP_CONNECTIONS: &str = "MAX_HTTP_CONNECTIONS";

/// The default of `WEB_SERVER_ADDRESS`.
pub const DEFAULT_ADDRESS: &str = "0.0.0.0:8000";
/// The default of `MAX_HTTP_BODY`: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// The server's settings, read from the configuration of the first container that uses
/// the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// `WEB_SERVER_ADDRESS`, resolved.
    pub address: SocketAddr,
    /// `MAX_HTTP_BODY`.
    pub max_body: usize,
    /// `HTTP_HEADER_TIMEOUT`.
    pub header_timeout: Duration,
    /// `MAX_HTTP_CONNECTIONS`.
    pub max_connections: usize,
    /// `SHUTDOWN_TIMEOUT`: how long a graceful stop waits for requests in flight.
    pub shutdown_timeout: Duration,
}

impl ServerSettings {
    /// Reads the settings from a configuration.
    ///
    /// ```
    /// use nameko_core::config::Config;
    /// use nameko_web::ServerSettings;
    ///
    /// let config = Config::new().with("WEB_SERVER_ADDRESS", "127.0.0.1:0");
    /// let settings = ServerSettings::from_config(&config).unwrap();
    /// assert_eq!(settings.address.to_string(), "127.0.0.1:0");
    /// assert_eq!(settings.max_body, 16 * 1024 * 1024);
    ///
    /// let bad = Config::new().with("WEB_SERVER_ADDRESS", "localhost:http");
    /// assert!(ServerSettings::from_config(&bad).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebError::Address`] for an address that is not `[host:]port`, a config error
    /// (wrapped as [`WebError`]) for a value of the wrong type.
    pub fn from_config(config: &Config) -> Result<Self, WebError> {
        let address = config
            .get_str(WEB_SERVER_ADDRESS)
            .map_err(|e| WebError::Address(e.to_string()))?
            .unwrap_or(DEFAULT_ADDRESS);
        let config_error = |e: nameko_core::config::ConfigError| WebError::Config(e.to_string());
        Ok(Self {
            address: parse_address(address)?,
            max_body: config
                .get_u64(MAX_HTTP_BODY)
                .map_err(config_error)?
                .map_or(DEFAULT_MAX_BODY, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }),
            header_timeout: config
                .get_seconds(HTTP_HEADER_TIMEOUT)
                .map_err(config_error)?
                .unwrap_or(Duration::from_secs(30)),
            max_connections: config
                .get_u64(MAX_HTTP_CONNECTIONS)
                .map_err(config_error)?
                .map_or(1024, |n| usize::try_from(n.max(1)).unwrap_or(usize::MAX)),
            shutdown_timeout: config.shutdown_timeout().map_err(config_error)?,
        })
    }
}

/// nameko's `[address:]port`, the address defaulting to all interfaces.
pub(crate) fn parse_address(text: &str) -> Result<SocketAddr, WebError> {
    let bad = || WebError::Address(text.to_owned());
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(['[', ']']), port),
        None => ("0.0.0.0", text),
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    (host, port)
        .to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)
}

type LayerFn = Arc<dyn Fn(HttpService) -> HttpService + Send + Sync>;
/// Context data taken from a request.
pub type ContextDataHook = Arc<dyn Fn(&Request) -> ContextData + Send + Sync>;

/// What a process's web server takes from code: tower layers around every route, and
/// the default context data hook. Give it to the runner (or test cluster) as state,
/// before the services start.
///
/// CORS for browsers on another origin, with tower-http:
///
/// ```
/// use http::{HeaderValue, Method};
/// use nameko::prelude::*;
/// use nameko_web::WebConfig;
/// use tower_http::cors::CorsLayer;
///
/// let cors = CorsLayer::new()
///     .allow_origin("https://app.example.com".parse::<HeaderValue>().unwrap())
///     .allow_methods([Method::GET, Method::POST]);
/// let web = WebConfig::new()
///     .layer(cors)
///     .context_data_from_headers(|request| {
///         let mut data = ContextData::new();
///         if let Some(user) = request.header("X-User-Id") {
///             data.set("user_id", user);
///         }
///         data
///     });
/// # let config = Config::new();
/// # let transport = std::sync::Arc::new(nameko::memory::MemoryBroker::new().connect());
/// let runner = ServiceRunner::new(config, transport).with_state(web);
/// ```
#[derive(Clone, Default)]
pub struct WebConfig {
    layers: Vec<LayerFn>,
    context_data: Option<ContextDataHook>,
}

impl fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("layers", &self.layers.len())
            .field("context_data_from_headers", &self.context_data.is_some())
            .finish()
    }
}

impl WebConfig {
    /// No layers, no context data (as in nameko).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tower layer around every route and mount of the server (CORS, compression,
    /// timeouts of tower-http). The first layer added is the outermost. An error of the
    /// layer's service is answered 500.
    #[must_use]
    pub fn layer<L, B, E>(mut self, layer: L) -> Self
    where
        L: Layer<HttpService> + Send + Sync + 'static,
        L::Service: Service<http::Request<Body>, Response = http::Response<B>, Error = E>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<http::Request<Body>>>::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
        E: Into<BoxError> + 'static,
    {
        self.layers.push(Arc::new(move |inner: HttpService| {
            BoxCloneSyncService::new(Layered {
                inner: layer.layer(inner),
            })
        }));
        self
    }

    /// The hook that makes a request's context data (nameko's
    /// `WebServer.context_data_from_headers`), for every HTTP entrypoint that has none of
    /// its own. Without one, HTTP workers start with empty context data, as in nameko.
    #[must_use]
    pub fn context_data_from_headers(
        mut self,
        hook: impl Fn(&Request) -> ContextData + Send + Sync + 'static,
    ) -> Self {
        self.context_data = Some(Arc::new(hook));
        self
    }

    pub(crate) fn apply_layers(&self, service: HttpService) -> HttpService {
        self.layers
            .iter()
            .rev()
            .fold(service, |service, layer| layer(service))
    }

    pub(crate) fn context_hook(&self) -> Option<ContextDataHook> {
        self.context_data.clone()
    }
}

/// A layer's service, its body and errors made the server's.
#[derive(Clone)]
struct Layered<S> {
    inner: S,
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, E> Service<http::Request<Body>> for Layered<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = E>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
    E: Into<BoxError> + 'static,
{
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
        let service = self.inner.clone();
        let future = service.oneshot(request);
        Box::pin(async move {
            Ok(match future.await {
                Ok(response) => response.map(box_body),
                Err(error) => {
                    let error: BoxError = error.into();
                    tracing::error!(%error, "a layer of the web server failed");
                    crate::Response::new(format!("Error: {error}\n"))
                        .with_status(500)
                        .into_http()
                }
            })
        })
    }
}

fn box_body<B>(body: B) -> Body
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    Body::new(body)
}
