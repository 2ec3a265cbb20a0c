//! Loading a [`Config`] from YAML the way nameko's `--config` does, `--define` overrides,
//! `show-config` output and credential redaction.
//!
//! The rules are documented on [`Config::from_yaml_str`].
//!
//! # Example
//!
//! ```
//! use std::collections::HashMap;
//! use nameko_core::config::Config;
//!
//! let yaml = "
//! AMQP_URI: amqp://${RABBIT_USER:guest}:${RABBIT_PASSWORD:guest}@${RABBIT_HOST:localhost}:5672/
//! max_workers: ${MAX_WORKERS:10}
//! ";
//! let env = HashMap::from([
//!     ("RABBIT_PASSWORD".to_owned(), "s3cret".to_owned()),
//!     ("MAX_WORKERS".to_owned(), "4".to_owned()),
//! ]);
//! let mut config = Config::from_yaml_str(yaml, &env)?;
//! assert_eq!(config.amqp_uri()?, Some("amqp://guest:s3cret@localhost:5672/"));
//! assert_eq!(config.max_workers()?, 4);
//!
//! // `nameko run -d max_workers=2` overrides the file.
//! config.apply_define("max_workers=2")?;
//! assert_eq!(config.max_workers()?, 2);
//!
//! // `nameko show-config`, without the password.
//! assert_eq!(
//!     config.redacted().to_yaml_string(),
//!     "AMQP_URI: amqp://guest:***@localhost:5672/\nmax_workers: 2\n",
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};
use serde_json::{Map, Number, Value};

use super::Config;

/// Deepest nesting of sequences and mappings a document may have.
const MAX_DEPTH: usize = 128;
/// Work allowed to build one document: one unit per node and per byte of scalar text,
/// which bounds documents that multiply through aliases.
const MAX_EXPANSION: usize = 16 * 1024 * 1024;
/// References one scalar may look up (a default that keeps producing new references).
const MAX_LOOKUPS: usize = 10_000;
/// Nesting of defaults substituted inside defaults.
const MAX_DEFAULT_NESTING: usize = 64;
/// Longest text one substitution may produce.
const MAX_SUBSTITUTED_LEN: usize = 1024 * 1024;

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

// ---------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------

/// Where `${VAR}` references find their values.
///
/// Loading never reads the process environment by itself: pass [`ProcessEnv`] for that, or
/// a map, an array or slice of pairs, or a closure, which keeps tests independent of the
/// environment they run in.
///
/// ```
/// use std::collections::HashMap;
/// use nameko_core::config::{Config, Env};
///
/// let map = HashMap::from([("PORT".to_owned(), "5673".to_owned())]);
/// assert_eq!(map.var("PORT").as_deref(), Some("5673"));
///
/// let pairs = [("PORT", "5674")];
/// assert_eq!(pairs.var("PORT").as_deref(), Some("5674"));
///
/// let closure = |name: &str| (name == "PORT").then(|| "5675".to_owned());
/// let config = Config::from_yaml_str("port: ${PORT:5672}", &closure)?;
/// assert_eq!(config.get("port"), Some(&5675.into()));
/// # Ok::<(), nameko_core::config::ConfigLoadError>(())
/// ```
pub trait Env {
    /// The value of variable `name`, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of the running process, as `os.environ` is for Python nameko.
///
/// Values that are not valid UTF-8 are read lossily. Names that no environment can hold
/// (empty, or containing `=` or NUL) are unset.
///
/// ```no_run
/// use nameko_core::config::{Config, ProcessEnv};
///
/// let config = Config::from_yaml_file("config.yaml", &ProcessEnv)?;
/// # Ok::<(), nameko_core::config::ConfigLoadError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return None;
        }
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<S: BuildHasher> Env for HashMap<&str, &str, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| (*value).to_owned())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| (*value).to_owned())
    }
}

/// Pairs of name and value; when a name appears twice, the last pair wins.
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref().to_owned())
    }
}

/// Pairs of name and value; when a name appears twice, the last pair wins.
impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

/// Pairs of name and value; when a name appears twice, the last pair wins.
impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

impl<F> Env for F
where
    F: Fn(&str) -> Option<String>,
{
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

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
/// [`redact_uri`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigLoadError {
    /// The config file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file `{}`: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: io::Error,
    },
    /// The text is not valid YAML.
    #[error("{at}: invalid YAML: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's message.
        message: String,
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
        /// The parser's message about the substituted text.
        message: String,
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
    #[error("invalid define `{define}`: {reason}")]
    InvalidDefine {
        /// The define, redacted.
        define: String,
        /// What is wrong.
        reason: String,
    },
}

// ---------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------

impl Config {
    /// Loads a config from YAML text, substituting `${VAR}` references from `env` with
    /// nameko's rules. An empty document gives an empty config.
    ///
    /// # Environment substitution
    ///
    /// nameko loads its config file with PyYAML plus two custom tags and an implicit resolver;
    /// this function and [`Config::from_yaml_file`] follow the same rules:
    ///
    /// | In the file | Result |
    /// |---|---|
    /// | `${VAR}` | the value of `VAR`; unset gives `''`, which parses to null |
    /// | `${VAR:default}` | the value of `VAR`, or `default` when `VAR` is unset (an empty value is used as is) |
    /// | `${A:pre_${B:x}}` | defaults nest: the default is substituted again, so `pre_x` when both are unset |
    /// | `${X:https://e.com/{path}}` | braces pair up inside a default: `https://e.com/{path}` |
    /// | `${HOST:localhost}:${PORT:5672}` | any number of references, with text around them |
    /// | `${N:5}`, `${L:[a, b]}`, `${X:true}` | after substitution the text is parsed as YAML: `5`, `["a", "b"]`, `true` |
    /// | `!env_var "${X:5}"` | the tag forces substitution in a quoted string (then parsed as YAML) |
    /// | `!raw_env_var "${X:1234.5660}"` | substitution that keeps the result a string: `"1234.5660"` |
    /// | `"${X}"`, `'${X}'`, a `|` or `>` block | quoted and block scalars without a tag are kept literally |
    ///
    /// In detail, as in nameko:
    ///
    /// - Substitution applies to a plain scalar (mapping keys included) whose first line holds
    ///   `${` followed by `}` (nameko's implicit resolver `.*\$\{.*\}.*`), and to any scalar
    ///   tagged `!env_var` or `!raw_env_var`.
    /// - A reference is `${NAME}` or `${NAME:default}`, where `NAME` has no `{`, `}`, `:` or
    ///   white space. Text that merely looks like one (`${ X}`, `${}`) is kept as it is.
    /// - The value of a set variable is used verbatim; only defaults are substituted again
    ///   (repeatedly, while the result still holds a reference).
    /// - After substitution the whole text is parsed as a YAML document, without substitution,
    ///   and becomes the value: a number, a boolean, null, a string, a list or a mapping.
    ///
    /// Where nameko would keep going, this loader stops with an error instead:
    ///
    /// - a `${` that no `}` closes ([`ConfigLoadError::UnbalancedReference`]), which nameko keeps
    ///   as literal text but is almost always a typo; quote the value to keep it literally;
    /// - substitution that never ends, for example a default whose variable's value refers back
    ///   to it ([`ConfigLoadError::SubstitutionLoop`]), where nameko hangs. A default that holds
    ///   something reference-like that does not change (`${A:${ x}}`) is kept as it is.
    ///
    /// # Scalars
    ///
    /// Plain scalars are read with PyYAML's YAML 1.1 rules, so a file means the same to
    /// nameko-rs as to Python nameko: `yes`/`no`/`on`/`off` are booleans, `017` is octal, `0x1F`
    /// hexadecimal, `1_000` is 1000, `1:30` is 90, `1.0e+3` is a float while `1e3` is a string,
    /// and `~`, `null` and an empty value are null. Timestamps (`2001-12-14`) stay strings.
    /// Anchors, aliases and merge keys (`<<`) work as in PyYAML.
    ///
    /// Config values are JSON, so a few YAML values have no exact counterpart:
    ///
    /// - `.inf` and `.nan` are refused with [`ConfigLoadError::NonFiniteFloat`] naming the key;
    ///   quote them to keep a string.
    /// - Integers must fit in 64 bits.
    /// - Mapping keys become strings as `json.dumps` writes them: `1` gives `"1"`, `true` gives
    ///   `"true"`, `~` gives `"null"`, `1.5` gives `"1.5"`, `.inf` gives `"Infinity"`.
    ///   A sequence or mapping as a key is refused with [`ConfigLoadError::ComplexKey`].
    /// - Only the standard tags (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!seq`,
    ///   `!!map`, `!!timestamp`), `!` and the two substitution tags are understood.
    ///
    /// # Example
    ///
    /// ```
    /// use nameko_core::config::Config;
    ///
    /// let env = [("AMQP_URI", "memory://")];
    /// let config = Config::from_yaml_str(
    ///     "AMQP_URI: ${AMQP_URI:amqp://guest:guest@localhost}\n\
    ///      max_workers: ${MAX_WORKERS:5}\n\
    ///      ACCEPT: ${ACCEPT:[json]}\n\
    ///      literal: '${NOT_SUBSTITUTED}'\n",
    ///     &env,
    /// )?;
    /// assert_eq!(config.amqp_uri()?, Some("memory://"));
    /// assert_eq!(config.max_workers()?, 5);
    /// assert_eq!(config.get("ACCEPT"), Some(&serde_json::json!(["json"])));
    /// assert_eq!(config.get_str("literal")?, Some("${NOT_SUBSTITUTED}"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigLoadError`] for invalid YAML, a document that is not a mapping, a value
    /// that cannot be a config value, or a substitution that is unbalanced or does not
    /// terminate.
    pub fn from_yaml_str(text: &str, env: &(impl Env + ?Sized)) -> Result<Config, ConfigLoadError> {
        load(text, env, None)
    }

    /// Loads a config from a YAML file, as [`Config::from_yaml_str`] does; error locations
    /// name the file.
    ///
    /// ```no_run
    /// use nameko_core::config::{Config, ProcessEnv};
    ///
    /// let config = Config::from_yaml_file("config.yaml", &ProcessEnv)?;
    /// # Ok::<(), nameko_core::config::ConfigLoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigLoadError::Read`] when the file cannot be read as UTF-8 text, and the errors
    /// of [`Config::from_yaml_str`].
    pub fn from_yaml_file(
        path: impl AsRef<Path>,
        env: &(impl Env + ?Sized),
    ) -> Result<Config, ConfigLoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigLoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        load(&text, env, Some(path))
    }

    /// Applies one `-d KEY=VALUE` define, as `nameko run --define` does: the value is
    /// parsed as YAML (without environment substitution), a bare `KEY` means `true`, and
    /// the key is taken whole (dots do not make nested keys).
    ///
    /// ```
    /// use nameko_core::config::Config;
    /// use serde_json::json;
    ///
    /// let mut config = Config::new().with("max_workers", 10);
    /// config.apply_define("max_workers=4")?;
    /// config.apply_define("AMQP_URI=memory://")?;
    /// config.apply_define("ACCEPT=[json]")?;
    /// config.apply_define("DEBUG")?;
    /// config.apply_define("a.b=1")?;
    /// assert_eq!(
    ///     config.to_value(),
    ///     json!({"max_workers": 4, "AMQP_URI": "memory://", "ACCEPT": ["json"], "DEBUG": true, "a.b": 1}),
    /// );
    /// # Ok::<(), nameko_core::config::ConfigLoadError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigLoadError::InvalidDefine`] for an empty key or a value that is not valid
    /// YAML or not a valid config value; the config is left unchanged.
    pub fn apply_define(&mut self, define: &str) -> Result<(), ConfigLoadError> {
        let (key, value) = parse_define(define)?;
        self.values.insert(key, value);
        Ok(())
    }

    /// Applies several defines in order (a later one wins over an earlier one for the same
    /// key). Either all apply or, on the first invalid one, none does.
    ///
    /// ```
    /// use nameko_core::config::Config;
    ///
    /// let mut config = Config::new();
    /// config.apply_defines(["max_workers=4", "max_workers=8"])?;
    /// assert_eq!(config.max_workers()?, 8);
    ///
    /// assert!(config.apply_defines(["rpc_exchange=x", "=oops"]).is_err());
    /// assert_eq!(config.rpc_exchange()?, "nameko-rpc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first [`ConfigLoadError::InvalidDefine`].
    pub fn apply_defines<I>(&mut self, defines: I) -> Result<(), ConfigLoadError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let parsed = defines
            .into_iter()
            .map(|define| parse_define(define.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        self.values.extend(parsed);
        Ok(())
    }

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

    /// A copy with the password of every URI in every string value replaced by `***` (see
    /// [`redact_uri`]), for printing and logging.
    ///
    /// ```
    /// use nameko_core::config::Config;
    ///
    /// let config = Config::new()
    ///     .with("AMQP_URI", "amqp://guest:guest@localhost:5672/")
    ///     .with("DB_URIS", serde_json::json!({"svc:Base": "postgresql://app:pw@db/app"}));
    /// assert_eq!(
    ///     config.redacted().to_yaml_string(),
    ///     "AMQP_URI: amqp://guest:***@localhost:5672/\nDB_URIS:\n  svc:Base: postgresql://app:***@db/app\n",
    /// );
    /// ```
    #[must_use]
    pub fn redacted(&self) -> Config {
        Config {
            values: self
                .values
                .iter()
                .map(|(key, value)| (key.clone(), redact_value(value)))
                .collect(),
        }
    }
}

/// Parses a `-d KEY=VALUE` define into its key and value, as `nameko --define` does: the
/// text is split at the first `=`, the key is trimmed, and the value is parsed as a YAML
/// document (`4` is a number, `memory://` a string, `[1, 2]` a list, an empty value null).
/// Without `=`, the whole text is the key and the value is `true`.
///
/// ```
/// use nameko_core::config::parse_define;
/// use serde_json::json;
///
/// assert_eq!(parse_define("max_workers=4")?, ("max_workers".to_owned(), json!(4)));
/// assert_eq!(parse_define(" DEBUG ")?, ("DEBUG".to_owned(), json!(true)));
/// assert_eq!(parse_define("X=[1,2]")?, ("X".to_owned(), json!([1, 2])));
/// assert_eq!(parse_define("X=")?, ("X".to_owned(), json!(null)));
/// assert!(parse_define("=4").is_err());
/// # Ok::<(), nameko_core::config::ConfigLoadError>(())
/// ```
///
/// # Errors
///
/// [`ConfigLoadError::InvalidDefine`] for an empty key or a value that is not valid YAML or
/// not a valid config value.
pub fn parse_define(define: &str) -> Result<(String, Value), ConfigLoadError> {
    let invalid = |reason: String| ConfigLoadError::InvalidDefine {
        define: redact_uri(define),
        reason,
    };
    let (key, value) = match define.split_once('=') {
        Some((key, text)) => {
            let key = key.trim();
            if key.is_empty() {
                return Err(invalid("the key before `=` is empty".to_owned()));
            }
            let budget = Cell::new(MAX_EXPANSION);
            let builder: Builder<'_, ProcessEnv> = Builder {
                env: None,
                origin: Origin::Text { file: None },
                budget: &budget,
            };
            let value = builder
                .document(text, key, Role::Value)
                .map_err(|error| invalid(error.to_string()))?;
            (key, value)
        }
        None => {
            let key = define.trim();
            if key.is_empty() {
                return Err(invalid("the key is empty".to_owned()));
            }
            (key, Value::Bool(true))
        }
    };
    Ok((key.to_owned(), value))
}

/// Hides the passwords of the URIs in `text`: `amqp://user:secret@host/` becomes
/// `amqp://user:***@host/`.
///
/// Every `scheme://` in the text is handled, so URIs inside a sentence and kombu's failover
/// lists (`amqp://a:x@h1;amqp://a:y@h2`, also with `,`) are covered. A URI without a
/// password (`memory://`, `amqp://host`, `amqp://user@host`, `amqp://user:@host`) and text
/// without a URI come back unchanged.
///
/// When in doubt the function hides more, never less: a password written without
/// percent-encoding may hold `@`, `/`, `?`, `#` or `:`, so everything from the first `:`
/// after `scheme://` up to the last `@` of the URI is treated as the password, and a URI
/// with an `@` in its path or query loses a little more than its password. A URI ends at
/// white space, or at a `;` or `,` followed by another `scheme://` once what comes before
/// it is a complete URI (it has an `@`, or no port, or a numeric one). The one case left
/// is a password that itself holds such a separator and scheme, which no reader of the
/// text could tell from a list of two URIs.
///
/// ```
/// use nameko_core::config::redact_uri;
///
/// assert_eq!(redact_uri("amqp://guest:guest@localhost:5672/"), "amqp://guest:***@localhost:5672/");
/// assert_eq!(redact_uri("amqps://svc:p@ss@rabbit/vhost"), "amqps://svc:***@rabbit/vhost");
/// assert_eq!(redact_uri("memory://"), "memory://");
/// assert_eq!(redact_uri("amqp://localhost"), "amqp://localhost");
/// assert_eq!(
///     redact_uri("amqp://a:x@h1;amqp://a:y@h2"),
///     "amqp://a:***@h1;amqp://a:***@h2",
/// );
/// ```
#[must_use]
pub fn redact_uri(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(after_scheme) = find_uri_start(rest) {
        out.push_str(&rest[..after_scheme]);
        let tail = &rest[after_scheme..];
        let end = uri_end(tail);
        out.push_str(&redact_authority(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------------------

fn redact_value(value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(redact_uri(text)),
        Value::Array(items) => Value::Array(items.iter().map(redact_value).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| (key.clone(), redact_value(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn is_scheme_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// The index just after the first `scheme://` in `text`, if any.
fn find_uri_start(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(offset) = text[from..].find("://") {
        let separator = from + offset;
        let mut start = separator;
        while start > 0 && is_scheme_char(bytes[start - 1]) {
            start -= 1;
        }
        // A scheme starts with a letter: skip digits and signs before it.
        while start < separator && !bytes[start].is_ascii_alphabetic() {
            start += 1;
        }
        if start < separator {
            return Some(separator + 3);
        }
        from = separator + 3;
    }
    None
}

/// Whether `text` starts with `scheme://`.
fn starts_with_scheme(text: &str) -> bool {
    let bytes = text.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return false;
    }
    let scheme_len = bytes.iter().take_while(|&&c| is_scheme_char(c)).count();
    text[scheme_len..].starts_with("://")
}

/// Where the URI whose text after `scheme://` starts `tail` ends; see [`redact_uri`].
fn uri_end(tail: &str) -> usize {
    let limit = tail.find(char::is_whitespace).unwrap_or(tail.len());
    let uri = &tail[..limit];
    let is_complete = |before: &str| {
        let authority = &before[..before.find(['/', '?', '#']).unwrap_or(before.len())];
        before.contains('@')
            || authority
                .rfind(':')
                .is_none_or(|colon| all_chars(&authority[colon + 1..], |c| c.is_ascii_digit()))
    };
    uri.char_indices()
        .find(|&(index, c)| {
            matches!(c, ';' | ',')
                && starts_with_scheme(&uri[index + 1..])
                && is_complete(&uri[..index])
        })
        .map_or(limit, |(index, _)| index)
}

/// `user:password@rest` becomes `user:***@rest`; see [`redact_uri`].
fn redact_authority(uri: &str) -> String {
    let Some(at) = uri.rfind('@') else {
        return uri.to_owned();
    };
    match uri[..at].find(':') {
        Some(colon) if colon + 1 < at => format!("{}:***{}", &uri[..colon], &uri[at..]),
        _ => uri.to_owned(),
    }
}

// ---------------------------------------------------------------------------------------
// Composition: events to a node tree
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Node {
    kind: Kind,
    line: usize,
    column: usize,
    /// Nodes plus scalar bytes once aliases are expanded: the work of building it.
    size: usize,
    /// Nesting once aliases are expanded (1 for a scalar).
    depth: usize,
}

#[derive(Debug)]
enum Kind {
    Scalar {
        text: String,
        style: ScalarStyle,
        tag: Option<String>,
    },
    Sequence {
        tag: Option<String>,
        items: Vec<Rc<Node>>,
    },
    Mapping {
        tag: Option<String>,
        entries: Vec<(Rc<Node>, Rc<Node>)>,
    },
}

impl Kind {
    fn describe(&self) -> &'static str {
        match self {
            Kind::Scalar { .. } => "a scalar",
            Kind::Sequence { .. } => "a sequence",
            Kind::Mapping { .. } => "a mapping",
        }
    }
}

/// A collection whose end event has not come yet.
struct Open {
    anchor: usize,
    line: usize,
    column: usize,
    tag: Option<String>,
    content: OpenContent,
    size: usize,
    depth: usize,
}

enum OpenContent {
    Sequence(Vec<Rc<Node>>),
    Mapping {
        entries: Vec<(Rc<Node>, Rc<Node>)>,
        key: Option<Rc<Node>>,
    },
}

#[derive(Debug)]
enum ComposeError {
    Scan(ScanError),
    MultipleDocuments { line: usize, column: usize },
    TooDeep { line: usize, column: usize },
    TooLarge { line: usize, column: usize },
    RecursiveAlias { line: usize, column: usize },
}

impl ComposeError {
    fn position(&self) -> (usize, usize) {
        match self {
            ComposeError::Scan(error) => (error.marker().line(), error.marker().col() + 1),
            ComposeError::MultipleDocuments { line, column }
            | ComposeError::TooDeep { line, column }
            | ComposeError::TooLarge { line, column }
            | ComposeError::RecursiveAlias { line, column } => (*line, *column),
        }
    }

    fn message(&self) -> String {
        match self {
            ComposeError::Scan(error) => error.info().to_owned(),
            ComposeError::MultipleDocuments { .. } => {
                "expected a single document, found a second one".to_owned()
            }
            ComposeError::TooDeep { .. } => {
                format!("sequences and mappings nest more than {MAX_DEPTH} deep")
            }
            ComposeError::TooLarge { .. } => {
                "the document is too large once its aliases are expanded".to_owned()
            }
            ComposeError::RecursiveAlias { .. } => {
                "an alias refers to a node that contains it".to_owned()
            }
        }
    }
}

fn tag_name(tag: &saphyr_parser::Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

/// Parses `text` into the node tree of its single document (`None` for an empty stream).
fn compose(text: &str) -> Result<Option<Rc<Node>>, ComposeError> {
    let mut anchors: HashMap<usize, Rc<Node>> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(ComposeError::Scan)?;
        let line = span.start.line();
        let column = span.start.col() + 1;
        let is_sequence = matches!(event, Event::SequenceStart(..));
        let (node, anchor) = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ComposeError::MultipleDocuments { line, column });
                }
                continue;
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => (Rc::clone(node), 0),
                None => return Err(ComposeError::RecursiveAlias { line, column }),
            },
            Event::Scalar(text, style, anchor, tag) => {
                let size = text.len().saturating_add(1);
                let kind = Kind::Scalar {
                    text: text.into_owned(),
                    style,
                    tag: tag.as_deref().map(tag_name),
                };
                let node = Node {
                    kind,
                    line,
                    column,
                    size,
                    depth: 1,
                };
                (Rc::new(node), anchor)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ComposeError::TooDeep { line, column });
                }
                let content = if is_sequence {
                    OpenContent::Sequence(Vec::new())
                } else {
                    OpenContent::Mapping {
                        entries: Vec::new(),
                        key: None,
                    }
                };
                stack.push(Open {
                    anchor,
                    line,
                    column,
                    tag: tag.as_deref().map(tag_name),
                    content,
                    size: 1,
                    depth: 1,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = stack.pop() else { continue };
                let kind = match open.content {
                    OpenContent::Sequence(items) => Kind::Sequence {
                        tag: open.tag,
                        items,
                    },
                    OpenContent::Mapping { entries, .. } => Kind::Mapping {
                        tag: open.tag,
                        entries,
                    },
                };
                let node = Node {
                    kind,
                    line: open.line,
                    column: open.column,
                    size: open.size,
                    depth: open.depth,
                };
                (Rc::new(node), open.anchor)
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {
                continue;
            }
        };
        if anchor != 0 {
            anchors.insert(anchor, Rc::clone(&node));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(open) => {
                // Sizes and depths add up through aliases, which catches documents that
                // multiply through them before anything is built.
                open.size = open.size.saturating_add(node.size);
                open.depth = open.depth.max(node.depth.saturating_add(1));
                if open.size > MAX_EXPANSION {
                    return Err(ComposeError::TooLarge { line, column });
                }
                if open.depth > MAX_DEPTH {
                    return Err(ComposeError::TooDeep { line, column });
                }
                match &mut open.content {
                    OpenContent::Sequence(items) => items.push(node),
                    OpenContent::Mapping { entries, key } => match key.take() {
                        None => *key = Some(node),
                        Some(key) => entries.push((key, node)),
                    },
                }
            }
        }
    }
    Ok(root)
}

// ---------------------------------------------------------------------------------------
// Construction: nodes to JSON values
// ---------------------------------------------------------------------------------------

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

fn load(
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
    let root = compose(text).map_err(|error| builder.compose_error(&error, ""))?;
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

    fn compose_error(&self, error: &ComposeError, path: &str) -> ConfigLoadError {
        let (line, column) = error.position();
        let at = self.location_at(line, column);
        match self.origin {
            Origin::Substituted { .. } => ConfigLoadError::SubstitutedSyntax {
                at,
                key: key_name(path),
                message: error.message(),
            },
            Origin::Text { .. } => match error {
                ComposeError::Scan(_) => ConfigLoadError::Syntax {
                    at,
                    message: error.message(),
                },
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
        match compose(text).map_err(|error| self.compose_error(&error, path))? {
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

// ---------------------------------------------------------------------------------------
// Environment substitution
// ---------------------------------------------------------------------------------------

/// Substitution that does not terminate.
#[derive(Debug)]
struct Diverges;

struct Substituter<'a, E: ?Sized> {
    env: &'a E,
    lookups: usize,
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
    fn substitute(&mut self, text: &str, nesting: usize) -> Result<String, Diverges> {
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
fn implicit_env_match(text: &str) -> bool {
    let first_line = text.split('\n').next().unwrap_or_default();
    first_line
        .find("${")
        .is_some_and(|start| first_line[start + 2..].contains('}'))
}

/// Whether some `${` in `text` is never closed by a matching `}`.
fn has_unclosed_reference(text: &str) -> bool {
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

// ---------------------------------------------------------------------------------------
// PyYAML's YAML 1.1 scalar resolution
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implicit {
    Null,
    Bool(bool),
    Int,
    Float,
    /// Strings, including timestamps, the merge key `<<` and the value key `=`, which a
    /// config keeps as text.
    Str,
}

/// The type PyYAML's `SafeLoader` gives a plain scalar.
fn implicit_kind(text: &str) -> Implicit {
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
fn bool_value(lower: &str) -> Option<bool> {
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
fn parse_int(text: &str) -> Option<i128> {
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
fn parse_float(text: &str) -> Option<f64> {
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
fn python_float_repr(f: f64) -> String {
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
fn python_float_key(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        python_float_repr(f)
    }
}

// ---------------------------------------------------------------------------------------
// Emitting YAML
// ---------------------------------------------------------------------------------------

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
    use proptest::prelude::*;
    use serde_json::json;

    const NO_ENV: [(&str, &str); 0] = [];

    fn load_with(yaml: &str, env: &[(&str, &str)]) -> Value {
        match Config::from_yaml_str(yaml, env) {
            Ok(config) => config.to_value(),
            Err(error) => panic!("loading {yaml:?} failed: {error}"),
        }
    }

    fn load_err(yaml: &str, env: &[(&str, &str)]) -> ConfigLoadError {
        match Config::from_yaml_str(yaml, env) {
            Ok(config) => panic!("loading {yaml:?} succeeded: {:?}", config.to_value()),
            Err(error) => error,
        }
    }

    /// The value of `v: <text>`.
    fn value_of(text: &str, env: &[(&str, &str)]) -> Value {
        load_with(&format!("v: {text}"), env)["v"].clone()
    }

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

    #[test]
    fn aliases_repeat_their_anchor_and_substitute_each_time() {
        let yaml = "a: &x\n  uri: '${U:memory://}'\n  n: ${N:1}\nb: *x\nc: &y [1, 2]\nd: *y";
        assert_eq!(
            load_with(yaml, &[("N", "2")]),
            json!({"a": {"uri": "${U:memory://}", "n": 2}, "b": {"uri": "${U:memory://}", "n": 2}, "c": [1, 2], "d": [1, 2]})
        );
        let error = load_err("a: &x [1, *x]", &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::InvalidValue { .. }),
            "{error:?}"
        );
        let error = load_err("a: *nowhere", &NO_ENV);
        assert!(matches!(error, ConfigLoadError::Syntax { .. }), "{error:?}");
    }

    #[test]
    fn documents_that_explode_are_refused() {
        let mut yaml = String::from("l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n");
        for level in 1..10 {
            let previous = level - 1;
            yaml.push_str(&format!(
                "l{level}: &l{level} [*l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}]\n"
            ));
        }
        let error = load_err(&yaml, &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::TooLarge { .. }),
            "{error:?}"
        );

        let deep = format!("a: {}{}", "[".repeat(200), "]".repeat(200));
        let error = load_err(&deep, &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::TooLarge { .. }),
            "{error:?}"
        );

        // Nesting adds up through aliases too.
        let nested = |inner: &str| format!("{}{inner}{}", "[".repeat(100), "]".repeat(100));
        let yaml = format!("a: &a {}\nb: {}", nested("1"), nested("*a"));
        let error = load_err(&yaml, &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::TooLarge { ref at, .. } if at.line == 2),
            "{error:?}"
        );
        assert!(Config::from_yaml_str(&format!("a: &a {}\nb: *a", nested("1")), &NO_ENV).is_ok());
    }

    #[test]
    fn document_level_errors() {
        let error = load_err("a: 1\nb: [1, 2\n", &NO_ENV);
        assert!(
            matches!(&error, ConfigLoadError::Syntax { at, .. } if at.line == 3 && at.column == 1),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("line 3, column 1: invalid YAML: "),
            "{error}"
        );

        let error = load_err("a: 1\n---\nb: 2\n", &NO_ENV);
        assert!(
            matches!(&error, ConfigLoadError::MultipleDocuments { at } if at.line == 2),
            "{error:?}"
        );

        for (yaml, found) in [
            ("- 1", "a sequence"),
            ("5", "a number"),
            ("text", "a string"),
        ] {
            let error = load_err(yaml, &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::NotAMapping { found: f, .. } if *f == found),
                "{yaml}: {error:?}"
            );
        }
        // The whole document may come from a variable.
        assert_eq!(
            load_with("${CONFIG}", &[("CONFIG", "{a: 1}")]),
            json!({"a": 1})
        );
    }

    #[test]
    fn empty_documents_give_an_empty_config() {
        for yaml in ["", "# nothing\n", "---\n", "~", "\u{feff}"] {
            assert_eq!(load_with(yaml, &NO_ENV), json!({}), "{yaml:?}");
        }
        assert_eq!(load_with("\u{feff}a: 1", &NO_ENV), json!({"a": 1}));
    }

    #[test]
    fn typed_accessors_name_the_key_of_a_substituted_value() {
        let config = Config::from_yaml_str("max_workers: ${W:many}\nHEARTBEAT: ${HB:[1]}", &NO_ENV)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.max_workers().map_err(|e| e.to_string()),
            Err("config key `max_workers` must be a positive integer, found \"many\"".to_owned())
        );
        let error = config.heartbeat().map_err(|e| e.to_string());
        assert!(
            matches!(&error, Err(m) if m.contains("`HEARTBEAT`")),
            "{error:?}"
        );

        let config = Config::from_yaml_str(
            "max_workers: ${W:many}\nHEARTBEAT: ${HB:[1]}",
            &[("W", "4"), ("HB", "30")],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.max_workers().ok(), Some(4));
        assert_eq!(config.heartbeat().ok(), Some(30));
    }

    #[test]
    fn defines_parse_their_value_as_yaml() {
        let cases: &[(&str, &str, Value)] = &[
            ("max_workers=4", "max_workers", json!(4)),
            ("AMQP_URI=memory://", "AMQP_URI", json!("memory://")),
            ("X=[1,2]", "X", json!([1, 2])),
            ("X={a: 1}", "X", json!({"a": 1})),
            ("DEBUG", "DEBUG", json!(true)),
            (" K = v ", "K", json!("v")),
            ("X=", "X", json!(null)),
            ("X=a=b", "X", json!("a=b")),
            ("X=yes", "X", json!(true)),
            ("X=1e3", "X", json!("1e3")),
            ("X='5'", "X", json!("5")),
            ("X=${Y:1}", "X", json!("${Y:1}")),
            ("a.b=1", "a.b", json!(1)),
        ];
        for (define, key, value) in cases {
            let parsed = parse_define(define).unwrap_or_else(|e| panic!("{define}: {e}"));
            assert_eq!(&parsed, &((*key).to_owned(), value.clone()), "{define}");
        }
        for define in ["=5", "", " ", " =1", "X=[1,", "X=.inf", "X=!!binary aGk="] {
            let error = parse_define(define).map(|_| ()).map_err(|e| e.to_string());
            assert!(
                matches!(&error, Err(m) if m.starts_with("invalid define `")),
                "{define:?}: {error:?}"
            );
        }
        let error = parse_define("AMQP_URI=[amqp://u:pw@host").map_err(|e| e.to_string());
        assert!(matches!(&error, Err(m) if !m.contains("pw@")), "{error:?}");
    }

    #[test]
    fn defines_override_the_file_and_apply_all_or_nothing() {
        let mut config = Config::from_yaml_str(
            "max_workers: ${W:10}\nAMQP_URI: amqp://localhost\nrpc_exchange: custom",
            &NO_ENV,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        config
            .apply_defines(["max_workers=4", "AMQP_URI=memory://", "max_workers=2"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.to_value(),
            json!({"max_workers": 2, "AMQP_URI": "memory://", "rpc_exchange": "custom"})
        );
        let before = config.clone();
        let error = config.apply_defines(["rpc_exchange=other", "=broken"]);
        assert!(
            matches!(error, Err(ConfigLoadError::InvalidDefine { .. })),
            "{error:?}"
        );
        assert_eq!(config, before);
        let error = config.apply_define("X=[");
        assert!(error.is_err());
        assert_eq!(config, before);
    }

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

        #[test]
        fn redaction_never_shows_the_password(
            user in "[a-z]{1,8}",
            // `;` and `,` before a scheme could start a second URI of a failover list.
            password in "[a-zA-Z0-9@/?#:%!]{1,12}",
            host in "[a-z]{1,8}(:[0-9]{1,5})?",
            path in "(/[a-z]{0,6})?",
        ) {
            let uri = format!("amqp://{user}:{password}@{host}{path}");
            let redacted = redact_uri(&uri);
            prop_assert_eq!(redacted, format!("amqp://{user}:***@{host}{path}"));
        }
    }

    #[test]
    fn redact_uri_hides_passwords_only() {
        let cases = [
            (
                "amqp://guest:guest@localhost:5672/",
                "amqp://guest:***@localhost:5672/",
            ),
            (
                "amqps://svc:s3cret@rabbit.example:5671/vhost?heartbeat=10",
                "amqps://svc:***@rabbit.example:5671/vhost?heartbeat=10",
            ),
            ("pyamqp://u:p@h", "pyamqp://u:***@h"),
            ("memory://", "memory://"),
            ("memory://name", "memory://name"),
            ("amqp://localhost", "amqp://localhost"),
            ("amqp://localhost:5672/%2F", "amqp://localhost:5672/%2F"),
            ("amqp://user@host/", "amqp://user@host/"),
            ("amqp://user:@host/", "amqp://user:@host/"),
            ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
            ("amqp://u:p@ss@host/", "amqp://u:***@host/"),
            ("amqp://u:pa/ss@host/", "amqp://u:***@host/"),
            ("amqp://u:pa?ss@host/", "amqp://u:***@host/"),
            ("amqp://u:pa:ss@host/", "amqp://u:***@host/"),
            ("amqp://u:p%40ss@host/", "amqp://u:***@host/"),
            (
                "amqp://a:x@h1;amqp://b:y@h2",
                "amqp://a:***@h1;amqp://b:***@h2",
            ),
            (
                "amqp://h1:5672,amqp://b:y@h2",
                "amqp://h1:5672,amqp://b:***@h2",
            ),
            ("memory://;amqp://b:y@h2", "memory://;amqp://b:***@h2"),
            // Not a complete URI before `;`: part of the password.
            ("amqp://a:x;amqp://b:y@h2", "amqp://a:***@h2"),
            ("amqp://a://@h", "amqp://a:***@h"),
            ("amqp://u:p@h/vhost@x", "amqp://u:***@x"),
            ("X=amqp://u:p@h", "X=amqp://u:***@h"),
            (
                "connect to amqp://u:p@h now, user:x@y",
                "connect to amqp://u:***@h now, user:x@y",
            ),
            (
                "postgresql+psycopg://app:pw@db/app",
                "postgresql+psycopg://app:***@db/app",
            ),
            ("user:password@host", "user:password@host"),
            ("not a uri", "not a uri"),
            ("://x:y@z", "://x:y@z"),
            ("", ""),
            ("é amqp://ü:ß@ö/", "é amqp://ü:***@ö/"),
        ];
        for (uri, expected) in cases {
            assert_eq!(redact_uri(uri), expected, "{uri}");
        }
    }

    #[test]
    fn redacted_config_hides_passwords_everywhere() {
        let config = Config::new()
            .with("AMQP_URI", "amqp://guest:guest@localhost:5672/")
            .with("DB_URIS", json!({"svc:Base": "postgresql://app:pw@db/app"}))
            .with("list", json!(["amqp://a:b@c", 5]))
            .with("plain", "amqp://localhost");
        assert_eq!(
            config.redacted().to_value(),
            json!({
                "AMQP_URI": "amqp://guest:***@localhost:5672/",
                "DB_URIS": {"svc:Base": "postgresql://app:***@db/app"},
                "list": ["amqp://a:***@c", 5],
                "plain": "amqp://localhost",
            })
        );
    }

    #[test]
    fn env_sources() {
        let owned = HashMap::from([("A".to_owned(), "1".to_owned())]);
        let borrowed = HashMap::from([("A", "2")]);
        let tree = BTreeMap::from([("A".to_owned(), "3".to_owned())]);
        let tree_borrowed = BTreeMap::from([("A", "4")]);
        let pairs = [("A", "0"), ("A", "5")];
        let list = vec![("A".to_owned(), "6".to_owned())];
        let closure = |name: &str| (name == "A").then(|| "7".to_owned());
        let envs: [(&dyn Env, &str); 7] = [
            (&owned, "1"),
            (&borrowed, "2"),
            (&tree, "3"),
            (&tree_borrowed, "4"),
            (&pairs, "5"),
            (&list, "6"),
            (&closure, "7"),
        ];
        for (env, expected) in envs {
            assert_eq!(env.var("A").as_deref(), Some(expected));
            assert_eq!(env.var("B"), None);
            let config = Config::from_yaml_str("a: ${A}", env).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                config.get("a"),
                Some(&json!(expected.parse::<i64>().unwrap_or(-1)))
            );
        }
    }

    #[test]
    fn the_process_env_reads_std_env() {
        for name in ["PATH", "HOME", "NAMEKO_RS_SURELY_UNSET_VARIABLE"] {
            let expected = std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
            assert_eq!(ProcessEnv.var(name), expected, "{name}");
        }
        for name in ["", "A=B", "A\0B"] {
            assert_eq!(ProcessEnv.var(name), None, "{name:?}");
        }
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
        assert_eq!(yaml_float(1e16), "1.0e+16");
        assert_eq!(yaml_float(2.5e-5), "2.5e-05");
        assert_eq!(yaml_float(1.0), "1.0");
    }

    #[test]
    fn errors_from_files_name_the_file() {
        let path = std::env::temp_dir().join(format!(
            "nameko-rs-load-{}-missing.yaml",
            std::process::id()
        ));
        let error = Config::from_yaml_file(&path, &NO_ENV).map(|_| ());
        assert!(
            matches!(&error, Err(ConfigLoadError::Read { path: p, error }) if *p == path && error.kind() == io::ErrorKind::NotFound),
            "{error:?}"
        );
        let message = error.map_err(|e| e.to_string());
        assert!(
            matches!(&message, Err(m) if m.starts_with("cannot read config file `") && m.contains("missing.yaml")),
            "{message:?}"
        );
    }
}
