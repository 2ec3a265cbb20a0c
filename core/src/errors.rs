//! Errors on nameko's wire: the error dict, the errors services raise, and the errors
//! callers get back.
//!
//! A failing worker replies with nameko's error dict
//! `{"exc_type", "exc_path", "exc_args", "value"}` ([`RemoteError`]). A service method
//! chooses what goes in it by returning an error that implements [`IntoRemoteError`]:
//! a type implementing [`NamekoError`] (usually through `#[derive(NamekoError)]`), a
//! [`ServiceError`] built from any error, or an [`RpcError`] from a downstream call,
//! which is re-raised the way Python nameko would re-raise it.
//!
//! # What callers get back
//!
//! Callers get an [`RpcError`]: typed for nameko's standard errors (`MethodNotFound`,
//! `IncorrectSignature`, `MalformedRequest`), [`RpcError::Registered`] for the user
//! error types that opted in to Python's `@deserialize_to_instance`, and
//! [`RpcError::Remote`] for everything else. Any error can still be rebuilt on purpose
//! with [`RpcError::decode`].
//!
//! This decides what a service re-raises when it lets a downstream error propagate
//! (`self.products.call("get", (id,)).await?`), exactly as in Python nameko: a registered
//! error goes on with its own `exc_type` and `exc_path`; any other becomes
//! `RemoteError("<exc_type> <value>")`, so that a Python caller sees
//! `RemoteError: RemoteError ProductNotFound product 7 not found`.
//!
//! An error type opts in with `#[nameko(deserialize_to_instance)]` on its derive (or with
//! [`register_error`]); the registry is filled before `main` from every crate linked in,
//! whichever services the process runs, so the same call fails the same way whether the
//! services involved run in one process or in several (see [`register_error`]).
//!
//! ```
//! use nameko_core::errors::{IntoRemoteError, RemoteError, RpcError};
//!
//! // A reply from `products`, whose `ProductNotFound` nobody here registered:
//! let reply = RemoteError::new(
//!     "ProductNotFound", "products.ProductNotFound", ["product 7 not found"], "product 7 not found",
//! );
//! let error = RpcError::from_remote(reply);
//! assert!(matches!(error, RpcError::Remote(_)));
//!
//! // Propagated by `orders` with `?`, it reaches orders' caller as nameko's RemoteError:
//! let raised = error.into_remote_error();
//! assert_eq!(raised.exc_type, "RemoteError");
//! assert_eq!(raised.exc_path, "nameko.exceptions.RemoteError");
//! assert_eq!(raised.value, "ProductNotFound product 7 not found");
//! ```

mod registry;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::transport::TransportError;

pub(crate) use registry::register_encoder;
pub use registry::{ErrorRegistration, is_registered, register_error, register_nameko_error};

/// `exc_path` of nameko's `MethodNotFound`.
pub const METHOD_NOT_FOUND: &str = "nameko.exceptions.MethodNotFound";
/// `exc_path` of nameko's `IncorrectSignature`.
pub const INCORRECT_SIGNATURE: &str = "nameko.exceptions.IncorrectSignature";
/// `exc_path` of nameko's `MalformedRequest`.
pub const MALFORMED_REQUEST: &str = "nameko.exceptions.MalformedRequest";
/// `exc_path` of nameko's `UnserializableValueError`.
pub const UNSERIALIZABLE_VALUE: &str = "nameko.exceptions.UnserializableValueError";
/// `exc_path` of nameko's `UnknownService`.
pub const UNKNOWN_SERVICE: &str = "nameko.exceptions.UnknownService";
/// `exc_path` of nameko's `RpcTimeout`.
pub const RPC_TIMEOUT: &str = "nameko.exceptions.RpcTimeout";
/// `exc_path` of nameko's `RemoteError`.
pub const REMOTE_ERROR: &str = "nameko.exceptions.RemoteError";
/// `exc_path` of nameko 3's `ReplyQueueExpiredWithPendingReplies`.
pub const REPLY_QUEUE_EXPIRED: &str = "nameko.exceptions.ReplyQueueExpiredWithPendingReplies";

/// nameko's error dict: what a worker's exception looks like on the wire, and what a
/// caller gets when a remote call fails with an error that has no typed form.
///
/// ```
/// use nameko_core::errors::RemoteError;
///
/// let err = RemoteError::new("ValueError", "builtins.ValueError", ["Division by zero"], "Division by zero");
/// assert_eq!(err.to_string(), "ValueError Division by zero");
/// assert_eq!(
///     serde_json::to_string(&err).unwrap(),
///     r#"{"exc_type":"ValueError","exc_path":"builtins.ValueError","exc_args":["Division by zero"],"value":"Division by zero"}"#,
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteError {
    /// The exception's class name, e.g. `ValueError`.
    pub exc_type: String,
    /// Module path and class name, e.g. `builtins.ValueError`. Old nameko versions
    /// (before 1.5) sent none; it is then empty.
    #[serde(default)]
    pub exc_path: String,
    /// The exception's arguments, made safe for JSON: strings, lists and dicts of them.
    #[serde(default)]
    pub exc_args: Vec<Value>,
    /// `str()` of the exception.
    #[serde(default, deserialize_with = "value_as_string")]
    pub value: String,
}

fn value_as_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

impl RemoteError {
    /// An error dict from its four fields; `exc_args` are made safe for serialization
    /// the way nameko does it (see [`safe_for_serialization`]).
    #[must_use]
    pub fn new<A: Into<Value>>(
        exc_type: impl Into<String>,
        exc_path: impl Into<String>,
        exc_args: impl IntoIterator<Item = A>,
        value: impl Into<String>,
    ) -> Self {
        Self {
            exc_type: exc_type.into(),
            exc_path: exc_path.into(),
            exc_args: exc_args
                .into_iter()
                .map(|a| safe_for_serialization(a.into()))
                .collect(),
            value: value.into(),
        }
    }

    fn nameko(class: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            class,
            format!("nameko.exceptions.{class}"),
            [message.clone()],
            message,
        )
    }

    /// `MethodNotFound(method)`, as nameko answers a call to a method the service lacks.
    #[must_use]
    pub fn method_not_found(method: impl Into<String>) -> Self {
        Self::nameko("MethodNotFound", method)
    }

    /// `IncorrectSignature(message)`, for arguments that do not fit the method.
    #[must_use]
    pub fn incorrect_signature(message: impl Into<String>) -> Self {
        Self::nameko("IncorrectSignature", message)
    }

    /// `MalformedRequest(message)`, for a request the service cannot read.
    #[must_use]
    pub fn malformed_request(message: impl Into<String>) -> Self {
        Self::nameko("MalformedRequest", message)
    }

    /// `UnserializableValueError`, for a result that cannot be serialized: no args, and
    /// a value of ``Unserializable value: `<repr>` ``.
    #[must_use]
    pub fn unserializable_value(repr: impl fmt::Display) -> Self {
        Self {
            exc_type: "UnserializableValueError".to_owned(),
            exc_path: UNSERIALIZABLE_VALUE.to_owned(),
            exc_args: Vec::new(),
            value: format!("Unserializable value: `{repr}`"),
        }
    }

    /// `TypeError(message)`, the way Python reports an argument of the wrong type.
    #[must_use]
    pub fn type_error(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            "TypeError",
            "builtins.TypeError",
            [message.clone()],
            message,
        )
    }

    /// The first of `exc_args` when it is a string, else `value`: the message a typed
    /// error is rebuilt from.
    #[must_use]
    pub fn message(&self) -> &str {
        self.exc_args
            .first()
            .and_then(Value::as_str)
            .unwrap_or(&self.value)
    }

    /// Rebuilds a user error type from this error dict, if its `exc_path` is the type's.
    ///
    /// Works whether or not the type was registered with [`register_error`].
    #[must_use]
    pub fn decode<E: FromRemoteError>(&self) -> Option<E> {
        (self.exc_path == E::exc_path())
            .then(|| E::from_remote(self))
            .flatten()
    }
}

impl fmt::Display for RemoteError {
    /// `"<exc_type> <value>"`, as Python's `RemoteError` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.exc_type, self.value)
    }
}

impl std::error::Error for RemoteError {}

/// nameko's `safe_for_serialization` on a JSON value: strings, lists and dicts (keys and
/// values) are kept and walked; every other scalar becomes its Python `str()`: numbers as
/// Python prints them, `true`/`false` as `True`/`False`, `null` as `None`.
///
/// ```
/// use nameko_core::errors::safe_for_serialization;
/// use serde_json::json;
///
/// assert_eq!(
///     safe_for_serialization(json!(["boom", 1, {"k": [1, 2.5, null, true]}])),
///     json!(["boom", "1", {"k": ["1", "2.5", "None", "True"]}]),
/// );
/// ```
#[must_use]
pub fn safe_for_serialization(value: Value) -> Value {
    match value {
        Value::String(_) => value,
        Value::Array(items) => {
            Value::Array(items.into_iter().map(safe_for_serialization).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, safe_for_serialization(v)))
                .collect(),
        ),
        Value::Null => Value::String("None".to_owned()),
        Value::Bool(true) => Value::String("True".to_owned()),
        Value::Bool(false) => Value::String("False".to_owned()),
        Value::Number(n) => Value::String(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => crate::json::python_float_repr(f),
            _ => n.to_string(),
        }),
    }
}

/// An error type that chooses how it appears on nameko's wire.
///
/// Implement it (usually with `#[derive(NamekoError)]` from the `nameko` crate) so that a
/// Python caller sees, say, a `ValueError`:
///
/// ```
/// use nameko_core::errors::{IntoRemoteError, NamekoError};
///
/// #[derive(Debug)]
/// struct DivisionByZero;
///
/// impl std::fmt::Display for DivisionByZero {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("Division by zero")
///     }
/// }
/// impl std::error::Error for DivisionByZero {}
///
/// impl NamekoError for DivisionByZero {
///     fn exc_type() -> &'static str { "ValueError" }
///     fn exc_path() -> &'static str { "builtins.ValueError" }
/// }
///
/// let remote = DivisionByZero.into_remote_error();
/// assert_eq!(remote.exc_type, "ValueError");
/// assert_eq!(remote.exc_args, vec![serde_json::json!("Division by zero")]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a nameko error type",
    note = "derive `NamekoError` (with `thiserror::Error`) on it to choose the `exc_type` Python callers see"
)]
pub trait NamekoError: std::error::Error + Send + Sync + 'static {
    /// The class name a Python caller sees, e.g. `ValueError`.
    fn exc_type() -> &'static str
    where
        Self: Sized;

    /// The dotted path a Python caller sees, e.g. `builtins.ValueError`; the key of the
    /// error registry.
    fn exc_path() -> &'static str
    where
        Self: Sized;

    /// The exception's arguments; by default the one message, `Display` of the error.
    fn exc_args(&self) -> Vec<Value> {
        vec![Value::String(self.to_string())]
    }
}

/// A user error type that can be rebuilt from the error dict a remote worker sent.
///
/// `#[derive(NamekoError)]` implements it for unit structs and structs whose one field
/// is a `String` message. Registered (`#[nameko(deserialize_to_instance)]` on the derive,
/// or [`register_error`]), such a type comes back to Rust callers as
/// [`RpcError::Registered`], ready to downcast.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be rebuilt from a remote error dict",
    note = "`#[derive(NamekoError)]` rebuilds unit structs and structs whose one field is a `String`; implement `nameko::errors::FromRemoteError` for `{Self}` by hand otherwise"
)]
pub trait FromRemoteError: NamekoError + Sized {
    /// Rebuilds the error; `None` if the dict does not describe one.
    fn from_remote(error: &RemoteError) -> Option<Self>;
}

/// Anything a service method can fail with: turned into nameko's error dict.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to callers as a nameko error",
    label = "this error type has no nameko form",
    note = "return `nameko::errors::ServiceError` (any error converts into it with `?`), or derive `NamekoError` on your error type"
)]
pub trait IntoRemoteError {
    /// The error dict describing this error.
    fn into_remote_error(self) -> RemoteError;
}

impl<E: NamekoError> IntoRemoteError for E {
    fn into_remote_error(self) -> RemoteError {
        RemoteError {
            exc_type: E::exc_type().to_owned(),
            exc_path: E::exc_path().to_owned(),
            exc_args: self
                .exc_args()
                .into_iter()
                .map(safe_for_serialization)
                .collect(),
            value: self.to_string(),
        }
    }
}

impl IntoRemoteError for RemoteError {
    /// A remote error returned as is: its four fields go out unchanged.
    fn into_remote_error(self) -> RemoteError {
        self
    }
}

impl IntoRemoteError for ServiceError {
    fn into_remote_error(self) -> RemoteError {
        self.remote
    }
}

impl IntoRemoteError for String {
    /// A bare message: a Python `Exception(message)`.
    fn into_remote_error(self) -> RemoteError {
        RemoteError::new("Exception", "builtins.Exception", [self.clone()], self)
    }
}

impl IntoRemoteError for &str {
    /// A bare message: a Python `Exception(message)`.
    fn into_remote_error(self) -> RemoteError {
        self.to_owned().into_remote_error()
    }
}

impl IntoRemoteError for Box<dyn std::error::Error + Send + Sync> {
    /// Any boxed error: a Python `Exception(message)`, unless it is an [`RpcError`] or a
    /// [`RemoteError`], which keep their form.
    fn into_remote_error(self) -> RemoteError {
        match self.downcast::<RpcError>() {
            Ok(rpc) => rpc.into_remote_error(),
            Err(other) => match other.downcast::<RemoteError>() {
                Ok(remote) => *remote,
                Err(other) => other.to_string().into_remote_error(),
            },
        }
    }
}

impl IntoRemoteError for RpcError {
    /// Re-raises a failed downstream call the way Python nameko re-raises it: nameko's
    /// typed errors keep their class, registered user errors their own dict, and any
    /// other remote error becomes a `RemoteError("<exc_type> <value>")`.
    fn into_remote_error(self) -> RemoteError {
        match self {
            Self::MethodNotFound(m) => RemoteError::method_not_found(m),
            Self::IncorrectSignature(m) => RemoteError::incorrect_signature(m),
            Self::MalformedRequest(m) => RemoteError::malformed_request(m),
            Self::Registered(r) => r.remote,
            Self::Remote(r) => {
                let message = r.to_string();
                RemoteError::new("RemoteError", REMOTE_ERROR, [message.clone()], message)
            }
            Self::UnknownService(name) => RemoteError::new(
                "UnknownService",
                UNKNOWN_SERVICE,
                [name.clone()],
                format!("Unknown service `{name}`"),
            ),
            Self::Timeout(d) => {
                let secs = crate::json::python_float_repr(d.as_secs_f64());
                RemoteError::new("RpcTimeout", RPC_TIMEOUT, [secs.clone()], secs)
            }
            Self::RepliesLost(ids) => {
                let message = format!("Lost replies for correlation ids:\n{}", ids.join("\n"));
                RemoteError::new(
                    "ReplyQueueExpiredWithPendingReplies",
                    REPLY_QUEUE_EXPIRED,
                    [message.clone()],
                    message,
                )
            }
            other => {
                let message = other.to_string();
                RemoteError::new("RpcError", "nameko_rs.RpcError", [message.clone()], message)
            }
        }
    }
}

/// The catch-all error of service methods: anything that implements
/// `std::error::Error` converts into it with `?`.
///
/// Error types deriving `NamekoError` (or registered with [`register_nameko_error`])
/// keep their `exc_type` and `exc_path`; [`RpcError`] and [`RemoteError`] keep theirs
/// (a downstream error is re-raised as described in the [module docs](self)). Any other error appears to Python callers as an exception named after
/// the Rust type, e.g. `ParseIntError` with path `rust.core::num::error::ParseIntError`.
///
/// ```
/// use nameko_core::errors::{IntoRemoteError, ServiceError};
///
/// fn parse(s: &str) -> Result<i32, ServiceError> {
///     Ok(s.parse::<i32>()?)
/// }
/// let err = parse("x").unwrap_err().into_remote_error();
/// assert_eq!(err.exc_type, "ParseIntError");
/// assert_eq!(err.value, "invalid digit found in string");
/// ```
#[derive(Debug, Clone)]
pub struct ServiceError {
    remote: RemoteError,
}

impl ServiceError {
    /// An error with this exact error dict.
    #[must_use]
    pub fn from_remote(remote: RemoteError) -> Self {
        Self { remote }
    }

    /// A Python-style `Exception(message)`.
    #[must_use]
    pub fn msg(message: impl Into<String>) -> Self {
        Self::from_remote(message.into().into_remote_error())
    }

    /// An error with this class and message, e.g. `ServiceError::new("ValueError",
    /// "builtins.ValueError", "bad value")`.
    #[must_use]
    pub fn new(
        exc_type: impl Into<String>,
        exc_path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self::from_remote(RemoteError::new(
            exc_type,
            exc_path,
            [message.clone()],
            message,
        ))
    }

    /// The error dict this error will be sent as.
    #[must_use]
    pub fn remote(&self) -> &RemoteError {
        &self.remote
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.remote, f)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ServiceError {
    fn from(error: E) -> Self {
        let any: &dyn std::any::Any = &error;
        if let Some(rpc) = any.downcast_ref::<RpcError>() {
            return Self::from_remote(rpc.clone().into_remote_error());
        }
        if let Some(remote) = any.downcast_ref::<RemoteError>() {
            return Self::from_remote(remote.clone());
        }
        if let Some(remote) = registry::encode_registered(&error) {
            return Self::from_remote(remote);
        }
        let full = std::any::type_name::<E>();
        let short = full
            .split('<')
            .next()
            .unwrap_or(full)
            .rsplit("::")
            .next()
            .unwrap_or(full);
        let message = error.to_string();
        Self::from_remote(RemoteError::new(
            short,
            format!("rust.{full}"),
            [message.clone()],
            message,
        ))
    }
}

/// A registered user error, rebuilt from a remote error dict.
#[derive(Debug, Clone)]
pub struct RegisteredError {
    remote: RemoteError,
    error: Arc<dyn std::error::Error + Send + Sync>,
}

impl RegisteredError {
    /// The error dict it came as.
    #[must_use]
    pub fn remote(&self) -> &RemoteError {
        &self.remote
    }

    /// The rebuilt error, if it is an `E`.
    #[must_use]
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.downcast_ref::<E>()
    }
}

impl fmt::Display for RegisteredError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

/// What a caller gets when a remote call fails.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The worker failed with an error that has no typed form here.
    #[error("{0}")]
    Remote(RemoteError),
    /// A registered user error type (see [`register_error`]).
    #[error("{0}")]
    Registered(RegisteredError),
    /// The service has no such method (nameko's `MethodNotFound`).
    #[error("MethodNotFound: {0}")]
    MethodNotFound(String),
    /// The arguments do not fit the method (nameko's `IncorrectSignature`).
    #[error("IncorrectSignature: {0}")]
    IncorrectSignature(String),
    /// The service could not read the request (nameko's `MalformedRequest`).
    #[error("MalformedRequest: {0}")]
    MalformedRequest(String),
    /// No queue is bound for the service: it has never run, or its queue was deleted.
    #[error("Unknown service `{0}`")]
    UnknownService(String),
    /// No reply came within the timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The request could not be published, or the reply could not be awaited.
    #[error("transport error: {0}")]
    Transport(#[from] TransportError),
    /// The broker refused the request (publisher confirm `nack`).
    #[error("the broker refused the request")]
    Refused,
    /// The arguments could not be serialized.
    #[error("cannot serialize the arguments: {0}")]
    InvalidArguments(String),
    /// The reply could not be read, or its result does not fit the requested type.
    #[error("invalid reply: {0}")]
    InvalidReply(String),
    /// The reply queue expired, or was lost (deleted, or with the cluster node it lived
    /// on), while replies were due: they are lost (nameko 3's
    /// `ReplyQueueExpiredWithPendingReplies`).
    #[error("reply queue expired or lost; lost replies for correlation ids {0:?}")]
    RepliesLost(Vec<String>),
    /// The proxy (or its container) was stopped.
    #[error("the RPC proxy is stopped")]
    Stopped,
}

impl RpcError {
    /// The error dict the remote worker sent, for remote and registered errors.
    #[must_use]
    pub fn remote(&self) -> Option<&RemoteError> {
        match self {
            Self::Remote(r) => Some(r),
            Self::Registered(r) => Some(&r.remote),
            _ => None,
        }
    }

    /// The registered user error, if it is an `E`.
    #[must_use]
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Self::Registered(r) => r.downcast_ref(),
            _ => None,
        }
    }

    /// Rebuilds a user error type from the remote error dict, registered or not.
    #[must_use]
    pub fn decode<E: FromRemoteError>(&self) -> Option<E> {
        self.remote().and_then(RemoteError::decode)
    }

    /// Whether this is [`RpcError::Timeout`].
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }

    /// Turns a reply's error dict into the error a caller gets: nameko's typed errors by
    /// `exc_path`, then registered user types, then [`RpcError::Remote`].
    #[must_use]
    pub fn from_remote(remote: RemoteError) -> Self {
        match remote.exc_path.as_str() {
            METHOD_NOT_FOUND => Self::MethodNotFound(remote.message().to_owned()),
            INCORRECT_SIGNATURE => Self::IncorrectSignature(remote.message().to_owned()),
            MALFORMED_REQUEST => Self::MalformedRequest(remote.message().to_owned()),
            _ => match registry::decode_registered(&remote) {
                Some(error) => Self::Registered(RegisteredError { remote, error }),
                None => Self::Remote(remote),
            },
        }
    }
}

/// The `exc_type` of an error dict, as `Cow` for logging.
#[must_use]
pub fn describe(remote: &RemoteError) -> Cow<'_, str> {
    if remote.exc_path.is_empty() {
        Cow::Borrowed(&remote.exc_type)
    } else {
        Cow::Owned(format!("{} ({})", remote.exc_type, remote.exc_path))
    }
}
