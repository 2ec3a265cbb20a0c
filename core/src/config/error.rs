//! Errors of configuration: [`ConfigError`] for a value a key cannot hold,
//! [`ConfigLoadError`] for a file or a define that cannot be loaded.

use std::fmt;
use std::io;
use std::path::PathBuf;

use saphyr_parser::ScanError;
use serde_json::Value;

use super::extract::DeserializeError;
use super::redact_uri;

/// A configuration value of the wrong type, or out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The key holds a value of another type.
    #[error("config key `{key}` must be {expected}, found {found}")]
    WrongType {
        /// The key.
        key: String,
        /// What the framework expects, in words.
        expected: &'static str,
        /// The value found, as JSON.
        found: String,
    },
    /// The value has the right type but a meaning the framework refuses.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why the value is refused.
        reason: String,
    },
    /// The type given to [`Config::extract`](super::Config::extract) refused the config.
    #[error("config key `{key}`: {source}")]
    Deserialize {
        /// The key, as a path from the top of the config (`DB_URIS.orders`, `ACCEPT[0]`),
        /// or `<root>` when the config as a whole was refused (a missing key, named by
        /// serde's message).
        key: String,
        /// serde's error.
        source: DeserializeError,
    },
}

impl ConfigError {
    /// What is wrong, as a `Deserialize` implementation of `field` tells serde (which
    /// names `field` on its own): without the words `config key`, and naming only the
    /// part of the key below `field` (`max_retries` of `RPC_RETRY_POLICY.max_retries`).
    pub(super) fn detail(&self, field: &str) -> String {
        let (key, text) = match self {
            ConfigError::WrongType {
                key,
                expected,
                found,
            } => (key, format!("must be {expected}, found {found}")),
            ConfigError::Invalid { key, reason } => (key, reason.clone()),
            ConfigError::Deserialize { key, source } => (key, source.to_string()),
        };
        match key.strip_prefix(field) {
            Some("") => text,
            Some(sub) if sub.starts_with(['.', '[']) => {
                let sub = sub.strip_prefix('.').unwrap_or(sub);
                match self {
                    ConfigError::WrongType { .. } => format!("`{sub}` {text}"),
                    _ => format!("`{sub}`: {text}"),
                }
            }
            _ => format!("`{key}`: {text}"),
        }
    }
}

/// A [`ConfigError::WrongType`] for `key`, with the passwords of URIs in the value hidden.
pub(crate) fn wrong(key: &str, expected: &'static str, found: &Value) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_owned(),
        expected,
        found: redact_uri(&found.to_string()),
    }
}

/// Where in a config a problem is: the file, if the config came from one, and a 1-based
/// line and column.
///
/// It displays as `file:line:column`, or `line L, column C` without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// The config file, when the text was read from one.
    pub file: Option<PathBuf>,
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file.display(), self.line, self.column),
            None => write!(f, "line {}, column {}", self.line, self.column),
        }
    }
}

/// Why a config could not be loaded, or a define not applied.
///
/// Keys are named by their path from the top of the config: `RPC_RETRY_POLICY.max_retries`,
/// `ACCEPT[0]`, and `<root>` for the document itself. Messages never show the value of an
/// environment variable, and URI passwords in quoted text are replaced by `***` (see
/// [`redact_uri`](super::redact_uri)).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigLoadError {
    /// The config file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file `{}`: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        error: io::Error,
    },
    /// The text is not valid YAML.
    #[error("{at}: invalid YAML: {}", .source.info())]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's error.
        source: ScanError,
    },
    /// The text holds more than one YAML document (`---` separates them).
    #[error("{at}: a config holds a single YAML document, but a second one starts here")]
    MultipleDocuments {
        /// Start of the second document.
        at: Location,
    },
    /// The document is not a mapping of keys to values (nor empty).
    #[error("{at}: a config must be a mapping of keys to values, found {found}")]
    NotAMapping {
        /// Start of the document.
        at: Location,
        /// What the document is instead, in words.
        found: &'static str,
    },
    /// A `${` that no `}` closes, in a scalar subject to substitution.
    #[error(
        "{at}: `{key}`: no `}}` closes the `${{` in {text}; a reference is `${{NAME}}` or \
         `${{NAME:default}}` (quote the value to keep it literally)"
    )]
    UnbalancedReference {
        /// The scalar.
        at: Location,
        /// Its key.
        key: String,
        /// The scalar's text, redacted, in backquotes.
        text: String,
    },
    /// Environment substitution that does not end: a default whose variables keep
    /// bringing references back, or that grows without bound.
    #[error(
        "{at}: `{key}`: environment substitution does not terminate (a default keeps \
         producing `${{...}}` references through variables that refer back to it)"
    )]
    SubstitutionLoop {
        /// The scalar.
        at: Location,
        /// Its key.
        key: String,
    },
    /// The text after environment substitution is not a valid YAML document.
    #[error("{at}: `{key}`: the value after environment substitution is not valid YAML: {message}")]
    SubstitutedSyntax {
        /// The scalar that was substituted.
        at: Location,
        /// Its key.
        key: String,
        /// What is wrong with the substituted text (never the text itself).
        message: String,
        /// The parser's error, when the parser refused the text (rather than a limit).
        #[source]
        source: Option<Box<ScanError>>,
    },
    /// A tag this loader cannot construct (`!!binary`, `!!set`, `!!python/...`, a custom
    /// tag), or a substitution tag where substitution does not apply.
    #[error("{at}: `{key}`: unsupported tag `{tag}`")]
    UnsupportedTag {
        /// The tagged node.
        at: Location,
        /// Its key.
        key: String,
        /// The tag, resolved (`tag:yaml.org,2002:binary` for `!!binary`).
        tag: String,
    },
    /// `.inf`, `-.inf` or `.nan` as a value: a config value is JSON, which has none.
    #[error(
        "{at}: `{key}`: {text} is not a finite number, which a config value cannot hold \
         (quote it to keep it as a string)"
    )]
    NonFiniteFloat {
        /// The scalar.
        at: Location,
        /// Its key.
        key: String,
        /// The scalar's text in backquotes, or a description when it came from the
        /// environment.
        text: String,
    },
    /// A mapping key that is a sequence or a mapping.
    #[error("{at}: a key of `{key}` is {found}; config keys must be scalars")]
    ComplexKey {
        /// The key node.
        at: Location,
        /// The mapping holding it.
        key: String,
        /// What the key is, in words.
        found: &'static str,
    },
    /// A value that cannot be constructed: an integer beyond 64 bits, `!!int` on text that
    /// is no integer, a merge key (`<<`) on something other than mappings, a recursive
    /// alias.
    #[error("{at}: `{key}`: {reason}")]
    InvalidValue {
        /// The node.
        at: Location,
        /// Its key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The document nests too deeply, or grows too large once aliases are expanded.
    #[error("{at}: the document is {what}")]
    TooLarge {
        /// Where the limit was reached.
        at: Location,
        /// Which limit, in words.
        what: &'static str,
    },
    /// A `KEY=VALUE` define with an empty key or a value that is not valid YAML.
    #[error("invalid define `{define}`: {problem}")]
    InvalidDefine {
        /// The define, redacted.
        define: String,
        /// What is wrong.
        #[source]
        problem: DefineError,
    },
}

/// What is wrong with a `-d KEY=VALUE` define ([`ConfigLoadError::InvalidDefine`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefineError {
    /// Nothing before the `=`.
    #[error("the key before `=` is empty")]
    EmptyKey,
    /// No `=` and no key: an empty or blank define.
    #[error("the key is empty")]
    Empty,
    /// The value is not valid YAML, or not a valid config value.
    #[error(transparent)]
    Value(Box<ConfigLoadError>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_name_the_part_below_the_field() {
        let error = wrong("RPC_RETRY_POLICY.max_retries", "a number", &json!("x"));
        assert_eq!(
            error.detail("RPC_RETRY_POLICY"),
            "`max_retries` must be a number, found \"x\""
        );
        assert_eq!(
            error.detail("RPC_RETRY_POLICY.max_retries"),
            "must be a number, found \"x\""
        );
        assert_eq!(
            error.detail("OTHER"),
            "`RPC_RETRY_POLICY.max_retries`: must be a number, found \"x\""
        );
        let error = ConfigError::Invalid {
            key: "AMQP_SSL.verify".to_owned(),
            reason: "unsupported".to_owned(),
        };
        assert_eq!(error.detail("AMQP_SSL"), "`verify`: unsupported");
        assert_eq!(error.detail("AMQP"), "`AMQP_SSL.verify`: unsupported");
    }
}
