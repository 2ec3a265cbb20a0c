//! Context data: what travels with a call from worker to worker.
//!
//! nameko carries a worker's context (`user_id`, `language`, `auth_token`, any custom key,
//! and the call id stack) in AMQP headers named `nameko.<key>`. Incoming headers with that
//! prefix become [`ContextData`]; outgoing requests, events and published messages carry
//! the worker's context back out, plus `nameko.call_id_stack`. Replies carry none.
//!
//! Unlike Python nameko, headers *without* the `nameko.` prefix (broker headers such as
//! `x-death`, or headers set by other tools) do not enter the context, so they are not
//! re-emitted downstream as `nameko.x-death`.

use std::fmt;
use std::sync::{Arc, LazyLock};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::transport::{FieldTable, FieldValue};
use crate::wire::{CALL_ID_STACK, HEADER_PREFIX};

/// Context key of the user id.
pub const USER_ID: &str = "user_id";
/// Context key of the language.
pub const LANGUAGE: &str = "language";
/// Context key of the user agent.
pub const USER_AGENT: &str = "user_agent";
/// Context key of the auth token (never logged).
pub const AUTH_TOKEN: &str = "auth_token";

/// A worker's context data: `user_id`, `language`, `user_agent`, `auth_token` and any
/// custom key, as JSON values. Cheap to clone.
///
/// ```
/// use nameko_core::context::ContextData;
/// use serde_json::json;
///
/// let ctx = ContextData::new().with("language", "en-gb").with("user_id", 42);
/// assert_eq!(ctx.language(), Some("en-gb"));
/// assert_eq!(ctx.user_id(), Some(&json!(42)));
/// assert_eq!(ctx.get_as::<u64>("user_id"), Some(42));
/// ```
#[derive(Clone, Default)]
pub struct ContextData {
    /// `None` when empty: most calls carry no context data, and an empty context then
    /// costs no allocation.
    data: Option<Arc<Map<String, Value>>>,
}

/// The map of an empty context.
static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl PartialEq for ContextData {
    fn eq(&self, other: &Self) -> bool {
        self.map() == other.map()
    }
}

impl ContextData {
    /// Empty context.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Context from a JSON object's entries.
    #[must_use]
    pub fn from_map(map: Map<String, Value>) -> Self {
        Self {
            data: (!map.is_empty()).then(|| Arc::new(map)),
        }
    }

    fn map(&self) -> &Map<String, Value> {
        self.data.as_deref().unwrap_or(&EMPTY)
    }

    /// Adds a key; `null` removes it (nameko never sends null context values).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets a key; `null` removes it.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let value = value.into();
        if value.is_null() {
            if let Some(data) = &mut self.data {
                Arc::make_mut(data).remove(&key);
            }
        } else {
            Arc::make_mut(self.data.get_or_insert_with(Default::default)).insert(key, value);
        }
    }

    /// The value of a key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.data.as_deref()?.get(key)
    }

    /// The value of a key as a string, if it is one.
    #[must_use]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The value of a key converted to `T`, if present and convertible.
    #[must_use]
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get(key).and_then(|v| T::deserialize(v).ok())
    }

    /// `user_id` (nameko's `UserId` provider); any JSON value, often a number.
    #[must_use]
    pub fn user_id(&self) -> Option<&Value> {
        self.get(USER_ID)
    }

    /// `language` (nameko's `Language` provider).
    #[must_use]
    pub fn language(&self) -> Option<&str> {
        self.get_str(LANGUAGE)
    }

    /// `user_agent` (nameko's `UserAgent` provider).
    #[must_use]
    pub fn user_agent(&self) -> Option<&str> {
        self.get_str(USER_AGENT)
    }

    /// `auth_token` (nameko's `AuthToken` provider).
    #[must_use]
    pub fn auth_token(&self) -> Option<&str> {
        self.get_str(AUTH_TOKEN)
    }

    /// The keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.map().iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// The context as a JSON object.
    #[must_use]
    pub fn to_map(&self) -> Map<String, Value> {
        self.map().clone()
    }

    /// Reads the context and the parent call id stack from incoming headers: every
    /// `nameko.<key>` header becomes `<key>`, except `nameko.call_id_stack`, which is
    /// returned apart. Other headers are left out.
    #[must_use]
    pub fn from_headers(headers: &FieldTable) -> (Self, Vec<String>) {
        let mut data = Map::new();
        let mut stack = Vec::new();
        for (name, value) in headers.iter() {
            let Some(key) = name.strip_prefix(HEADER_PREFIX) else {
                continue;
            };
            if key == CALL_ID_STACK {
                stack = match value {
                    FieldValue::Array(items) => items.iter().map(call_id_string).collect(),
                    other => vec![call_id_string(other)],
                };
            } else {
                let value = value.to_json();
                if !value.is_null() {
                    data.insert(key.to_owned(), value);
                }
            }
        }
        (Self::from_map(data), stack)
    }

    /// [`ContextData::from_headers`] on headers given away: their strings move into the
    /// context and the stack instead of being copied, and the stack has room for one
    /// more entry (the call id of the worker it is for).
    #[must_use]
    pub fn from_owned_headers(headers: FieldTable) -> (Self, Vec<String>) {
        let mut data = Map::new();
        let mut stack = Vec::new();
        for (mut name, value) in headers {
            if !name.starts_with(HEADER_PREFIX) {
                continue;
            }
            if &name[HEADER_PREFIX.len()..] == CALL_ID_STACK {
                stack = match value {
                    FieldValue::Array(items) => {
                        let mut stack = Vec::with_capacity(items.len() + 1);
                        stack.extend(items.into_iter().map(into_call_id_string));
                        stack
                    }
                    other => {
                        let mut stack = Vec::with_capacity(2);
                        stack.push(into_call_id_string(other));
                        stack
                    }
                };
            } else {
                let value = match value {
                    FieldValue::String(s) => Value::String(s),
                    other => other.to_json(),
                };
                if !value.is_null() {
                    name.replace_range(..HEADER_PREFIX.len(), "");
                    data.insert(name, value);
                }
            }
        }
        (Self::from_map(data), stack)
    }

    /// Writes the context as outgoing headers, `nameko.<key>` for every key, plus
    /// `nameko.call_id_stack` when `call_id_stack` is not empty. Integers are sent as
    /// int32 when they fit, int64 otherwise, as py-amqp does.
    #[must_use]
    pub fn to_headers(&self, call_id_stack: &[String]) -> FieldTable {
        let mut headers = FieldTable::new();
        for (key, value) in self.map() {
            if key == CALL_ID_STACK || value.is_null() {
                continue;
            }
            headers.insert(
                format!("{HEADER_PREFIX}{key}"),
                FieldValue::from_json(value),
            );
        }
        if !call_id_stack.is_empty() {
            headers.insert(
                format!("{HEADER_PREFIX}{CALL_ID_STACK}"),
                FieldValue::Array(
                    call_id_stack
                        .iter()
                        .map(|id| FieldValue::String(id.clone()))
                        .collect(),
                ),
            );
        }
        headers
    }
}

fn call_id_string(value: &FieldValue) -> String {
    match value {
        FieldValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn into_call_id_string(value: FieldValue) -> String {
    match value {
        FieldValue::String(s) => s,
        other => other.to_string(),
    }
}

impl fmt::Debug for ContextData {
    /// Prints every key, with the value of `auth_token` redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in self.map() {
            if k == AUTH_TOKEN {
                map.entry(k, &"***");
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

impl FromIterator<(String, Value)> for ContextData {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        Self::from_map(iter.into_iter().filter(|(_, v)| !v.is_null()).collect())
    }
}

/// Appends `call_id` to a parent stack and keeps the last `parent_calls_tracked + 1`
/// entries, as nameko's `WorkerContext.call_id_stack` does.
///
/// ```
/// use nameko_core::context::extend_call_id_stack;
///
/// let parent: Vec<String> = (0..100).map(|i| i.to_string()).collect();
/// assert_eq!(extend_call_id_stack(&parent, "baz.long.0".to_owned(), 1), ["99", "baz.long.0"]);
/// ```
#[must_use]
pub fn extend_call_id_stack(
    parent: &[String],
    call_id: String,
    parent_calls_tracked: usize,
) -> Vec<String> {
    let keep_parents = parent.len().min(parent_calls_tracked);
    let mut stack = Vec::with_capacity(keep_parents + 1);
    stack.extend_from_slice(&parent[parent.len() - keep_parents..]);
    stack.push(call_id);
    stack
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_round_trip_and_foreign_headers_stay_out() {
        let mut headers = FieldTable::new()
            .with("nameko.language", "de")
            .with("nameko.user_id", 42)
            .with("nameko.big", 1_i64 << 40)
            .with("x-foreign", "f");
        headers.insert(
            "nameko.call_id_stack",
            FieldValue::Array(vec!["a.b.1".into(), "c.d.2".into()]),
        );
        let (ctx, stack) = ContextData::from_headers(&headers);
        assert_eq!(stack, ["a.b.1", "c.d.2"]);
        let (owned_ctx, owned_stack) = ContextData::from_owned_headers(headers.clone());
        assert_eq!((&owned_ctx, &owned_stack), (&ctx, &stack));
        assert_eq!(
            owned_ctx.iter().collect::<Vec<_>>(),
            ctx.iter().collect::<Vec<_>>()
        );
        assert!(
            owned_stack.capacity() > owned_stack.len(),
            "room for the call id"
        );
        assert_eq!(
            ctx.to_map(),
            json!({"language": "de", "user_id": 42, "big": 1_099_511_627_776_i64})
                .as_object()
                .unwrap()
                .clone()
        );
        let out = ctx.to_headers(&["a.b.1".to_owned(), "c.d.2".to_owned(), "e.f.3".to_owned()]);
        assert_eq!(out.get("nameko.user_id"), Some(&FieldValue::I32(42)));
        assert_eq!(out.get("nameko.big"), Some(&FieldValue::I64(1 << 40)));
        assert!(!out.contains_key("nameko.x-foreign"));
        assert_eq!(
            out.get("nameko.call_id_stack")
                .and_then(FieldValue::as_array)
                .map(<[_]>::len),
            Some(3)
        );
    }

    #[test]
    fn empty_contexts_are_equal_however_made() {
        let emptied = ContextData::new().with("a", 1).with("a", Value::Null);
        assert_eq!(emptied, ContextData::new());
        assert!(emptied.is_empty());
        assert_eq!(ContextData::from_map(Map::new()), ContextData::default());
        assert_ne!(ContextData::new().with("a", 1), ContextData::new());
        let (ctx, stack) = ContextData::from_owned_headers(
            FieldTable::new()
                .with("nameko.call_id_stack", "a.b.1")
                .with("x-other", 1),
        );
        assert!(ctx.is_empty());
        assert_eq!(stack, ["a.b.1"]);
    }

    #[test]
    fn auth_token_is_redacted_in_debug() {
        let ctx = ContextData::new()
            .with("auth_token", "s3cret")
            .with("language", "en");
        let printed = format!("{ctx:?}");
        assert!(!printed.contains("s3cret"));
        assert!(printed.contains("language"));
    }

    #[test]
    fn stack_keeps_parent_calls_tracked_plus_one() {
        let parent: Vec<String> = (0..5).map(|i| format!("p{i}")).collect();
        assert_eq!(extend_call_id_stack(&parent, "me".into(), 10).len(), 6);
        assert_eq!(
            extend_call_id_stack(&parent, "me".into(), 2),
            ["p3", "p4", "me"]
        );
        assert_eq!(extend_call_id_stack(&parent, "me".into(), 0), ["me"]);
    }
}
