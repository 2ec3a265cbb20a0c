//! nameko's environment substitution: `${VAR}` and `${VAR:default}` references, found as
//! nameko's `ENV_VAR_MATCHER` finds them and replaced as its `_replace_env_var` does,
//! with bounds where nameko would loop for ever.
//!
//! Which scalars are substituted (plain ones whose first line holds a reference, and those
//! tagged `!env_var` or `!raw_env_var`) and how the result is read back is decided in
//! [`super::construct`].

use super::Env;

/// References one scalar may look up (a default that keeps producing new references).
const MAX_LOOKUPS: usize = 10_000;
/// Nesting of defaults substituted inside defaults.
const MAX_DEFAULT_NESTING: usize = 64;
/// Longest text one substitution may produce.
const MAX_SUBSTITUTED_LEN: usize = 1024 * 1024;

/// Substitution that does not terminate.
#[derive(Debug)]
pub(super) struct Diverges;

/// Substitutes the references of one scalar, counting the lookups it makes.
pub(super) struct Substituter<'a, E: ?Sized> {
    pub(super) env: &'a E,
    pub(super) lookups: usize,
}

/// One `${NAME}` or `${NAME:default}` reference.
#[derive(Debug, PartialEq, Eq)]
struct Reference<'t> {
    name: &'t str,
    default: Option<&'t str>,
    /// Index just past the closing `}`.
    end: usize,
}

impl<E: Env + ?Sized> Substituter<'_, E> {
    /// nameko's `ENV_VAR_MATCHER.sub(_replace_env_var, text)`: every reference, left to
    /// right, replaced by its value.
    pub(super) fn substitute(&mut self, text: &str, nesting: usize) -> Result<String, Diverges> {
        if nesting > MAX_DEFAULT_NESTING {
            return Err(Diverges);
        }
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut from = 0;
        while let Some(offset) = text[from..].find("${") {
            let start = from + offset;
            let Some(reference) = reference_at(text, start) else {
                from = start + 1;
                continue;
            };
            out.push_str(&text[copied..start]);
            out.push_str(&self.lookup(&reference, nesting)?);
            if out.len() > MAX_SUBSTITUTED_LEN {
                return Err(Diverges);
            }
            copied = reference.end;
            from = reference.end;
        }
        out.push_str(&text[copied..]);
        Ok(out)
    }

    /// nameko's `_replace_env_var`: the variable's value if set, verbatim; otherwise the
    /// default (or `''`), substituted again while it still looks like it holds a reference.
    fn lookup(&mut self, reference: &Reference<'_>, nesting: usize) -> Result<String, Diverges> {
        self.lookups += 1;
        if self.lookups > MAX_LOOKUPS {
            return Err(Diverges);
        }
        if let Some(value) = self.env.var(reference.name) {
            return Ok(value);
        }
        let mut value = reference.default.unwrap_or_default().to_owned();
        while implicit_env_match(&value) {
            let next = self.substitute(&value, nesting + 1)?;
            if next == value {
                // Nothing left that is a reference: nameko would loop for ever here.
                break;
            }
            value = next;
        }
        Ok(value)
    }
}

/// White space as Python's `\s` matches it in a `str` pattern.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The reference starting at `start` (which holds `${`), as nameko's `ENV_VAR_MATCHER`
/// (the `regex`-module one) matches it: a name without `{`, `}`, `:` or white space, then
/// `}` or `:` and a default in which braces pair up, then `}`.
fn reference_at(text: &str, start: usize) -> Option<Reference<'_>> {
    let body_start = start + 2;
    let body = &text[body_start..];
    let name_len = body
        .find(|c: char| matches!(c, '{' | '}' | ':') || is_python_space(c))
        .unwrap_or(body.len());
    if name_len == 0 {
        return None;
    }
    let name = &body[..name_len];
    let after = &body[name_len..];
    if after.starts_with('}') {
        return Some(Reference {
            name,
            default: None,
            end: body_start + name_len + 1,
        });
    }
    let default = after.strip_prefix(':')?;
    let default_start = body_start + name_len + 1;
    let mut depth = 0usize;
    for (index, c) in default.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                return Some(Reference {
                    name,
                    default: Some(&default[..index]),
                    end: default_start + index + 1,
                });
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// nameko's implicit resolver `.*\$\{.*\}.*`, matched at the start (`re.match`): the first
/// line holds `${` with a `}` after it.
pub(super) fn implicit_env_match(text: &str) -> bool {
    let first_line = text.split('\n').next().unwrap_or_default();
    first_line
        .find("${")
        .is_some_and(|start| first_line[start + 2..].contains('}'))
}

/// Whether some `${` in `text` is never closed by a matching `}`.
pub(super) fn has_unclosed_reference(text: &str) -> bool {
    // Each open brace, and whether it opened a `${`.
    let mut open: Vec<bool> = Vec::new();
    let mut previous = None;
    for c in text.chars() {
        match c {
            '{' => open.push(previous == Some('$')),
            '}' => {
                open.pop();
            }
            _ => {}
        }
        previous = Some(c);
    }
    open.contains(&true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigLoadError;
    use crate::config::test_support::{NO_ENV, load_err, load_with, value_of};
    use serde_json::{Value, json};

    #[test]
    fn protocol_substitution_rules() {
        let cases: &[(&str, &[(&str, &str)], Value)] = &[
            ("${N:5}", &[], json!(5)),
            ("${N:5}", &[("N", "7")], json!(7)),
            ("${L:[a, b]}", &[], json!(["a", "b"])),
            ("${X:true}", &[], json!(true)),
            ("${X}", &[], json!(null)),
            ("${X}", &[("X", "text")], json!("text")),
            ("${A:pre_${B:x}}", &[], json!("pre_x")),
            ("${A:pre_${B:x}}", &[("B", "y")], json!("pre_y")),
            ("${A:pre_${B:x}}", &[("A", "a"), ("B", "y")], json!("a")),
            (
                "${X:https://e.com/{path}}",
                &[],
                json!("https://e.com/{path}"),
            ),
            (
                "${HOST:localhost}:${PORT:5672}",
                &[],
                json!("localhost:5672"),
            ),
            (
                "${HOST:localhost}:${PORT:5672}",
                &[("HOST", "rabbit"), ("PORT", "5673")],
                json!("rabbit:5673"),
            ),
            (
                "amqp://${U:guest}@${H:localhost}/",
                &[],
                json!("amqp://guest@localhost/"),
            ),
            ("!env_var \"${X:5}\"", &[], json!(5)),
            ("!env_var '${X:[1, 2]}'", &[], json!([1, 2])),
            ("!raw_env_var \"${X:1234.5660}\"", &[], json!("1234.5660")),
            ("!raw_env_var \"${X}\"", &[], json!("")),
            ("!env_var \"${X:1234.5660}\"", &[], json!(1234.566)),
            ("\"${X:5}\"", &[("X", "1")], json!("${X:5}")),
            ("'${X:5}'", &[("X", "1")], json!("${X:5}")),
        ];
        for (text, env, expected) in cases {
            assert_eq!(&value_of(text, env), expected, "v: {text} with {env:?}");
        }
    }

    #[test]
    fn variable_values_are_parsed_as_yaml_and_used_even_when_empty() {
        let cases: &[(&str, Value)] = &[
            ("5", json!(5)),
            ("-2.5", json!(-2.5)),
            ("[1, 2]", json!([1, 2])),
            ("- a\n- b", json!(["a", "b"])),
            ("a: b", json!({"a": "b"})),
            ("yes", json!(true)),
            ("off", json!(false)),
            ("'5'", json!("5")),
            ("  5  ", json!(5)),
            ("", json!(null)),
            ("~", json!(null)),
            ("# a comment", json!(null)),
            ("1:30", json!(90)),
            ("${OTHER:1}", json!("${OTHER:1}")),
        ];
        for (value, expected) in cases {
            assert_eq!(
                &value_of("${X:default}", &[("X", value)]),
                expected,
                "X={value:?}"
            );
        }
    }

    #[test]
    fn defaults_are_substituted_again_but_variable_values_are_not() {
        // A set variable is used verbatim (then parsed as YAML, which keeps the text).
        assert_eq!(value_of("${X}", &[("X", "${Y:1}")]), json!("${Y:1}"));
        // A default is substituted until no reference is left, which reaches through the
        // value of a variable it names.
        assert_eq!(value_of("${A:${B}}", &[("B", "${C:7}")]), json!(7));
        assert_eq!(value_of("${A:${B:${C:deep}}}", &[]), json!("deep"));
        assert_eq!(value_of("${A:${B:${C:deep}}}", &[("C", "c")]), json!("c"));
        assert_eq!(value_of("${X:[${Y:1}, 2]}", &[]), json!([1, 2]));
    }

    #[test]
    fn references_are_found_as_namekos_matcher_finds_them() {
        let cases: &[(&str, &[(&str, &str)], Value)] = &[
            ("${ X}", &[], json!("${ X}")),
            ("${X }", &[("X", "1")], json!("${X }")),
            ("${}", &[], json!("${}")),
            ("$${X:1}", &[], json!("$1")),
            ("${X:1}}", &[], json!("1}")),
            ("${X:}", &[], json!(null)),
            ("${X::y}", &[], json!(":y")),
            ("${X:{}}", &[], json!({})),
            ("${X:a{b{c}d}e}", &[], json!("a{b{c}d}e")),
            ("${A=B:1}", &[], json!(1)),
            ("${X:'quoted'}", &[], json!("quoted")),
            ("${X:\"1\"}", &[], json!("1")),
            ("x ${X:1} y", &[], json!("x 1 y")),
            ("${X:1} # comment", &[], json!(1)),
            ("${X}${Y}", &[("X", "1"), ("Y", "2")], json!(12)),
            ("${X:ü}", &[], json!("ü")),
            ("${Ü:1}", &[("Ü", "2")], json!(2)),
        ];
        for (text, env, expected) in cases {
            assert_eq!(&value_of(text, env), expected, "v: {text} with {env:?}");
        }
    }

    #[test]
    fn only_plain_scalars_whose_first_line_holds_a_reference_are_substituted() {
        assert_eq!(value_of("foo\n  ${X:1}", &[]), json!("foo 1"));
        assert_eq!(value_of("foo\n\n  ${X:1}", &[]), json!("foo\n${X:1}"));
        assert_eq!(value_of("|\n  ${X:1}\n", &[]), json!("${X:1}\n"));
        assert_eq!(value_of(">\n  ${X:1}\n", &[]), json!("${X:1}\n"));
        assert_eq!(value_of("!env_var |\n  ${X:1}\n", &[]), json!(1));
        // PyYAML resolves a scalar with the non-specific tag `!` as if it were plain.
        assert_eq!(value_of("! '${X:5}'", &[]), json!(5));
        assert_eq!(value_of("! 5", &[]), json!(5));
        // A tag forces parsing even without a reference.
        assert_eq!(value_of("!env_var \"123\"", &[]), json!(123));
        assert_eq!(value_of("!raw_env_var 5", &[]), json!("5"));
    }

    #[test]
    fn keys_are_substituted_too() {
        assert_eq!(load_with("${K:key}: 1", &NO_ENV), json!({"key": 1}));
        assert_eq!(
            load_with("${K:key}: 1", &[("K", "other")]),
            json!({"other": 1})
        );
        assert_eq!(load_with("${K:5}: 1", &NO_ENV), json!({"5": 1}));
    }

    #[test]
    fn unclosed_references_are_refused() {
        for text in [
            "${X:abc",
            "${X:{a}",
            "${A:${B}",
            "prefix ${X",
            "!env_var \"${X\"",
            "!raw_env_var '${X:{'",
        ] {
            let error = load_err(&format!("a:\n  b: {text}"), &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::UnbalancedReference { key, at, .. }
                    if key == "a.b" && at.line == 2 && at.column == 6),
                "{text}: {error:?}"
            );
            assert!(
                error
                    .to_string()
                    .starts_with("line 2, column 6: `a.b`: no `}` closes")
            );
        }
        // Quoted text is literal, so it may hold anything.
        assert_eq!(value_of("'${X'", &[]), json!("${X"));
        assert_eq!(value_of("\"${X:{a}\"", &[]), json!("${X:{a}"));
        // Text from the environment is not checked: it is not a reference.
        assert_eq!(value_of("${X}", &[("X", "'${Y'")]), json!("${Y"));
    }

    #[test]
    fn the_unbalanced_message_quotes_the_scalar_without_its_password() {
        let error = load_err("AMQP_URI: amqp://guest:secret@${HOST:localhost", &NO_ENV);
        let message = error.to_string();
        assert!(
            message.contains("`amqp://guest:***@${HOST:localhost`"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn substitution_that_does_not_terminate_is_an_error() {
        let loops: &[(&str, &[(&str, &str)])] = &[
            ("${A:${B}}", &[("B", "${A:${B}}")]),
            ("${A:${B}}", &[("B", "${A:x${B}}")]),
            ("${A:${B}}", &[("B", "${A:${B}${B}}")]),
        ];
        for (text, env) in loops {
            let error = load_err(&format!("k: {text}"), env);
            assert!(
                matches!(&error, ConfigLoadError::SubstitutionLoop { key, .. } if key == "k"),
                "{text} with {env:?}: {error:?}"
            );
        }
        // A default that looks like a reference but never changes is kept (nameko would
        // loop for ever).
        assert_eq!(value_of("${A:${ x}}", &[]), json!("${ x}"));
    }

    #[test]
    fn substituted_text_that_is_not_yaml_is_reported_without_the_value() {
        let error = load_err("a:\n  b: ${X}", &[("X", "[1, secret")]);
        assert!(
            matches!(&error, ConfigLoadError::SubstitutedSyntax { key, at, .. }
                if key == "a.b" && at.line == 2 && at.column == 6),
            "{error:?}"
        );
        assert!(!error.to_string().contains("secret"), "{error}");

        let error = load_err("a: ${X}", &[("X", "1\n---\n2")]);
        assert!(
            matches!(error, ConfigLoadError::SubstitutedSyntax { .. }),
            "{error:?}"
        );

        // Substituted text is parsed without substitution: the tags are unknown there.
        let error = load_err("a: ${X}", &[("X", "!env_var 5")]);
        assert!(
            matches!(&error, ConfigLoadError::UnsupportedTag { tag, .. } if tag == "!env_var"),
            "{error:?}"
        );
    }

    #[test]
    fn reference_matching() {
        fn found(text: &str) -> Option<(&str, Option<&str>, usize)> {
            reference_at(text, 0).map(|r| (r.name, r.default, r.end))
        }
        assert_eq!(found("${A}"), Some(("A", None, 4)));
        assert_eq!(found("${A:}x"), Some(("A", Some(""), 5)));
        assert_eq!(found("${A:b{c}d}e"), Some(("A", Some("b{c}d"), 10)));
        assert_eq!(found("${A:${B:c}}"), Some(("A", Some("${B:c}"), 11)));
        assert_eq!(found("${A:\n}"), Some(("A", Some("\n"), 6)));
        assert_eq!(found("${A b}"), None);
        assert_eq!(found("${A\u{1f}}"), None);
        assert_eq!(found("${}"), None);
        assert_eq!(found("${:x}"), None);
        assert_eq!(found("${A:{}"), None);
        assert_eq!(found("${A"), None);
        assert_eq!(found("${A{}"), None);

        assert!(implicit_env_match("a${b}c"));
        assert!(implicit_env_match("${}"));
        assert!(!implicit_env_match("${b"));
        assert!(!implicit_env_match("${b\n}"));
        assert!(!implicit_env_match("x\n${b}"));
        assert!(implicit_env_match("${b}\nx"));

        assert!(has_unclosed_reference("${a"));
        assert!(has_unclosed_reference("${a:{}"));
        assert!(has_unclosed_reference("${a}${b"));
        assert!(!has_unclosed_reference("${a}}"));
        assert!(!has_unclosed_reference("{${a}"));
        assert!(!has_unclosed_reference("{ not a reference"));
    }
}
