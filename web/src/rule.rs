//! werkzeug's URL rules: `/get/<int:value>`, with the converters `string` (the default),
//! `int`, `float`, `path`, `uuid` and `any(a, b)`, and werkzeug's matching rules.
//!
//! A rule compiles to one anchored regular expression (as werkzeug's rules did up to
//! werkzeug 2.1); converters check and convert what their part matched.

use std::fmt;

use regex::Regex;
use serde_json::{Number, Value};

use crate::error::RuleError;

/// A parsed URL rule: `/get/<int:value>`, `/files/<path:name>`, `/<any(a, b):page>/`.
///
/// ```
/// use nameko_web::Rule;
/// use nameko_web::serde_json::json;
///
/// let rule = Rule::parse("/get/<int:value>").unwrap();
/// assert_eq!(rule.variables(), ["value"]);
/// assert_eq!(rule.matches("/get/007").unwrap(), vec![("value".to_owned(), json!(7))]);
/// assert_eq!(rule.matches("/get/-1"), None);
/// assert_eq!(rule.matches("/get/42/"), None);
/// ```
#[derive(Clone)]
pub struct Rule {
    text: String,
    regex: Regex,
    parts: Vec<Part>,
    converters: Vec<(String, Converter)>,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Rule").field(&self.text).finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Static(String),
    Variable(usize),
}

/// A converter of a rule variable, with its arguments.
#[derive(Debug, Clone, PartialEq)]
enum Converter {
    String {
        min: usize,
        max: Option<usize>,
    },
    Int {
        fixed_digits: usize,
        min: Option<i64>,
        max: Option<i64>,
        signed: bool,
    },
    Float {
        min: Option<f64>,
        max: Option<f64>,
        signed: bool,
    },
    Path,
    Uuid,
    Any(Vec<String>),
}

impl Converter {
    /// werkzeug's regular expression for the converter.
    fn regex(&self) -> String {
        match self {
            Self::String { min, max } => match max {
                Some(max) => format!("[^/]{{{min},{max}}}"),
                None => format!("[^/]{{{min},}}"),
            },
            Self::Int { signed, .. } => {
                if *signed {
                    "-?[0-9]+".to_owned()
                } else {
                    "[0-9]+".to_owned()
                }
            }
            Self::Float { signed, .. } => {
                if *signed {
                    "-?[0-9]+\\.[0-9]+".to_owned()
                } else {
                    "[0-9]+\\.[0-9]+".to_owned()
                }
            }
            Self::Path => "[^/].*?".to_owned(),
            Self::Uuid => {
                "[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}"
                    .to_owned()
            }
            Self::Any(items) => {
                let alternatives: Vec<String> = items.iter().map(|i| regex::escape(i)).collect();
                format!("(?:{})", alternatives.join("|"))
            }
        }
    }

    /// werkzeug's weight: lower weights are tried first among dynamic parts.
    fn weight(&self) -> u32 {
        match self {
            Self::Int { .. } | Self::Float { .. } => 50,
            Self::Uuid | Self::Any(_) | Self::String { .. } => 100,
            Self::Path => 200,
        }
    }

    /// The Python value of what the part matched; `None` when the converter refuses it
    /// (werkzeug's `ValidationError`: the rule does not match).
    fn convert(&self, text: &str) -> Option<Value> {
        match self {
            Self::String { .. } | Self::Path | Self::Uuid | Self::Any(_) => {
                Some(Value::String(text.to_owned()))
            }
            Self::Int {
                fixed_digits,
                min,
                max,
                ..
            } => {
                if *fixed_digits > 0 && text.trim_start_matches('-').len() != *fixed_digits {
                    return None;
                }
                let value: i64 = text.parse().ok()?;
                if min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m) {
                    return None;
                }
                Some(Value::Number(value.into()))
            }
            Self::Float { min, max, .. } => {
                let value: f64 = text.parse().ok()?;
                if min.is_some_and(|m| value < m) || max.is_some_and(|m| value > m) {
                    return None;
                }
                Number::from_f64(value).map(Value::Number)
            }
        }
    }
}

/// One argument of a converter: `5`, `min=1`, `'a'`, `True`.
#[derive(Debug, Clone, PartialEq)]
enum ArgValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    None,
}

fn parse_arg_value(text: &str) -> ArgValue {
    let text = text.trim();
    if let Ok(i) = text.parse::<i64>() {
        return ArgValue::Int(i);
    }
    if let Ok(f) = text.parse::<f64>() {
        return ArgValue::Float(f);
    }
    match text {
        "True" => ArgValue::Bool(true),
        "False" => ArgValue::Bool(false),
        "None" => ArgValue::None,
        _ => {
            let unquoted = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
                .unwrap_or(text);
            ArgValue::Str(unquoted.to_owned())
        }
    }
}

/// Positional and keyword arguments of a converter.
struct Args {
    positional: Vec<ArgValue>,
    named: Vec<(String, ArgValue)>,
}

impl Args {
    fn parse(text: Option<&str>) -> Self {
        let mut args = Self {
            positional: Vec::new(),
            named: Vec::new(),
        };
        let Some(text) = text else { return args };
        for piece in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match piece.split_once('=') {
                Some((key, value)) if is_identifier(key.trim()) => {
                    args.named
                        .push((key.trim().to_owned(), parse_arg_value(value)));
                }
                _ => args.positional.push(parse_arg_value(piece)),
            }
        }
        args
    }

    /// The argument called `name`, or at position `index`.
    fn get(&self, index: usize, name: &str) -> Option<&ArgValue> {
        self.named
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.positional.get(index))
    }

    fn usize(&self, index: usize, name: &str, rule: &str) -> Result<Option<usize>, RuleError> {
        match self.get(index, name) {
            None | Some(ArgValue::None) => Ok(None),
            Some(ArgValue::Int(i)) if *i >= 0 => Ok(Some(usize::try_from(*i).unwrap_or(0))),
            Some(other) => Err(RuleError::new(
                rule,
                format!("`{name}` must be a non-negative integer, got {other:?}"),
            )),
        }
    }

    fn int(&self, index: usize, name: &str, rule: &str) -> Result<Option<i64>, RuleError> {
        match self.get(index, name) {
            None | Some(ArgValue::None) => Ok(None),
            Some(ArgValue::Int(i)) => Ok(Some(*i)),
            Some(other) => Err(RuleError::new(
                rule,
                format!("`{name}` must be an integer, got {other:?}"),
            )),
        }
    }

    fn float(&self, index: usize, name: &str, rule: &str) -> Result<Option<f64>, RuleError> {
        match self.get(index, name) {
            None | Some(ArgValue::None) => Ok(None),
            Some(ArgValue::Int(i)) => Ok(Some(*i as f64)),
            Some(ArgValue::Float(f)) => Ok(Some(*f)),
            Some(other) => Err(RuleError::new(
                rule,
                format!("`{name}` must be a number, got {other:?}"),
            )),
        }
    }

    fn bool(&self, index: usize, name: &str, rule: &str) -> Result<bool, RuleError> {
        match self.get(index, name) {
            None => Ok(false),
            Some(ArgValue::Bool(b)) => Ok(*b),
            Some(other) => Err(RuleError::new(
                rule,
                format!("`{name}` must be True or False, got {other:?}"),
            )),
        }
    }
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn converter(name: &str, args: Option<&str>, rule: &str) -> Result<Converter, RuleError> {
    let parsed = Args::parse(args);
    Ok(match name {
        "default" | "string" => {
            let length = parsed.usize(usize::MAX, "length", rule)?;
            let min = parsed.usize(0, "minlength", rule)?.unwrap_or(1);
            let max = parsed.usize(1, "maxlength", rule)?;
            match length {
                Some(length) => Converter::String {
                    min: length,
                    max: Some(length),
                },
                None => Converter::String { min, max },
            }
        }
        "int" => Converter::Int {
            fixed_digits: parsed.usize(0, "fixed_digits", rule)?.unwrap_or(0),
            min: parsed.int(1, "min", rule)?,
            max: parsed.int(2, "max", rule)?,
            signed: parsed.bool(3, "signed", rule)?,
        },
        "float" => Converter::Float {
            min: parsed.float(0, "min", rule)?,
            max: parsed.float(1, "max", rule)?,
            signed: parsed.bool(2, "signed", rule)?,
        },
        "path" => Converter::Path,
        "uuid" => Converter::Uuid,
        "any" => {
            let items: Vec<String> = parsed
                .positional
                .iter()
                .map(|v| match v {
                    ArgValue::Str(s) => s.clone(),
                    ArgValue::Int(i) => i.to_string(),
                    ArgValue::Float(f) => f.to_string(),
                    ArgValue::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
                    ArgValue::None => "None".to_owned(),
                })
                .collect();
            if items.is_empty() {
                return Err(RuleError::new(rule, "`any` needs at least one item"));
            }
            Converter::Any(items)
        }
        other => {
            return Err(RuleError::new(
                rule,
                format!(
                    "unknown converter `{other}` (werkzeug's are string, int, float, path, uuid and any)"
                ),
            ));
        }
    })
}

impl Rule {
    /// Parses a rule in werkzeug's syntax.
    ///
    /// # Errors
    ///
    /// [`RuleError`] for a rule that does not start with `/`, an unclosed `<`, an
    /// unknown converter, bad converter arguments, or a variable used twice.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        if !text.starts_with('/') {
            return Err(RuleError::new(text, "a rule starts with `/`"));
        }
        let mut parts = Vec::new();
        let mut converters: Vec<(String, Converter)> = Vec::new();
        let mut rest = text;
        let mut pattern = String::from("^");
        while let Some(open) = rest.find('<') {
            let (before, after) = rest.split_at(open);
            if !before.is_empty() {
                pattern.push_str(&regex::escape(before));
                parts.push(Part::Static(before.to_owned()));
            }
            let close = after
                .find('>')
                .ok_or_else(|| RuleError::new(text, "a `<` is not closed by `>`"))?;
            let inner = &after[1..close];
            rest = &after[close + 1..];
            let (conv, name) = match inner.rsplit_once(':') {
                Some((conv, name)) => (conv.trim(), name.trim()),
                None => ("default", inner.trim()),
            };
            if !is_identifier(name) {
                return Err(RuleError::new(
                    text,
                    format!("`{name}` is not a variable name"),
                ));
            }
            if converters.iter().any(|(n, _)| n == name) {
                return Err(RuleError::new(
                    text,
                    format!("variable `{name}` appears twice"),
                ));
            }
            let (conv_name, args) = match conv.split_once('(') {
                Some((n, a)) => {
                    let a = a.strip_suffix(')').ok_or_else(|| {
                        RuleError::new(text, format!("converter arguments of `{n}` are not closed"))
                    })?;
                    (n.trim(), Some(a))
                }
                None => (conv, None),
            };
            let converter = converter(conv_name, args, text)?;
            pattern.push('(');
            pattern.push_str(&converter.regex());
            pattern.push(')');
            parts.push(Part::Variable(converters.len()));
            converters.push((name.to_owned(), converter));
        }
        if rest.contains('>') {
            return Err(RuleError::new(text, "a `>` has no `<`"));
        }
        if !rest.is_empty() {
            pattern.push_str(&regex::escape(rest));
            parts.push(Part::Static(rest.to_owned()));
        }
        pattern.push('$');
        let regex = Regex::new(&pattern)
            .map_err(|e| RuleError::new(text, format!("cannot compile: {e}")))?;
        Ok(Self {
            text: text.to_owned(),
            regex,
            parts,
            converters,
        })
    }

    /// The rule as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Names of its variables, in order.
    #[must_use]
    pub fn variables(&self) -> Vec<&str> {
        self.converters.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The converted values of its variables when `path` (percent-decoded) matches.
    #[must_use]
    pub fn matches(&self, path: &str) -> Option<Vec<(String, Value)>> {
        let captures = self.regex.captures(path)?;
        self.converters
            .iter()
            .enumerate()
            .map(|(i, (name, converter))| {
                let text = captures.get(i + 1)?.as_str();
                converter.convert(text).map(|v| (name.clone(), v))
            })
            .collect()
    }

    /// Whether the rule ends with `/` (werkzeug then redirects the path without it).
    #[must_use]
    pub fn ends_with_slash(&self) -> bool {
        self.text.ends_with('/')
    }

    /// werkzeug's order of rules: static parts before variables, segment by segment,
    /// then lighter converters first, then longer rules first.
    pub(crate) fn sort_key(&self) -> Vec<(u8, u32, usize)> {
        let mut key = Vec::new();
        for part in &self.parts {
            match part {
                Part::Static(text) => {
                    for segment in text.split('/').filter(|s| !s.is_empty()) {
                        key.push((0, 0, usize::MAX - segment.len()));
                    }
                }
                Part::Variable(i) => key.push((1, self.converters[*i].1.weight(), 0)),
            }
        }
        key
    }

    /// The rule with every variable's name left out: two rules with the same shape match
    /// the same paths.
    pub(crate) fn shape(&self) -> String {
        let mut shape = String::new();
        for part in &self.parts {
            match part {
                Part::Static(text) => shape.push_str(text),
                Part::Variable(i) => {
                    shape.push('<');
                    shape.push_str(&format!("{:?}", self.converters[*i].1));
                    shape.push('>');
                }
            }
        }
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn values(rule: &str, path: &str) -> Option<Vec<Value>> {
        Rule::parse(rule)
            .unwrap()
            .matches(path)
            .map(|v| v.into_iter().map(|(_, v)| v).collect())
    }

    #[test]
    fn converters_follow_werkzeug() {
        assert_eq!(values("/get/<int:v>", "/get/007"), Some(vec![json!(7)]));
        assert_eq!(values("/get/<int:v>", "/get/-1"), None);
        assert_eq!(values("/get/<int:v>", "/get/+5"), None);
        assert_eq!(
            values("/get/<int(signed=True):v>", "/get/-1"),
            Some(vec![json!(-1)])
        );
        assert_eq!(values("/get/<int(min=3):v>", "/get/2"), None);
        assert_eq!(values("/get/<int(fixed_digits=3):v>", "/get/12"), None);
        assert_eq!(values("/f/<float:v>", "/f/1.5"), Some(vec![json!(1.5)]));
        assert_eq!(values("/f/<float:v>", "/f/1"), None);
        assert_eq!(values("/s/<v>", "/s/a%20b"), Some(vec![json!("a%20b")]));
        assert_eq!(values("/s/<v>", "/s/a/b"), None);
        assert_eq!(values("/s/<string(length=2):v>", "/s/abc"), None);
        assert_eq!(
            values("/p/<path:v>", "/p/a/b/c"),
            Some(vec![json!("a/b/c")])
        );
        assert_eq!(
            values("/p/<path:v>/x", "/p/a/b/x"),
            Some(vec![json!("a/b")])
        );
        assert_eq!(
            values("/<any(about, help):v>", "/help"),
            Some(vec![json!("help")])
        );
        assert_eq!(values("/<any(about, help):v>", "/other"), None);
        assert_eq!(
            values("/u/<uuid:v>", "/u/8f14e45f-ceea-467f-a0c6-bb4b1e2e6c1b"),
            Some(vec![json!("8f14e45f-ceea-467f-a0c6-bb4b1e2e6c1b")])
        );
        assert_eq!(values("/u/<uuid:v>", "/u/8f14e45f"), None);
        assert_eq!(values("/x", "/x/"), None);
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (rule, reason) in [
            ("get", "starts with `/`"),
            ("/<int:v", "not closed"),
            ("/<nope:v>", "unknown converter `nope`"),
            ("/<a>/<a>", "appears twice"),
            ("/<int(min=x):v>", "`min` must be an integer"),
        ] {
            let error = Rule::parse(rule).unwrap_err().to_string();
            assert!(error.contains(reason), "{rule}: {error}");
        }
    }
}
