//! nameko's message bodies and names on the wire.
//!
//! - an RPC request body is `{"args": [...], "kwargs": {...}}` ([`CallArgs`]);
//! - an RPC reply body is `{"result": ..., "error": ...}` with both keys always present;
//! - an event body is the payload itself.
//!
//! Everything is written by [`json::to_vec`], byte for byte what Python nameko writes.

pub use crate::json;

use serde::de::DeserializeOwned;
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

/// Whether a content type is JSON: `application/json`, with any parameters (such as
/// `charset`), in any case.
///
/// ```
/// use nameko_core::wire::is_json_content_type;
///
/// assert!(is_json_content_type("application/json; charset=utf-8"));
/// assert!(!is_json_content_type("text/plain"));
/// ```
#[must_use]
pub fn is_json_content_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(CONTENT_TYPE_JSON)
}

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

/// Name of a service's event exchange: `<service>.events`; for the source `*` (any
/// service), [`ALL_EVENTS_EXCHANGE`].
#[must_use]
pub fn event_exchange(service: &str) -> String {
    if service == ANY_SOURCE {
        return ALL_EVENTS_EXCHANGE.to_owned();
    }
    format!("{service}.events")
}

/// The source of an event handler for events of any service.
pub const ANY_SOURCE: &str = "*";

/// The topic exchange every nameko-rs dispatcher binds its `<service>.events` exchange
/// to (exchange-to-exchange, key `#`): handlers of events from any source bind here.
pub const ALL_EVENTS_EXCHANGE: &str = "nameko-events";

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

    /// [`CallArgs::to_body`] as [`Bytes`](bytes::Bytes), in one allocation.
    pub(crate) fn to_body_bytes(&self) -> Result<bytes::Bytes, serde_json::Error> {
        json::to_bytes(self)
    }

    /// Reads a request body, with nameko's rules: it must be an object holding both
    /// `args` (a list) and `kwargs` (an object).
    ///
    /// # Errors
    ///
    /// The message of the `MalformedRequest` to answer with.
    pub fn from_body(body: &[u8]) -> Result<Self, String> {
        // A well-formed request is read straight into its parts; anything else takes the
        // general way below, which has the error messages.
        if is_plain_object(body)
            && let Ok(call) = serde_json::from_slice::<TypedCall>(body)
        {
            return Ok(Self {
                args: call.args,
                kwargs: call.kwargs,
            });
        }
        Self::from_parsed_body(body)
    }

    /// [`CallArgs::from_body`] through a [`Value`] of the whole body.
    fn from_parsed_body(body: &[u8]) -> Result<Self, String> {
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

/// Whether a body may be read straight into a struct: a JSON object (serde would also
/// read a struct from a list) without kombu's tagged values.
fn is_plain_object(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') && !json::has_tagged_values(body)
}

/// A request body read straight into its parts.
#[derive(Deserialize)]
struct TypedCall {
    args: Vec<Value>,
    kwargs: Map<String, Value>,
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
    match outcome {
        Ok(result) => encode_reply_parts(Some(result), None),
        Err(error) => encode_reply_parts(None, Some(error)),
    }
}

/// An RPC reply body from its two parts: `result` (`null` when `None`) and `error`.
#[must_use]
pub fn encode_reply_parts(result: Option<&Value>, error: Option<&RemoteError>) -> Vec<u8> {
    let reply = ReplyOut {
        result: result.unwrap_or(&Value::Null),
        error,
    };
    // Writing a Value and an error dict of strings and Values cannot fail.
    json::to_vec(&reply).unwrap_or_else(|_| br#"{"result": null, "error": null}"#.to_vec())
}

/// [`encode_reply_parts`] as [`Bytes`](bytes::Bytes), in one allocation.
pub(crate) fn reply_body(result: Option<&Value>, error: Option<&RemoteError>) -> bytes::Bytes {
    let reply = ReplyOut {
        result: result.unwrap_or(&Value::Null),
        error,
    };
    json::to_bytes(&reply)
        .unwrap_or_else(|_| bytes::Bytes::from_static(br#"{"result": null, "error": null}"#))
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
        Some(error) if is_truthy(&error) => Ok(Err(remote_error(error)?)),
        _ => reply
            .remove("result")
            .map(Ok)
            .ok_or_else(|| "reply has no `result`".to_owned()),
    }
}

/// Reads an RPC reply body as [`decode_reply`] does, with the result converted to `R`.
///
/// A well-formed reply is read straight into `R`, without building the whole body as a
/// [`Value`] first; anything else (kombu's tagged values, Python's non-finite numbers, a
/// result that does not fit `R`, a malformed body) takes the way of [`decode_reply`], so
/// the outcome and its error messages are the same either way.
///
/// ```
/// use nameko_core::wire::decode_reply_as;
///
/// assert_eq!(decode_reply_as::<u32>(br#"{"result": 3, "error": null}"#).unwrap(), Ok(3));
/// assert!(decode_reply_as::<u32>(br#"{"result": "x", "error": null}"#).unwrap_err().contains("does not fit"));
/// ```
///
/// # Errors
///
/// A description of what is wrong with a body that is not a reply, or with a result that
/// does not fit `R`.
pub fn decode_reply_as<R: DeserializeOwned>(body: &[u8]) -> Result<Result<R, RemoteError>, String> {
    if is_plain_object(body)
        && let Ok(TypedReply {
            result: Slot::Given(result),
            error,
        }) = serde_json::from_slice::<TypedReply<R>>(body)
    {
        return if is_truthy(&error) {
            remote_error(error).map(Err)
        } else {
            Ok(Ok(result))
        };
    }
    match decode_reply(body)? {
        Ok(value) => result_as(&value).map(Ok),
        Err(remote) => Ok(Err(remote)),
    }
}

/// Converts a reply's result to `R`.
///
/// # Errors
///
/// Why it does not fit.
pub fn result_as<R: DeserializeOwned>(value: &Value) -> Result<R, String> {
    R::deserialize(value).map_err(|e| {
        format!(
            "the result does not fit {}: {e}",
            std::any::type_name::<R>()
        )
    })
}

/// A reply read straight into its result type.
#[derive(Deserialize)]
#[serde(bound = "R: DeserializeOwned")]
struct TypedReply<R> {
    #[serde(default)]
    result: Slot<R>,
    #[serde(default)]
    error: Value,
}

/// A field that tells a `null` from a missing key, even for an `Option`.
#[derive(Default)]
enum Slot<T> {
    #[default]
    Missing,
    Given(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Slot<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::Given)
    }
}

fn remote_error(error: Value) -> Result<RemoteError, String> {
    serde_json::from_value::<RemoteError>(error)
        .map_err(|e| format!("reply error is not a nameko error dict: {e}"))
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
    use proptest::prelude::*;
    use serde_json::json;

    /// Bodies around the shapes the fast paths accept: well-formed, duplicated keys,
    /// tagged values, non-finite numbers, wrong types, sequences, broken JSON.
    fn bodies() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            Just("null".to_owned()),
            Just("3".to_owned()),
            Just("-2.5e3".to_owned()),
            Just("NaN".to_owned()),
            Just("\"x\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("0".to_owned()),
            Just("[]".to_owned()),
            Just("{}".to_owned()),
            Just("[1, {\"n\": 2}]".to_owned()),
            Just("{\"__type__\": \"decimal\", \"__value__\": \"1.5\"}".to_owned()),
            Just(
                "{\"exc_type\": \"E\", \"exc_path\": \"m.E\", \"exc_args\": [], \"value\": \"v\"}"
                    .to_owned()
            ),
            Just("{\"exc_type\": 1}".to_owned()),
            "[a-z]{0,3}".prop_map(|s| format!("{s:?}")),
        ];
        let key = prop_oneof![
            Just("args"),
            Just("kwargs"),
            Just("result"),
            Just("error"),
            Just("other"),
        ];
        prop_oneof![
            prop::collection::vec((key, value), 0..5).prop_map(|fields| {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("\"{k}\": {v}"))
                    .collect();
                format!("{{{}}}", inner.join(", ")).into_bytes()
            }),
            Just(b"[[1], {}]".to_vec()),
            Just(b" {\"args\": [], \"kwargs\": {}}".to_vec()),
            Just(b"{\"args\": [], \"kwargs\": {}".to_vec()),
            prop::collection::vec(any::<u8>(), 0..24),
        ]
    }

    proptest! {
        #[test]
        fn requests_read_straight_as_through_a_value(body in bodies()) {
            prop_assert_eq!(CallArgs::from_body(&body), CallArgs::from_parsed_body(&body));
        }

        #[test]
        fn replies_read_straight_as_through_a_value(body in bodies()) {
            let general = |body: &[u8]| -> Result<Result<Value, RemoteError>, String> {
                decode_reply(body)
            };
            prop_assert_eq!(decode_reply_as::<Value>(&body), general(&body));
            let as_u32 = decode_reply(&body).and_then(|r| match r {
                Ok(v) => result_as::<Option<u32>>(&v).map(Ok),
                Err(e) => Ok(Err(e)),
            });
            prop_assert_eq!(decode_reply_as::<Option<u32>>(&body), as_u32);
        }
    }

    #[test]
    fn only_objects_are_requests() {
        assert_eq!(
            CallArgs::from_body(b"[[1], {}]").unwrap_err(),
            "Message missing `args` or `kwargs`"
        );
        let call = CallArgs::from_body(br#"{"args": [1], "kwargs": {}, "args": [2]}"#).unwrap();
        assert_eq!(
            call.args,
            vec![json!(2)],
            "the last of duplicated keys wins"
        );
        let call = CallArgs::from_body(
            br#"{"args": [{"__type__": "decimal", "__value__": "1.5"}], "kwargs": {}}"#,
        )
        .unwrap();
        assert_eq!(call.args, vec![json!("1.5")]);
    }

    #[test]
    fn typed_replies_keep_the_general_outcomes() {
        assert_eq!(
            decode_reply_as::<u32>(
                br#"{"result": null, "error": {"exc_type": "E", "value": "v"}}"#
            )
            .unwrap()
            .unwrap_err()
            .exc_type,
            "E"
        );
        assert_eq!(
            decode_reply_as::<u32>(br#"{"result": 4, "error": ""}"#).unwrap(),
            Ok(4),
            "a falsy error is no error"
        );
        assert!(
            decode_reply_as::<u32>(br#"{"error": null}"#)
                .unwrap_err()
                .contains("no `result`")
        );
        assert_eq!(
            decode_reply_as::<Option<f64>>(br#"{"result": NaN, "error": null}"#).unwrap(),
            Ok(None)
        );
        assert_eq!(
            decode_reply_as::<String>(
                br#"{"result": {"__type__": "uuid", "__value__": {"hex": "17ab3b5c453b44dc8630ddba555b7842"}}, "error": null}"#
            )
            .unwrap(),
            Ok("17ab3b5c-453b-44dc-8630-ddba555b7842".to_owned())
        );
    }

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
