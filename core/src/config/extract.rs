//! Reading a config into a type of your own: [`Config::extract`], and [`seconds`] for
//! durations written as nameko writes them.

use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::{Config, ConfigError, redact_uri};

impl Config {
    /// The config read into `T`, any `#[derive(Deserialize)]` type: how an extension or a
    /// service reads its own keys (unknown keys are ignored unless `T` says otherwise).
    /// Keys take their exact spelling with `#[serde(rename = "...")]`; [`seconds`] reads a
    /// duration in seconds; [`Settings`](super::Settings) can be flattened into `T` to read
    /// nameko's keys at the same time.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use nameko_core::config::{Config, seconds};
    /// use serde::Deserialize;
    /// use serde_json::json;
    ///
    /// #[derive(Deserialize)]
    /// struct WebSettings {
    ///     #[serde(rename = "WEB_SERVER_ADDRESS", default = "default_address")]
    ///     address: String,
    ///     #[serde(rename = "WEB_REQUEST_TIMEOUT", with = "seconds::option", default)]
    ///     request_timeout: Option<Duration>,
    ///     #[serde(rename = "DB_URIS", default)]
    ///     db_uris: HashMap<String, String>,
    /// }
    ///
    /// fn default_address() -> String {
    ///     "0.0.0.0:8000".to_owned()
    /// }
    ///
    /// let config = Config::from_value(json!({
    ///     "WEB_REQUEST_TIMEOUT": 2.5,
    ///     "DB_URIS": {"orders:Base": "postgresql://app:s3cret@db/orders"},
    /// }))?;
    /// let web: WebSettings = config.extract()?;
    /// assert_eq!(web.address, "0.0.0.0:8000");
    /// assert_eq!(web.request_timeout, Some(Duration::from_millis(2500)));
    /// assert_eq!(web.db_uris.len(), 1);
    ///
    /// // Errors name the key, and never show a password.
    /// let bad = Config::from_value(json!({"DB_URIS": {"orders:Base": ["postgresql://app:s3cret@db"]}}))?;
    /// let error = bad.extract::<WebSettings>().map(|_| ()).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "config key `DB_URIS.orders:Base`: invalid type: sequence, expected a string",
    /// );
    /// # Ok::<(), nameko_core::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Deserialize`] naming the key (its path from the top of the config,
    /// `<root>` for a missing key, which serde's message names) with serde's error.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(&self.values).map_err(|error| {
            let path = error.path().to_string();
            ConfigError::Deserialize {
                key: if path == "." {
                    "<root>".to_owned()
                } else {
                    path
                },
                source: DeserializeError(Arc::new(error.into_inner())),
            }
        })
    }
}

/// serde's error about a config value ([`ConfigError::Deserialize`]).
///
/// It displays as serde's message with the passwords of URIs replaced by `***`, since
/// serde quotes the values it refuses; [`DeserializeError::get_ref`] gives serde's error
/// itself.
#[derive(Clone)]
pub struct DeserializeError(Arc<serde_json::Error>);

impl DeserializeError {
    /// serde's error. Its message may quote the value it refused, password included.
    #[must_use]
    pub fn get_ref(&self) -> &serde_json::Error {
        &self.0
    }
}

impl fmt::Display for DeserializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_uri(&self.0.to_string()))
    }
}

impl fmt::Debug for DeserializeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeserializeError")
            .field(&self.to_string())
            .finish()
    }
}

impl std::error::Error for DeserializeError {}

/// Two errors are equal when serde says the same thing.
impl PartialEq for DeserializeError {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for DeserializeError {}

/// Durations in seconds, as nameko's keys write them: an integer or a float, not negative.
/// For `#[serde(with = "nameko_core::config::seconds")]` on a `Duration` field, and
/// `seconds::option` on an `Option<Duration>` (null is `None`).
///
/// ```
/// use std::time::Duration;
/// use nameko_core::config::{Config, seconds};
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// struct Poll {
///     #[serde(rename = "POLL_INTERVAL", with = "seconds")]
///     interval: Duration,
/// }
///
/// let poll: Poll = Config::new().with("POLL_INTERVAL", 0.25).extract()?;
/// assert_eq!(poll.interval, Duration::from_millis(250));
/// let error = Config::new().with("POLL_INTERVAL", -1).extract::<Poll>().map(|_| ());
/// assert_eq!(
///     error.unwrap_err().to_string(),
///     "config key `POLL_INTERVAL`: invalid value: integer `-1`, expected a non-negative number of seconds",
/// );
/// # Ok::<(), nameko_core::config::ConfigError>(())
/// ```
pub mod seconds {
    use std::time::Duration;

    use serde::de::{Error, Unexpected};
    use serde::{Deserialize, Deserializer};
    use serde_json::{Number, Value};

    const EXPECTED: &str = "a non-negative number of seconds";

    /// A duration from a number of seconds.
    ///
    /// # Errors
    ///
    /// serde's `invalid_type` for a value that is not a number, `invalid_value` for a
    /// negative or too large one.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Number(number) => from_number(&number),
            other => Err(D::Error::invalid_type(unexpected(&other), &EXPECTED)),
        }
    }

    fn from_number<E: Error>(number: &Number) -> Result<Duration, E> {
        let unexpected = match (number.as_u64(), number.as_i64()) {
            (Some(n), _) => Unexpected::Unsigned(n),
            (None, Some(n)) => Unexpected::Signed(n),
            _ => Unexpected::Float(number.as_f64().unwrap_or(f64::NAN)),
        };
        number
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| E::invalid_value(unexpected, &EXPECTED))
    }

    fn unexpected(value: &Value) -> Unexpected<'_> {
        match value {
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::String(s) => Unexpected::Str(s),
            Value::Array(_) => Unexpected::Seq,
            Value::Object(_) => Unexpected::Map,
            Value::Number(_) => Unexpected::Other("a number"),
        }
    }

    /// `Option<Duration>` from a number of seconds or null.
    pub mod option {
        use std::time::Duration;

        use serde::de::Error;
        use serde::{Deserialize, Deserializer};

        use super::{EXPECTED, Value, from_number, unexpected};

        /// A duration from a number of seconds; `None` for null.
        ///
        /// # Errors
        ///
        /// As [`seconds::deserialize`](super::deserialize).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            match Value::deserialize(deserializer)? {
                Value::Null => Ok(None),
                Value::Number(number) => from_number(&number).map(Some),
                other => Err(D::Error::invalid_type(unexpected(&other), &EXPECTED)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::error::Error as _;
    use std::time::Duration;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Db {
        #[serde(rename = "DB_URIS")]
        uris: HashMap<String, String>,
        #[serde(rename = "DB_POOL_SIZE", default)]
        pool_size: u16,
        #[serde(rename = "DB_HOSTS", default)]
        hosts: Vec<String>,
    }

    fn extract_err<T: DeserializeOwned + fmt::Debug>(value: serde_json::Value) -> ConfigError {
        let config = Config::from_value(value).unwrap_or_else(|e| panic!("{e}"));
        match config.extract::<T>() {
            Ok(found) => panic!("extracted {found:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn errors_name_the_key_and_keep_serde_s_error() {
        let error = extract_err::<Db>(json!({"DB_URIS": {"a": "x"}, "DB_POOL_SIZE": 70_000}));
        assert!(
            matches!(&error, ConfigError::Deserialize { key, .. } if key == "DB_POOL_SIZE"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "config key `DB_POOL_SIZE`: invalid value: integer `70000`, expected u16"
        );
        let source = error
            .source()
            .and_then(|s| s.downcast_ref::<DeserializeError>());
        assert!(source.is_some_and(|s| s.get_ref().is_data()), "{error:?}");

        let error = extract_err::<Db>(json!({"DB_URIS": {"a": "x"}, "DB_HOSTS": ["h", 5]}));
        assert!(
            matches!(&error, ConfigError::Deserialize { key, .. } if key == "DB_HOSTS[1]"),
            "{error:?}"
        );

        let error = extract_err::<Db>(json!({}));
        assert_eq!(
            error.to_string(),
            "config key `<root>`: missing field `DB_URIS`"
        );
    }

    #[test]
    fn errors_never_show_a_password() {
        let error = extract_err::<Db>(json!({
            "DB_URIS": {"a": "x"},
            "DB_POOL_SIZE": "postgresql://app:s3cret@db/app",
        }));
        let shown = [
            error.to_string(),
            format!("{error:?}"),
            error.source().map(ToString::to_string).unwrap_or_default(),
        ];
        for text in shown {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("postgresql://app:***@db/app"), "{text}");
        }
    }

    #[test]
    fn errors_compare_and_clone() {
        let error = extract_err::<Db>(json!({}));
        assert_eq!(error.clone(), error);
        assert_ne!(error, extract_err::<Db>(json!({"DB_URIS": 5})));
    }

    #[test]
    fn seconds_accept_integers_and_floats() {
        #[derive(Debug, Deserialize)]
        struct Timeouts {
            #[serde(rename = "A", with = "seconds")]
            a: Duration,
            #[serde(rename = "B", with = "seconds::option", default)]
            b: Option<Duration>,
        }
        let read = |value: serde_json::Value| {
            Config::from_value(value)
                .and_then(|config| config.extract::<Timeouts>())
                .map(|t| (t.a, t.b))
        };
        assert_eq!(
            read(json!({"A": 2, "B": 0.5})),
            Ok((Duration::from_secs(2), Some(Duration::from_millis(500))))
        );
        assert_eq!(
            read(json!({"A": 0.25, "B": null})),
            Ok((Duration::from_millis(250), None))
        );
        assert_eq!(read(json!({"A": 1})), Ok((Duration::from_secs(1), None)));
        for (value, key) in [
            (json!({"A": "soon"}), "A"),
            (json!({"A": -0.5}), "A"),
            (json!({"A": 1, "B": "soon"}), "B"),
            (json!({"A": 1, "B": -1}), "B"),
            (json!({"A": 1e300}), "A"),
        ] {
            let error = read(value.clone()).map(|_| ());
            assert!(
                matches!(&error, Err(ConfigError::Deserialize { key: k, .. }) if k == key),
                "{value}: {error:?}"
            );
            let message = error.map_err(|e| e.to_string()).unwrap_err();
            assert!(
                message.ends_with("expected a non-negative number of seconds"),
                "{message}"
            );
        }
    }
}
