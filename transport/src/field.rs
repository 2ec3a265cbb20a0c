//! AMQP field-table values, as carried in message headers and queue arguments.
//!
//! Python nameko puts context data in AMQP headers, encoded by py-amqp as field-table
//! values: `str` as a long string, `int` as int32 or int64 depending on its size, `float`
//! as a double, `bool`, `list` as an array and `dict` as a nested table. [`FieldValue`]
//! keeps every one of those types apart, so a header read from the wire and written back
//! out is the same header.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// One value of an AMQP field table.
///
/// Each variant is one AMQP 0-9-1 field type (with RabbitMQ's type letters), so a value
/// read from a broker and published again keeps its exact wire type.
///
/// ```
/// use nameko_transport::FieldValue;
///
/// assert_eq!(FieldValue::from(42), FieldValue::I32(42));
/// assert_eq!(FieldValue::from(1_i64 << 40), FieldValue::I64(1 << 40));
/// assert_eq!(FieldValue::from("en-gb").as_str(), Some("en-gb"));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// `t`: a boolean.
    Bool(bool),
    /// `b`: a signed 8-bit integer.
    I8(i8),
    /// `B`: an unsigned 8-bit integer.
    U8(u8),
    /// `s`: a signed 16-bit integer.
    I16(i16),
    /// `u`: an unsigned 16-bit integer.
    U16(u16),
    /// `I`: a signed 32-bit integer (what Python sends for small `int`s).
    I32(i32),
    /// `i`: an unsigned 32-bit integer.
    U32(u32),
    /// `l`: a signed 64-bit integer (what Python sends for large `int`s).
    I64(i64),
    /// `f`: a single-precision float.
    F32(f32),
    /// `d`: a double-precision float (what Python sends for `float`).
    F64(f64),
    /// `D`: a decimal, `value / 10^scale`.
    Decimal {
        /// Number of decimal digits after the point.
        scale: u8,
        /// Unscaled value.
        value: u32,
    },
    /// `S`: a long string holding UTF-8 text (what Python sends for `str`).
    String(String),
    /// `x`: a byte array, or a long string that is not valid UTF-8.
    Bytes(Vec<u8>),
    /// `T`: a timestamp, seconds since the Unix epoch.
    Timestamp(u64),
    /// `A`: an array of values.
    Array(Vec<FieldValue>),
    /// `F`: a nested table.
    Table(FieldTable),
    /// `V`: no value.
    Void,
}

impl FieldValue {
    /// The string, if this is a [`FieldValue::String`].
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an `i64`, if it is an integer of any width that fits.
    #[must_use]
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::U8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            Self::Timestamp(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as an `f64`, if it is a number.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            #[allow(clippy::cast_precision_loss)]
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    /// The boolean, if this is a [`FieldValue::Bool`].
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is an [`FieldValue::Array`].
    #[must_use]
    pub fn as_array(&self) -> Option<&[FieldValue]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The nested table, if this is a [`FieldValue::Table`].
    #[must_use]
    pub fn as_table(&self) -> Option<&FieldTable> {
        match self {
            Self::Table(t) => Some(t),
            _ => None,
        }
    }

    /// Converts a JSON value the way py-amqp encodes the equivalent Python value.
    ///
    /// Integers within the int32 range become [`FieldValue::I32`], larger ones
    /// [`FieldValue::I64`]; an unsigned integer beyond `i64::MAX` becomes a double;
    /// objects become tables and arrays arrays. `null` becomes [`FieldValue::Void`]
    /// (nameko drops null context values before they reach the wire).
    #[must_use]
    pub fn from_json(value: &serde_json::Value) -> Self {
        use serde_json::Value;
        match value {
            Value::Null => Self::Void,
            Value::Bool(b) => Self::Bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    i32::try_from(i).map_or(Self::I64(i), Self::I32)
                } else {
                    Self::F64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => Self::String(s.clone()),
            Value::Array(items) => Self::Array(items.iter().map(Self::from_json).collect()),
            Value::Object(map) => Self::Table(
                map.iter()
                    .map(|(k, v)| (k.clone(), Self::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts to JSON, the way Python nameko sees a header in its context data.
    ///
    /// Integers and floats become numbers (a non-finite float becomes `null`), byte
    /// arrays become strings when they are UTF-8 and arrays of numbers otherwise,
    /// decimals become their decimal string, timestamps their seconds.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::F32(f) => {
                serde_json::Number::from_f64((*f).into()).map_or(Value::Null, Value::Number)
            }
            Self::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Self::Decimal { scale, value } => Value::String(decimal_string(*scale, *value)),
            Self::String(s) => Value::String(s.clone()),
            Self::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::String(s.to_owned()),
                Err(_) => Value::Array(b.iter().map(|x| Value::from(*x)).collect()),
            },
            Self::Timestamp(t) => Value::from(*t),
            Self::Array(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Table(t) => {
                Value::Object(t.iter().map(|(k, v)| (k.to_owned(), v.to_json())).collect())
            }
            Self::Void => Value::Null,
            other => other.as_i64().map_or(Value::Null, Value::from),
        }
    }
}

fn decimal_string(scale: u8, value: u32) -> String {
    let digits = value.to_string();
    let scale = usize::from(scale);
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

macro_rules! field_from {
    ($($t:ty => $variant:ident),* $(,)?) => {
        $(impl From<$t> for FieldValue {
            fn from(v: $t) -> Self {
                Self::$variant(v)
            }
        })*
    };
}

field_from! {
    bool => Bool,
    i8 => I8,
    u8 => U8,
    i16 => I16,
    u16 => U16,
    i32 => I32,
    u32 => U32,
    f32 => F32,
    f64 => F64,
    String => String,
    Vec<FieldValue> => Array,
    FieldTable => Table,
}

impl From<i64> for FieldValue {
    /// Chooses int32 when the value fits, as py-amqp does.
    fn from(v: i64) -> Self {
        i32::try_from(v).map_or(Self::I64(v), Self::I32)
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_owned())
    }
}

/// An AMQP field table: header names (or argument names) to [`FieldValue`]s.
///
/// Keys are kept sorted so that tables compare and print deterministically.
///
/// A table is shared copy-on-write: cloning one (as a message is cloned on its way
/// through a broker, or a proxy's headers into each request) copies a pointer, and the
/// first change to a shared table copies its entries. An empty table holds nothing on
/// the heap.
///
/// ```
/// use nameko_transport::{FieldTable, FieldValue};
///
/// let mut headers = FieldTable::new();
/// headers.insert("nameko.language", "en-gb");
/// headers.insert("nameko.user_id", 42);
/// assert_eq!(headers.get("nameko.user_id"), Some(&FieldValue::I32(42)));
/// assert_eq!(headers.len(), 2);
///
/// let mut copy = headers.clone();
/// copy.insert("nameko.user_id", 43);
/// assert_eq!(headers.get("nameko.user_id"), Some(&FieldValue::I32(42)));
/// ```
#[derive(Clone, Default)]
pub struct FieldTable(Option<Arc<BTreeMap<String, FieldValue>>>);

/// What an empty table reads as.
static EMPTY: BTreeMap<String, FieldValue> = BTreeMap::new();

impl FieldTable {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, for reading.
    fn map(&self) -> &BTreeMap<String, FieldValue> {
        self.0.as_deref().unwrap_or(&EMPTY)
    }

    /// The entries, for changing: this table's own copy of them.
    fn map_mut(&mut self) -> &mut BTreeMap<String, FieldValue> {
        Arc::make_mut(self.0.get_or_insert_with(Arc::default))
    }

    /// Inserts a value, returning the one it replaced.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: impl Into<FieldValue>,
    ) -> Option<FieldValue> {
        self.map_mut().insert(key.into(), value.into())
    }

    /// Adds a value and returns the table, for building tables in one expression.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.insert(key, value);
        self
    }

    /// The value under `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.map().get(key)
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        if !self.contains_key(key) {
            return None;
        }
        self.map_mut().remove(key)
    }

    /// Whether `key` is present.
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.map().contains_key(key)
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether the table has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// Iterates over the entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> + '_ {
        self.map().iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl fmt::Debug for FieldTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FieldTable").field(self.map()).finish()
    }
}

impl PartialEq for FieldTable {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.map() == other.map(),
        }
    }
}

impl FromIterator<(String, FieldValue)> for FieldTable {
    fn from_iter<I: IntoIterator<Item = (String, FieldValue)>>(iter: I) -> Self {
        let map: BTreeMap<String, FieldValue> = iter.into_iter().collect();
        if map.is_empty() {
            Self(None)
        } else {
            Self(Some(Arc::new(map)))
        }
    }
}

impl IntoIterator for FieldTable {
    type Item = (String, FieldValue);
    type IntoIter = std::collections::btree_map::IntoIter<String, FieldValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.0
            .map(Arc::unwrap_or_clone)
            .unwrap_or_default()
            .into_iter()
    }
}

impl<'a> IntoIterator for &'a FieldTable {
    type Item = (&'a String, &'a FieldValue);
    type IntoIter = std::collections::btree_map::Iter<'a, String, FieldValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.map().iter()
    }
}

impl Extend<(String, FieldValue)> for FieldTable {
    fn extend<I: IntoIterator<Item = (String, FieldValue)>>(&mut self, iter: I) {
        let mut iter = iter.into_iter().peekable();
        if iter.peek().is_some() {
            self.map_mut().extend(iter);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_integers_choose_width_like_py_amqp() {
        assert_eq!(FieldValue::from_json(&json!(42)), FieldValue::I32(42));
        assert_eq!(
            FieldValue::from_json(&json!(-2_147_483_648_i64)),
            FieldValue::I32(i32::MIN)
        );
        assert_eq!(
            FieldValue::from_json(&json!(2_147_483_648_i64)),
            FieldValue::I64(1 << 31)
        );
        assert_eq!(FieldValue::from_json(&json!(1.5)), FieldValue::F64(1.5));
    }

    #[test]
    fn json_round_trip_of_nested_values() {
        let v = json!({"a": [1, "two", {"three": true}], "b": 2.5, "c": 1_099_511_627_776_i64});
        assert_eq!(FieldValue::from_json(&v).to_json(), v);
    }

    #[test]
    fn tables_are_copied_on_write() {
        let original = FieldTable::new().with("a", 1).with("b", "two");
        let mut copy = original.clone();
        assert_eq!(copy, original);
        copy.insert("a", 2);
        assert_eq!(original.get("a"), Some(&FieldValue::I32(1)));
        assert_eq!(copy.get("a"), Some(&FieldValue::I32(2)));
        assert_eq!(copy.remove("b"), Some(FieldValue::from("two")));
        assert_eq!(copy.remove("missing"), None);
        assert_eq!(original.len(), 2);
        assert_eq!(copy.len(), 1);
        let entries: Vec<(String, FieldValue)> = original.clone().into_iter().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(original.len(), 2);
    }

    #[test]
    fn empty_tables_are_equal_however_made() {
        let mut emptied = FieldTable::new().with("a", 1);
        emptied.remove("a");
        assert_eq!(emptied, FieldTable::new());
        assert!(emptied.is_empty());
        let collected: FieldTable = std::iter::empty().collect();
        assert_eq!(collected, FieldTable::default());
        assert_eq!(format!("{:?}", FieldTable::new()), "FieldTable({})");
        let mut extended = FieldTable::new();
        extended.extend(std::iter::empty());
        assert_eq!(extended, FieldTable::new());
        extended.extend([("k".to_owned(), FieldValue::Void)]);
        assert_eq!(extended.len(), 1);
    }

    #[test]
    fn decimals_print_with_their_scale() {
        assert_eq!(
            FieldValue::Decimal {
                scale: 2,
                value: 12345
            }
            .to_json(),
            json!("123.45")
        );
        assert_eq!(
            FieldValue::Decimal { scale: 3, value: 5 }.to_json(),
            json!("0.005")
        );
        assert_eq!(
            FieldValue::Decimal { scale: 0, value: 7 }.to_json(),
            json!("7")
        );
    }
}
