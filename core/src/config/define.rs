//! `-d KEY=VALUE` defines, as `nameko run --define` applies them over a config file.

use serde_json::Value;

use super::construct::value_without_substitution;
use super::{Config, ConfigLoadError, DefineError, redact_uri};

impl Config {
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
    let invalid = |problem: DefineError| ConfigLoadError::InvalidDefine {
        define: redact_uri(define),
        problem,
    };
    let (key, value) = match define.split_once('=') {
        Some((key, text)) => {
            let key = key.trim();
            if key.is_empty() {
                return Err(invalid(DefineError::EmptyKey));
            }
            let value = value_without_substitution(text, key)
                .map_err(|error| invalid(DefineError::Value(Box::new(error))))?;
            (key, value)
        }
        None => {
            let key = define.trim();
            if key.is_empty() {
                return Err(invalid(DefineError::Empty));
            }
            (key, Value::Bool(true))
        }
    };
    Ok((key.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::NO_ENV;
    use serde_json::json;

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
    fn define_errors_keep_their_source() {
        use std::error::Error as _;

        let error = parse_define("X=[1,").map(|_| ());
        let Err(ConfigLoadError::InvalidDefine { problem, .. }) = &error else {
            panic!("{error:?}");
        };
        assert!(
            matches!(problem, DefineError::Value(inner) if matches!(**inner, ConfigLoadError::Syntax { .. })),
            "{problem:?}"
        );
        let Err(error) = error else { unreachable!() };
        let scan = error
            .source()
            .and_then(|problem| problem.source())
            .and_then(|source| source.downcast_ref::<saphyr_parser::ScanError>());
        assert!(scan.is_some(), "{error:?}");
        assert!(matches!(
            parse_define("=1"),
            Err(ConfigLoadError::InvalidDefine {
                problem: DefineError::EmptyKey,
                ..
            })
        ));
        assert!(matches!(
            parse_define(" "),
            Err(ConfigLoadError::InvalidDefine {
                problem: DefineError::Empty,
                ..
            })
        ));
    }
}
