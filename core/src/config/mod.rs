//! Service configuration: nameko's keys, with their exact spelling and defaults.
//!
//! A [`Config`] is a map of keys to JSON-like values, as nameko's config dict is. The
//! framework's own keys have typed accessors that apply nameko's defaults and report a
//! value of the wrong type as a [`ConfigError`] naming the key.
//!
//! [`Config::from_yaml_file`] loads a YAML file with nameko's environment substitution
//! (`${VAR}`, `${VAR:default}`, `!env_var`, `!raw_env_var`), and [`Config::apply_define`]
//! applies `-d KEY=VALUE` overrides.

use std::time::Duration;

use serde_json::{Map, Value};

mod compose;
mod construct;
mod define;
mod env;
mod error;
mod load;
mod redact;
mod resolve;
mod substitute;
#[cfg(test)]
mod test_support;
mod writer;

pub use define::parse_define;
pub use env::{Env, ProcessEnv};
use error::wrong;
pub use error::{ConfigError, ConfigLoadError, DefineError, Location};
pub use redact::redact_uri;

/// `AMQP_URI`: the broker to connect to.
pub const AMQP_URI: &str = "AMQP_URI";
/// `rpc_exchange` (lowercase, as in nameko): name of the RPC exchange.
pub const RPC_EXCHANGE: &str = "rpc_exchange";
/// `max_workers` (lowercase): size of a container's worker pool.
pub const MAX_WORKERS: &str = "max_workers";
/// `PREFETCH_COUNT`: prefetch window of each consumer.
pub const PREFETCH_COUNT: &str = "PREFETCH_COUNT";
/// `parent_calls_tracked` (lowercase): how many ancestors a call id stack keeps.
pub const PARENT_CALLS_TRACKED: &str = "parent_calls_tracked";
/// `HEARTBEAT`: AMQP heartbeat interval in seconds.
pub const HEARTBEAT: &str = "HEARTBEAT";
/// `serializer` (lowercase): the serializer for outgoing messages; only `json` exists.
pub const SERIALIZER: &str = "serializer";
/// `AUTO_DELETE_EVENT_EXCHANGES`: declare `<service>.events` with auto-delete.
pub const AUTO_DELETE_EVENT_EXCHANGES: &str = "AUTO_DELETE_EVENT_EXCHANGES";
/// `DECLARE_EVENT_EXCHANGES`: declare event exchanges at all (only a literal `false`
/// turns it off).
pub const DECLARE_EVENT_EXCHANGES: &str = "DECLARE_EVENT_EXCHANGES";
/// `RPC_TIMEOUT` (a nameko-rs extra): default timeout of every RPC call, in seconds.
pub const RPC_TIMEOUT: &str = "RPC_TIMEOUT";
/// `RPC_RETRY_POLICY` (a nameko-rs extra): retries of publishes that fail on the
/// transport.
pub const RPC_RETRY_POLICY: &str = "RPC_RETRY_POLICY";
/// `LOGGING`: log configuration (a level name, or a table with a `level` key).
pub const LOGGING: &str = "LOGGING";
/// `MAX_MESSAGE_SIZE` (a nameko-rs extra): largest message body accepted, in bytes.
pub const MAX_MESSAGE_SIZE: &str = "MAX_MESSAGE_SIZE";
/// `SHUTDOWN_TIMEOUT` (a nameko-rs extra): seconds a graceful stop waits for workers.
pub const SHUTDOWN_TIMEOUT: &str = "SHUTDOWN_TIMEOUT";
/// `REQUEUE_DELAY` (a nameko-rs extra): seconds an event or message handled with
/// `requeue_on_error` waits before it is requeued again after a redelivery failed too.
pub const REQUEUE_DELAY: &str = "REQUEUE_DELAY";

/// The broker nameko uses when none is configured.
pub const DEFAULT_AMQP_URI: &str = "amqp://guest:guest@localhost:5672/";

/// Retries of a publish that failed on the transport (`RPC_RETRY_POLICY`).
///
/// The delays follow kombu's `retry_policy`: the first retry waits `interval_start`, each
/// next one `interval_step` longer, never more than `interval_max`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub max_retries: u32,
    /// Wait before the first retry.
    pub interval_start: Duration,
    /// Added to the wait for each further retry.
    pub interval_step: Duration,
    /// Longest wait between two attempts.
    pub interval_max: Duration,
}

impl Default for RetryPolicy {
    /// nameko's publisher default: 3 retries, waits of 2 s, 3 s, 4 s (at most 5 s).
    fn default() -> Self {
        Self {
            max_retries: 3,
            interval_start: Duration::from_secs(2),
            interval_step: Duration::from_secs(1),
            interval_max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    #[must_use]
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// A policy with these numbers.
    #[must_use]
    pub fn new(
        max_retries: u32,
        interval_start: Duration,
        interval_step: Duration,
        interval_max: Duration,
    ) -> Self {
        Self {
            max_retries,
            interval_start,
            interval_step,
            interval_max,
        }
    }

    /// The wait before retry number `retry` (0 for the first retry).
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let delay = self.interval_start + self.interval_step * retry;
        delay.min(self.interval_max)
    }
}

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

    /// A string value; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong(key, "a string", other)),
        }
    }

    /// A boolean value; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a boolean.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong(key, "a boolean", other)),
        }
    }

    /// A non-negative integer value; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for anything else.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
            Some(other) => Err(wrong(key, "a non-negative integer", other)),
        }
    }

    /// A duration given in (possibly fractional) seconds; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a non-negative number.
    pub fn get_seconds(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Number(n)) => n
                .as_f64()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .map(Some)
                .ok_or_else(|| wrong(key, "a non-negative number of seconds", v)),
            Some(other) => Err(wrong(key, "a non-negative number of seconds", other)),
        }
    }

    /// `AMQP_URI`, if set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a string.
    pub fn amqp_uri(&self) -> Result<Option<&str>, ConfigError> {
        self.get_str(AMQP_URI)
    }

    /// `rpc_exchange`, default `nameko-rpc`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a string.
    pub fn rpc_exchange(&self) -> Result<&str, ConfigError> {
        Ok(self.get_str(RPC_EXCHANGE)?.unwrap_or("nameko-rpc"))
    }

    /// `max_workers`, default 10 (nameko also treats 0 as unset).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a positive integer.
    pub fn max_workers(&self) -> Result<usize, ConfigError> {
        self.positive(MAX_WORKERS, 10)
    }

    /// `PREFETCH_COUNT`, default 10.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not an integer from 1 to 65535.
    pub fn prefetch_count(&self) -> Result<u16, ConfigError> {
        match self.get_u64(PREFETCH_COUNT) {
            Ok(None) => Ok(10),
            Ok(Some(n)) if n >= 1 => u16::try_from(n).map_err(|_| {
                wrong(
                    PREFETCH_COUNT,
                    "an integer from 1 to 65535",
                    &Value::from(n),
                )
            }),
            _ => Err(wrong(
                PREFETCH_COUNT,
                "an integer from 1 to 65535",
                self.values.get(PREFETCH_COUNT).unwrap_or(&Value::Null),
            )),
        }
    }

    /// `parent_calls_tracked`, default 10: a call id stack keeps this many ancestors plus
    /// the call's own id.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a non-negative integer.
    pub fn parent_calls_tracked(&self) -> Result<usize, ConfigError> {
        let n = self.get_u64(PARENT_CALLS_TRACKED)?.unwrap_or(10);
        usize::try_from(n)
            .map_err(|_| wrong(PARENT_CALLS_TRACKED, "a small integer", &Value::from(n)))
    }

    /// `HEARTBEAT` in seconds, default 60.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not an integer from 0 to 65535.
    pub fn heartbeat(&self) -> Result<u16, ConfigError> {
        let n = self.get_u64(HEARTBEAT)?.unwrap_or(60);
        u16::try_from(n)
            .map_err(|_| wrong(HEARTBEAT, "an integer from 0 to 65535", &Value::from(n)))
    }

    /// `serializer`, default `json`, the only serializer nameko-rs speaks.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for any other serializer, with nameko's wording.
    pub fn serializer(&self) -> Result<&str, ConfigError> {
        let name = self.get_str(SERIALIZER)?.unwrap_or("json");
        if name == "json" {
            Ok(name)
        } else {
            Err(ConfigError::Invalid {
                key: SERIALIZER.to_owned(),
                reason: format!(
                    "Please register a serializer for \"{name}\" format (nameko-rs speaks json only)"
                ),
            })
        }
    }

    /// `AUTO_DELETE_EVENT_EXCHANGES`, default false.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a boolean.
    pub fn auto_delete_event_exchanges(&self) -> Result<bool, ConfigError> {
        Ok(self.get_bool(AUTO_DELETE_EVENT_EXCHANGES)?.unwrap_or(false))
    }

    /// `DECLARE_EVENT_EXCHANGES`: true unless the value is literally `false`, as in
    /// nameko.
    #[must_use]
    pub fn declare_event_exchanges(&self) -> bool {
        !matches!(
            self.values.get(DECLARE_EVENT_EXCHANGES),
            Some(Value::Bool(false))
        )
    }

    /// `RPC_TIMEOUT` in seconds, default 30: how long every RPC call waits for its
    /// reply unless a proxy or a call says otherwise.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a positive number.
    pub fn rpc_timeout(&self) -> Result<Duration, ConfigError> {
        match self.get_seconds(RPC_TIMEOUT)? {
            None => Ok(Duration::from_secs(30)),
            Some(d) if d.is_zero() => Err(ConfigError::Invalid {
                key: RPC_TIMEOUT.to_owned(),
                reason: "must be a positive number of seconds".to_owned(),
            }),
            Some(d) => Ok(d),
        }
    }

    /// `SHUTDOWN_TIMEOUT` in seconds, default 30: how long a graceful stop waits for
    /// running workers before killing them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a non-negative number.
    pub fn shutdown_timeout(&self) -> Result<Duration, ConfigError> {
        Ok(self
            .get_seconds(SHUTDOWN_TIMEOUT)?
            .unwrap_or(Duration::from_secs(30)))
    }

    /// `REQUEUE_DELAY` in seconds, default 1: how long a message that failed again after
    /// a redelivery waits before it is requeued (0 requeues at once, as nameko does).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a non-negative number.
    pub fn requeue_delay(&self) -> Result<Duration, ConfigError> {
        Ok(self
            .get_seconds(REQUEUE_DELAY)?
            .unwrap_or(Duration::from_secs(1)))
    }

    /// `MAX_MESSAGE_SIZE` in bytes, default 128 MiB (RabbitMQ's own limit).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a positive integer.
    pub fn max_message_size(&self) -> Result<usize, ConfigError> {
        self.positive(MAX_MESSAGE_SIZE, 128 * 1024 * 1024)
    }

    /// `RPC_RETRY_POLICY`: a mapping with any of `max_retries`, `interval_start`,
    /// `interval_step` and `interval_max` (seconds); missing keys take nameko's defaults.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a mapping, or a key of the
    /// wrong type.
    pub fn rpc_retry_policy(&self) -> Result<RetryPolicy, ConfigError> {
        let mut policy = RetryPolicy::default();
        let table = match self.values.get(RPC_RETRY_POLICY) {
            None | Some(Value::Null) => return Ok(policy),
            Some(Value::Object(map)) => map,
            Some(other) => return Err(wrong(RPC_RETRY_POLICY, "a mapping", other)),
        };
        let sub = Config {
            values: table.clone(),
        };
        let name = |k: &str| format!("{RPC_RETRY_POLICY}.{k}");
        let rename = |e: ConfigError, k: &str| match e {
            ConfigError::WrongType {
                expected, found, ..
            } => ConfigError::WrongType {
                key: name(k),
                expected,
                found,
            },
            other => other,
        };
        if let Some(n) = sub
            .get_u64("max_retries")
            .map_err(|e| rename(e, "max_retries"))?
        {
            policy.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
        }
        for (key, slot) in [
            ("interval_start", &mut policy.interval_start),
            ("interval_step", &mut policy.interval_step),
            ("interval_max", &mut policy.interval_max),
        ] {
            if let Some(d) = sub.get_seconds(key).map_err(|e| rename(e, key))? {
                *slot = d;
            }
        }
        Ok(policy)
    }

    fn positive(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        match self.values.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(default),
            Some(v @ Value::Number(n)) => n
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| wrong(key, "a positive integer", v)),
            Some(other) => Err(wrong(key, "a positive integer", other)),
        }
    }
}

impl From<Map<String, Value>> for Config {
    fn from(values: Map<String, Value>) -> Self {
        Self { values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_namekos() {
        let c = Config::new();
        assert_eq!(c.max_workers().unwrap(), 10);
        assert_eq!(c.prefetch_count().unwrap(), 10);
        assert_eq!(c.parent_calls_tracked().unwrap(), 10);
        assert_eq!(c.heartbeat().unwrap(), 60);
        assert_eq!(c.rpc_exchange().unwrap(), "nameko-rpc");
        assert_eq!(c.serializer().unwrap(), "json");
        assert!(c.declare_event_exchanges());
        assert!(!c.auto_delete_event_exchanges().unwrap());
        assert_eq!(c.rpc_timeout().unwrap(), Duration::from_secs(30));
        assert_eq!(c.rpc_retry_policy().unwrap(), RetryPolicy::default());
    }

    #[test]
    fn only_literal_false_disables_event_exchange_declaration() {
        for v in [json!(0), json!("false"), json!(null)] {
            assert!(
                Config::new()
                    .with(DECLARE_EVENT_EXCHANGES, v)
                    .declare_event_exchanges()
            );
        }
        assert!(
            !Config::new()
                .with(DECLARE_EVENT_EXCHANGES, false)
                .declare_event_exchanges()
        );
    }

    #[test]
    fn wrong_types_name_the_key() {
        let c = Config::new()
            .with(PREFETCH_COUNT, 70_000)
            .with(RPC_TIMEOUT, "soon")
            .with(RPC_RETRY_POLICY, json!({"max_retries": "x"}));
        assert!(
            c.prefetch_count()
                .unwrap_err()
                .to_string()
                .contains("PREFETCH_COUNT")
        );
        assert!(
            c.rpc_timeout()
                .unwrap_err()
                .to_string()
                .contains("RPC_TIMEOUT")
        );
        assert!(
            c.rpc_retry_policy()
                .unwrap_err()
                .to_string()
                .contains("RPC_RETRY_POLICY.max_retries")
        );
    }

    #[test]
    fn retry_policy_delays_grow_and_cap() {
        let p = Config::new()
            .with(RPC_RETRY_POLICY, json!({"max_retries": 5, "interval_start": 0.5, "interval_step": 1, "interval_max": 2}))
            .rpc_retry_policy()
            .unwrap();
        assert_eq!(p.max_retries, 5);
        let delays: Vec<_> = (0..4).map(|i| p.delay(i).as_millis()).collect();
        assert_eq!(delays, [500, 1500, 2000, 2000]);
    }

    #[test]
    fn other_serializers_are_refused() {
        let err = Config::new()
            .with(SERIALIZER, "pickle")
            .serializer()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("Please register a serializer for \"pickle\" format")
        );
    }

    #[test]
    fn wrong_values_are_shown_without_passwords() {
        let c = Config::new().with(MAX_WORKERS, "amqp://u:s3cret@host/");
        let message = c.max_workers().unwrap_err().to_string();
        assert!(message.contains("amqp://u:***@host/"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
    }
}
