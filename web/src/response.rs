//! What an HTTP handler answers: nameko's accepted return values, a full [`Response`], and
//! the answers of the server itself (werkzeug's error pages).

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use nameko_core::errors::RemoteError;
use nameko_core::method::{IntoOutput, Output};
use serde_json::Value;

use crate::Body;

/// werkzeug's default content type.
pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
const TEXT_HTML: &str = "text/html; charset=utf-8";

/// A full HTTP response, as a handler returns it when a string or a tuple is not enough
/// (werkzeug's `Response`).
///
/// Handlers may also return what nameko accepts: a `String` (200, `text/plain;
/// charset=utf-8`), `(status, body)` or `(status, headers, body)` with `headers` a map of
/// names to values.
///
/// ```
/// use nameko_web::Response;
///
/// let response = Response::new("payload");
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.header("content-type"), Some("text/plain; charset=utf-8"));
///
/// let created = Response::new(r#"{"id": 1}"#)
///     .with_status(201)
///     .with_content_type("application/json")
///     .with_header("Location", "/widgets/1");
/// assert_eq!(created.status(), 201);
/// assert_eq!(created.body().as_ref(), br#"{"id": 1}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Response {
    /// A 200 response with `body`, `text/plain; charset=utf-8`.
    #[must_use]
    pub fn new(body: impl Into<Bytes>) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
        Self {
            status: StatusCode::OK,
            headers,
            body: body.into(),
        }
    }

    /// A 200 `application/json` response with `value` written as Python's `json.dumps`
    /// writes it (`{"value": 42}`).
    #[must_use]
    pub fn json(value: &impl serde::Serialize) -> Self {
        Self::new(crate::json_dumps(value)).with_content_type("application/json")
    }

    /// The same response with another status.
    ///
    /// # Panics
    ///
    /// On a status outside 100 to 999.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = StatusCode::from_u16(status).expect("an HTTP status from 100 to 999");
        self
    }

    /// The same response with a header set (replacing a header of that name).
    ///
    /// # Panics
    ///
    /// On an invalid header name or value.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
        self
    }

    /// The same response with another content type (werkzeug's `mimetype`).
    #[must_use]
    pub fn with_content_type(self, content_type: &str) -> Self {
        self.with_header("content-type", content_type)
    }

    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status.as_u16()
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The first value of a header, if it is text.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body.
    #[must_use]
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// nameko's answer to a failed worker: `Error: <exc_type>: <value>\n`, 400 when the
    /// error is expected (or a `BadRequest`), 500 otherwise.
    #[must_use]
    pub fn from_error(error: &RemoteError, expected: bool) -> Self {
        let status = if expected || error.exc_path == crate::error::BAD_REQUEST {
            400
        } else {
            500
        };
        Self::new(format!("Error: {}: {}\n", error.exc_type, error.value)).with_status(status)
    }

    /// What a method's JSON return value means, as nameko reads it: a string is the body,
    /// `[status, body]` and `[status, headers, body]` are nameko's tuples.
    ///
    /// # Errors
    ///
    /// nameko's `TypeError` (`Payload must be a string. Got ...`) for anything else.
    pub fn from_json(value: Value) -> Result<Self, RemoteError> {
        let (status, headers, payload) = match value {
            Value::Array(mut items) if (2..=3).contains(&items.len()) && items[0].is_u64() => {
                let payload = items.pop().unwrap_or(Value::Null);
                let headers = if items.len() == 2 { items.pop() } else { None };
                let status = items[0].as_u64().unwrap_or(200);
                (status, headers, payload)
            }
            other => (200, None, other),
        };
        let Value::String(body) = payload else {
            return Err(type_error(format!(
                "Payload must be a string. Got `{}`",
                python_repr(&payload)
            )));
        };
        let status = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .ok_or_else(|| type_error(format!("invalid HTTP status {status}")))?;
        let mut response = Self::new(body);
        response.status = status;
        if let Some(headers) = headers {
            let Value::Object(map) = headers else {
                return Err(type_error(format!(
                    "headers must be a mapping of names to values. Got `{}`",
                    python_repr(&headers)
                )));
            };
            for (name, value) in map {
                let values = match value {
                    Value::Array(values) => values,
                    one => vec![one],
                };
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| type_error(format!("invalid header name `{name}`: {e}")))?;
                let mut first = true;
                for value in values {
                    let text = match value {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    let value = HeaderValue::from_str(&text).map_err(|e| {
                        type_error(format!("invalid value of header `{name}`: {e}"))
                    })?;
                    if first {
                        response.headers.insert(name.clone(), value);
                        first = false;
                    } else {
                        response.headers.append(name.clone(), value);
                    }
                }
            }
        }
        Ok(response)
    }

    /// The response of a method's output: a native [`Response`], or JSON read as nameko
    /// reads return values.
    ///
    /// # Errors
    ///
    /// As [`Response::from_json`], or for a native value of another entrypoint.
    pub fn from_output(output: Output) -> Result<Self, RemoteError> {
        match output.downcast::<Self>() {
            Ok(response) => Ok(response),
            Err(Output::Json(value)) => Self::from_json(value),
            Err(_) => Err(type_error(
                "the handler returned a value no HTTP response can be made of".to_owned(),
            )),
        }
    }

    /// The response a handler's return value makes, as the entrypoint makes it: for
    /// tests of handlers built with `worker_factory`.
    ///
    /// ```
    /// use nameko_web::Response;
    ///
    /// let response = Response::from_return((403, "Forbidden")).unwrap();
    /// assert_eq!((response.status(), response.text()), (403, "Forbidden".to_owned()));
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Response::from_json`].
    pub fn from_return<T: IntoOutput>(value: T) -> Result<Self, RemoteError> {
        Self::from_output(value.into_output()?)
    }

    /// Reads a whole `http` response back.
    pub(crate) async fn from_http(response: http::Response<Body>) -> Self {
        use http_body_util::BodyExt;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub(crate) fn into_http(self) -> http::Response<Body> {
        let mut response = http::Response::new(full(self.body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        response
    }
}

impl IntoOutput for Response {
    fn into_output(self) -> Result<Output, RemoteError> {
        Ok(Output::Native(Box::new(self)))
    }
}

impl From<Response> for http::Response<Body> {
    fn from(response: Response) -> Self {
        response.into_http()
    }
}

pub(crate) fn type_error(message: String) -> RemoteError {
    RemoteError::new(
        "TypeError",
        "builtins.TypeError",
        [message.clone()],
        message,
    )
}

/// Python's repr of a JSON value, close enough for an error message.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        other => other.to_string(),
    }
}

/// A body of bytes.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Body::from(bytes.into())
}

/// werkzeug's HTML error page.
fn werkzeug_page(status: StatusCode, title: &str, description: &str) -> http::Response<Body> {
    let body = format!(
        "<!doctype html>\n<html lang=en>\n<title>{} {title}</title>\n<h1>{title}</h1>\n<p>{description}</p>\n",
        status.as_u16()
    );
    let mut response = http::Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_HTML));
    response
}

/// werkzeug's 404.
pub(crate) fn not_found() -> http::Response<Body> {
    werkzeug_page(
        StatusCode::NOT_FOUND,
        "Not Found",
        "The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.",
    )
}

/// werkzeug's 405, with the methods the path allows.
pub(crate) fn method_not_allowed(allowed: &[String]) -> http::Response<Body> {
    let mut response = werkzeug_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method Not Allowed",
        "The method is not allowed for the requested URL.",
    );
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// werkzeug's 413.
pub(crate) fn payload_too_large() -> http::Response<Body> {
    werkzeug_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "Request Entity Too Large",
        "The data value transmitted exceeds the capacity limit.",
    )
}

/// werkzeug's 400 for a body that could not be read.
pub(crate) fn bad_request(description: &str) -> http::Response<Body> {
    werkzeug_page(StatusCode::BAD_REQUEST, "Bad Request", description)
}

/// werkzeug's 503, while the service stops.
pub(crate) fn unavailable() -> http::Response<Body> {
    werkzeug_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Service Unavailable",
        "The server is temporarily unable to service your request due to maintenance downtime or capacity problems.  Please try again later.",
    )
}

/// werkzeug's permanent redirect to the rule with its trailing slash.
pub(crate) fn redirect(location: &str) -> http::Response<Body> {
    let escaped = location
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let body = format!(
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: <a href=\"{escaped}\">{escaped}</a>. If not, click the link.\n"
    );
    let mut response = http::Response::new(full(body));
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_HTML));
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}
