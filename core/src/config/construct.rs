//! Constructing config values from composed nodes, as PyYAML's `SafeLoader` with nameko's
//! two tags does: explicit tags, merge keys (`<<`), keys turned into strings as
//! `json.dumps` writes them, and the limits on what a value may be (64-bit integers,
//! finite floats).

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use saphyr_parser::ScalarStyle;
use serde_json::{Map, Number, Value};

use super::compose::{ComposeError, Kind, MAX_DEPTH, MAX_EXPANSION, Node, compose};
use super::resolve::{
    Implicit, bool_value, implicit_kind, parse_float, parse_int, python_float_key,
};
use super::substitute::{Diverges, Substituter, has_unclosed_reference, implicit_env_match};
use super::{Config, ConfigLoadError, Env, Location, ProcessEnv, redact_uri};

const TAG_STR: &str = "tag:yaml.org,2002:str";
const TAG_INT: &str = "tag:yaml.org,2002:int";
const TAG_FLOAT: &str = "tag:yaml.org,2002:float";
const TAG_BOOL: &str = "tag:yaml.org,2002:bool";
const TAG_NULL: &str = "tag:yaml.org,2002:null";
const TAG_SEQ: &str = "tag:yaml.org,2002:seq";
const TAG_MAP: &str = "tag:yaml.org,2002:map";
const TAG_TIMESTAMP: &str = "tag:yaml.org,2002:timestamp";
const TAG_MERGE: &str = "tag:yaml.org,2002:merge";
/// The non-specific tag `!`: PyYAML resolves the scalar as if it were plain.
const TAG_NON_SPECIFIC: &str = "!";
const TAG_ENV_VAR: &str = "!env_var";
const TAG_RAW_ENV_VAR: &str = "!raw_env_var";

/// Whether a node is a mapping key (scalars only, which become strings) or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
}

/// Where the text being built comes from, for error locations.
#[derive(Debug, Clone, Copy)]
enum Origin<'a> {
    /// Text from a file or a string: locations point into it, and its text may be quoted
    /// in messages.
    Text { file: Option<&'a Path> },
    /// The result of a substitution: every location is the substituted scalar's, and the
    /// text (which holds environment values) is never quoted.
    Substituted { at: &'a Location },
}

struct Builder<'a, E: ?Sized> {
    /// `None` when building without substitution (substituted text, defines).
    env: Option<&'a E>,
    origin: Origin<'a>,
    budget: &'a Cell<usize>,
}

/// Loads a config from YAML text: compose its document, then build its value with
/// substitution from `env`.
pub(super) fn load(
    text: &str,
    env: &(impl Env + ?Sized),
    file: Option<&Path>,
) -> Result<Config, ConfigLoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let budget = Cell::new(MAX_EXPANSION);
    let builder = Builder {
        env: Some(env),
        origin: Origin::Text { file },
        budget: &budget,
    };
    let root = compose(text).map_err(|error| builder.compose_error(error, ""))?;
    let Some(root) = root else {
        return Ok(Config::new());
    };
    match builder.construct(&root, "", Role::Value, 0)? {
        Value::Object(values) => Ok(Config { values }),
        Value::Null => Ok(Config::new()),
        other => Err(ConfigLoadError::NotAMapping {
            at: builder.location(&root),
            found: describe_value(&other),
        }),
    }
}

/// The value of `text` parsed as a YAML document without environment substitution (a
/// `-d KEY=VALUE` define's value), with errors naming `key`.
pub(super) fn value_without_substitution(text: &str, key: &str) -> Result<Value, ConfigLoadError> {
    let budget = Cell::new(MAX_EXPANSION);
    let builder: Builder<'_, ProcessEnv> = Builder {
        env: None,
        origin: Origin::Text { file: None },
        budget: &budget,
    };
    builder.document(text, key, Role::Value)
}

fn describe_value(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

fn key_name(path: &str) -> String {
    if path.is_empty() {
        "<root>".to_owned()
    } else {
        path.to_owned()
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<E: Env + ?Sized> Builder<'_, E> {
    fn location(&self, node: &Node) -> Location {
        self.location_at(node.line, node.column)
    }

    fn location_at(&self, line: usize, column: usize) -> Location {
        match self.origin {
            Origin::Text { file } => Location {
                file: file.map(Path::to_path_buf),
                line,
                column,
            },
            Origin::Substituted { at } => at.clone(),
        }
    }

    /// `text` for an error message: quoted and redacted, or not shown at all when it holds
    /// environment values.
    fn shown(&self, text: &str) -> String {
        match self.origin {
            Origin::Text { .. } => format!("`{}`", redact_uri(text)),
            Origin::Substituted { .. } => "the substituted value".to_owned(),
        }
    }

    fn compose_error(&self, error: ComposeError, path: &str) -> ConfigLoadError {
        let (line, column) = error.position();
        let at = self.location_at(line, column);
        match self.origin {
            Origin::Substituted { .. } => ConfigLoadError::SubstitutedSyntax {
                at,
                key: key_name(path),
                message: error.message(),
                source: match error {
                    ComposeError::Scan(source) => Some(Box::new(source)),
                    _ => None,
                },
            },
            Origin::Text { .. } => match error {
                ComposeError::Scan(source) => ConfigLoadError::Syntax { at, source },
                ComposeError::MultipleDocuments { .. } => ConfigLoadError::MultipleDocuments { at },
                ComposeError::TooDeep { .. } => ConfigLoadError::TooLarge {
                    at,
                    what: "nested too deeply",
                },
                ComposeError::TooLarge { .. } => ConfigLoadError::TooLarge {
                    at,
                    what: "too large once its aliases are expanded",
                },
                ComposeError::RecursiveAlias { .. } => ConfigLoadError::InvalidValue {
                    at,
                    key: key_name(path),
                    reason: error.message(),
                },
            },
        }
    }

    fn charge(&self, node: &Node, units: usize) -> Result<(), ConfigLoadError> {
        match self.budget.get().checked_sub(units) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(ConfigLoadError::TooLarge {
                at: self.location(node),
                what: "too large once its aliases are expanded",
            }),
        }
    }

    /// Parses `text` as a whole YAML document and builds its value.
    fn document(&self, text: &str, path: &str, role: Role) -> Result<Value, ConfigLoadError> {
        match compose(text).map_err(|error| self.compose_error(error, path))? {
            None => Ok(Value::Null),
            Some(root) => self.construct(&root, path, role, 0),
        }
    }

    fn construct(
        &self,
        node: &Node,
        path: &str,
        role: Role,
        depth: usize,
    ) -> Result<Value, ConfigLoadError> {
        if depth > MAX_DEPTH {
            return Err(ConfigLoadError::TooLarge {
                at: self.location(node),
                what: "nested too deeply once its aliases are expanded",
            });
        }
        self.charge(node, 1)?;
        match &node.kind {
            Kind::Scalar { text, style, tag } => {
                self.charge(node, text.len())?;
                self.scalar(node, text, *style, tag.as_deref(), path, role)
            }
            Kind::Sequence { tag, items } => {
                self.collection_role(node, path, role)?;
                self.collection_tag(node, tag.as_deref(), TAG_SEQ, path)?;
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        self.construct(item, &format!("{path}[{index}]"), Role::Value, depth + 1)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Array(items))
            }
            Kind::Mapping { tag, entries } => {
                self.collection_role(node, path, role)?;
                self.collection_tag(node, tag.as_deref(), TAG_MAP, path)?;
                let mut map = Map::new();
                for (key_node, value_node) in self.flatten(entries, path, depth)? {
                    let key = match self.construct(&key_node, path, Role::Key, depth + 1)? {
                        Value::String(key) => key,
                        Value::Null => "null".to_owned(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(ConfigLoadError::ComplexKey {
                                at: self.location(&key_node),
                                key: key_name(path),
                                found: describe_value(&other),
                            });
                        }
                    };
                    let child = child_path(path, &key);
                    let value = self.construct(&value_node, &child, Role::Value, depth + 1)?;
                    map.insert(key, value);
                }
                Ok(Value::Object(map))
            }
        }
    }

    fn collection_role(&self, node: &Node, path: &str, role: Role) -> Result<(), ConfigLoadError> {
        match role {
            Role::Value => Ok(()),
            Role::Key => Err(ConfigLoadError::ComplexKey {
                at: self.location(node),
                key: key_name(path),
                found: node.kind.describe(),
            }),
        }
    }

    fn collection_tag(
        &self,
        node: &Node,
        tag: Option<&str>,
        expected: &str,
        path: &str,
    ) -> Result<(), ConfigLoadError> {
        match tag {
            None | Some(TAG_NON_SPECIFIC) => Ok(()),
            Some(tag) if tag == expected => Ok(()),
            Some(tag) => Err(ConfigLoadError::UnsupportedTag {
                at: self.location(node),
                key: key_name(path),
                tag: tag.to_owned(),
            }),
        }
    }

    /// The entries of a mapping with its merge keys (`<<`) replaced by the entries they
    /// bring, as PyYAML's `flatten_mapping` does: merged entries come first (so the
    /// mapping's own entries win), and of several merged mappings the first wins.
    fn flatten(
        &self,
        entries: &[(Rc<Node>, Rc<Node>)],
        path: &str,
        depth: usize,
    ) -> Result<Vec<(Rc<Node>, Rc<Node>)>, ConfigLoadError> {
        let mut merged = Vec::new();
        let mut own = Vec::new();
        for (key, value) in entries {
            self.charge(key, 1)?;
            if !is_merge_key(key) {
                own.push((Rc::clone(key), Rc::clone(value)));
                continue;
            }
            if depth > MAX_DEPTH {
                return Err(ConfigLoadError::TooLarge {
                    at: self.location(key),
                    what: "nested too deeply once its merge keys are expanded",
                });
            }
            let not_mergeable = |node: &Node| ConfigLoadError::InvalidValue {
                at: self.location(node),
                key: key_name(path),
                reason: format!(
                    "a merge key (`<<`) takes a mapping or a sequence of mappings, found {}",
                    node.kind.describe()
                ),
            };
            match &value.kind {
                Kind::Mapping { entries, .. } => {
                    merged.extend(self.flatten(entries, path, depth + 1)?);
                }
                Kind::Sequence { items, .. } => {
                    let mut each = Vec::with_capacity(items.len());
                    for item in items {
                        let Kind::Mapping { entries, .. } = &item.kind else {
                            return Err(not_mergeable(item));
                        };
                        each.push(self.flatten(entries, path, depth + 1)?);
                    }
                    merged.extend(each.into_iter().rev().flatten());
                }
                Kind::Scalar { .. } => return Err(not_mergeable(value)),
            }
        }
        merged.extend(own);
        Ok(merged)
    }

    fn scalar(
        &self,
        node: &Node,
        text: &str,
        style: ScalarStyle,
        tag: Option<&str>,
        path: &str,
        role: Role,
    ) -> Result<Value, ConfigLoadError> {
        let invalid = |reason: String| ConfigLoadError::InvalidValue {
            at: self.location(node),
            key: key_name(path),
            reason,
        };
        match tag {
            None if style == ScalarStyle::Plain => self.plain(node, text, path, role),
            None | Some(TAG_STR | TAG_TIMESTAMP) => Ok(Value::String(text.to_owned())),
            Some(TAG_NON_SPECIFIC) => self.plain(node, text, path, role),
            Some(TAG_ENV_VAR) if self.env.is_some() => self.env_var(node, text, false, path, role),
            Some(TAG_RAW_ENV_VAR) if self.env.is_some() => {
                self.env_var(node, text, true, path, role)
            }
            Some(TAG_NULL) => Ok(Value::Null),
            Some(TAG_BOOL) => match bool_value(&text.to_lowercase()) {
                Some(b) => Ok(Value::Bool(b)),
                None => Err(invalid(format!("{} is not a boolean", self.shown(text)))),
            },
            Some(TAG_INT) => self.int(node, text, path, role),
            Some(TAG_FLOAT) => self.float(node, text, path, role),
            Some(tag) => Err(ConfigLoadError::UnsupportedTag {
                at: self.location(node),
                key: key_name(path),
                tag: tag.to_owned(),
            }),
        }
    }

    /// A plain scalar: PyYAML's implicit resolvers, then nameko's `${...}` resolver.
    fn plain(
        &self,
        node: &Node,
        text: &str,
        path: &str,
        role: Role,
    ) -> Result<Value, ConfigLoadError> {
        if self.env.is_some() {
            self.check_balanced(node, text, path)?;
        }
        match implicit_kind(text) {
            Implicit::Null => Ok(Value::Null),
            Implicit::Bool(b) => Ok(Value::Bool(b)),
            Implicit::Int => self.int(node, text, path, role),
            Implicit::Float => self.float(node, text, path, role),
            Implicit::Str if self.env.is_some() && implicit_env_match(text) => {
                self.env_var(node, text, false, path, role)
            }
            Implicit::Str => Ok(Value::String(text.to_owned())),
        }
    }

    fn check_balanced(&self, node: &Node, text: &str, path: &str) -> Result<(), ConfigLoadError> {
        if has_unclosed_reference(text) {
            Err(ConfigLoadError::UnbalancedReference {
                at: self.location(node),
                key: key_name(path),
                text: self.shown(text),
            })
        } else {
            Ok(())
        }
    }

    /// nameko's `env_var_constructor`: substitute, then parse the result as YAML unless
    /// `raw`.
    fn env_var(
        &self,
        node: &Node,
        text: &str,
        raw: bool,
        path: &str,
        role: Role,
    ) -> Result<Value, ConfigLoadError> {
        let Some(env) = self.env else {
            return Ok(Value::String(text.to_owned()));
        };
        self.check_balanced(node, text, path)?;
        let mut substituter = Substituter { env, lookups: 0 };
        let value = substituter.substitute(text, 0).map_err(|Diverges| {
            ConfigLoadError::SubstitutionLoop {
                at: self.location(node),
                key: key_name(path),
            }
        })?;
        self.charge(node, value.len())?;
        if raw {
            return Ok(Value::String(value));
        }
        let at = self.location(node);
        let nested: Builder<'_, E> = Builder {
            env: None,
            origin: Origin::Substituted { at: &at },
            budget: self.budget,
        };
        nested.document(&value, path, role)
    }

    fn int(
        &self,
        node: &Node,
        text: &str,
        path: &str,
        role: Role,
    ) -> Result<Value, ConfigLoadError> {
        let invalid = |reason: String| ConfigLoadError::InvalidValue {
            at: self.location(node),
            key: key_name(path),
            reason,
        };
        let Some(n) = parse_int(text) else {
            return Err(invalid(format!("{} is not an integer", self.shown(text))));
        };
        if role == Role::Key {
            return Ok(Value::String(n.to_string()));
        }
        if let Ok(n) = i64::try_from(n) {
            Ok(Value::Number(n.into()))
        } else if let Ok(n) = u64::try_from(n) {
            Ok(Value::Number(n.into()))
        } else {
            Err(invalid(format!(
                "the integer {} does not fit in 64 bits",
                self.shown(text)
            )))
        }
    }

    fn float(
        &self,
        node: &Node,
        text: &str,
        path: &str,
        role: Role,
    ) -> Result<Value, ConfigLoadError> {
        let Some(f) = parse_float(text) else {
            return Err(ConfigLoadError::InvalidValue {
                at: self.location(node),
                key: key_name(path),
                reason: format!("{} is not a number", self.shown(text)),
            });
        };
        if role == Role::Key {
            return Ok(Value::String(python_float_key(f)));
        }
        match Number::from_f64(f) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(ConfigLoadError::NonFiniteFloat {
                at: self.location(node),
                key: key_name(path),
                text: self.shown(text),
            }),
        }
    }
}

fn is_merge_key(node: &Node) -> bool {
    match &node.kind {
        Kind::Scalar { text, style, tag } => match tag.as_deref() {
            None => *style == ScalarStyle::Plain && text == "<<",
            Some(TAG_NON_SPECIFIC) => text == "<<",
            Some(tag) => tag == TAG_MERGE,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ConfigLoadError;
    use crate::config::test_support::{NO_ENV, load_err, load_with, value_of};
    use serde_json::{Value, json};

    #[test]
    fn explicit_tags() {
        let cases: &[(&str, Value)] = &[
            ("!!str 5", json!("5")),
            ("!!str yes", json!("yes")),
            ("!!int '0x1F'", json!(31)),
            ("!!int \"1_000\"", json!(1000)),
            ("!!float '1'", json!(1.0)),
            ("!!float 2.5", json!(2.5)),
            ("!!bool 'on'", json!(true)),
            ("!!bool 'FALSE'", json!(false)),
            ("!!null 'x'", json!(null)),
            ("!!timestamp 2001-12-14", json!("2001-12-14")),
            ("!!seq [1]", json!([1])),
            ("!!map {a: 1}", json!({"a": 1})),
            ("!<tag:yaml.org,2002:str> 5", json!("5")),
            ("!<!env_var> '${X:5}'", json!(5)),
        ];
        for (text, expected) in cases {
            assert_eq!(&value_of(text, &[]), expected, "{text:?}");
        }
        for (text, tag) in [
            ("!!binary aGk=", "tag:yaml.org,2002:binary"),
            ("!!set {a: null}", "tag:yaml.org,2002:set"),
            ("!!map [1]", "tag:yaml.org,2002:map"),
            ("!!seq 'x'", "tag:yaml.org,2002:seq"),
            ("!custom x", "!custom"),
            (
                "!!python/name:os.system x",
                "tag:yaml.org,2002:python/name:os.system",
            ),
        ] {
            let error = load_err(&format!("v: {text}"), &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::UnsupportedTag { tag: found, key, .. }
                    if found == tag && key == "v"),
                "{text}: {error:?}"
            );
        }
        for text in ["!!int abc", "!!bool maybe", "!!float x", "!env_var {a: 1}"] {
            let error = load_err(&format!("v: {text}"), &NO_ENV);
            assert!(
                matches!(
                    error,
                    ConfigLoadError::InvalidValue { .. } | ConfigLoadError::UnsupportedTag { .. }
                ),
                "{text}: {error:?}"
            );
        }
    }

    #[test]
    fn scalar_keys_become_strings_as_json_dumps_writes_them() {
        let yaml = "1: a\n~: b\n1.5: c\n.inf: d\n-.inf: e\n.nan: f\n1.0e+16: g\n0.00001: h\nno: i\n0x10: j\n'q': k\n18446744073709551616: l";
        assert_eq!(
            load_with(yaml, &NO_ENV),
            json!({
                "1": "a", "null": "b", "1.5": "c", "Infinity": "d", "-Infinity": "e", "NaN": "f",
                "1e+16": "g", "1e-05": "h", "false": "i", "16": "j", "q": "k",
                "18446744073709551616": "l",
            })
        );
    }

    #[test]
    fn complex_keys_are_refused() {
        for yaml in [
            "a:\n  ? [1, 2]\n  : x",
            "a:\n  {b: 1}: x",
            "a:\n  ${K:[1]}: x",
        ] {
            let error = load_err(yaml, &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::ComplexKey { key, at, .. } if key == "a" && at.line == 2),
                "{yaml}: {error:?}"
            );
        }
    }

    #[test]
    fn non_finite_floats_are_refused_naming_the_key() {
        for (text, env) in [
            (".inf", NO_ENV.as_slice()),
            ("-.Inf", &[]),
            (".NaN", &[]),
            ("${X:.inf}", &[]),
            ("${X}", &[("X", ".nan")]),
            ("!!float nan", &[]),
        ] {
            let error = load_err(&format!("a:\n  b:\n    - 1\n    - {text}"), env);
            assert!(
                matches!(&error, ConfigLoadError::NonFiniteFloat { key, .. } if key == "a.b[1]"),
                "{text}: {error:?}"
            );
            assert!(error.to_string().contains("quote it"), "{error}");
        }
        assert_eq!(value_of("'.inf'", &[]), json!(".inf"));
    }

    #[test]
    fn integers_beyond_64_bits_are_refused() {
        for text in [
            "18446744073709551616",
            "-9223372036854775809",
            "0x1_0000_0000_0000_0000",
        ] {
            let error = load_err(&format!("big: {text}"), &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::InvalidValue { key, reason, .. }
                    if key == "big" && reason.contains("64 bits")),
                "{text}: {error:?}"
            );
        }
    }

    #[test]
    fn merge_keys_follow_pyyaml() {
        let yaml = "\
base: &base {p: 1, q: 2}
other: &other {p: 3, r: 4}
one:
  <<: *base
  q: 5
many:
  <<: [*base, *other]
  s: 6
nested:
  <<: {<<: *other, t: 7}
quoted:
  '<<': *base
";
        assert_eq!(
            load_with(yaml, &NO_ENV),
            json!({
                "base": {"p": 1, "q": 2},
                "other": {"p": 3, "r": 4},
                "one": {"p": 1, "q": 5},
                "many": {"p": 1, "q": 2, "r": 4, "s": 6},
                "nested": {"p": 3, "r": 4, "t": 7},
                "quoted": {"<<": {"p": 1, "q": 2}},
            })
        );
        for yaml in ["a:\n  <<: 5", "a:\n  <<: [{x: 1}, 5]"] {
            let error = load_err(yaml, &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::InvalidValue { key, reason, .. }
                    if key == "a" && reason.contains("merge key")),
                "{yaml}: {error:?}"
            );
        }
    }
}
