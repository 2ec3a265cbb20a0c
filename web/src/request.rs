//! The request an HTTP handler receives (werkzeug's `Request`, as nameko passes it).

use std::fmt;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use nameko_core::method::{FromArg, Natives};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::BadRequest;

/// An HTTP request, whole: what a `#[http]` method receives as its `request` parameter.
///
/// The body has been read (at most `MAX_HTTP_BODY` bytes) before the worker starts.
///
/// ```
/// use nameko_web::Request;
///
/// let request = Request::builder()
///     .method("POST")
///     .uri("/post?lang=en&lang=fr")
///     .header("X-User-Id", "7")
///     .body("hello")
///     .build();
/// assert_eq!(request.method(), "POST");
/// assert_eq!(request.path(), "/post");
/// assert_eq!(request.arg("lang"), Some("en".to_owned()));
/// assert_eq!(request.args_all("lang"), ["en", "fr"]);
/// assert_eq!(request.header("x-user-id"), Some("7"));
/// assert_eq!(request.text().unwrap(), "hello");
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    uri: Uri,
    path: String,
    headers: HeaderMap,
    body: Bytes,
    remote_addr: Option<SocketAddr>,
    path_values: Vec<(String, Value)>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values (Authorization, cookies) and bodies stay out of logs.
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("body_len", &self.body.len())
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub(crate) fn from_parts(
        parts: http::request::Parts,
        path: String,
        body: Bytes,
        remote_addr: Option<SocketAddr>,
        path_values: Vec<(String, Value)>,
    ) -> Self {
        Self {
            method: parts.method,
            uri: parts.uri,
            path,
            headers: parts.headers,
            body,
            remote_addr,
            path_values,
        }
    }

    /// A request to build by hand: for `worker_factory` tests and entrypoint hooks.
    #[must_use]
    pub fn builder() -> RequestBuilder {
        RequestBuilder {
            request: Self {
                method: Method::GET,
                uri: Uri::from_static("/"),
                path: "/".to_owned(),
                headers: HeaderMap::new(),
                body: Bytes::new(),
                remote_addr: None,
                path_values: Vec::new(),
            },
        }
    }

    pub(crate) fn with_path_values(mut self, values: Vec<(String, Value)>) -> Self {
        self.path_values = values;
        self
    }

    /// The method, upper case (`"GET"`).
    #[must_use]
    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    /// The path, percent-decoded (werkzeug's `request.path`).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The request target as sent.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The query string, undecoded (`""` when there is none).
    #[must_use]
    pub fn query_string(&self) -> &str {
        self.uri.query().unwrap_or("")
    }

    /// The query arguments, decoded, in order (werkzeug's `request.args`).
    #[must_use]
    pub fn args(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query_string().as_bytes())
            .into_owned()
            .collect()
    }

    /// The first query argument called `name`.
    #[must_use]
    pub fn arg(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query_string().as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Every query argument called `name` (werkzeug's `request.args.getlist`).
    #[must_use]
    pub fn args_all(&self, name: &str) -> Vec<String> {
        form_urlencoded::parse(self.query_string().as_bytes())
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .collect()
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The first value of a header, if it is text (names are case-insensitive).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's bytes (werkzeug's `request.get_data()`).
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// [`BadRequest`] when it is not UTF-8.
    pub fn text(&self) -> Result<&str, BadRequest> {
        std::str::from_utf8(&self.body)
            .map_err(|e| BadRequest::new(format!("the request body is not UTF-8: {e}")))
    }

    /// The body as text, invalid UTF-8 replaced by U+FFFD (werkzeug's
    /// `request.get_data(as_text=True)`).
    #[must_use]
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`.
    ///
    /// # Errors
    ///
    /// [`BadRequest`] when it is not JSON or does not fit `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, BadRequest> {
        serde_json::from_slice(&self.body)
            .map_err(|e| BadRequest::new(format!("the request body is not valid JSON: {e}")))
    }

    /// The client's address (`None` for a request built by hand).
    #[must_use]
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The values of the rule's variables, converted (werkzeug's `request.path_values`).
    #[must_use]
    pub fn path_values(&self) -> &[(String, Value)] {
        &self.path_values
    }
}

impl FromArg for Request {
    fn from_arg(_json: &Value, natives: &mut Natives) -> Result<Self, String> {
        natives
            .take::<Request>()
            .ok_or_else(|| "is an HTTP request, and only an HTTP entrypoint gives one".to_owned())
    }
}

/// Builds a [`Request`] by hand (see [`Request::builder`]).
#[derive(Debug)]
pub struct RequestBuilder {
    request: Request,
}

impl RequestBuilder {
    /// The method (`"GET"` by default).
    ///
    /// # Panics
    ///
    /// On a method that is not a valid token.
    #[must_use]
    pub fn method(mut self, method: &str) -> Self {
        self.request.method = Method::from_bytes(method.as_bytes()).expect("a valid HTTP method");
        self
    }

    /// The request target: path and query (`"/"` by default); the path is
    /// percent-decoded as the server would.
    ///
    /// # Panics
    ///
    /// On a target that is not a valid URI.
    #[must_use]
    pub fn uri(mut self, uri: &str) -> Self {
        let uri: Uri = uri.parse().expect("a valid request target");
        self.request.path = crate::server::decode_path(uri.path());
        self.request.uri = uri;
        self
    }

    /// Adds a header.
    ///
    /// # Panics
    ///
    /// On an invalid header name or value.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
        self
    }

    /// The body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.request.body = body.into();
        self
    }

    /// The client's address.
    #[must_use]
    pub fn remote_addr(mut self, addr: SocketAddr) -> Self {
        self.request.remote_addr = Some(addr);
        self
    }

    /// The request.
    #[must_use]
    pub fn build(self) -> Request {
        self.request
    }
}
