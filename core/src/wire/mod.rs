//! nameko's message bodies and names on the wire.
//!
//! - an RPC request body is `{"args": [...], "kwargs": {...}}` ([`CallArgs`]);
//! - an RPC reply body is `{"result": ..., "error": ...}` with both keys always present;
//! - an event body is the payload itself.
//!
//! Everything is written by [`json::to_vec`], byte for byte what Python nameko writes.

pub mod json;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::errors::RemoteError;

/// Content type of every message nameko sends, and the only one it accepts.
pub const CONTENT_TYPE_JSON: &str = "application/json";
/// Content encoding of JSON messages.
pub const CONTENT_ENCODING_UTF8: &str = "utf-8";
/// Exchange of RPC requests and replies (`rpc_exchange` overrides it).
pub const DEFAULT_RPC_EXCHANGE: &str = "nameko-rpc";
/// Time to live of reply queues, in milliseconds (nameko's `RPC_REPLY_QUEUE_TTL`).
pub const RPC_REPLY_QUEUE_TTL: u32 = 300_000;
/// Prefix of context data headers.
pub const HEADER_PREFIX: &str = "nameko.";
/// Context key (and header suffix) of the call id stack.
pub const CALL_ID_STACK: &str = "call_id_stack";

/// Name of a service's request queue: `rpc-<service>`.
#[must_use]
pub fn rpc_queue(service: &str) -> String {
    format!("rpc-{service}")
}

/// Binding of a service's request queue: `<service>.*`.
#[must_use]
pub fn rpc_binding(service: &str) -> String {
    format!("{service}.*")
}

/// Name of a reply queue: `rpc.reply-<owner>-<uuid>`.
#[must_use]
pub fn reply_queue(owner: &str, id: &str) -> String {
    format!("rpc.reply-{owner}-{id}")
}

/// Name of a service's event exchange: `<service>.events`.
#[must_use]
pub fn event_exchange(service: &str) -> String {
    format!("{service}.events")
}

/// The arguments of a call: nameko's `{"args": [...], "kwargs": {...}}`.
///
/// ```
/// use nameko_core::wire::CallArgs;
/// use serde_json::json;
///
/// let call = CallArgs::new().arg(1).arg("two").kwarg("three", json!({"a": 1}));
/// assert_eq!(call.to_body().unwrap(), br#"{"args": [1, "two"], "kwargs": {"three": {"a": 1}}}"#);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallArgs {
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Keyword arguments, in the order the caller gave them.
    pub kwargs: Map<String, Value>,
}

impl CallArgs {
    /// No arguments.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Positional arguments only.
    #[must_use]
    pub fn positional(args: Vec<Value>) -> Self {
        Self {
            args,
            kwargs: Map::new(),
        }
    }

    /// Adds a positional argument.
    ///
    /// # Panics
    ///
    /// If `value` cannot be converted to JSON (a map with non-string keys); use
    /// [`CallArgs::try_arg`] to get the error instead.
    #[must_use]
    pub fn arg(self, value: impl Serialize) -> Self {
        self.try_arg(value)
            .expect("argument is not representable as JSON")
    }

    /// Adds a positional argument.
    ///
    /// # Errors
    ///
    /// If `value` cannot be converted to JSON.
    pub fn try_arg(mut self, value: impl Serialize) -> Result<Self, serde_json::Error> {
        self.args.push(serde_json::to_value(value)?);
        Ok(self)
    }

    /// Adds a keyword argument.
    ///
    /// # Panics
    ///
    /// If `value` cannot be converted to JSON; use [`CallArgs::try_kwarg`] to get the
    /// error instead.
    #[must_use]
    pub fn kwarg(self, name: impl Into<String>, value: impl Serialize) -> Self {
        self.try_kwarg(name, value)
            .expect("argument is not representable as JSON")
    }

    /// Adds a keyword argument.
    ///
    /// # Errors
    ///
    /// If `value` cannot be converted to JSON.
    pub fn try_kwarg(
        mut self,
        name: impl Into<String>,
        value: impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        self.kwargs
            .insert(name.into(), serde_json::to_value(value)?);
        Ok(self)
    }

    /// The request body, as Python nameko writes it.
    ///
    /// # Errors
    ///
    /// Never for values built through this type; kept fallible for custom `Serialize`.
    pub fn to_body(&self) -> Result<Vec<u8>, serde_json::Error> {
        json::to_vec(self)
    }

    /// Reads a request body, with nameko's rules: it must be an object holding both
    /// `args` (a list) and `kwargs` (an object).
    ///
    /// # Errors
    ///
    /// The message of the `MalformedRequest` to answer with.
    pub fn from_body(body: &[u8]) -> Result<Self, String> {
        let value =
            json::parse_value(body).map_err(|e| format!("Invalid JSON in request body: {e}"))?;
        let Value::Object(mut map) = value else {
            return Err("Message missing `args` or `kwargs`".to_owned());
        };
        let (Some(args), Some(kwargs)) = (map.remove("args"), map.remove("kwargs")) else {
            return Err("Message missing `args` or `kwargs`".to_owned());
        };
        let args = match args {
            Value::Array(args) => args,
            other => return Err(format!("`args` must be a list, not {}", json_kind(&other))),
        };
        let kwargs = match kwargs {
            Value::Object(kwargs) => kwargs,
            other => {
                return Err(format!(
                    "`kwargs` must be an object, not {}",
                    json_kind(&other)
                ));
            }
        };
        Ok(Self { args, kwargs })
    }

    /// Total number of arguments.
    #[must_use]
    pub fn len(&self) -> usize {
        self.args.len() + self.kwargs.len()
    }

    /// Whether there are no arguments at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.args.is_empty() && self.kwargs.is_empty()
    }
}

/// The JSON type of a value, in words, for error messages.
#[must_use]
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[derive(Serialize)]
struct ReplyOut<'a> {
    result: &'a Value,
    error: Option<&'a RemoteError>,
}

/// Writes an RPC reply body: `{"result": <value>, "error": null}` or
/// `{"result": null, "error": {...}}`.
///
/// A result that cannot be written (not possible for a [`Value`], but possible for
/// values serialized on the way here) is the caller's concern: see
/// [`RemoteError::unserializable_value`].
///
/// ```
/// use nameko_core::wire::encode_reply;
/// use serde_json::json;
///
/// assert_eq!(encode_reply(&Ok(json!({"x": 1}))), br#"{"result": {"x": 1}, "error": null}"#);
/// ```
#[must_use]
pub fn encode_reply(outcome: &Result<Value, RemoteError>) -> Vec<u8> {
    let reply = match outcome {
        Ok(result) => ReplyOut {
            result,
            error: None,
        },
        Err(error) => ReplyOut {
            result: &Value::Null,
            error: Some(error),
        },
    };
    // Writing a Value and an error dict of strings and Values cannot fail.
    json::to_vec(&reply).unwrap_or_else(|_| br#"{"result": null, "error": null}"#.to_vec())
}

/// Reads an RPC reply body as Python nameko does: a truthy `error` is the outcome,
/// otherwise `result`.
///
/// # Errors
///
/// A description of what is wrong with a body that is not a reply.
pub fn decode_reply(body: &[u8]) -> Result<Result<Value, RemoteError>, String> {
    let value = json::parse_value(body).map_err(|e| format!("reply is not JSON: {e}"))?;
    let Value::Object(mut reply) = value else {
        return Err(format!(
            "reply is {}, not a nameko reply object",
            json_kind(&value)
        ));
    };
    match reply.remove("error") {
        Some(error) if is_truthy(&error) => {
            let error = serde_json::from_value::<RemoteError>(error)
                .map_err(|e| format!("reply error is not a nameko error dict: {e}"))?;
            Ok(Err(error))
        }
        _ => reply
            .remove("result")
            .map(Ok)
            .ok_or_else(|| "reply has no `result`".to_owned()),
    }
}

fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_need_args_and_kwargs() {
        assert_eq!(
            CallArgs::from_body(br#"{"args": []}"#).unwrap_err(),
            "Message missing `args` or `kwargs`"
        );
        assert_eq!(
            CallArgs::from_body(b"[1]").unwrap_err(),
            "Message missing `args` or `kwargs`"
        );
        assert!(
            CallArgs::from_body(b"{nope")
                .unwrap_err()
                .starts_with("Invalid JSON")
        );
        assert_eq!(
            CallArgs::from_body(br#"{"args": {}, "kwargs": {}}"#).unwrap_err(),
            "`args` must be a list, not an object"
        );
        let call = CallArgs::from_body(br#"{"args": [1], "kwargs": {"b": 2}}"#).unwrap();
        assert_eq!(call, CallArgs::new().arg(1).kwarg("b", 2));
    }

    #[test]
    fn error_replies_match_nameko() {
        let body = encode_reply(&Err(RemoteError::method_not_found("does_not_exist")));
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"result": null, "error": {"exc_type": "MethodNotFound", "exc_path": "nameko.exceptions.MethodNotFound", "exc_args": ["does_not_exist"], "value": "does_not_exist"}}"#
        );
        assert_eq!(
            decode_reply(&body).unwrap(),
            Err(RemoteError::method_not_found("does_not_exist"))
        );
    }

    #[test]
    fn replies_from_old_and_new_nameko_decode() {
        assert_eq!(
            decode_reply(br#"{"result": 3, "error": null}"#).unwrap(),
            Ok(json!(3))
        );
        let old = decode_reply(br#"{"result": null, "error": {"exc_type": "ValueError", "value": "x", "traceback": "..."}}"#)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (
                old.exc_type.as_str(),
                old.exc_path.as_str(),
                old.value.as_str()
            ),
            ("ValueError", "", "x")
        );
        assert!(decode_reply(br#"{"error": null}"#).is_err());
        assert_eq!(
            decode_reply(br#"{"result": null, "error": null}"#).unwrap(),
            Ok(Value::Null)
        );
        assert!(decode_reply(b"[1]").is_err());
        assert!(decode_reply(b"nope").is_err());
    }
}
