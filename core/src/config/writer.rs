//! Writing a config as YAML, what `nameko show-config` prints: block style, keys in the
//! config's order, and strings quoted whenever PyYAML or nameko's loader would read them
//! back as something else.

use serde_json::{Map, Value};

use super::Config;
use super::resolve::{Implicit, implicit_kind, python_float_repr};

impl Config {
    /// The config as a YAML document, what `nameko show-config` prints.
    ///
    /// Keys keep the config's order. Strings that YAML would read as something else
    /// (`"yes"`, `"5"`, `"${X}"`, `""`) are double-quoted, so loading the output gives the
    /// same config back, with nameko-rs as with Python nameko. It shows passwords: print
    /// [`Config::redacted`] to hide them.
    ///
    /// ```
    /// use nameko_core::config::Config;
    /// use serde_json::json;
    ///
    /// let config = Config::from_value(json!({
    ///     "RPC_RETRY_POLICY": {"max_retries": 3, "interval_start": 0.5},
    /// }))?;
    /// assert_eq!(
    ///     config.to_yaml_string(),
    ///     "RPC_RETRY_POLICY:\n  max_retries: 3\n  interval_start: 0.5\n",
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn to_yaml_string(&self) -> String {
        let mut out = String::new();
        if self.values.is_empty() {
            out.push_str("{}\n");
        } else {
            emit_mapping(&mut out, &self.values, 0);
        }
        out
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn emit_mapping(out: &mut String, map: &Map<String, Value>, indent: usize) {
    for (key, value) in map {
        push_indent(out, indent);
        out.push_str(&yaml_string(key));
        out.push(':');
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                emit_mapping(out, inner, indent + 2);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                emit_sequence(out, items, indent + 2);
            }
            scalar => {
                out.push(' ');
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
            }
        }
    }
}

fn emit_sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push_str("- ");
        // A nested block starts on the dash's line: write it indented, then drop the
        // indentation of its first line.
        let mut block = String::new();
        match item {
            Value::Object(inner) if !inner.is_empty() => {
                emit_mapping(&mut block, inner, indent + 2)
            }
            Value::Array(inner) if !inner.is_empty() => {
                emit_sequence(&mut block, inner, indent + 2)
            }
            scalar => {
                out.push_str(&yaml_scalar(scalar));
                out.push('\n');
                continue;
            }
        }
        out.push_str(block.get(indent + 2..).unwrap_or_default());
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => yaml_float(f),
            _ => n.to_string(),
        },
        Value::String(text) => yaml_string(text),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A float as PyYAML writes one, which its float resolver reads back (`1.0e+16`).
fn yaml_float(f: f64) -> String {
    let text = python_float_repr(f);
    match text.split_once('e') {
        Some((mantissa, exponent)) if !mantissa.contains('.') => {
            format!("{mantissa}.0e{exponent}")
        }
        _ => text,
    }
}

/// A string, plain when PyYAML and this loader read it back as the same string (no other
/// type, no substitution), double-quoted otherwise.
fn yaml_string(text: &str) -> String {
    if is_plain_safe(text) {
        text.to_owned()
    } else {
        double_quoted(text)
    }
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let looks_like_date = text.len() >= 5
        && text.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && text.as_bytes()[4] == b'-';
    (first.is_ascii_alphanumeric() || matches!(first, '/' | '.' | '_'))
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    ' ' | '_'
                        | '-'
                        | '.'
                        | '/'
                        | ':'
                        | '@'
                        | '%'
                        | '+'
                        | '='
                        | '~'
                        | ','
                        | '('
                        | ')'
                        | '*'
                        | '&'
                        | '!'
                        | '?'
                        | ';'
                        | '\''
                )
        })
        && !text.ends_with([' ', ':'])
        && !text.starts_with("...")
        && !text.contains(": ")
        && !text.contains(" #")
        && !looks_like_date
        && implicit_kind(text) == Implicit::Str
}

/// Characters PyYAML accepts unescaped in a stream, less its line breaks and the BOM.
fn is_printable_unescaped(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

fn double_quoted(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_printable_unescaped(c) => out.push(c),
            c if u32::from(c) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::NO_ENV;
    use proptest::prelude::*;
    use serde_json::{Number, json};

    #[test]
    fn yaml_output_of_nested_values() {
        let config = Config::from_yaml_str(
            "\
AMQP_URI: amqp://guest:guest@localhost:5672/
LOGGING:
  handlers:
    console: {class: logging.StreamHandler}
  root: {handlers: [console], level: INFO}
  version: 1
list:
  - [1, 2]
  - []
  - {}
  - {a: [{b: 1.5, c: [3]}]}
",
            &NO_ENV,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.to_yaml_string(),
            "\
AMQP_URI: amqp://guest:guest@localhost:5672/
LOGGING:
  handlers:
    console:
      class: logging.StreamHandler
  root:
    handlers:
      - console
    level: INFO
  version: 1
list:
  - - 1
    - 2
  - []
  - {}
  - a:
      - b: 1.5
        c:
          - 3
"
        );
        assert_eq!(Config::new().to_yaml_string(), "{}\n");
    }

    #[test]
    fn yaml_output_quotes_strings_that_would_read_back_differently() {
        let cases: &[(Value, &str)] = &[
            (json!("nameko-rpc"), "nameko-rpc"),
            (json!("0.0.0.0:8000"), "0.0.0.0:8000"),
            (json!("logging.StreamHandler"), "logging.StreamHandler"),
            (json!("yes"), "\"yes\""),
            (json!("5"), "\"5\""),
            (json!("1:30"), "\"1:30\""),
            (json!(".inf"), "\".inf\""),
            (json!("~"), "\"~\""),
            (json!(""), "\"\""),
            (json!("2001-12-14"), "\"2001-12-14\""),
            (json!("${X}"), "\"${X}\""),
            (json!("a: b"), "\"a: b\""),
            (json!("a #b"), "\"a #b\""),
            (json!("- a"), "\"- a\""),
            (json!("... a"), "\"... a\""),
            (json!("."), "."),
            (json!("x:"), "\"x:\""),
            (json!(" x"), "\" x\""),
            (
                json!("line\nbreak\t\"q\" \\"),
                "\"line\\nbreak\\t\\\"q\\\" \\\\\"",
            ),
            (json!("\u{1}\u{85}\u{2028}é"), "\"\\u0001\\u0085\\u2028é\""),
            (json!(1.0), "1.0"),
            (json!(1e16), "1.0e+16"),
            (json!(2.5e-5), "2.5e-05"),
            (json!(-3), "-3"),
            (json!(u64::MAX), "18446744073709551615"),
            (json!(null), "null"),
            (json!(false), "false"),
        ];
        for (value, expected) in cases {
            let config = Config::new().with("k", value.clone());
            assert_eq!(
                config.to_yaml_string(),
                format!("k: {expected}\n"),
                "{value:?}"
            );
            let back = Config::from_yaml_str(&config.to_yaml_string(), &NO_ENV)
                .unwrap_or_else(|e| panic!("{value:?}: {e}"));
            assert_eq!(back, config, "{value:?}");
        }
        let config = Config::new()
            .with("yes", 1)
            .with("a: b", 2)
            .with("... x", 3)
            .with("...", "... y");
        let back = Config::from_yaml_str(&config.to_yaml_string(), &NO_ENV)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, config);
    }

    #[test]
    fn floats_are_written_as_pyyaml_writes_them() {
        assert_eq!(yaml_float(1e16), "1.0e+16");
        assert_eq!(yaml_float(2.5e-5), "2.5e-05");
        assert_eq!(yaml_float(1.0), "1.0");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter_map("finite", Number::from_f64)
                .prop_map(Value::Number),
            any::<String>().prop_map(Value::String),
            "[a-z0-9 :#${}.,'\"-]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn yaml_output_reads_back_as_the_same_config(
            entries in prop::collection::vec((any::<String>(), json_value()), 0..6)
        ) {
            let config = Config::from(entries.into_iter().collect::<Map<String, Value>>());
            let yaml = config.to_yaml_string();
            let back = Config::from_yaml_str(&yaml, &NO_ENV);
            prop_assert!(back.is_ok(), "{yaml}: {back:?}");
            prop_assert_eq!(back.ok(), Some(config), "{}", yaml);
        }
    }
}
