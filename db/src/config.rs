//! The configuration keys: `DB_URIS` (or `DB_URI`) and `DB_POOL`.

use std::collections::BTreeMap;
use std::time::Duration;

use nameko_core::config::{Config, ConfigError, seconds};
use serde::Deserialize;

/// nameko-sqlx's keys, as [`Config::extract`] reads them.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct DbSettings {
    /// nameko-sqlalchemy's key: `"<service>:<database>"` to a URI.
    #[serde(rename = "DB_URIS", default)]
    uris: Option<BTreeMap<String, String>>,
    /// The same map under the name `DB_URI`.
    #[serde(rename = "DB_URI", default)]
    uri: Option<BTreeMap<String, String>>,
    /// Pool options.
    #[serde(rename = "DB_POOL", default)]
    pub(crate) pool: PoolSettings,
}

impl DbSettings {
    pub(crate) fn read(config: &Config) -> Result<Self, ConfigError> {
        config.extract()
    }

    /// The URI of `key` (`"<service>:<database>"`), from `DB_URIS` first, then `DB_URI`.
    pub(crate) fn uri(&self, key: &str) -> Option<&str> {
        [&self.uris, &self.uri]
            .into_iter()
            .flatten()
            .find_map(|map| map.get(key))
            .map(String::as_str)
    }
}

/// `DB_POOL`: the options of every pool of the process.
///
/// ```yaml
/// DB_POOL:
///   size: 10              # connections per database; default: max_workers
///   min_idle: 0           # connections kept open when idle
///   acquire_timeout: 5    # seconds a worker waits for a connection, then DatabaseUnavailable
///   idle_timeout: 600     # seconds before an idle connection is closed
///   max_lifetime: 1800    # seconds before a connection is replaced
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Connections per database (default: `max_workers`, so that every worker can hold
    /// a session).
    #[serde(default)]
    pub size: Option<u32>,
    /// Connections kept open when idle.
    #[serde(default)]
    pub min_idle: u32,
    /// How long a worker waits for a connection before failing with
    /// `DatabaseUnavailable` (default 5 s).
    #[serde(default = "default_acquire_timeout", with = "seconds")]
    pub acquire_timeout: Duration,
    /// How long a connection stays idle before it is closed (default 600 s).
    #[serde(default = "default_idle_timeout", with = "seconds::option")]
    pub idle_timeout: Option<Duration>,
    /// How long a connection lives before it is replaced (default 1800 s).
    #[serde(default = "default_max_lifetime", with = "seconds::option")]
    pub max_lifetime: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            size: None,
            min_idle: 0,
            acquire_timeout: default_acquire_timeout(),
            idle_timeout: default_idle_timeout(),
            max_lifetime: default_max_lifetime(),
        }
    }
}

fn default_acquire_timeout() -> Duration {
    Duration::from_secs(5)
}

#[allow(clippy::unnecessary_wraps)]
fn default_idle_timeout() -> Option<Duration> {
    Some(Duration::from_secs(600))
}

#[allow(clippy::unnecessary_wraps)]
fn default_max_lifetime() -> Option<Duration> {
    Some(Duration::from_secs(1800))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uris_come_from_db_uris_then_db_uri() {
        let config = Config::from_value(json!({
            "DB_URIS": {"svc:a": "sqlite::memory:"},
            "DB_URI": {"svc:a": "postgres://x", "svc:b": "mysql://y"},
        }))
        .unwrap();
        let settings = DbSettings::read(&config).unwrap();
        assert_eq!(settings.uri("svc:a"), Some("sqlite::memory:"));
        assert_eq!(settings.uri("svc:b"), Some("mysql://y"));
        assert_eq!(settings.uri("svc:c"), None);
        assert_eq!(settings.pool, PoolSettings::default());
    }

    #[test]
    fn pool_options_are_read_in_seconds_and_unknown_ones_refused() {
        let config = Config::from_value(json!({
            "DB_POOL": {"size": 5, "acquire_timeout": 0.5, "idle_timeout": null},
        }))
        .unwrap();
        let pool = DbSettings::read(&config).unwrap().pool;
        assert_eq!(pool.size, Some(5));
        assert_eq!(pool.acquire_timeout, Duration::from_millis(500));
        assert_eq!(pool.idle_timeout, None);

        let config = Config::from_value(json!({"DB_POOL": {"sise": 5}})).unwrap();
        let error = DbSettings::read(&config).unwrap_err().to_string();
        assert!(
            error.contains("DB_POOL") && error.contains("sise"),
            "{error}"
        );
    }
}
