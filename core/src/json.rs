//! JSON exactly as Python nameko writes and reads it.
//!
//! Python nameko serializes with kombu's `json.dumps`: default separators (`", "` and
//! `": "`), `ensure_ascii=True` (every non-ASCII character as a `\uXXXX` escape) and
//! Python's float repr. [`to_vec`] writes the same bytes, so a message from nameko-rs is
//! indistinguishable from one sent by Python. [`from_slice`] reads standard JSON, and also
//! tolerates what Python can emit beyond it (`NaN`, `Infinity`, `-Infinity`, read as
//! `null`) and unwraps kombu's tagged values (`{"__type__": ..., "__value__": ...}`).

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::ser::{CharEscape, Formatter};

/// Serializes `value` the way Python's `json.dumps` does with kombu's defaults.
///
/// ```
/// use serde_json::json;
///
/// let body = nameko_core::wire::json::to_vec(&json!({"args": [1, "é", 1e16], "kwargs": {}})).unwrap();
/// assert_eq!(body, br#"{"args": [1, "\u00e9", 1e+16], "kwargs": {}}"#);
/// ```
///
/// # Errors
///
/// If `value` cannot be serialized (a map with non-string keys, a failing `Serialize`
/// implementation).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// The largest buffer [`to_bytes`] keeps between calls; a bigger one (a large message)
/// is freed after use.
const SCRATCH_KEEP: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// [`to_vec`] as [`Bytes`](bytes::Bytes) of exactly the body's size: written into a
/// buffer this thread reuses, then copied out in one allocation (a `Vec` grown while
/// writing costs its growth, and one more allocation to become `Bytes`).
///
/// ```
/// let body = nameko_core::wire::json::to_bytes(&serde_json::json!({"a": [1.5]})).unwrap();
/// assert_eq!(&body[..], br#"{"a": [1.5]}"#);
/// ```
///
/// # Errors
///
/// As [`to_vec`].
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<bytes::Bytes, serde_json::Error> {
    SCRATCH.with(|scratch| {
        // A `Serialize` that serializes again on this thread gets a buffer of its own.
        let Ok(mut out) = scratch.try_borrow_mut() else {
            return to_vec(value).map(bytes::Bytes::from);
        };
        out.clear();
        let written = value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut *out,
            PythonFormatter,
        ));
        let body = written.map(|()| bytes::Bytes::copy_from_slice(&out));
        if out.capacity() > SCRATCH_KEEP {
            *out = Vec::new();
        }
        body
    })
}

/// Parses a JSON body the way nameko-rs reads every message.
///
/// ```
/// use serde_json::{json, Value};
///
/// let v: Value = nameko_core::wire::json::from_slice(br#"{"x": NaN, "d": {"__type__": "decimal", "__value__": "1.5"}}"#).unwrap();
/// assert_eq!(v, json!({"x": null, "d": "1.5"}));
/// ```
///
/// # Errors
///
/// If the body is not JSON (or not UTF-8), or does not fit `T`.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let value = parse_value(body)?;
    serde_json::from_value(value)
}

/// Parses a JSON body into a [`Value`], tolerating Python's non-finite numbers and
/// unwrapping kombu's tagged values.
///
/// # Errors
///
/// If the body is not JSON.
pub fn parse_value(body: &[u8]) -> Result<Value, serde_json::Error> {
    let mut value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(err) => match replace_non_finite(body) {
            Some(fixed) => serde_json::from_slice::<Value>(&fixed).map_err(|_| err)?,
            None => return Err(err),
        },
    };
    if has_tagged_values(body) {
        unwrap_tagged(&mut value);
    }
    Ok(value)
}

/// Whether a body may hold kombu's tagged values (`"__type__"` appears in it), which
/// [`parse_value`] unwraps; a body without may be read straight into any type.
#[must_use]
pub fn has_tagged_values(body: &[u8]) -> bool {
    const NEEDLE: &str = "\"__type__\"";
    match std::str::from_utf8(body) {
        // `str::contains` searches with SIMD; JSON is UTF-8.
        Ok(text) => text.contains(NEEDLE),
        Err(_) => body.windows(NEEDLE.len()).any(|w| w == NEEDLE.as_bytes()),
    }
}

/// Rewrites the bare tokens `NaN`, `Infinity` and `-Infinity` (outside strings) to
/// `null`. Returns `None` when there is none, so the original parse error stands.
fn replace_non_finite(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut replaced = false;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        let rest = &body[i..];
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        if let Some(token) = token {
            out.extend_from_slice(b"null");
            i += token.len();
            replaced = true;
            continue;
        }
        if b == b'"' {
            in_string = true;
        }
        out.push(b);
        i += 1;
    }
    replaced.then_some(out)
}

/// Replaces kombu (>= 5.3) tagged values by the plain JSON older kombu sends for the
/// same Python value: dates, times and decimals as strings, UUIDs as their hyphenated
/// string, bytes as text.
fn unwrap_tagged(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(unwrap_tagged),
        Value::Object(map) => {
            if map.len() == 2 && map.contains_key("__type__") && map.contains_key("__value__") {
                let kind = map
                    .get("__type__")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let mut inner = map.remove("__value__").unwrap_or(Value::Null);
                unwrap_tagged(&mut inner);
                *value = match (kind.as_str(), inner) {
                    ("uuid", Value::Object(fields)) => {
                        match fields.get("hex").and_then(Value::as_str) {
                            Some(hex) => Value::String(hyphenate_uuid(hex)),
                            None => Value::Object(fields),
                        }
                    }
                    (_, other) => other,
                };
            } else {
                map.values_mut().for_each(unwrap_tagged);
            }
        }
        _ => {}
    }
}

fn hyphenate_uuid(hex: &str) -> String {
    if hex.len() == 32 && hex.is_ascii() {
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    } else {
        hex.to_owned()
    }
}

/// A serde_json formatter that writes what Python's `json.dumps` writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0_u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"\\/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(writer, "\\u{byte:04x}"),
        };
        writer.write_all(s)
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, in positional notation
/// for exponents from -4 to 15 (always with a fractional part), scientific otherwise
/// with a signed exponent of at least two digits. Non-finite values are written as
/// Python writes them (`NaN`, `Infinity`, `-Infinity`).
#[must_use]
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits as `d.ddde<exp>`.
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        if exp < 0 {
            let zeros = "0".repeat((-exp - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        } else if exp + 1 >= n {
            let zeros = "0".repeat((exp + 1 - n) as usize);
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let exp_sign = if exp < 0 { '-' } else { '+' };
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (123_456_789.0, "123456789.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.234_5e-7, "1.2345e-07"),
            (1.234_567_890_123_456_8e17, "1.2345678901234568e+17"),
            (1e100, "1e+100"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
        ];
        for (v, expected) in cases {
            assert_eq!(python_float_repr(v), expected, "{v:e}");
        }
    }

    #[test]
    fn bodies_match_python_json_dumps() {
        let body =
            to_vec(&json!({"args": [1, "two", [3]], "kwargs": {"three": {"a": 1}}})).unwrap();
        assert_eq!(
            body,
            br#"{"args": [1, "two", [3]], "kwargs": {"three": {"a": 1}}}"#
        );
        let body = to_vec(&json!(["\u{1F600} \"q\" \\ \n \u{1}", null, true, 2.5])).unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"["\ud83d\ude00 \"q\" \\ \n \u0001", null, true, 2.5]"#
        );
    }

    #[test]
    fn non_finite_tokens_read_as_null_but_not_inside_strings() {
        let v: Value = from_slice(br#"[NaN, -Infinity, "NaN Infinity", {"k": Infinity}]"#).unwrap();
        assert_eq!(v, json!([null, null, "NaN Infinity", {"k": null}]));
        assert!(from_slice::<Value>(b"[NaNa]").is_err());
        assert!(from_slice::<Value>(b"{broken").is_err());
    }

    #[test]
    fn kombu_tagged_values_unwrap() {
        let v: Value = from_slice(
            br#"{"dt": {"__type__": "datetime", "__value__": "2024-01-01T00:00:00"},
                 "u": {"__type__": "uuid", "__value__": {"hex": "17ab3b5c453b44dc8630ddba555b7842"}},
                 "b": {"__type__": "bytes", "__value__": "abc"},
                 "nested": [{"__type__": "decimal", "__value__": "1.10"}],
                 "not_tagged": {"__type__": "x", "__value__": 1, "other": 2}}"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "dt": "2024-01-01T00:00:00",
                "u": "17ab3b5c-453b-44dc-8630-ddba555b7842",
                "b": "abc",
                "nested": ["1.10"],
                "not_tagged": {"__type__": "x", "__value__": 1, "other": 2}
            })
        );
    }
}
