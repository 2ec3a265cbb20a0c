//! Values printed as Python 3 prints them: `repr` (what the shell shows for a result) and
//! `str` (what `print` shows).

use std::fmt::Write;

use unicode_general_category::{GeneralCategory, get_general_category};

use super::value::{Object, Value};

/// Python's `repr(value)`.
pub(crate) fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

/// Python's `str(value)`: strings as they are, everything else as `repr`.
pub(crate) fn str(value: &Value) -> String {
    match value {
        Value::Str(s) => s.to_string(),
        other => repr(other),
    }
}

fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::None => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float(*f)),
        Value::Str(s) => out.push_str(&string(s)),
        Value::List(items) => {
            out.push('[');
            write_items(out, items);
            out.push(']');
        }
        Value::Tuple(items) => {
            out.push('(');
            write_items(out, items);
            if items.len() == 1 {
                out.push(',');
            }
            out.push(')');
        }
        Value::Dict(dict) => {
            out.push('{');
            for (i, (key, value)) in dict.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, key);
                out.push_str(": ");
                write_repr(out, value);
            }
            out.push('}');
        }
        Value::Object(object) => write_object(out, object),
    }
}

fn write_items(out: &mut String, items: &[Value]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_repr(out, item);
    }
}

fn write_object(out: &mut String, object: &Object) {
    let _ = match object {
        Object::Namespace => write!(out, "<module 'n' (nameko shell helpers)>"),
        Object::Rpc => write!(out, "<ClusterRpcProxy>"),
        Object::Service(service) => write!(out, "<ServiceProxy {}>", string(service)),
        Object::Method { service, method } => write!(out, "<MethodProxy {service}.{method}>"),
        Object::CallAsync { service, method } => {
            write!(out, "<bound method call_async of {service}.{method}>")
        }
        Object::Handle(handle) => write!(out, "<RpcReply {}>", handle.describe()),
        Object::HandleResult(handle) => {
            write!(
                out,
                "<bound method result of RpcReply {}>",
                handle.describe()
            )
        }
        Object::Builtin(builtin) => write!(out, "<built-in function {}>", builtin.name()),
    };
}

/// Python's `repr` of a float: the shortest digits that read back as the same float,
/// in exponent form below `1e-4` and from `1e16` on (`1e+16`, `1e-05`), else with a
/// decimal point (`0.1`, `100.0`, `-0.0`); `inf`, `-inf`, `nan`.
pub(crate) fn float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0.0");
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `1.2345e-7`.
    let scientific = format!("{:e}", f.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // The position of the decimal point relative to the first digit.
    let point = exponent + 1;
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let mut out = String::from(sign);
    if point <= -4 || point > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.unsigned_abs()
        );
    } else if point <= 0 {
        out.push_str("0.");
        for _ in 0..-point {
            out.push('0');
        }
        out.push_str(&digits);
    } else if point < n {
        let split = usize::try_from(point).unwrap_or(0);
        out.push_str(&digits[..split]);
        out.push('.');
        out.push_str(&digits[split..]);
    } else {
        out.push_str(&digits);
        for _ in 0..point - n {
            out.push('0');
        }
        out.push_str(".0");
    }
    out
}

/// Python's `repr` of a string: single quotes unless the text has a single quote and no
/// double quote; backslash escapes for the quote, backslashes, `\t \n \r`, control
/// characters and what Python does not consider printable.
pub(crate) fn string(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c < ' ' || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_ascii() || printable(c) => out.push(c),
            c if u32::from(c) <= 0xff => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character beyond ASCII: not a control, format,
/// surrogate, private-use or unassigned character, nor a separator other than space.
fn printable(c: char) -> bool {
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::SpaceSeparator
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::value::{list, tuple};
    use serde_json::json;

    /// Each expected text is what Python 3.11 prints for the same value.
    #[test]
    fn floats_print_as_python() {
        let cases: &[(f64, &str)] = &[
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (123_456_789_012_345_680.0, "1.2345678901234568e+17"),
            (1e22, "1e+22"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-2.5, "-2.5"),
            (12345.678, "12345.678"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (1.0 / 3.0, "0.3333333333333333"),
            (9_007_199_254_740_992.0, "9007199254740992.0"),
        ];
        for (value, expected) in cases {
            assert_eq!(float(*value), *expected, "{value:e}");
        }
    }

    #[test]
    fn strings_print_as_python() {
        let cases: &[(&str, &str)] = &[
            ("hello", "'hello'"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' and \"", "'both \\' and \"'"),
            ("back\\slash", "'back\\\\slash'"),
            ("tab\tnew\nret\r", "'tab\\tnew\\nret\\r'"),
            ("\x00\x1b\x7f", "'\\x00\\x1b\\x7f'"),
            ("é ü 漢字 😀", "'é ü 漢字 😀'"),
            ("\u{a0}nbsp", "'\\xa0nbsp'"),
            ("\u{ad}", "'\\xad'"),
            ("zero\u{200b}width", "'zero\\u200bwidth'"),
            ("\u{2028}", "'\\u2028'"),
            ("\u{3000}", "'\\u3000'"),
            ("\u{e000}", "'\\ue000'"),
            ("\u{f0000}", "'\\U000f0000'"),
            ("\u{85}", "'\\x85'"),
            ("", "''"),
        ];
        for (value, expected) in cases {
            assert_eq!(string(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn containers_print_as_python() {
        let v = Value::from_json(&json!({
            "value": 42, "ok": true, "none": null, "list": [1, 2.0, "a"],
            "nested": {"d": {}, "l": [[], [{}]]}, "quote": "it's"
        }));
        assert_eq!(
            repr(&v),
            "{'value': 42, 'ok': True, 'none': None, 'list': [1, 2.0, 'a'], \
             'nested': {'d': {}, 'l': [[], [{}]]}, 'quote': \"it's\"}"
        );
        assert_eq!(repr(&tuple(vec![])), "()");
        assert_eq!(repr(&tuple(vec![Value::Int(1)])), "(1,)");
        assert_eq!(
            repr(&tuple(vec![Value::Int(1), list(vec![Value::None])])),
            "(1, [None])"
        );
        assert_eq!(str(&Value::str("plain")), "plain");
        assert_eq!(str(&list(vec![Value::str("a")])), "['a']");
    }
}
