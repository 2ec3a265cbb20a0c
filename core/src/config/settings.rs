//! Typed settings: nameko's keys parsed once into [`Settings`], with nameko's defaults.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use tracing::level_filters::LevelFilter;

use super::keys::{
    AMQP_SSL, AMQP_STARTUP, AMQP_STARTUP_TIMEOUT, AMQP_URI, AUTO_DELETE_EVENT_EXCHANGES,
    DECLARE_EVENT_EXCHANGES, HEARTBEAT, LOGGING, LOGIN_METHOD, MAX_MESSAGE_SIZE, MAX_WORKERS,
    PARENT_CALLS_TRACKED, PREFETCH_COUNT, QUEUE_TYPE, REQUEUE_DELAY, RPC_EXCHANGE,
    RPC_RETRY_POLICY, RPC_TIMEOUT, SERIALIZER, SHUTDOWN_TIMEOUT,
};
use super::queue_type::{self, QueueTypes};
use super::{Config, ConfigError, redact_uri, rules};

/// The framework's settings, read from a [`Config`] with nameko's key spellings and
/// defaults: what a container, its drivers and the transport need, parsed once.
///
/// [`Config::settings`] reads them with the same rules, defaults and error messages as
/// the typed accessors ([`Config::max_workers`] and the others). `Settings` is also
/// `Deserialize`, with the same rules, so it can be part of a type of your own read with
/// [`Config::extract`] (`#[serde(flatten)]`). Keys that are not nameko's are ignored.
///
/// ```
/// use std::time::Duration;
/// use nameko_core::config::{Config, Settings};
/// use serde_json::json;
///
/// let config = Config::from_value(json!({
///     "AMQP_URI": "amqp://guest:guest@rabbit/",
///     "max_workers": 4,
///     "RPC_TIMEOUT": 2.5,
///     "RPC_RETRY_POLICY": {"max_retries": 5},
///     "WEB_SERVER_ADDRESS": "0.0.0.0:8000",
/// }))?;
/// let settings = config.settings()?;
/// assert_eq!(settings.amqp_uri.as_deref(), Some("amqp://guest:guest@rabbit/"));
/// assert_eq!(settings.max_workers, 4);
/// assert_eq!(settings.rpc_timeout, Duration::from_millis(2500));
/// assert_eq!(settings.rpc_retry_policy.max_retries, 5);
/// assert_eq!(settings.prefetch_count, 10);
/// assert_eq!(settings.rpc_exchange, "nameko-rpc");
///
/// // The same messages as the accessors.
/// let bad = Config::from_value(json!({"max_workers": "many"}))?;
/// assert_eq!(
///     bad.settings().unwrap_err().to_string(),
///     "config key `max_workers` must be a positive integer, found \"many\"",
/// );
/// # Ok::<(), nameko_core::config::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Settings {
    /// `AMQP_URI`: the broker, if set. Callers choose the default
    /// ([`DEFAULT_AMQP_URI`](super::DEFAULT_AMQP_URI), or an in-process broker).
    #[serde(rename = "AMQP_URI", deserialize_with = "de_amqp_uri")]
    pub amqp_uri: Option<String>,
    /// `max_workers`: size of a container's worker pool; default 10 (0 also means 10,
    /// as in nameko).
    #[serde(rename = "max_workers", deserialize_with = "de_max_workers")]
    pub max_workers: usize,
    /// `PREFETCH_COUNT`: prefetch window of each consumer, 1 to 65535; default 10.
    #[serde(rename = "PREFETCH_COUNT", deserialize_with = "de_prefetch_count")]
    pub prefetch_count: u16,
    /// `rpc_exchange`: name of the RPC exchange; default `nameko-rpc`.
    #[serde(rename = "rpc_exchange", deserialize_with = "de_rpc_exchange")]
    pub rpc_exchange: String,
    /// `parent_calls_tracked`: how many ancestors a call id stack keeps besides the
    /// call's own id; default 10.
    #[serde(
        rename = "parent_calls_tracked",
        deserialize_with = "de_parent_calls_tracked"
    )]
    pub parent_calls_tracked: usize,
    /// `HEARTBEAT`: AMQP heartbeat in seconds, 0 to 65535, if set. Unset, the URI's
    /// `?heartbeat=` applies, or else 60 s.
    #[serde(rename = "HEARTBEAT", deserialize_with = "de_heartbeat")]
    pub heartbeat: Option<u16>,
    /// `serializer`: `json`, the default and the only serializer nameko-rs speaks (any
    /// other is refused with nameko's message).
    #[serde(rename = "serializer", deserialize_with = "de_serializer")]
    pub serializer: String,
    /// `AUTO_DELETE_EVENT_EXCHANGES`: declare `<service>.events` with auto-delete;
    /// default false.
    #[serde(
        rename = "AUTO_DELETE_EVENT_EXCHANGES",
        deserialize_with = "de_auto_delete_event_exchanges"
    )]
    pub auto_delete_event_exchanges: bool,
    /// `DECLARE_EVENT_EXCHANGES`: declare event exchanges at all; true unless the value is
    /// literally `false`, as in nameko.
    #[serde(
        rename = "DECLARE_EVENT_EXCHANGES",
        deserialize_with = "de_declare_event_exchanges"
    )]
    pub declare_event_exchanges: bool,
    /// `RPC_TIMEOUT` (a nameko-rs extra): default timeout of every RPC call, in seconds
    /// (an integer or a float), positive; default 30 s.
    #[serde(rename = "RPC_TIMEOUT", deserialize_with = "de_rpc_timeout")]
    pub rpc_timeout: Duration,
    /// `SHUTDOWN_TIMEOUT` (a nameko-rs extra): how long a graceful stop waits for running
    /// workers, in seconds; default 30 s.
    #[serde(rename = "SHUTDOWN_TIMEOUT", deserialize_with = "de_shutdown_timeout")]
    pub shutdown_timeout: Duration,
    /// `REQUEUE_DELAY` (a nameko-rs extra): how long a message that failed again after a
    /// redelivery waits before it is requeued, in seconds; default 1 s (0 requeues at once,
    /// as nameko does).
    #[serde(rename = "REQUEUE_DELAY", deserialize_with = "de_requeue_delay")]
    pub requeue_delay: Duration,
    /// `MAX_MESSAGE_SIZE` (a nameko-rs extra): largest message body accepted, in bytes;
    /// default 128 MiB, RabbitMQ's own limit (0 also means the default).
    #[serde(rename = "MAX_MESSAGE_SIZE", deserialize_with = "de_max_message_size")]
    pub max_message_size: usize,
    /// `RPC_RETRY_POLICY` (a nameko-rs extra): retries of publishes that fail on the
    /// transport; missing keys take nameko's defaults.
    #[serde(rename = "RPC_RETRY_POLICY", deserialize_with = "de_rpc_retry_policy")]
    pub rpc_retry_policy: RetryPolicy,
    /// `AMQP_STARTUP` (a nameko-rs extra): `fail_fast` (default) or `wait` for the broker
    /// at start-up.
    #[serde(rename = "AMQP_STARTUP", deserialize_with = "de_amqp_startup")]
    pub amqp_startup: AmqpStartup,
    /// `AMQP_STARTUP_TIMEOUT` (a nameko-rs extra): with `AMQP_STARTUP: wait`, the longest
    /// wait for the broker, in seconds; default 60 s.
    #[serde(
        rename = "AMQP_STARTUP_TIMEOUT",
        deserialize_with = "de_amqp_startup_timeout"
    )]
    pub amqp_startup_timeout: Duration,
    /// `AMQP_SSL`: TLS for RabbitMQ, `None` for none (unset, null, `false` or an empty
    /// mapping); `true` is TLS with the system's certificate authorities.
    #[serde(rename = "AMQP_SSL", deserialize_with = "de_amqp_ssl")]
    pub amqp_ssl: Option<TlsSettings>,
    /// `LOGIN_METHOD`: the SASL mechanism, if set; only `PLAIN` and `AMQPLAIN` (the
    /// default) are accepted.
    #[serde(rename = "LOGIN_METHOD", deserialize_with = "de_login_method")]
    pub login_method: Option<String>,
    /// `LOGGING`'s level, if it sets one: a level name (Python's `CRITICAL`, `ERROR`,
    /// `WARNING`, `INFO`, `DEBUG`, `NOTSET`, any case, `TRACE` and `OFF` too) or number
    /// (10 to 50), a mapping with a `level` key, or a `logging.config.dictConfig` mapping
    /// (its `root.level`, or else the `level` of the first logger that has one).
    #[serde(rename = "LOGGING", deserialize_with = "de_logging")]
    pub logging: Option<LevelFilter>,
    /// `QUEUE_TYPE`: classic (the default) or quorum RPC, event handler and consume
    /// queues, for every service, by service or by entrypoint ([`QueueTypes`]).
    #[serde(rename = "QUEUE_TYPE", deserialize_with = "de_queue_type")]
    pub queue_type: QueueTypes,
}

impl Default for Settings {
    /// nameko's defaults, what an empty config gives.
    fn default() -> Self {
        Self {
            amqp_uri: None,
            max_workers: rules::DEFAULT_MAX_WORKERS,
            prefetch_count: rules::DEFAULT_PREFETCH_COUNT,
            rpc_exchange: rules::DEFAULT_RPC_EXCHANGE.to_owned(),
            parent_calls_tracked: rules::DEFAULT_PARENT_CALLS_TRACKED,
            heartbeat: None,
            serializer: rules::DEFAULT_SERIALIZER.to_owned(),
            auto_delete_event_exchanges: false,
            declare_event_exchanges: true,
            rpc_timeout: rules::DEFAULT_RPC_TIMEOUT,
            shutdown_timeout: rules::DEFAULT_SHUTDOWN_TIMEOUT,
            requeue_delay: rules::DEFAULT_REQUEUE_DELAY,
            max_message_size: rules::DEFAULT_MAX_MESSAGE_SIZE,
            rpc_retry_policy: RetryPolicy::default(),
            amqp_startup: AmqpStartup::FailFast,
            amqp_startup_timeout: rules::DEFAULT_AMQP_STARTUP_TIMEOUT,
            amqp_ssl: None,
            login_method: None,
            logging: None,
            queue_type: QueueTypes::default(),
        }
    }
}

impl fmt::Debug for Settings {
    /// The settings, with the password of `AMQP_URI` replaced by `***`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("amqp_uri", &self.amqp_uri.as_deref().map(redact_uri))
            .field("max_workers", &self.max_workers)
            .field("prefetch_count", &self.prefetch_count)
            .field("rpc_exchange", &self.rpc_exchange)
            .field("parent_calls_tracked", &self.parent_calls_tracked)
            .field("heartbeat", &self.heartbeat)
            .field("serializer", &self.serializer)
            .field(
                "auto_delete_event_exchanges",
                &self.auto_delete_event_exchanges,
            )
            .field("declare_event_exchanges", &self.declare_event_exchanges)
            .field("rpc_timeout", &self.rpc_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("requeue_delay", &self.requeue_delay)
            .field("max_message_size", &self.max_message_size)
            .field("rpc_retry_policy", &self.rpc_retry_policy)
            .field("amqp_startup", &self.amqp_startup)
            .field("amqp_startup_timeout", &self.amqp_startup_timeout)
            .field("amqp_ssl", &self.amqp_ssl)
            .field("login_method", &self.login_method)
            .field("logging", &self.logging)
            .field("queue_type", &self.queue_type)
            .finish()
    }
}

impl Config {
    /// The framework's settings, parsed once: every key of [`Settings`] with its default
    /// and its checks.
    ///
    /// ```
    /// use nameko_core::config::{Config, Settings};
    ///
    /// assert_eq!(Config::new().settings()?, Settings::default());
    /// # Ok::<(), nameko_core::config::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The first key that holds a value of the wrong type or a value nameko-rs refuses,
    /// with the message its accessor gives ([`ConfigError::WrongType`] or
    /// [`ConfigError::Invalid`]).
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let get = |key: &str| self.get(key);
        Ok(Settings {
            amqp_uri: rules::amqp_uri(get(AMQP_URI))?.map(str::to_owned),
            max_workers: rules::max_workers(get(MAX_WORKERS))?,
            prefetch_count: rules::prefetch_count(get(PREFETCH_COUNT))?,
            rpc_exchange: rules::rpc_exchange(get(RPC_EXCHANGE))?.to_owned(),
            parent_calls_tracked: rules::parent_calls_tracked(get(PARENT_CALLS_TRACKED))?,
            heartbeat: rules::heartbeat(get(HEARTBEAT))?,
            serializer: rules::serializer(get(SERIALIZER))?.to_owned(),
            auto_delete_event_exchanges: rules::auto_delete_event_exchanges(get(
                AUTO_DELETE_EVENT_EXCHANGES,
            ))?,
            declare_event_exchanges: rules::declare_event_exchanges(get(DECLARE_EVENT_EXCHANGES)),
            rpc_timeout: rules::rpc_timeout(get(RPC_TIMEOUT))?,
            shutdown_timeout: rules::shutdown_timeout(get(SHUTDOWN_TIMEOUT))?,
            requeue_delay: rules::requeue_delay(get(REQUEUE_DELAY))?,
            max_message_size: rules::max_message_size(get(MAX_MESSAGE_SIZE))?,
            rpc_retry_policy: rules::rpc_retry_policy(get(RPC_RETRY_POLICY))?,
            amqp_startup: rules::amqp_startup(get(AMQP_STARTUP))?,
            amqp_startup_timeout: rules::amqp_startup_timeout(get(AMQP_STARTUP_TIMEOUT))?,
            amqp_ssl: rules::amqp_ssl(get(AMQP_SSL))?,
            login_method: rules::login_method(get(LOGIN_METHOD))?.map(str::to_owned),
            logging: rules::logging(get(LOGGING))?,
            queue_type: queue_type::queue_type(get(QUEUE_TYPE))?,
        })
    }
}

/// `deserialize_with` functions that read a key with its rule.
macro_rules! with_rule {
    ($($name:ident: $type:ty = $key:ident, $rule:expr;)*) => {$(
        fn $name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
            let value = Value::deserialize(deserializer)?;
            let rule: fn(Option<&Value>) -> Result<$type, ConfigError> = $rule;
            rule(Some(&value)).map_err(|error| D::Error::custom(error.detail($key)))
        }
    )*};
}

with_rule! {
    de_amqp_uri: Option<String> = AMQP_URI, |v| Ok(rules::amqp_uri(v)?.map(str::to_owned));
    de_max_workers: usize = MAX_WORKERS, rules::max_workers;
    de_prefetch_count: u16 = PREFETCH_COUNT, rules::prefetch_count;
    de_rpc_exchange: String = RPC_EXCHANGE, |v| Ok(rules::rpc_exchange(v)?.to_owned());
    de_parent_calls_tracked: usize = PARENT_CALLS_TRACKED, rules::parent_calls_tracked;
    de_heartbeat: Option<u16> = HEARTBEAT, rules::heartbeat;
    de_serializer: String = SERIALIZER, |v| Ok(rules::serializer(v)?.to_owned());
    de_auto_delete_event_exchanges: bool = AUTO_DELETE_EVENT_EXCHANGES,
        rules::auto_delete_event_exchanges;
    de_declare_event_exchanges: bool = DECLARE_EVENT_EXCHANGES,
        |v| Ok(rules::declare_event_exchanges(v));
    de_rpc_timeout: Duration = RPC_TIMEOUT, rules::rpc_timeout;
    de_shutdown_timeout: Duration = SHUTDOWN_TIMEOUT, rules::shutdown_timeout;
    de_requeue_delay: Duration = REQUEUE_DELAY, rules::requeue_delay;
    de_max_message_size: usize = MAX_MESSAGE_SIZE, rules::max_message_size;
    de_rpc_retry_policy: RetryPolicy = RPC_RETRY_POLICY, rules::rpc_retry_policy;
    de_amqp_startup: AmqpStartup = AMQP_STARTUP, rules::amqp_startup;
    de_amqp_startup_timeout: Duration = AMQP_STARTUP_TIMEOUT, rules::amqp_startup_timeout;
    de_amqp_ssl: Option<TlsSettings> = AMQP_SSL, rules::amqp_ssl;
    de_login_method: Option<String> = LOGIN_METHOD,
        |v| Ok(rules::login_method(v)?.map(str::to_owned));
    de_logging: Option<LevelFilter> = LOGGING, rules::logging;
    de_queue_type: QueueTypes = QUEUE_TYPE, queue_type::queue_type;
}

/// What a service does when the broker cannot be reached at start-up (`AMQP_STARTUP`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AmqpStartup {
    /// `fail_fast`: fail at once (the default).
    #[default]
    FailFast,
    /// `wait`: retry with backoff until the broker answers, for at most
    /// `AMQP_STARTUP_TIMEOUT`.
    Wait,
}

/// `AMQP_SSL`'s options, with the names of Python's `ssl.wrap_socket`. The broker's
/// certificate is always verified (`cert_reqs` may only say `CERT_REQUIRED`); other
/// options are refused, so that a setting is never silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// `ca_certs`: a PEM file of certificate authorities to trust, besides the system's.
    pub ca_certs: Option<PathBuf>,
    /// `certfile`: a PEM client certificate (chain), for brokers that ask for one.
    pub certfile: Option<PathBuf>,
    /// `keyfile`: the client certificate's PEM private key (unset: read from `certfile`).
    pub keyfile: Option<PathBuf>,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(value: Value) -> Config {
        Config::from_value(value).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn an_empty_config_gives_the_defaults() {
        let settings = Config::new().settings().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings, Settings::default());
        assert_eq!(settings.max_workers, 10);
        assert_eq!(settings.prefetch_count, 10);
        assert_eq!(settings.rpc_exchange, "nameko-rpc");
        assert_eq!(settings.parent_calls_tracked, 10);
        assert_eq!(settings.heartbeat, None);
        assert_eq!(settings.serializer, "json");
        assert!(!settings.auto_delete_event_exchanges);
        assert!(settings.declare_event_exchanges);
        assert_eq!(settings.rpc_timeout, Duration::from_secs(30));
        assert_eq!(settings.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(settings.requeue_delay, Duration::from_secs(1));
        assert_eq!(settings.max_message_size, 128 * 1024 * 1024);
        assert_eq!(settings.rpc_retry_policy, RetryPolicy::default());
        assert_eq!(settings.amqp_startup, AmqpStartup::FailFast);
        assert_eq!(settings.amqp_startup_timeout, Duration::from_secs(60));
        assert_eq!(settings.amqp_ssl, None);
        assert_eq!(settings.login_method, None);
        assert_eq!(settings.logging, None);
        assert_eq!(Config::new().extract::<Settings>(), Ok(Settings::default()));
    }

    #[test]
    fn settings_agree_with_the_accessors_and_with_deserialize() {
        let full = config(json!({
            "AMQP_URI": "amqp://u:p@rabbit/",
            "max_workers": 4,
            "PREFETCH_COUNT": 20,
            "rpc_exchange": "custom",
            "parent_calls_tracked": 3,
            "HEARTBEAT": 15,
            "serializer": "json",
            "AUTO_DELETE_EVENT_EXCHANGES": true,
            "DECLARE_EVENT_EXCHANGES": false,
            "RPC_TIMEOUT": 2.5,
            "SHUTDOWN_TIMEOUT": 10,
            "REQUEUE_DELAY": 0,
            "MAX_MESSAGE_SIZE": 1024,
            "RPC_RETRY_POLICY": {"max_retries": 5, "interval_start": 0.5},
            "AMQP_STARTUP": "wait",
            "AMQP_STARTUP_TIMEOUT": 5,
            "AMQP_SSL": {"ca_certs": "/ca.pem", "cert_reqs": "ssl.CERT_REQUIRED"},
            "LOGIN_METHOD": "plain",
            "LOGGING": {"version": 1, "root": {"level": "DEBUG"}},
            "OTHER": [1, 2],
        }));
        let nulls = config(json!({
            "AMQP_URI": null, "max_workers": 0, "HEARTBEAT": null, "RPC_TIMEOUT": null,
            "DECLARE_EVENT_EXCHANGES": "no", "AMQP_SSL": false, "LOGGING": null,
        }));
        for config in [Config::new(), full, nulls] {
            let settings = config.settings().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(config.extract::<Settings>().as_ref(), Ok(&settings));
            assert_eq!(
                settings.amqp_uri.as_deref(),
                config.amqp_uri().unwrap_or_default()
            );
            assert_eq!(Ok(settings.max_workers), config.max_workers());
            assert_eq!(Ok(settings.prefetch_count), config.prefetch_count());
            assert_eq!(Ok(settings.rpc_exchange.as_str()), config.rpc_exchange());
            assert_eq!(
                Ok(settings.parent_calls_tracked),
                config.parent_calls_tracked()
            );
            assert_eq!(Ok(settings.heartbeat.unwrap_or(60)), config.heartbeat());
            assert_eq!(Ok(settings.serializer.as_str()), config.serializer());
            assert_eq!(
                Ok(settings.auto_delete_event_exchanges),
                config.auto_delete_event_exchanges()
            );
            assert_eq!(
                settings.declare_event_exchanges,
                config.declare_event_exchanges()
            );
            assert_eq!(Ok(settings.rpc_timeout), config.rpc_timeout());
            assert_eq!(Ok(settings.shutdown_timeout), config.shutdown_timeout());
            assert_eq!(Ok(settings.requeue_delay), config.requeue_delay());
            assert_eq!(Ok(settings.max_message_size), config.max_message_size());
            assert_eq!(Ok(settings.rpc_retry_policy), config.rpc_retry_policy());
        }
    }

    #[test]
    fn every_key_is_read() {
        let settings = config(json!({
            "AMQP_URI": "amqp://u:p@rabbit/",
            "HEARTBEAT": 15,
            "RPC_TIMEOUT": 2,
            "REQUEUE_DELAY": 0.25,
            "RPC_RETRY_POLICY": {"max_retries": 5, "interval_start": 0.5},
            "AMQP_STARTUP": "Wait-For-Broker",
            "AMQP_STARTUP_TIMEOUT": 5,
            "AMQP_SSL": {"certfile": "/c.pem", "keyfile": "/k.pem", "ca_certs": null, "cert_reqs": 2},
            "LOGIN_METHOD": "AMQPLAIN",
            "LOGGING": "warning",
        }))
        .settings()
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.amqp_uri.as_deref(), Some("amqp://u:p@rabbit/"));
        assert_eq!(settings.heartbeat, Some(15));
        assert_eq!(settings.rpc_timeout, Duration::from_secs(2));
        assert_eq!(settings.requeue_delay, Duration::from_millis(250));
        assert_eq!(
            settings.rpc_retry_policy,
            RetryPolicy::new(
                5,
                Duration::from_millis(500),
                Duration::from_secs(1),
                Duration::from_secs(5)
            )
        );
        assert_eq!(settings.amqp_startup, AmqpStartup::Wait);
        assert_eq!(settings.amqp_startup_timeout, Duration::from_secs(5));
        assert_eq!(
            settings.amqp_ssl,
            Some(TlsSettings {
                ca_certs: None,
                certfile: Some("/c.pem".into()),
                keyfile: Some("/k.pem".into()),
            })
        );
        assert_eq!(settings.login_method.as_deref(), Some("AMQPLAIN"));
        assert_eq!(settings.logging, Some(LevelFilter::WARN));
        let tls = config(json!({"AMQP_SSL": true})).settings();
        assert_eq!(tls.map(|s| s.amqp_ssl), Ok(Some(TlsSettings::default())));
        let tls = config(json!({"AMQP_SSL": {}})).settings();
        assert_eq!(tls.map(|s| s.amqp_ssl), Ok(None));
    }

    #[test]
    fn logging_levels_in_every_shape() {
        let cases = [
            (json!("critical"), Some(LevelFilter::ERROR)),
            (json!(" Info "), Some(LevelFilter::INFO)),
            (json!("NOTSET"), Some(LevelFilter::TRACE)),
            (json!("off"), Some(LevelFilter::OFF)),
            (json!(10), Some(LevelFilter::DEBUG)),
            (json!(35), Some(LevelFilter::WARN)),
            (json!(5), Some(LevelFilter::TRACE)),
            (json!(null), None),
            (json!({"level": "ERROR"}), Some(LevelFilter::ERROR)),
            (
                json!({"root": {"level": "DEBUG"}, "loggers": {"x": {"level": "ERROR"}}}),
                Some(LevelFilter::DEBUG),
            ),
            (
                json!({"loggers": {"nameko": {"handlers": []}, "app": {"level": "WARNING"}}}),
                Some(LevelFilter::WARN),
            ),
            (json!({"version": 1, "handlers": {}}), None),
        ];
        for (logging, expected) in cases {
            let settings = Config::new().with(LOGGING, logging.clone()).settings();
            assert_eq!(settings.map(|s| s.logging), Ok(expected), "{logging}");
        }
    }

    /// Every refused value: the message of `settings()` and, through `Deserialize`, the
    /// same words after the key.
    #[test]
    fn refused_values_give_the_accessors_messages() {
        let cases: &[(&str, Value, &str)] = &[
            (
                MAX_WORKERS,
                json!("many"),
                "config key `max_workers` must be a positive integer, found \"many\"",
            ),
            (
                PREFETCH_COUNT,
                json!(70_000),
                "config key `PREFETCH_COUNT` must be an integer from 1 to 65535, found 70000",
            ),
            (
                PREFETCH_COUNT,
                json!(0),
                "config key `PREFETCH_COUNT` must be an integer from 1 to 65535, found 0",
            ),
            (
                HEARTBEAT,
                json!([1]),
                "config key `HEARTBEAT` must be a non-negative integer, found [1]",
            ),
            (
                SERIALIZER,
                json!("pickle"),
                "config key `serializer`: Please register a serializer for \"pickle\" format (nameko-rs speaks json only)",
            ),
            (
                AUTO_DELETE_EVENT_EXCHANGES,
                json!("yes"),
                "config key `AUTO_DELETE_EVENT_EXCHANGES` must be a boolean, found \"yes\"",
            ),
            (
                RPC_TIMEOUT,
                json!(0),
                "config key `RPC_TIMEOUT`: must be a positive number of seconds",
            ),
            (
                SHUTDOWN_TIMEOUT,
                json!(-1),
                "config key `SHUTDOWN_TIMEOUT` must be a non-negative number of seconds, found -1",
            ),
            (
                RPC_RETRY_POLICY,
                json!({"max_retries": "x"}),
                "config key `RPC_RETRY_POLICY.max_retries` must be a non-negative integer, found \"x\"",
            ),
            (
                AMQP_STARTUP,
                json!("later"),
                "config key `AMQP_STARTUP`: `later` is neither `fail_fast` nor `wait`",
            ),
            (
                AMQP_SSL,
                json!("amqps://u:s3cret@h"),
                "config key `AMQP_SSL` must be true, false or a mapping of TLS options, found \"amqps://u:***@h\"",
            ),
            (
                AMQP_SSL,
                json!({"verify": false}),
                "config key `AMQP_SSL.verify`: unsupported TLS option (supported: ca_certs, certfile, keyfile, cert_reqs)",
            ),
            (
                AMQP_SSL,
                json!({"cert_reqs": "CERT_NONE"}),
                "config key `AMQP_SSL.cert_reqs`: only CERT_REQUIRED is supported: the broker's certificate is always verified",
            ),
            (
                AMQP_SSL,
                json!({"ca_certs": 5}),
                "config key `AMQP_SSL.ca_certs`: must be a file path",
            ),
            (
                AMQP_SSL,
                json!({"keyfile": "/k.pem"}),
                "config key `AMQP_SSL.keyfile`: a key file needs a `certfile`",
            ),
            (
                LOGIN_METHOD,
                json!("GSSAPI"),
                "config key `LOGIN_METHOD`: `GSSAPI` is not supported (PLAIN and AMQPLAIN are)",
            ),
            (
                LOGGING,
                json!("LOUD"),
                "config key `LOGGING`: `LOUD` is not a log level",
            ),
            (
                LOGGING,
                json!([1]),
                "config key `LOGGING`: expected a level name or a logging mapping, found [1]",
            ),
        ];
        for (key, value, expected) in cases {
            let config = Config::new().with(*key, value.clone());
            let error = config.settings().map(|_| ()).map_err(|e| e.to_string());
            assert_eq!(error, Err((*expected).to_owned()), "{key}: {value}");
            let Err(ConfigError::Deserialize { key: found, source }) = config.extract::<Settings>()
            else {
                panic!("{key}: {value}: extract accepted it");
            };
            assert_eq!(found, *key);
            let detail = config
                .settings()
                .map(|_| ())
                .map_err(|e| e.detail(key))
                .unwrap_err();
            assert_eq!(source.to_string(), detail);
            assert!(!detail.starts_with("config key"), "{detail}");
        }
    }

    #[test]
    fn settings_can_be_part_of_a_type_of_ones_own() {
        #[derive(Deserialize)]
        struct Service {
            #[serde(flatten)]
            nameko: Settings,
            #[serde(rename = "WEB_SERVER_ADDRESS")]
            web_server_address: String,
        }
        let config = config(json!({"max_workers": 3, "WEB_SERVER_ADDRESS": "0.0.0.0:8000"}));
        let service: Service = config.extract().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(service.nameko.max_workers, 3);
        assert_eq!(service.nameko.rpc_exchange, "nameko-rpc");
        assert_eq!(service.web_server_address, "0.0.0.0:8000");
    }

    #[test]
    fn debug_hides_the_broker_password() {
        let settings = config(json!({"AMQP_URI": "amqp://u:s3cret@rabbit/"}))
            .settings()
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{settings:?}");
        assert!(shown.contains("amqp://u:***@rabbit/"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
