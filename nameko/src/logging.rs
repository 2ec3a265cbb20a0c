//! Logging for service binaries and the `nameko` tool, with `tracing-subscriber`.
//!
//! The level comes from, in order:
//!
//! 1. `RUST_LOG`, when set: any [`EnvFilter`] directive (`debug`, `nameko_core=trace`).
//! 2. The config's `LOGGING`, in one of nameko's shapes:
//!    - a level: `LOGGING: DEBUG` (Python's names `CRITICAL`, `ERROR`, `WARNING`, `INFO`,
//!      `DEBUG`, `NOTSET`, any case; `TRACE` and `OFF` too; or Python's numbers 10 to 50);
//!    - a mapping with a `level` key;
//!    - a `logging.config.dictConfig` mapping: its `root.level`, or else the `level` of
//!      the first logger under `loggers` that has one. Handlers and formatters are not
//!      used: records go to standard error in `tracing-subscriber`'s format.
//! 3. `INFO` otherwise.
//!
//! Below `WARN`, the AMQP client library (`lapin`) stays at `WARN`, and its report of
//! every message the broker returned (which dumps the message, and which nameko-rs
//! reports itself as `UnknownService`) at `ERROR`, unless `RUST_LOG` says otherwise.
//!
//! The `nameko` client commands (`call`, `dispatch`, `shell`) print their results and
//! their errors themselves, and log nothing else unless asked: see [`init_client`].
//!
//! Every line is written through [`redact_line`], which replaces URI passwords by `***`
//! and hides the value of any `auth_token`, so that no credential reaches the logs even
//! from a careless log statement.
//!
//! ```
//! use nameko::config::Config;
//! use serde_json::json;
//!
//! let config = Config::new().with("LOGGING", json!({
//!     "version": 1,
//!     "root": {"level": "WARNING", "handlers": ["console"]},
//! }));
//! assert_eq!(
//!     nameko::logging::directive(&config, None)?,
//!     "warn,lapin::returned_messages=error",
//! );
//! assert_eq!(nameko::logging::directive(&config, Some("debug"))?, "debug");
//! # Ok::<(), nameko::logging::LoggingError>(())
//! ```

use std::io::{self, IsTerminal, Write};

use nameko_core::config::{Config, LOGGING};
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The configuration's log level could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// `LOGGING` (or a level inside it) is not a level.
    #[error("config key `LOGGING`: {0}")]
    Config(String),
    /// `RUST_LOG` is not a valid filter.
    #[error("RUST_LOG: {0}")]
    RustLog(String),
}

/// Installs the global subscriber: level from `RUST_LOG` or the config's `LOGGING` (see
/// the [module docs](self)), records on standard error with credentials redacted. Does
/// nothing if a subscriber is installed already.
///
/// ```
/// nameko::logging::init(&nameko::config::Config::new())?;
/// tracing::info!("ready");
/// # Ok::<(), nameko::logging::LoggingError>(())
/// ```
///
/// # Errors
///
/// [`LoggingError`] for a level that cannot be understood.
pub fn init(config: &Config) -> Result<(), LoggingError> {
    init_with_default(config, "info")
}

/// As [`init`], with another level than `INFO` when neither `RUST_LOG` nor `LOGGING` sets
/// one.
///
/// # Errors
///
/// As [`init`].
pub fn init_with_default(config: &Config, default: &str) -> Result<(), LoggingError> {
    let directive = match config_level(config)? {
        Some(level) => with_quiet_client(level),
        None => with_quiet_client(default),
    };
    install(rust_log().unwrap_or(directive))
}

/// Installs the subscriber of a service binary's `run`: as [`init`], one level more
/// verbose for each `-v` (`DEBUG`, then `TRACE`) when `RUST_LOG` is not set.
///
/// # Errors
///
/// As [`init`].
pub fn init_service(config: &Config, verbose: u8) -> Result<(), LoggingError> {
    match verbose {
        0 => init(config),
        1 => install(rust_log().unwrap_or_else(|| with_quiet_client("debug"))),
        _ => install(rust_log().unwrap_or_else(|| with_quiet_client("trace"))),
    }
}

/// Installs the subscriber of the client commands (`call`, `dispatch`, `shell`), which
/// print their results and errors themselves: see [`client_directive`].
///
/// # Errors
///
/// [`LoggingError::RustLog`] for a `RUST_LOG` that is not a filter.
pub fn init_client(verbose: u8) -> Result<(), LoggingError> {
    install(client_directive(verbose, rust_log().as_deref()))
}

/// The filter of the client commands: nothing by default, so that a command prints only
/// its own output (`error: UnknownService: ...`, not the AMQP library's view of it);
/// each `-v` shows more: warnings, info, debug, then everything. `RUST_LOG` wins; the
/// config's `LOGGING` is for services and is not used.
///
/// ```
/// use nameko::logging::client_directive;
///
/// assert_eq!(client_directive(0, None), "off");
/// assert_eq!(client_directive(1, None), "warn,lapin::returned_messages=error");
/// assert_eq!(client_directive(2, None), "info,lapin=warn,lapin::returned_messages=error");
/// assert_eq!(client_directive(0, Some("lapin=debug")), "lapin=debug");
/// ```
#[must_use]
pub fn client_directive(verbose: u8, rust_log: Option<&str>) -> String {
    if let Some(rust_log) = rust_log.map(str::trim).filter(|v| !v.is_empty()) {
        return rust_log.to_owned();
    }
    match verbose {
        0 => "off".to_owned(),
        1 => with_quiet_client("warn"),
        2 => with_quiet_client("info"),
        3 => with_quiet_client("debug"),
        _ => "trace".to_owned(),
    }
}

fn rust_log() -> Option<String> {
    std::env::var("RUST_LOG")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn install(directive: String) -> Result<(), LoggingError> {
    let filter =
        EnvFilter::try_new(&directive).map_err(|e| LoggingError::RustLog(e.to_string()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(RedactingStderr)
        .try_init();
    Ok(())
}

/// The [`EnvFilter`] directive for `config`, `rust_log` (the value of `RUST_LOG`) winning
/// when given. See the [module docs](self).
///
/// ```
/// use nameko::config::Config;
///
/// let config = Config::new().with("LOGGING", "DEBUG");
/// assert_eq!(
///     nameko::logging::directive(&config, None)?,
///     "debug,lapin=warn,lapin::returned_messages=error",
/// );
/// assert_eq!(
///     nameko::logging::directive(&Config::new(), None)?,
///     "info,lapin=warn,lapin::returned_messages=error",
/// );
/// # Ok::<(), nameko::logging::LoggingError>(())
/// ```
///
/// # Errors
///
/// [`LoggingError::Config`] when `LOGGING` holds something that is not a level.
pub fn directive(config: &Config, rust_log: Option<&str>) -> Result<String, LoggingError> {
    if let Some(rust_log) = rust_log {
        return Ok(rust_log.trim().to_owned());
    }
    Ok(with_quiet_client(config_level(config)?.unwrap_or("info")))
}

/// `level`, with the AMQP library no chattier than `WARN`, and its dump of every returned
/// message (a call to an unknown service) only at `ERROR`.
fn with_quiet_client(level: &str) -> String {
    match level {
        "off" | "error" => level.to_owned(),
        "warn" => "warn,lapin::returned_messages=error".to_owned(),
        _ => format!("{level},lapin=warn,lapin::returned_messages=error"),
    }
}

/// The level `LOGGING` sets, as an [`EnvFilter`] level name.
fn config_level(config: &Config) -> Result<Option<&'static str>, LoggingError> {
    let Some(value) = config.get(LOGGING) else {
        return Ok(None);
    };
    let level = match value {
        Value::Null => return Ok(None),
        Value::Object(map) => map
            .get("level")
            .or_else(|| map.get("root").and_then(|root| root.get("level")))
            .or_else(|| {
                map.get("loggers")
                    .and_then(Value::as_object)
                    .and_then(|loggers| loggers.values().find_map(|l| l.get("level")))
            }),
        other => Some(other),
    };
    level.map(level_name).transpose()
}

fn level_name(value: &Value) -> Result<&'static str, LoggingError> {
    let level = match value {
        Value::String(name) => match name.trim().to_ascii_uppercase().as_str() {
            "CRITICAL" | "FATAL" | "ERROR" => "error",
            "WARNING" | "WARN" => "warn",
            "INFO" => "info",
            "DEBUG" => "debug",
            "NOTSET" | "TRACE" => "trace",
            "OFF" => "off",
            _ => return Err(LoggingError::Config(format!("`{name}` is not a log level"))),
        },
        Value::Number(n) => match n.as_u64() {
            Some(40..) => "error",
            Some(30..) => "warn",
            Some(20..) => "info",
            Some(10..) => "debug",
            Some(_) => "trace",
            None => return Err(LoggingError::Config(format!("`{n}` is not a log level"))),
        },
        other => {
            return Err(LoggingError::Config(format!(
                "expected a level name or a logging mapping, found {other}"
            )));
        }
    };
    Ok(level)
}

/// Hides credentials in one line of log: URI passwords and `auth_token` values (nameko-rs's
/// one redaction module, re-exported here for the log writer's users).
///
/// ```
/// assert_eq!(
///     nameko::logging::redact_line(r#"connected to amqp://app:pw@rabbit/ with {"auth_token": "abc"}"#),
///     r#"connected to amqp://app:***@rabbit/ with {"auth_token": "***"}"#,
/// );
/// assert_eq!(nameko::logging::redact_line("auth_token=abc user=1"), "auth_token=*** user=1");
/// ```
pub use nameko_core::config::redact::redact_line;

/// Standard error, through [`redact_line`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter { buffer: Vec::new() }
    }
}

/// One log record on its way to standard error: buffered, then written redacted when
/// dropped (the subscriber makes one writer per record).
#[derive(Debug)]
pub struct RedactingWriter {
    buffer: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let text = redact_line(&String::from_utf8_lossy(&self.buffer));
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUIET: &str = ",lapin=warn,lapin::returned_messages=error";
    const WARN: &str = "warn,lapin::returned_messages=error";

    fn level(logging: Value) -> Result<String, LoggingError> {
        directive(&Config::new().with(LOGGING, logging), None)
    }

    #[test]
    fn python_level_names_and_numbers() {
        assert_eq!(level(json!("critical")).unwrap(), "error");
        assert_eq!(level(json!("WARNING")).unwrap(), WARN);
        assert_eq!(level(json!(" Info ")).unwrap(), format!("info{QUIET}"));
        assert_eq!(level(json!("NOTSET")).unwrap(), format!("trace{QUIET}"));
        assert_eq!(level(json!(10)).unwrap(), format!("debug{QUIET}"));
        assert_eq!(level(json!(35)).unwrap(), WARN);
        assert_eq!(level(json!(null)).unwrap(), format!("info{QUIET}"));
        assert!(
            level(json!("LOUD"))
                .unwrap_err()
                .to_string()
                .contains("`LOUD` is not a log level")
        );
        assert!(level(json!([1])).is_err());
    }

    #[test]
    fn dict_config_shapes() {
        assert_eq!(level(json!({"level": "ERROR"})).unwrap(), "error");
        assert_eq!(
            level(json!({"version": 1, "root": {"level": "DEBUG"}, "loggers": {"x": {"level": "ERROR"}}})).unwrap(),
            format!("debug{QUIET}")
        );
        assert_eq!(
            level(json!({"version": 1, "loggers": {"nameko": {"handlers": []}, "app": {"level": "WARNING"}}})).unwrap(),
            WARN
        );
        assert_eq!(
            level(json!({"version": 1, "handlers": {}})).unwrap(),
            format!("info{QUIET}")
        );
    }

    #[test]
    fn rust_log_wins() {
        let config = Config::new().with(LOGGING, "ERROR");
        assert_eq!(
            directive(&config, Some(" nameko_core=trace ")).unwrap(),
            "nameko_core=trace"
        );
    }

    #[test]
    fn credentials_are_redacted_in_every_shape() {
        for (line, expected) in [
            ("amqp://u:secret@h/ up", "amqp://u:***@h/ up"),
            (
                r#"context={"auth_token": "tok-1", "user": 2}"#,
                r#"context={"auth_token": "***", "user": 2}"#,
            ),
            (
                r#"{\"auth_token\": \"tok-1\"}"#,
                r#"{\"auth_token\": \"***\"}"#,
            ),
            ("auth_token: tok-1, next", "auth_token: ***, next"),
            ("auth_token='tok 1' x", "auth_token='***' x"),
            ("no token here", "no token here"),
            ("the auth_token header", "the auth_token header"),
            ("auth_token=", "auth_token="),
            (
                "a auth_token=1 b auth_token=2",
                "a auth_token=*** b auth_token=***",
            ),
            (
                "\x1b[3mauth_token\x1b[0m\x1b[2m=\x1b[0mtok-1 \x1b[3mbroker\x1b[0m\x1b[2m=\x1b[0mamqp://u:pw@h/",
                "\x1b[3mauth_token\x1b[0m\x1b[2m=\x1b[0m*** \x1b[3mbroker\x1b[0m\x1b[2m=\x1b[0mamqp://u:***@h/",
            ),
        ] {
            assert_eq!(redact_line(line), expected, "{line}");
        }
    }
}
