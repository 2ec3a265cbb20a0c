//! PyYAML's YAML 1.1 rules for plain scalars: which text is null, a boolean, an integer or
//! a float, and how PyYAML constructs and prints numbers. A config file means the same to
//! nameko-rs as to Python nameko because these rules are PyYAML's, not YAML 1.2's.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Implicit {
    Null,
    Bool(bool),
    Int,
    Float,
    /// Strings, including timestamps, the merge key `<<` and the value key `=`, which a
    /// config keeps as text.
    Str,
}

/// The type PyYAML's `SafeLoader` gives a plain scalar.
pub(super) fn implicit_kind(text: &str) -> Implicit {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        Implicit::Null
    } else if let Some(b) = bool_word(text) {
        Implicit::Bool(b)
    } else if is_yaml11_float(text) {
        Implicit::Float
    } else if is_yaml11_int(text) {
        Implicit::Int
    } else {
        Implicit::Str
    }
}

fn bool_word(text: &str) -> Option<bool> {
    match text {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// `!!bool` on a lowercased text.
pub(super) fn bool_value(lower: &str) -> Option<bool> {
    match lower {
        "yes" | "true" | "on" => Some(true),
        "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

fn strip_sign(text: &str) -> (bool, &str) {
    match text.strip_prefix(['+', '-']) {
        Some(rest) => (true, rest),
        None => (false, text),
    }
}

fn all_chars(text: &str, allowed: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(allowed)
}

/// `[0-5]?[0-9]`: one sexagesimal place.
fn is_base60_digit(part: &str) -> bool {
    match part.as_bytes() {
        [d] => d.is_ascii_digit(),
        [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
        _ => false,
    }
}

/// `[0-9][0-9_]*` (or `[1-9][0-9_]*` with `nonzero`).
fn is_digits(text: &str, nonzero: bool) -> bool {
    let mut chars = text.chars();
    let first_ok = match chars.next() {
        Some(c) if nonzero => ('1'..='9').contains(&c),
        Some(c) => c.is_ascii_digit(),
        None => false,
    };
    first_ok && chars.all(|c| c.is_ascii_digit() || c == '_')
}

/// PyYAML's int resolver:
/// `[-+]?0b[0-1_]+ | [-+]?0[0-7_]+ | [-+]?(0|[1-9][0-9_]*) | [-+]?0x[0-9a-fA-F_]+ |
/// [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`.
fn is_yaml11_int(text: &str) -> bool {
    let (_, body) = strip_sign(text);
    if let Some(bits) = body.strip_prefix("0b") {
        return all_chars(bits, |c| matches!(c, '0' | '1' | '_'));
    }
    if let Some(hex) = body.strip_prefix("0x") {
        return all_chars(hex, |c| c.is_ascii_hexdigit() || c == '_');
    }
    if body == "0" {
        return true;
    }
    if let Some(octal) = body.strip_prefix('0') {
        return all_chars(octal, |c| matches!(c, '0'..='7' | '_'));
    }
    let mut parts = body.split(':');
    parts.next().is_some_and(|first| is_digits(first, true)) && parts.all(is_base60_digit)
}

/// `[0-9_]*` then an optional `[eE][-+][0-9]+`, to the end.
fn is_fraction_and_exponent(text: &str) -> bool {
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    let exponent = &text[digits_end..];
    if exponent.is_empty() {
        return true;
    }
    exponent
        .strip_prefix(['e', 'E'])
        .and_then(|e| e.strip_prefix(['-', '+']))
        .is_some_and(|digits| all_chars(digits, |c| c.is_ascii_digit()))
}

/// PyYAML's float resolver:
/// `[-+]?([0-9][0-9_]*)\.[0-9_]*([eE][-+][0-9]+)? | \.[0-9][0-9_]*([eE][-+][0-9]+)? |
/// [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`.
fn is_yaml11_float(text: &str) -> bool {
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (signed, body) = strip_sign(text);
    if matches!(body, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    if let Some(fraction) = body.strip_prefix('.') {
        return !signed
            && fraction.starts_with(|c: char| c.is_ascii_digit())
            && is_fraction_and_exponent(fraction);
    }
    if body.contains(':') {
        let mut parts: Vec<&str> = body.split(':').collect();
        let Some(last) = parts.pop() else {
            return false;
        };
        let Some((last_place, fraction)) = last.split_once('.') else {
            return false;
        };
        return parts.first().is_some_and(|first| is_digits(first, false))
            && parts[1..].iter().all(|part| is_base60_digit(part))
            && is_base60_digit(last_place)
            && fraction.chars().all(|c| c.is_ascii_digit() || c == '_');
    }
    match body.split_once('.') {
        Some((whole, fraction)) => is_digits(whole, false) && is_fraction_and_exponent(fraction),
        None => false,
    }
}

/// PyYAML's `construct_yaml_int`, also used for `!!int` on any text.
pub(super) fn parse_int(text: &str) -> Option<i128> {
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let negative = cleaned.starts_with('-');
    let body = cleaned.strip_prefix(['+', '-']).unwrap_or(&cleaned);
    let magnitude = if body == "0" {
        0
    } else if let Some(bits) = body.strip_prefix("0b") {
        i128::from_str_radix(bits, 2).ok()?
    } else if let Some(hex) = body.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if body.starts_with('0') {
        i128::from_str_radix(body, 8).ok()?
    } else if body.contains(':') {
        let mut value: i128 = 0;
        let mut base: i128 = 1;
        for part in body.rsplit(':') {
            let place: i128 = part.parse().ok()?;
            value = value.checked_add(place.checked_mul(base)?)?;
            base = base.checked_mul(60)?;
        }
        value
    } else {
        body.parse().ok()?
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// PyYAML's `construct_yaml_float`, also used for `!!float` on any text.
pub(super) fn parse_float(text: &str) -> Option<f64> {
    let cleaned: String = text.chars().filter(|&c| c != '_').collect();
    let cleaned = cleaned.to_lowercase();
    let negative = cleaned.starts_with('-');
    let body = cleaned.strip_prefix(['+', '-']).unwrap_or(&cleaned);
    let magnitude = match body {
        ".inf" => f64::INFINITY,
        ".nan" => f64::NAN,
        _ if body.contains(':') => {
            let mut value = 0.0;
            let mut base = 1.0;
            for part in body.rsplit(':') {
                let place: f64 = part.parse().ok()?;
                value += place * base;
                base *= 60.0;
            }
            value
        }
        _ => body.parse().ok()?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// Python's `repr` of a finite float: the shortest text that reads back the same, with a
/// signed two-digit exponent (`1e+16`, `2.5e-05`).
pub(super) fn python_float_repr(f: f64) -> String {
    let text = format!("{f:?}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => {
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ('-', digits),
                None => ('+', exponent),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => text,
    }
}

/// A float mapping key as `json.dumps` writes it.
pub(super) fn python_float_key(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        python_float_repr(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::value_of;
    use serde_json::{Value, json};

    #[test]
    fn plain_scalars_resolve_as_in_pyyaml() {
        let cases: &[(&str, Value)] = &[
            ("yes", json!(true)),
            ("No", json!(false)),
            ("ON", json!(true)),
            ("off", json!(false)),
            ("True", json!(true)),
            ("tRue", json!("tRue")),
            ("y", json!("y")),
            ("n", json!("n")),
            ("~", json!(null)),
            ("null", json!(null)),
            ("NULL", json!(null)),
            ("nUll", json!("nUll")),
            ("", json!(null)),
            ("0", json!(0)),
            ("-0", json!(0)),
            ("+12", json!(12)),
            ("1_000", json!(1000)),
            ("0x1F", json!(31)),
            ("+0x_f", json!(15)),
            ("017", json!(15)),
            ("0_", json!(0)),
            ("08", json!("08")),
            ("0b101", json!(5)),
            ("-0b11", json!(-3)),
            ("0b", json!("0b")),
            ("0o17", json!("0o17")),
            ("1:30", json!(90)),
            ("-1:30", json!(-90)),
            ("1:5", json!(65)),
            ("1:60", json!("1:60")),
            ("190:20:30", json!(685_230)),
            ("1.5", json!(1.5)),
            ("1.", json!(1.0)),
            (".5", json!(0.5)),
            ("-.5", json!("-.5")),
            ("0.1_2", json!(0.12)),
            ("1e3", json!("1e3")),
            ("1.0e3", json!("1.0e3")),
            ("1.0e+3", json!(1000.0)),
            ("1.E-3", json!(0.001)),
            (".5e+3", json!(500.0)),
            ("190:20:30.15", json!(685_230.15)),
            ("1.2.3", json!("1.2.3")),
            ("2001-12-14", json!("2001-12-14")),
            ("<<", json!("<<")),
            ("=", json!("=")),
            ("0.0.0.0:8000", json!("0.0.0.0:8000")),
            ("9223372036854775807", json!(i64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("18446744073709551615", json!(u64::MAX)),
        ];
        for (text, expected) in cases {
            assert_eq!(&value_of(text, &[]), expected, "{text:?}");
            if !text.is_empty() {
                assert_eq!(
                    &value_of(&format!("${{X:{text}}}"), &[]),
                    expected,
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn floats_print_as_python_does() {
        let cases = [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
        ];
        for (f, expected) in cases {
            assert_eq!(python_float_repr(f), expected);
        }
    }
}
