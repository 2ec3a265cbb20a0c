//! Typed accessors of nameko's keys, one key at a time, with the rules of
//! [`Settings`](super::Settings). New code reads [`Config::settings`] once instead.

use std::time::Duration;

use super::keys::{
    AMQP_URI, AUTO_DELETE_EVENT_EXCHANGES, DECLARE_EVENT_EXCHANGES, HEARTBEAT, MAX_MESSAGE_SIZE,
    MAX_WORKERS, PARENT_CALLS_TRACKED, PREFETCH_COUNT, REQUEUE_DELAY, RPC_EXCHANGE,
    RPC_RETRY_POLICY, RPC_TIMEOUT, SERIALIZER, SHUTDOWN_TIMEOUT,
};
use super::{Config, ConfigError, RetryPolicy, rules};

impl Config {
    /// A string value; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a string.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        rules::string(key, self.get(key))
    }

    /// A boolean value; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a boolean.
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        rules::boolean(key, self.get(key))
    }

    /// A non-negative integer value; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for anything else.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        rules::unsigned(key, self.get(key))
    }

    /// A duration given in (possibly fractional) seconds; `None` when unset or null.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a non-negative number.
    pub fn get_seconds(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        rules::seconds(key, self.get(key))
    }

    /// `AMQP_URI`, if set.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a string.
    pub fn amqp_uri(&self) -> Result<Option<&str>, ConfigError> {
        rules::amqp_uri(self.get(AMQP_URI))
    }

    /// `rpc_exchange`, default `nameko-rpc`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a string.
    pub fn rpc_exchange(&self) -> Result<&str, ConfigError> {
        rules::rpc_exchange(self.get(RPC_EXCHANGE))
    }

    /// `max_workers`, default 10 (nameko also treats 0 as unset).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a positive integer.
    pub fn max_workers(&self) -> Result<usize, ConfigError> {
        rules::max_workers(self.get(MAX_WORKERS))
    }

    /// `PREFETCH_COUNT`, default 10.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not an integer from 1 to 65535.
    pub fn prefetch_count(&self) -> Result<u16, ConfigError> {
        rules::prefetch_count(self.get(PREFETCH_COUNT))
    }

    /// `parent_calls_tracked`, default 10: a call id stack keeps this many ancestors plus
    /// the call's own id.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a non-negative integer.
    pub fn parent_calls_tracked(&self) -> Result<usize, ConfigError> {
        rules::parent_calls_tracked(self.get(PARENT_CALLS_TRACKED))
    }

    /// `HEARTBEAT` in seconds, default 60.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not an integer from 0 to 65535.
    pub fn heartbeat(&self) -> Result<u16, ConfigError> {
        Ok(rules::heartbeat(self.get(HEARTBEAT))?.unwrap_or(rules::DEFAULT_HEARTBEAT))
    }

    /// `serializer`, default `json`, the only serializer nameko-rs speaks.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] for any other serializer, with nameko's wording.
    pub fn serializer(&self) -> Result<&str, ConfigError> {
        rules::serializer(self.get(SERIALIZER))
    }

    /// `AUTO_DELETE_EVENT_EXCHANGES`, default false.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a boolean.
    pub fn auto_delete_event_exchanges(&self) -> Result<bool, ConfigError> {
        rules::auto_delete_event_exchanges(self.get(AUTO_DELETE_EVENT_EXCHANGES))
    }

    /// `DECLARE_EVENT_EXCHANGES`: true unless the value is literally `false`, as in
    /// nameko.
    #[must_use]
    pub fn declare_event_exchanges(&self) -> bool {
        rules::declare_event_exchanges(self.get(DECLARE_EVENT_EXCHANGES))
    }

    /// `RPC_TIMEOUT` in seconds, default 30: how long every RPC call waits for its
    /// reply unless a proxy or a call says otherwise.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a positive number.
    pub fn rpc_timeout(&self) -> Result<Duration, ConfigError> {
        rules::rpc_timeout(self.get(RPC_TIMEOUT))
    }

    /// `SHUTDOWN_TIMEOUT` in seconds, default 30: how long a graceful stop waits for
    /// running workers before killing them.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a non-negative number.
    pub fn shutdown_timeout(&self) -> Result<Duration, ConfigError> {
        rules::shutdown_timeout(self.get(SHUTDOWN_TIMEOUT))
    }

    /// `REQUEUE_DELAY` in seconds, default 1: how long a message that failed again after
    /// a redelivery waits before it is requeued (0 requeues at once, as nameko does).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a non-negative number.
    pub fn requeue_delay(&self) -> Result<Duration, ConfigError> {
        rules::requeue_delay(self.get(REQUEUE_DELAY))
    }

    /// `MAX_MESSAGE_SIZE` in bytes, default 128 MiB (RabbitMQ's own limit).
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] if it is not a positive integer.
    pub fn max_message_size(&self) -> Result<usize, ConfigError> {
        rules::max_message_size(self.get(MAX_MESSAGE_SIZE))
    }

    /// `RPC_RETRY_POLICY`: a mapping with any of `max_retries`, `interval_start`,
    /// `interval_step` and `interval_max` (seconds); missing keys take nameko's defaults.
    ///
    /// # Errors
    ///
    /// [`ConfigError::WrongType`] for a value that is not a mapping, or a key of the
    /// wrong type.
    pub fn rpc_retry_policy(&self) -> Result<RetryPolicy, ConfigError> {
        rules::rpc_retry_policy(self.get(RPC_RETRY_POLICY))
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
