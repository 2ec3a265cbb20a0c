//! One rule per key: how the value of each of nameko's keys is read, its default, and
//! what is refused. [`Settings`](super::Settings), its `Deserialize` implementation and
//! the typed accessors of [`Config`](super::Config) all read keys through these functions.
//!
//! Each rule takes the key's value (`None` when the key is unset) and treats `null` as
//! unset, as nameko does.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use tracing::level_filters::LevelFilter;

use super::error::wrong;
use super::keys::{
    AMQP_SSL, AMQP_STARTUP, AMQP_STARTUP_TIMEOUT, AMQP_URI, AUTO_DELETE_EVENT_EXCHANGES, HEARTBEAT,
    LOGGING, LOGIN_METHOD, MAX_MESSAGE_SIZE, MAX_WORKERS, PARENT_CALLS_TRACKED, PREFETCH_COUNT,
    REQUEUE_DELAY, RPC_EXCHANGE, RPC_RETRY_POLICY, RPC_TIMEOUT, SERIALIZER, SHUTDOWN_TIMEOUT,
};
use super::settings::{AmqpStartup, RetryPolicy, TlsSettings};
use super::{ConfigError, redact_uri};

/// `rpc_exchange`'s default.
pub(super) const DEFAULT_RPC_EXCHANGE: &str = "nameko-rpc";
/// `max_workers`'s default.
pub(super) const DEFAULT_MAX_WORKERS: usize = 10;
/// `PREFETCH_COUNT`'s default.
pub(super) const DEFAULT_PREFETCH_COUNT: u16 = 10;
/// `parent_calls_tracked`'s default.
pub(super) const DEFAULT_PARENT_CALLS_TRACKED: usize = 10;
/// `HEARTBEAT`'s default, in seconds.
pub(super) const DEFAULT_HEARTBEAT: u16 = 60;
/// `serializer`'s default, and the only serializer nameko-rs speaks.
pub(super) const DEFAULT_SERIALIZER: &str = "json";
/// `RPC_TIMEOUT`'s default.
pub(super) const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// `SHUTDOWN_TIMEOUT`'s default.
pub(super) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// `REQUEUE_DELAY`'s default.
pub(super) const DEFAULT_REQUEUE_DELAY: Duration = Duration::from_secs(1);
/// `MAX_MESSAGE_SIZE`'s default: RabbitMQ's own limit, 128 MiB.
pub(super) const DEFAULT_MAX_MESSAGE_SIZE: usize = 128 * 1024 * 1024;
/// `AMQP_STARTUP_TIMEOUT`'s default.
pub(super) const DEFAULT_AMQP_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

// Values of a type.

/// A string; `None` when unset or null.
pub(super) fn string<'v>(
    key: &str,
    value: Option<&'v Value>,
) -> Result<Option<&'v str>, ConfigError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong(key, "a string", other)),
    }
}

/// A boolean; `None` when unset or null.
pub(super) fn boolean(key: &str, value: Option<&Value>) -> Result<Option<bool>, ConfigError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(wrong(key, "a boolean", other)),
    }
}

/// A non-negative integer; `None` when unset or null.
pub(super) fn unsigned(key: &str, value: Option<&Value>) -> Result<Option<u64>, ConfigError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(other) => Err(wrong(key, "a non-negative integer", other)),
    }
}

/// A duration in (possibly fractional) seconds, an integer or a float; `None` when unset
/// or null.
pub(super) fn seconds(key: &str, value: Option<&Value>) -> Result<Option<Duration>, ConfigError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(n)) => n
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .map(Some)
            .ok_or_else(|| wrong(key, "a non-negative number of seconds", v)),
        Some(other) => Err(wrong(key, "a non-negative number of seconds", other)),
    }
}

/// A positive integer, `default` when unset, null or 0 (nameko treats 0 as unset).
fn positive(key: &str, value: Option<&Value>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(default),
        Some(v @ Value::Number(n)) => n
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| wrong(key, "a positive integer", v)),
        Some(other) => Err(wrong(key, "a positive integer", other)),
    }
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason,
    }
}

// The keys.

/// `AMQP_URI`, if set.
pub(super) fn amqp_uri(value: Option<&Value>) -> Result<Option<&str>, ConfigError> {
    string(AMQP_URI, value)
}

/// `rpc_exchange`, default `nameko-rpc`.
pub(super) fn rpc_exchange(value: Option<&Value>) -> Result<&str, ConfigError> {
    Ok(string(RPC_EXCHANGE, value)?.unwrap_or(DEFAULT_RPC_EXCHANGE))
}

/// `max_workers`, default 10; 0 means the default.
pub(super) fn max_workers(value: Option<&Value>) -> Result<usize, ConfigError> {
    positive(MAX_WORKERS, value, DEFAULT_MAX_WORKERS)
}

/// `PREFETCH_COUNT`, default 10, from 1 to 65535.
pub(super) fn prefetch_count(value: Option<&Value>) -> Result<u16, ConfigError> {
    const EXPECTED: &str = "an integer from 1 to 65535";
    match unsigned(PREFETCH_COUNT, value) {
        Ok(None) => Ok(DEFAULT_PREFETCH_COUNT),
        Ok(Some(n)) if n >= 1 => {
            u16::try_from(n).map_err(|_| wrong(PREFETCH_COUNT, EXPECTED, &Value::from(n)))
        }
        _ => Err(wrong(
            PREFETCH_COUNT,
            EXPECTED,
            value.unwrap_or(&Value::Null),
        )),
    }
}

/// `parent_calls_tracked`, default 10.
pub(super) fn parent_calls_tracked(value: Option<&Value>) -> Result<usize, ConfigError> {
    let n = unsigned(PARENT_CALLS_TRACKED, value)?.unwrap_or(10);
    usize::try_from(n).map_err(|_| wrong(PARENT_CALLS_TRACKED, "a small integer", &Value::from(n)))
}

/// `HEARTBEAT` in seconds, if set, from 0 to 65535.
pub(super) fn heartbeat(value: Option<&Value>) -> Result<Option<u16>, ConfigError> {
    unsigned(HEARTBEAT, value)?
        .map(|n| {
            u16::try_from(n)
                .map_err(|_| wrong(HEARTBEAT, "an integer from 0 to 65535", &Value::from(n)))
        })
        .transpose()
}

/// `serializer`, default `json`, the only one there is.
pub(super) fn serializer(value: Option<&Value>) -> Result<&str, ConfigError> {
    let name = string(SERIALIZER, value)?.unwrap_or(DEFAULT_SERIALIZER);
    if name == DEFAULT_SERIALIZER {
        Ok(name)
    } else {
        Err(invalid(
            SERIALIZER,
            format!(
                "Please register a serializer for \"{name}\" format (nameko-rs speaks json only)"
            ),
        ))
    }
}

/// `AUTO_DELETE_EVENT_EXCHANGES`, default false.
pub(super) fn auto_delete_event_exchanges(value: Option<&Value>) -> Result<bool, ConfigError> {
    Ok(boolean(AUTO_DELETE_EVENT_EXCHANGES, value)?.unwrap_or(false))
}

/// `DECLARE_EVENT_EXCHANGES`: true unless the value is literally `false`, as in nameko
/// (so it refuses nothing).
pub(super) fn declare_event_exchanges(value: Option<&Value>) -> bool {
    !matches!(value, Some(Value::Bool(false)))
}

/// `RPC_TIMEOUT`, default 30 s, positive.
pub(super) fn rpc_timeout(value: Option<&Value>) -> Result<Duration, ConfigError> {
    match seconds(RPC_TIMEOUT, value)? {
        None => Ok(DEFAULT_RPC_TIMEOUT),
        Some(d) if d.is_zero() => Err(invalid(
            RPC_TIMEOUT,
            "must be a positive number of seconds".to_owned(),
        )),
        Some(d) => Ok(d),
    }
}

/// `SHUTDOWN_TIMEOUT`, default 30 s.
pub(super) fn shutdown_timeout(value: Option<&Value>) -> Result<Duration, ConfigError> {
    Ok(seconds(SHUTDOWN_TIMEOUT, value)?.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT))
}

/// `REQUEUE_DELAY`, default 1 s.
pub(super) fn requeue_delay(value: Option<&Value>) -> Result<Duration, ConfigError> {
    Ok(seconds(REQUEUE_DELAY, value)?.unwrap_or(DEFAULT_REQUEUE_DELAY))
}

/// `MAX_MESSAGE_SIZE` in bytes, default 128 MiB; 0 means the default.
pub(super) fn max_message_size(value: Option<&Value>) -> Result<usize, ConfigError> {
    positive(MAX_MESSAGE_SIZE, value, DEFAULT_MAX_MESSAGE_SIZE)
}

/// `RPC_RETRY_POLICY`: a mapping whose missing keys take nameko's defaults.
pub(super) fn rpc_retry_policy(value: Option<&Value>) -> Result<RetryPolicy, ConfigError> {
    let mut policy = RetryPolicy::default();
    let table = match value {
        None | Some(Value::Null) => return Ok(policy),
        Some(Value::Object(map)) => map,
        Some(other) => return Err(wrong(RPC_RETRY_POLICY, "a mapping", other)),
    };
    let name = |key: &str| format!("{RPC_RETRY_POLICY}.{key}");
    if let Some(n) = unsigned(&name("max_retries"), table.get("max_retries"))? {
        policy.max_retries = u32::try_from(n).unwrap_or(u32::MAX);
    }
    for (key, slot) in [
        ("interval_start", &mut policy.interval_start),
        ("interval_step", &mut policy.interval_step),
        ("interval_max", &mut policy.interval_max),
    ] {
        if let Some(d) = seconds(&name(key), table.get(key))? {
            *slot = d;
        }
    }
    Ok(policy)
}

/// `AMQP_STARTUP`, default `fail_fast`; `wait` waits for the broker.
pub(super) fn amqp_startup(value: Option<&Value>) -> Result<AmqpStartup, ConfigError> {
    let Some(text) = string(AMQP_STARTUP, value)? else {
        return Ok(AmqpStartup::FailFast);
    };
    match text.to_ascii_lowercase().replace('-', "_").as_str() {
        "fail_fast" | "failfast" => Ok(AmqpStartup::FailFast),
        "wait" | "wait_for_broker" => Ok(AmqpStartup::Wait),
        _ => Err(invalid(
            AMQP_STARTUP,
            format!("`{text}` is neither `fail_fast` nor `wait`"),
        )),
    }
}

/// `AMQP_STARTUP_TIMEOUT`, default 60 s.
pub(super) fn amqp_startup_timeout(value: Option<&Value>) -> Result<Duration, ConfigError> {
    Ok(seconds(AMQP_STARTUP_TIMEOUT, value)?.unwrap_or(DEFAULT_AMQP_STARTUP_TIMEOUT))
}

/// `LOGIN_METHOD`, if set: `PLAIN` or `AMQPLAIN`, in any case.
pub(super) fn login_method(value: Option<&Value>) -> Result<Option<&str>, ConfigError> {
    match string(LOGIN_METHOD, value)? {
        None => Ok(None),
        Some(method)
            if method.eq_ignore_ascii_case("PLAIN") || method.eq_ignore_ascii_case("AMQPLAIN") =>
        {
            Ok(Some(method))
        }
        Some(method) => Err(invalid(
            LOGIN_METHOD,
            format!("`{method}` is not supported (PLAIN and AMQPLAIN are)"),
        )),
    }
}

/// `AMQP_SSL`: `None` for no TLS (unset, null, false, or an empty mapping).
pub(super) fn amqp_ssl(value: Option<&Value>) -> Result<Option<TlsSettings>, ConfigError> {
    let options = match value {
        None | Some(Value::Null | Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => return Ok(Some(TlsSettings::default())),
        Some(Value::Object(options)) if options.is_empty() => return Ok(None),
        Some(Value::Object(options)) => options,
        Some(other) => {
            return Err(wrong(
                AMQP_SSL,
                "true, false or a mapping of TLS options",
                other,
            ));
        }
    };
    let mut tls = TlsSettings::default();
    for (key, value) in options {
        let name = format!("{AMQP_SSL}.{key}");
        let slot = match key.as_str() {
            "ca_certs" => &mut tls.ca_certs,
            "certfile" => &mut tls.certfile,
            "keyfile" => &mut tls.keyfile,
            "cert_reqs" if is_cert_required(value) => continue,
            "cert_reqs" => {
                return Err(invalid(
                    &name,
                    "only CERT_REQUIRED is supported: the broker's certificate is always verified"
                        .to_owned(),
                ));
            }
            _ => {
                return Err(invalid(
                    &name,
                    "unsupported TLS option (supported: ca_certs, certfile, keyfile, cert_reqs)"
                        .to_owned(),
                ));
            }
        };
        match value {
            Value::String(path) => *slot = Some(PathBuf::from(path)),
            Value::Null => {}
            _ => return Err(invalid(&name, "must be a file path".to_owned())),
        }
    }
    if tls.keyfile.is_some() && tls.certfile.is_none() {
        return Err(invalid(
            &format!("{AMQP_SSL}.keyfile"),
            "a key file needs a `certfile`".to_owned(),
        ));
    }
    Ok(Some(tls))
}

/// `cert_reqs: CERT_REQUIRED` (or `ssl.CERT_REQUIRED`, or 2, Python's value).
fn is_cert_required(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_u64() == Some(2),
        Value::String(s) => {
            let s = s.trim_start_matches("ssl.");
            s.eq_ignore_ascii_case("CERT_REQUIRED") || s == "2"
        }
        _ => false,
    }
}

/// `LOGGING`'s level, if it sets one: a level, a mapping with a `level` key, or a
/// `logging.config.dictConfig` mapping (its `root.level`, or else the `level` of the first
/// logger under `loggers` that has one).
pub(super) fn logging(value: Option<&Value>) -> Result<Option<LevelFilter>, ConfigError> {
    let level = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map
            .get("level")
            .or_else(|| map.get("root").and_then(|root| root.get("level")))
            .or_else(|| {
                map.get("loggers")
                    .and_then(Value::as_object)
                    .and_then(|loggers| loggers.values().find_map(|l| l.get("level")))
            }),
        Some(other) => Some(other),
    };
    level.map(log_level).transpose()
}

/// A level as Python's `logging` names or numbers it (`TRACE` and `OFF` too).
fn log_level(value: &Value) -> Result<LevelFilter, ConfigError> {
    let level = match value {
        Value::String(name) => match name.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" | "ERROR" => LevelFilter::ERROR,
            "WARNING" | "WARN" => LevelFilter::WARN,
            "INFO" => LevelFilter::INFO,
            "DEBUG" => LevelFilter::DEBUG,
            "NOTSET" | "TRACE" => LevelFilter::TRACE,
            "OFF" => LevelFilter::OFF,
            _ => return Err(invalid(LOGGING, format!("`{name}` is not a log level"))),
        },
        Value::Number(n) => match n.as_u64() {
            Some(40..) => LevelFilter::ERROR,
            Some(30..) => LevelFilter::WARN,
            Some(20..) => LevelFilter::INFO,
            Some(10..) => LevelFilter::DEBUG,
            Some(_) => LevelFilter::TRACE,
            None => return Err(invalid(LOGGING, format!("`{n}` is not a log level"))),
        },
        other => {
            return Err(invalid(
                LOGGING,
                format!(
                    "expected a level name or a logging mapping, found {}",
                    redact_uri(&other.to_string())
                ),
            ));
        }
    };
    Ok(level)
}
