//! Sensitive arguments: values of a call that never reach a log, a trace or an error
//! message (nameko's `sensitive_arguments` and `get_redacted_args`).
//!
//! An entrypoint attribute names them as dotted paths into the call's arguments, by
//! parameter name: `#[rpc(sensitive_arguments = ["password", "card.number"])]` hides the
//! whole `password` argument and the `number` key of the `card` argument; `items[0].pin`
//! reaches into a list. Whatever shows a call's arguments (a call log, a span's
//! attributes, an error message) asks for them redacted:
//! [`WorkerContext::redacted_args`](crate::worker::WorkerContext::redacted_args) inside a
//! worker, [`redacted_call_args`] anywhere else.
//!
//! ```
//! use nameko_core::method::Param;
//! use nameko_core::sensitive::{REDACTED, redacted_call_args};
//! use nameko_core::wire::CallArgs;
//! use serde_json::json;
//!
//! const PARAMS: &[Param] = &[Param::required("user"), Param::required("password"),
//!     Param::required("card")];
//! let args = CallArgs::new()
//!     .arg("ada")
//!     .arg("hunter2")
//!     .kwarg("card", json!({"number": "4111 1111 1111 1111", "holder": "Ada"}));
//! let shown = redacted_call_args(PARAMS, &args, &["password", "card.number"]);
//! assert_eq!(
//!     serde_json::Value::Object(shown),
//!     json!({"user": "ada", "password": REDACTED,
//!            "card": {"number": REDACTED, "holder": "Ada"}})
//! );
//! ```

use serde_json::{Map, Value};

use crate::method::Param;
use crate::wire::CallArgs;

/// What a redacted value is replaced with (nameko's `REDACTED`).
pub const REDACTED: &str = "********";

/// One step of a sensitive path: a key of an object or an index into a list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits a path as nameko does (`(\w+)|\[(\d+)\]`): `card.number` is two keys,
/// `items[0].pin` a key, an index and a key.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if is_word(c) {
            let start = i;
            while i < bytes.len() && is_word(bytes[i]) {
                i += 1;
            }
            steps.push(Step::Key(&path[start..i]));
        } else if c == b'[' {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start && bytes.get(end) == Some(&b']') {
                if let Ok(index) = path[start..end].parse() {
                    steps.push(Step::Index(index));
                }
                i = end + 1;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    steps
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The argument a sensitive path starts from (`card` for `card.number`).
///
/// ```
/// assert_eq!(nameko_core::sensitive::path_root("card.number"), "card");
/// assert_eq!(nameko_core::sensitive::path_root("items[0].pin"), "items");
/// ```
#[must_use]
pub fn path_root(path: &str) -> &str {
    match steps(path).first() {
        Some(Step::Key(key)) => key,
        _ => "",
    }
}

/// Replaces the values at `paths` in `call_args` (arguments by parameter name) with
/// [`REDACTED`], as nameko's `get_redacted_args` does: a path whose first argument is
/// absent is skipped, a last key is set on an object (even one that lacked it), a list
/// index out of range or a step into a scalar is skipped.
///
/// ```
/// use nameko_core::sensitive::{REDACTED, redact};
/// use serde_json::json;
///
/// let mut args = json!({"items": [{"pin": 1234}, {"pin": 5678}], "note": "hi"});
/// redact(args.as_object_mut().unwrap(), &["items[1].pin", "missing.key"]);
/// assert_eq!(args, json!({"items": [{"pin": 1234}, {"pin": REDACTED}], "note": "hi"}));
/// ```
pub fn redact(call_args: &mut Map<String, Value>, paths: &[&str]) {
    for path in paths {
        let steps = steps(path);
        let Some((Step::Key(root), rest)) = steps.split_first() else {
            continue;
        };
        let Some(value) = call_args.get_mut(*root) else {
            continue;
        };
        if rest.is_empty() {
            *value = Value::String(REDACTED.to_owned());
        } else {
            redact_in(value, rest);
        }
    }
}

fn redact_in(data: &mut Value, steps: &[Step<'_>]) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    if rest.is_empty() {
        match (data, step) {
            (Value::Object(map), Step::Key(key)) => {
                map.insert((*key).to_owned(), Value::String(REDACTED.to_owned()));
            }
            (Value::Array(items), Step::Index(index)) => {
                if let Some(item) = items.get_mut(*index) {
                    *item = Value::String(REDACTED.to_owned());
                }
            }
            _ => {}
        }
        return;
    }
    let next = match (data, step) {
        (Value::Object(map), Step::Key(key)) => map.get_mut(*key),
        (Value::Array(items), Step::Index(index)) => items.get_mut(*index),
        _ => None,
    };
    if let Some(next) = next {
        redact_in(next, rest);
    }
}

/// The arguments of a call by parameter name (positional ones named by their
/// parameter, keyword ones as given; positional arguments beyond the parameters under
/// `"*args"`), with the values at `paths` redacted.
#[must_use]
pub fn redacted_call_args(params: &[Param], args: &CallArgs, paths: &[&str]) -> Map<String, Value> {
    let mut named = Map::new();
    let mut extra = Vec::new();
    for (i, value) in args.args.iter().enumerate() {
        match params.get(i) {
            Some(param) => {
                named.insert(param.name.to_owned(), value.clone());
            }
            None => extra.push(value.clone()),
        }
    }
    for (name, value) in &args.kwargs {
        named.insert(name.clone(), value.clone());
    }
    if !extra.is_empty() {
        named.insert("*args".to_owned(), Value::Array(extra));
    }
    redact(&mut named, paths);
    named
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn paths_split_like_nameko() {
        assert_eq!(steps("a"), [Step::Key("a")]);
        assert_eq!(steps("a.b"), [Step::Key("a"), Step::Key("b")]);
        assert_eq!(
            steps("a[2].b"),
            [Step::Key("a"), Step::Index(2), Step::Key("b")]
        );
        assert_eq!(steps("a[x]"), [Step::Key("a"), Step::Key("x")]);
    }

    #[test]
    fn redaction_follows_nameko() {
        let mut args = json!({
            "a": "secret",
            "b": {"c": 1, "d": [1, 2, 3]},
            "e": "scalar",
        });
        let map = args.as_object_mut().unwrap();
        redact(map, &["a", "b.d[1]", "b.new", "e.x", "z.y", "b.d[9]"]);
        assert_eq!(
            args,
            json!({
                "a": REDACTED,
                "b": {"c": 1, "d": [1, REDACTED, 3], "new": REDACTED},
                "e": "scalar",
            })
        );
    }

    #[test]
    fn call_args_are_named_by_parameter() {
        const PARAMS: &[Param] = &[Param::required("x")];
        let args = CallArgs::new().arg(1).arg(2).kwarg("k", "v");
        let named = redacted_call_args(PARAMS, &args, &["k"]);
        assert_eq!(
            Value::Object(named),
            json!({"x": 1, "k": REDACTED, "*args": [2]})
        );
    }
}
