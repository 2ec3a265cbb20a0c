//! Service configuration: nameko's keys, with their exact spelling and defaults.
//!
//! A [`Config`] is a map of keys to JSON-like values, as nameko's config dict is.
//! [`Config::settings`] parses the framework's own keys once into typed [`Settings`] with
//! nameko's defaults, reporting a value of the wrong type as a [`ConfigError`] naming the
//! key; [`Config::extract`] reads any other keys into a `#[derive(Deserialize)]` type of
//! your own.
//!
//! [`Config::from_yaml_file`] loads a YAML file with nameko's environment substitution
//! (`${VAR}`, `${VAR:default}`, `!env_var`, `!raw_env_var`), and [`Config::apply_define`]
//! applies `-d KEY=VALUE` overrides.
//!
//! ```
//! use nameko_core::config::Config;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Web {
//!     #[serde(rename = "WEB_SERVER_ADDRESS")]
//!     address: String,
//! }
//!
//! let config = Config::from_yaml_str(
//!     "max_workers: ${MAX_WORKERS:10}\nWEB_SERVER_ADDRESS: 0.0.0.0:8000\n",
//!     &[("MAX_WORKERS", "4")],
//! )?;
//! assert_eq!(config.settings()?.max_workers, 4);
//! assert_eq!(config.extract::<Web>()?.address, "0.0.0.0:8000");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde_json::{Map, Value};

mod accessors;
mod compose;
mod construct;
mod define;
mod env;
mod error;
mod extract;
mod keys;
mod load;
mod queue_type;
mod resolve;
mod rules;
mod settings;
mod substitute;
#[cfg(test)]
mod test_support;
mod writer;

pub use define::parse_define;
pub use env::{Env, ProcessEnv};
use error::wrong;
pub use error::{ConfigError, ConfigLoadError, DefineError, Location};
pub use extract::{DeserializeError, seconds};
pub use keys::*;
/// Hiding credentials in text (nameko-transport's, which every backend shares).
pub use nameko_transport::redact;
pub use nameko_transport::redact::redact_uri;
pub use queue_type::{
    QueueChoice, QueueKind, QueueType, QueueTypeError, QueueTypes, queue_options_for,
};
pub use settings::{AmqpStartup, RetryPolicy, Settings, TlsSettings};

/// A service configuration: nameko's config dict.
///
/// ```
/// use nameko_core::config::Config;
/// use serde_json::json;
///
/// let config = Config::from_value(json!({"max_workers": 4, "RPC_TIMEOUT": 2.5})).unwrap();
/// assert_eq!(config.max_workers().unwrap(), 4);
/// assert_eq!(config.rpc_exchange().unwrap(), "nameko-rpc");
/// assert_eq!(config.rpc_timeout().unwrap(), std::time::Duration::from_millis(2500));
///
/// let bad = Config::from_value(json!({"max_workers": "many"})).unwrap();
/// assert_eq!(
///     bad.max_workers().unwrap_err().to_string(),
///     "config key `max_workers` must be a positive integer, found \"many\"",
/// );
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Config {
    values: Map<String, Value>,
}

impl std::fmt::Debug for Config {
    /// The values with the password of every URI replaced by `***`, as
    /// [`Config::redacted`] shows them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("values", &self.redacted().values)
            .finish()
    }
}

impl Config {
    /// An empty configuration: every key takes its default.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A configuration from a JSON object.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if `value` is not an object (`null` gives an empty
    /// configuration, as an empty YAML file does).
    pub fn from_value(value: Value) -> Result<Self, ConfigError> {
        match value {
            Value::Object(values) => Ok(Self { values }),
            Value::Null => Ok(Self::new()),
            other => Err(wrong("<root>", "a mapping", &other)),
        }
    }

    /// The configuration as a JSON object.
    #[must_use]
    pub fn to_value(&self) -> Value {
        Value::Object(self.values.clone())
    }

    /// The raw value of a key.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Sets a key, returning the config for chaining.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets a key.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        self.values.insert(key.into(), value.into());
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// The keys and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Copies every key of `other` over this configuration.
    pub fn merge(&mut self, other: Config) {
        self.values.extend(other.values);
    }
}

impl Config {
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

impl From<Map<String, Value>> for Config {
    fn from(values: Map<String, Value>) -> Self {
        Self { values }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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

    /// Percent-encodes every byte that is not unreserved, with upper- or lower-case hex.
    fn encode(text: &str, upper: bool) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    char::from(b).to_string()
                } else if upper {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                }
            })
            .collect()
    }

    /// Every way a config shows a text that may hold `uri`.
    fn shown(uri: &str, password: &str) -> Vec<String> {
        let sentence = format!("cannot connect to {uri}: refused");
        let config = Config::new()
            .with("AMQP_URI", uri)
            .with("DB_URIS", json!({"svc:Base": [sentence.clone()]}));
        let settings = config
            .settings()
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|e| e.to_string());
        let wrong = Config::new()
            .with(MAX_WORKERS, sentence.as_str())
            .max_workers()
            .map(|n| n.to_string())
            .unwrap_or_else(|e| e.to_string());
        let define = parse_define(&format!("AMQP_URI=[{uri}"))
            .map(|(k, v)| format!("{k}{v}"))
            .unwrap_or_else(|e| e.to_string());
        vec![
            redact_uri(&sentence),
            redact::redact_secret(&sentence, password),
            redact::redact_secret(&format!("{sentence} ({password})"), password),
            redact::redact_line(&sentence),
            config.redacted().to_yaml_string(),
            format!("{config:?}"),
            settings,
            wrong,
            define,
        ]
    }

    proptest! {
        #[test]
        fn a_uri_password_never_survives_any_entry_point(
            scheme in "(amqp|amqps|pyamqp|redis|postgresql\\+psycopg)",
            user in "[a-z]{1,8}",
            // No `/` nor white space: `;` or `,` then `scheme://` could start a second URI.
            password in "S3cr[a-zA-Z0-9@?#%!:;,._~\\-]{1,12}",
            encoded in any::<Option<bool>>(),
            hosts in prop::collection::vec("[a-z]{1,8}(:[0-9]{1,5})?", 1..4),
            vhost in "(/[a-z]{0,6})?",
        ) {
            let written = match encoded {
                None => password.clone(),
                Some(upper) => encode(&password, upper),
            };
            let uri = format!("{scheme}://{user}:{written}@{}{vhost}", hosts.join(","));
            for text in shown(&uri, &password) {
                prop_assert!(!text.contains(&password), "{uri}: {text}");
                prop_assert!(!text.contains(&written), "{uri}: {text}");
                prop_assert!(!text.contains("S3cr"), "{uri}: {text}");
            }
        }
    }
}
