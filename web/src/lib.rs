//! HTTP entrypoints for nameko-rs: nameko's `@http`, on werkzeug's routing rules, served
//! by one hyper server per process.
//!
//! ```
//! use nameko::prelude::*;
//! use nameko::web::{http, json_dumps, Request, Response};
//!
//! #[derive(Dependencies)]
//! struct HttpService;
//!
//! #[service(name = "http_service")]
//! impl HttpService {
//!     /// `GET /get/42` answers `{"value": 42}` (text/plain, as in nameko).
//!     #[http("GET", "/get/<int:value>")]
//!     async fn get_method(&self, value: i64) -> String {
//!         json_dumps(&json!({"value": value}))
//!     }
//!
//!     /// `POST /post` with a body answers `received: <body>`.
//!     #[http("POST", "/post")]
//!     async fn do_post(&self, request: Request) -> String {
//!         format!("received: {}", request.text_lossy())
//!     }
//!
//!     /// A status and headers: `(status, body)` or `(status, headers, body)`.
//!     #[http("GET", "/privileged")]
//!     async fn forbidden(&self) -> (u16, String) {
//!         (403, "Forbidden".to_owned())
//!     }
//!
//!     /// A full response.
//!     #[http("GET", "/custom")]
//!     async fn custom(&self) -> Response {
//!         Response::new("payload").with_header("X-Custom", "1")
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! # Routing
//!
//! Rules are werkzeug's: `<name>` (a `string`: no `/`, at least one character),
//! `<int:name>` (digits: `/get/007` is 7, `-1` and `+5` do not match), `<float:name>`,
//! `<path:name>` (with `/`), `<uuid:name>` and `<any(a, b):name>`, converter arguments
//! included (`<int(min=1):id>`, `<string(length=2):code>`). Paths are percent-decoded
//! before matching; a rule without a trailing slash does not match a path with one, and a
//! rule with one redirects (308) the path without it. A path that no rule matches is
//! answered 404; a path whose rules do not take the method, 405 with an `Allow` header.
//! `HEAD` is answered for `GET` rules, without a body. Two rules of a process that match
//! the same requests are refused when the second service starts, naming both.
//!
//! # Answers
//!
//! A method returns what nameko accepts: a `String` (200 `text/plain; charset=utf-8`),
//! `(status, body)`, `(status, headers, body)` (headers a map of names to values), or a
//! [`Response`]. An error of the method (`Result<_, E>`) is answered
//! `Error: <exc_type>: <value>\n`, 400 when it is one of the attribute's
//! `expected_exceptions` or a [`BadRequest`], 500 otherwise (a panic too); the
//! attribute's `response_from_exception = hook` answers instead.
//!
//! # The server
//!
//! One [`WebServer`] per process serves the routes of every service of the process, at
//! `WEB_SERVER_ADDRESS` (default `0.0.0.0:8000`). Its limits have configuration keys:
//! `MAX_HTTP_BODY` (bytes, default 16 MiB: larger bodies are answered 413),
//! `HTTP_HEADER_TIMEOUT` (seconds a client has to send its headers, default 30),
//! `MAX_HTTP_CONNECTIONS` (default 1024: further clients wait in the listen backlog). A
//! graceful stop stops accepting, lets requests in flight finish within
//! `SHUTDOWN_TIMEOUT`, then closes (a request still waiting for a free worker when the
//! stop begins is answered 503). [`WebConfig`] adds tower layers (CORS, compression,
//! timeouts of tower-http) and the context data hook; other extensions mount tower
//! services on the server ([`WebServer::route`], [`WebServer::nest`]).
//!
//! # WebSockets
//!
//! `#[ws_rpc]` methods and the [`WebSocketHub`](websocket::WebSocketHub) dependency
//! speak nameko's WebSocket protocol on the same server, at `/ws`: see [`websocket`].

mod body;
mod config;
mod entrypoint;
mod error;
mod request;
mod response;
mod routes;
mod rule;
mod server;
pub mod websocket;

use std::convert::Infallible;

pub use body::Body;
pub use config::{
    ContextDataHook, DEFAULT_ADDRESS, DEFAULT_MAX_BODY, HTTP_HEADER_TIMEOUT, MAX_HTTP_BODY,
    MAX_HTTP_CONNECTIONS, ServerSettings, WEB_SERVER_ADDRESS, WebConfig,
};
pub use entrypoint::{ExceptionHook, HTTP_STATUS_FIELD, Http};
pub use error::{BAD_REQUEST, BadRequest, RuleError, WebError};
pub use request::{Request, RequestBuilder};
pub use response::Response;
pub use rule::Rule;
pub use server::{RemoteAddr, WebServer};

#[doc(no_inline)]
pub use http::{HeaderMap, HeaderValue, Method, StatusCode};
#[doc(no_inline)]
pub use serde_json;

/// Any error of a body or a service.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A tower service of the server: a route, a mount, a layered whole.
pub type HttpService =
    tower::util::BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Infallible>;

/// `value` as Python's `json.dumps` writes it (`{"value": 42}`, `", "` and `": "`
/// separators, non-ASCII escaped), for bodies byte-identical to a Python service's.
///
/// ```
/// use nameko_web::json_dumps;
/// use nameko_web::serde_json::json;
///
/// assert_eq!(json_dumps(&json!({"result": 3.5})), r#"{"result": 3.5}"#);
/// ```
#[must_use]
pub fn json_dumps(value: &impl serde::Serialize) -> String {
    let bytes = nameko_core::json::to_vec(value).unwrap_or_else(|e| {
        // A map with non-string keys: what serde_json says about it.
        format!("{e}").into_bytes()
    });
    String::from_utf8(bytes).unwrap_or_default()
}

/// The `#[http(...)]` attribute of a `#[service]` method: `#[http("GET", "/get/<int:value>")]`.
///
/// The first argument lists the methods as nameko writes them (`"GET,PUT,POST,DELETE"`),
/// the second is a werkzeug rule. Besides the arguments every entrypoint takes
/// (`expected_exceptions = [...]`, answered 400, and `sensitive_arguments = [...]`):
///
/// - `response_from_exception = hook`: `fn(&RemoteError, expected: bool) -> Response`
///   answers the method's errors (nameko's `response_from_exception`);
/// - `context_data_from_headers = hook`: `fn(&Request) -> ContextData` takes the worker's
///   context data from the request (nameko's `context_data_from_headers`).
///
/// ```
/// use nameko::prelude::*;
/// use nameko::errors::RemoteError;
/// use nameko::web::{http, json_dumps, Request, Response};
///
/// #[derive(Debug, NamekoError)]
/// #[nameko(exc_type = "ZeroDivisionError", exc_path = "builtins.ZeroDivisionError", display = "division by zero")]
/// struct ZeroDivisionError;
///
/// fn json_errors(error: &RemoteError, expected: bool) -> Response {
///     Response::json(&json!({"error": error.exc_type, "message": error.value}))
///         .with_status(if expected { 400 } else { 500 })
/// }
///
/// fn user_from_headers(request: &Request) -> ContextData {
///     let mut data = ContextData::new();
///     if let Some(user) = request.header("X-User-Id") {
///         data.set("user_id", user);
///     }
///     data
/// }
///
/// #[derive(Dependencies)]
/// struct Maths;
///
/// #[service(name = "maths")]
/// impl Maths {
///     #[http("GET", "/divide/<int:a>/<int:b>", expected_exceptions = [ZeroDivisionError],
///            response_from_exception = json_errors, context_data_from_headers = user_from_headers)]
///     async fn divide(&self, a: i64, b: i64) -> Result<String, ZeroDivisionError> {
///         if b == 0 {
///             return Err(ZeroDivisionError);
///         }
///         Ok(json_dumps(&json!({"result": a as f64 / b as f64})))
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! http {
    ($methods:expr, $url:expr $(, $key:ident = $value:expr)* $(,)?) => {
        $crate::Http::new($methods, $url) $(.$key($value))*
    };
}

/// The `#[ws_rpc]` attribute of a `#[service]` method: the method is called by frames
/// of nameko's WebSocket protocol on `/ws`, with the socket id as its first argument
/// (see [`websocket`]).
///
/// ```
/// use nameko::prelude::*;
/// use nameko::web::ws_rpc;
///
/// #[derive(Dependencies)]
/// struct Echo;
///
/// #[service(name = "echo_service")]
/// impl Echo {
///     #[ws_rpc]
///     async fn echo(&self, socket_id: String, value: Value) -> Value {
///         value
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! ws_rpc {
    () => {
        $crate::websocket::WsRpc::new()
    };
}
