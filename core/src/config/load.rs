//! Loading a [`Config`] from YAML the way nameko's `--config` does.
//!
//! The rules are documented on [`Config::from_yaml_str`]; the work is done in order by
//! [`super::compose`] (YAML to nodes), [`super::construct`] (nodes to values, with
//! PyYAML's [`super::resolve`] rules and nameko's [`super::substitute`]).
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

use std::path::Path;

use super::construct::load;
use super::{Config, ConfigLoadError, Env};

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
}

#[cfg(test)]
mod tests {
    use std::io;

    use crate::config::test_support::NO_ENV;
    use crate::config::{Config, ConfigLoadError};

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

    #[test]
    fn load_errors_keep_their_source() {
        use std::error::Error as _;

        let path =
            std::env::temp_dir().join(format!("nameko-rs-load-{}-source.yaml", std::process::id()));
        let error = Config::from_yaml_file(&path, &NO_ENV).map(|_| ());
        let source = error.as_ref().err().and_then(|e| e.source());
        assert!(
            source
                .and_then(|s| s.downcast_ref::<io::Error>())
                .is_some_and(|e| e.kind() == io::ErrorKind::NotFound),
            "{error:?}"
        );

        let error = Config::from_yaml_str("a: [1", &NO_ENV).map(|_| ());
        let source = error.as_ref().err().and_then(|e| e.source());
        assert!(
            source
                .and_then(|s| s.downcast_ref::<saphyr_parser::ScanError>())
                .is_some(),
            "{error:?}"
        );

        let error = Config::from_yaml_str("a: ${X}", &[("X", "[1, secret")]).map(|_| ());
        assert!(
            matches!(
                &error,
                Err(ConfigLoadError::SubstitutedSyntax {
                    source: Some(_),
                    ..
                })
            ),
            "{error:?}"
        );
    }
}
