//! The frames of nameko's WebSocket protocol, read and written as Python nameko does.

use nameko_core::errors::RemoteError;
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// What a request frame asks: `{"method": ..., "data": {...}, "correlation_id": ...}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    /// The method's name; `None` when it is not a string (no method has that name).
    pub(crate) method: Option<String>,
    /// `data`, as given (`null` when absent).
    pub(crate) data: Value,
    /// Echoed in the answer, whatever it is (`null` when absent).
    pub(crate) correlation_id: Value,
}

/// nameko's answer to a frame that is not a JSON object with a `method`.
pub(crate) fn malformed() -> RemoteError {
    RemoteError::malformed_request("Invalid JSON data")
}

/// nameko's answer to a method no entrypoint serves: `MethodNotFound()`, without
/// arguments.
pub(crate) fn method_not_found() -> RemoteError {
    RemoteError::new(
        "MethodNotFound",
        "nameko.exceptions.MethodNotFound",
        Vec::<Value>::new(),
        "",
    )
}

/// Reads a request frame as nameko's `deserialize_ws_frame` does: JSON (text or binary
/// frames alike), an object with a `method` key; anything else is `MalformedRequest`.
pub(crate) fn parse(payload: &[u8]) -> Result<Request, RemoteError> {
    let Ok(Value::Object(mut frame)) = nameko_core::json::parse_value(payload) else {
        return Err(malformed());
    };
    let Some(method) = frame.remove("method") else {
        return Err(malformed());
    };
    Ok(Request {
        method: match method {
            Value::String(name) => Some(name),
            _ => None,
        },
        data: frame.remove("data").unwrap_or(Value::Null),
        correlation_id: frame.remove("correlation_id").unwrap_or(Value::Null),
    })
}

/// The keyword arguments of a call from its `data`, as Python's `data.get('data') or
/// {}` then `**data`: a false value is no arguments, an object its arguments, anything
/// else nameko's `IncorrectSignature`.
pub(crate) fn keyword_arguments(data: Value) -> Result<Map<String, Value>, RemoteError> {
    let python_type = match &data {
        Value::Object(_) => "dict",
        Value::Null => return Ok(Map::new()),
        Value::Bool(b) if !b => return Ok(Map::new()),
        Value::Bool(_) => "bool",
        Value::Number(n) if n.as_f64() == Some(0.0) => return Ok(Map::new()),
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(s) if s.is_empty() => return Ok(Map::new()),
        Value::String(_) => "str",
        Value::Array(a) if a.is_empty() => return Ok(Map::new()),
        Value::Array(_) => "list",
    };
    match data {
        Value::Object(map) => Ok(map),
        _ => Err(RemoteError::incorrect_signature(format!(
            "inspect.getcallargs() argument after ** must be a mapping, not {python_type}"
        ))),
    }
}

/// `{"type": "result", "success": true, "data": ..., "correlation_id": ...}`.
pub(crate) fn result(data: Value, correlation_id: Value) -> Utf8Bytes {
    encode(&json!({
        "type": "result",
        "success": true,
        "data": data,
        "correlation_id": correlation_id,
    }))
}

/// `{"type": "result", "success": false, "error": {nameko's error dict}, "correlation_id": ...}`.
pub(crate) fn error(error: &RemoteError, correlation_id: Value) -> Utf8Bytes {
    encode(&json!({
        "type": "result",
        "success": false,
        "error": error,
        "correlation_id": correlation_id,
    }))
}

/// `{"type": "event", "event": ..., "data": ...}`: what the hub pushes.
pub(crate) fn event(event: &str, data: Value) -> Utf8Bytes {
    encode(&json!({"type": "event", "event": event, "data": data}))
}

/// As Python's `json.dumps` writes it.
fn encode(value: &Value) -> Utf8Bytes {
    Utf8Bytes::from(crate::json_dumps(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_written_as_python_writes_them() {
        assert_eq!(
            result(json!({"é": 1.0}), json!(1)).as_str(),
            r#"{"type": "result", "success": true, "data": {"\u00e9": 1.0}, "correlation_id": 1}"#
        );
        assert_eq!(
            error(&malformed(), Value::Null).as_str(),
            r#"{"type": "result", "success": false, "error": {"exc_type": "MalformedRequest", "exc_path": "nameko.exceptions.MalformedRequest", "exc_args": ["Invalid JSON data"], "value": "Invalid JSON data"}, "correlation_id": null}"#
        );
        assert_eq!(
            event("connected", json!({"socket_id": "s"})).as_str(),
            r#"{"type": "event", "event": "connected", "data": {"socket_id": "s"}}"#
        );
    }

    #[test]
    fn a_frame_without_an_object_and_a_method_is_malformed() {
        for payload in ["not json", "[1, 2]", "\"str\"", "", r#"{"data": {}}"#] {
            assert_eq!(parse(payload.as_bytes()), Err(malformed()), "{payload}");
        }
        let request = parse(br#"{"method": 5, "correlation_id": "c"}"#).unwrap();
        assert_eq!(request.method, None);
        assert_eq!(request.correlation_id, json!("c"));
    }

    #[test]
    fn data_is_keyword_arguments_as_python_unpacks_it() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(0.0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert_eq!(keyword_arguments(falsy.clone()), Ok(Map::new()), "{falsy}");
        }
        for (value, name) in [
            (json!([1]), "list"),
            (json!("abc"), "str"),
            (json!(5), "int"),
            (json!(1.5), "float"),
            (json!(true), "bool"),
        ] {
            let error = keyword_arguments(value).unwrap_err();
            assert_eq!(error.exc_type, "IncorrectSignature");
            assert_eq!(
                error.value,
                format!("inspect.getcallargs() argument after ** must be a mapping, not {name}")
            );
        }
    }
}
