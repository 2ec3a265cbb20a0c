//! The values of the shell's language: Python's data types that JSON carries (plus
//! tuples and non-string dict keys, as a Python user types them), and the shell's own
//! objects (`n`, `n.rpc`, service and method proxies, call handles, built-in functions).

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Number};

use super::handle::CallHandle;

/// The deepest nesting of lists, tuples and dicts the shell builds, so that printing and
/// sending a value never exhausts the stack.
pub(crate) const MAX_DEPTH: usize = 200;

/// A value of the shell's language.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(Arc<str>),
    List(Arc<Vec<Value>>),
    Tuple(Arc<Vec<Value>>),
    Dict(Arc<Dict>),
    Object(Object),
}

/// The shell's objects: not data, so they cannot be sent to a service.
#[derive(Debug, Clone)]
pub(crate) enum Object {
    /// `n`.
    Namespace,
    /// `n.rpc`.
    Rpc,
    /// `n.rpc.<service>`.
    Service(Arc<str>),
    /// `n.rpc.<service>.<method>`.
    Method { service: Arc<str>, method: Arc<str> },
    /// `n.rpc.<service>.<method>.call_async`.
    CallAsync { service: Arc<str>, method: Arc<str> },
    /// What `call_async` returns.
    Handle(Arc<CallHandle>),
    /// `handle.result`.
    HandleResult(Arc<CallHandle>),
    /// A function of `n` or a built-in.
    Builtin(Builtin),
}

/// The shell's functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    DispatchEvent,
    Context,
    Timeout,
    Print,
    Len,
    Repr,
    Help,
    Exit,
}

impl Builtin {
    /// The name a user calls it by.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::DispatchEvent => "dispatch_event",
            Self::Context => "context",
            Self::Timeout => "timeout",
            Self::Print => "print",
            Self::Len => "len",
            Self::Repr => "repr",
            Self::Help => "help",
            Self::Exit => "exit",
        }
    }

    /// The built-ins reachable by a bare name (`n`'s functions are not).
    pub(crate) fn global(name: &str) -> Option<Self> {
        Some(match name {
            "print" => Self::Print,
            "len" => Self::Len,
            "repr" => Self::Repr,
            "help" => Self::Help,
            "exit" | "quit" => Self::Exit,
            _ => return None,
        })
    }

    /// The names of the global built-ins, for completion.
    pub(crate) const GLOBALS: &'static [&'static str] =
        &["print", "len", "repr", "help", "exit", "quit"];
}

/// The members of `n`, for completion and `dir(n)`.
pub(crate) const NAMESPACE_MEMBERS: &[&str] =
    &["rpc", "dispatch_event", "config", "context", "timeout"];

/// A dict: keys in insertion order, as Python keeps them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dict {
    entries: Vec<(Value, Value)>,
}

impl Dict {
    /// Sets `key` (which must be hashable), keeping the first position of an existing key
    /// and the last value, as Python does.
    pub(crate) fn insert(&mut self, key: Value, value: Value) -> Result<(), Value> {
        if !key.is_hashable() {
            return Err(key);
        }
        match self.entries.iter_mut().find(|(k, _)| k.key_eq(&key)) {
            Some((_, slot)) => *slot = value,
            None => self.entries.push((key, value)),
        }
        Ok(())
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &Value) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.key_eq(key))
            .map(|(_, v)| v)
    }

    /// The value of a string key.
    pub(crate) fn get_str(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if &**s == key))
            .map(|(_, v)| v)
    }

    /// The entries, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Value, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// How many entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Why a value cannot be sent as JSON.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not data: a proxy, a call handle, a function.
    #[error("Object of type {0} is not JSON serializable")]
    NotData(&'static str),
    /// `inf` or `nan`, which JSON has no form for.
    #[error("Out of range float values are not JSON compliant: {0}")]
    Float(String),
    /// An integer beyond 64 bits.
    #[error("integer {0} does not fit in 64 bits")]
    BigInt(i128),
    /// A dict key of a type JSON keys cannot have.
    #[error("keys must be str, int, float, bool or None, not {0}")]
    Key(&'static str),
}

impl Value {
    /// A string value.
    pub(crate) fn str(text: impl Into<Arc<str>>) -> Self {
        Self::Str(text.into())
    }

    /// Python's name of the value's type, as errors name it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Self::None => "NoneType",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Float(_) => "float",
            Self::Str(_) => "str",
            Self::List(_) => "list",
            Self::Tuple(_) => "tuple",
            Self::Dict(_) => "dict",
            Self::Object(object) => match object {
                Object::Namespace => "module",
                Object::Rpc => "ClusterRpcProxy",
                Object::Service(_) => "ServiceProxy",
                Object::Method { .. } => "MethodProxy",
                Object::CallAsync { .. } | Object::HandleResult(_) | Object::Builtin(_) => {
                    "builtin_function_or_method"
                }
                Object::Handle(_) => "RpcReply",
            },
        }
    }

    /// Whether it can be a dict key.
    pub(crate) fn is_hashable(&self) -> bool {
        match self {
            Self::List(_) | Self::Dict(_) => false,
            Self::Tuple(items) => items.iter().all(Self::is_hashable),
            _ => true,
        }
    }

    /// Python's `==` for keys: `1 == 1.0 == True`.
    pub(crate) fn key_eq(&self, other: &Self) -> bool {
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => return a == b,
            (Some(_), None) | (None, Some(_)) => return false,
            (None, None) => {}
        }
        match (self, other) {
            (Self::None, Self::None) => true,
            (Self::Str(a), Self::Str(b)) => a == b,
            (Self::Tuple(a), Self::Tuple(b)) | (Self::List(a), Self::List(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.key_eq(y))
            }
            _ => false,
        }
    }

    fn as_number(&self) -> Option<f64> {
        match self {
            Self::Bool(b) => Some(f64::from(u8::from(*b))),
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The nesting depth of containers (0 for a scalar).
    pub(crate) fn depth(&self) -> usize {
        match self {
            Self::List(items) | Self::Tuple(items) => {
                1 + items.iter().map(Self::depth).max().unwrap_or(0)
            }
            Self::Dict(dict) => {
                1 + dict
                    .iter()
                    .map(|(k, v)| k.depth().max(v.depth()))
                    .max()
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// The value as JSON, as Python's `json.dumps` (which kombu uses) would write it.
    pub(crate) fn to_json(&self) -> Result<serde_json::Value, JsonError> {
        Ok(match self {
            Self::None => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Int(i) => int_to_json(*i)?,
            Self::Float(f) => serde_json::Value::Number(
                Number::from_f64(*f).ok_or_else(|| JsonError::Float(super::repr::float(*f)))?,
            ),
            Self::Str(s) => serde_json::Value::String(s.to_string()),
            Self::List(items) | Self::Tuple(items) => {
                serde_json::Value::Array(items.iter().map(Self::to_json).collect::<Result<_, _>>()?)
            }
            Self::Dict(dict) => {
                let mut map = Map::new();
                for (key, value) in dict.iter() {
                    map.insert(json_key(key)?, value.to_json()?);
                }
                serde_json::Value::Object(map)
            }
            Self::Object(_) => return Err(JsonError::NotData(self.type_name())),
        })
    }

    /// A value read from JSON.
    pub(crate) fn from_json(value: &serde_json::Value) -> Self {
        match value {
            serde_json::Value::Null => Self::None,
            serde_json::Value::Bool(b) => Self::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Self::Int(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    Self::Int(i128::from(u))
                } else {
                    Self::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Self::str(s.as_str()),
            serde_json::Value::Array(items) => {
                Self::List(Arc::new(items.iter().map(Self::from_json).collect()))
            }
            serde_json::Value::Object(map) => {
                let mut dict = Dict::default();
                for (key, value) in map {
                    dict.entries
                        .push((Self::str(key.as_str()), Self::from_json(value)));
                }
                Self::Dict(Arc::new(dict))
            }
        }
    }
}

fn int_to_json(i: i128) -> Result<serde_json::Value, JsonError> {
    if let Ok(i) = i64::try_from(i) {
        Ok(i.into())
    } else if let Ok(u) = u64::try_from(i) {
        Ok(u.into())
    } else {
        Err(JsonError::BigInt(i))
    }
}

/// A dict key as `json.dumps` writes it: `1` as `"1"`, `True` as `"true"`, `None` as
/// `"null"`, `1.5` as `"1.5"`.
fn json_key(key: &Value) -> Result<String, JsonError> {
    Ok(match key {
        Value::Str(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Bool(true) => "true".to_owned(),
        Value::Bool(false) => "false".to_owned(),
        Value::None => "null".to_owned(),
        Value::Float(f) if f.is_nan() => "NaN".to_owned(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
        }
        Value::Float(f) => super::repr::float(*f),
        other => return Err(JsonError::Key(other.type_name())),
    })
}

impl fmt::Display for Value {
    /// Python's `repr`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::repr::repr(self))
    }
}

/// A list value.
pub(crate) fn list(items: Vec<Value>) -> Value {
    Value::List(Arc::new(items))
}

/// A tuple value.
pub(crate) fn tuple(items: Vec<Value>) -> Value {
    Value::Tuple(Arc::new(items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_and_python_key_rules() {
        let v = Value::from_json(&json!({"a": [1, 2.5, null, true, "é"], "b": {"c": -3}}));
        assert_eq!(
            v.to_json().unwrap(),
            json!({"a": [1, 2.5, null, true, "é"], "b": {"c": -3}})
        );
        let mut dict = Dict::default();
        dict.insert(Value::Int(1), Value::str("a")).unwrap();
        dict.insert(Value::Bool(true), Value::str("b")).unwrap();
        dict.insert(Value::Float(2.5), Value::None).unwrap();
        dict.insert(Value::None, Value::Int(0)).unwrap();
        assert_eq!(dict.len(), 3, "True is the key 1");
        assert!(dict.insert(list(vec![]), Value::None).is_err());
        assert_eq!(
            Value::Dict(Arc::new(dict)).to_json().unwrap(),
            json!({"1": "b", "2.5": null, "null": 0})
        );
        assert_eq!(
            tuple(vec![Value::Int(1), Value::Int(u64::MAX.into())])
                .to_json()
                .unwrap(),
            json!([1, u64::MAX])
        );
        assert_eq!(
            Value::Int(i128::from(u64::MAX) + 1).to_json(),
            Err(JsonError::BigInt(i128::from(u64::MAX) + 1))
        );
        assert_eq!(
            Value::Float(f64::INFINITY)
                .to_json()
                .unwrap_err()
                .to_string(),
            "Out of range float values are not JSON compliant: inf"
        );
        assert_eq!(
            Value::Object(Object::Rpc)
                .to_json()
                .unwrap_err()
                .to_string(),
            "Object of type ClusterRpcProxy is not JSON serializable"
        );
    }

    #[test]
    fn depth_counts_containers() {
        assert_eq!(Value::Int(1).depth(), 0);
        assert_eq!(Value::from_json(&json!([[1], {"a": [2]}])).depth(), 3);
    }
}
