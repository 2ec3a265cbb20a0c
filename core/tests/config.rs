//! Loading config files as `nameko run --config FILE --define KEY=VALUE` does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use nameko_core::config::{Config, ConfigLoadError, Env, ProcessEnv, RetryPolicy};
use serde_json::json;

/// The config the Python benchmark services run with.
const BENCH_CONFIG: &str = "\
AMQP_URI: ${AMQP_URI:amqp://guest:guest@127.0.0.1:5672/}
max_workers: ${MAX_WORKERS:10}
parent_calls_tracked: 10
";

/// A config using every key nameko-rs reads, the way deployments write them.
const FULL_CONFIG: &str = "\
# Broker: the password comes from the environment.
AMQP_URI: amqp://${RABBIT_USER:guest}:${RABBIT_PASSWORD:guest}@${RABBIT_HOST:localhost}:${RABBIT_PORT:5672}/${RABBIT_VHOST:}
WEB_SERVER_ADDRESS: ${WEB_ADDRESS:0.0.0.0:8000}
rpc_exchange: ${RPC_EXCHANGE:nameko-rpc}
serializer: json
ACCEPT: ${ACCEPT:[json]}
max_workers: ${MAX_WORKERS:10}
PREFETCH_COUNT: ${PREFETCH:20}
parent_calls_tracked: 5
HEARTBEAT: ${HEARTBEAT:30}
AUTO_DELETE_EVENT_EXCHANGES: ${AUTO_DELETE:no}
DECLARE_EVENT_EXCHANGES: ${DECLARE:yes}
RPC_TIMEOUT: ${RPC_TIMEOUT:2.5}
SHUTDOWN_TIMEOUT: 10
RPC_RETRY_POLICY: &retry
  max_retries: ${RETRIES:5}
  interval_start: 0.5
  interval_step: 0.5
  interval_max: 2
TRANSPORT_OPTIONS:
  <<: *retry
  max_retries: 3
LOGGING:
  version: 1
  handlers:
    console:
      class: logging.StreamHandler
  root:
    level: ${LOG_LEVEL:INFO}
    handlers: [console]
SERVICE_TOKEN: !raw_env_var \"${SERVICE_TOKEN:0123}\"
LITERAL: '${NOT_SUBSTITUTED}'
";

/// A file in this test binary's scratch directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("config-{}-{name}", std::process::id()));
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(file: &TempFile, vars: &impl Env) -> Config {
    Config::from_yaml_file(&file.0, vars).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_bench_config_takes_its_defaults() {
    let file = TempFile::new("bench.yaml", BENCH_CONFIG);
    let config = load(&file, &env(&[]));
    assert_eq!(
        config.to_value(),
        json!({
            "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
            "max_workers": 10,
            "parent_calls_tracked": 10,
        })
    );
    assert_eq!(
        config.amqp_uri().ok().flatten(),
        Some("amqp://guest:guest@127.0.0.1:5672/")
    );
    assert_eq!(config.max_workers().ok(), Some(10));
    assert_eq!(config.parent_calls_tracked().ok(), Some(10));
}

#[test]
fn the_bench_config_reads_the_environment() {
    let file = TempFile::new("bench-env.yaml", BENCH_CONFIG);
    let config = load(
        &file,
        &env(&[("AMQP_URI", "memory://"), ("MAX_WORKERS", "4")]),
    );
    assert_eq!(config.amqp_uri().ok().flatten(), Some("memory://"));
    assert_eq!(config.max_workers().ok(), Some(4));
}

#[test]
fn a_full_config_with_defaults() {
    let file = TempFile::new("full.yaml", FULL_CONFIG);
    let config = load(&file, &env(&[]));
    assert_eq!(
        config.amqp_uri().ok().flatten(),
        Some("amqp://guest:guest@localhost:5672/")
    );
    assert_eq!(
        config.get_str("WEB_SERVER_ADDRESS").ok().flatten(),
        Some("0.0.0.0:8000")
    );
    assert_eq!(config.rpc_exchange().ok(), Some("nameko-rpc"));
    assert_eq!(config.serializer().ok(), Some("json"));
    assert_eq!(config.get("ACCEPT"), Some(&json!(["json"])));
    assert_eq!(config.max_workers().ok(), Some(10));
    assert_eq!(config.prefetch_count().ok(), Some(20));
    assert_eq!(config.parent_calls_tracked().ok(), Some(5));
    assert_eq!(config.heartbeat().ok(), Some(30));
    assert_eq!(config.auto_delete_event_exchanges().ok(), Some(false));
    assert!(config.declare_event_exchanges());
    assert_eq!(
        config.get_seconds("RPC_TIMEOUT").ok(),
        Some(Some(Duration::from_millis(2500)))
    );
    assert_eq!(
        config.shutdown_timeout().ok(),
        Some(Duration::from_secs(10))
    );
    assert_eq!(
        config.rpc_retry_policy().ok(),
        Some(RetryPolicy::new(
            5,
            Duration::from_millis(500),
            Duration::from_millis(500),
            Duration::from_secs(2),
        ))
    );
    assert_eq!(
        config.get("TRANSPORT_OPTIONS"),
        Some(
            &json!({"max_retries": 3, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 2})
        )
    );
    assert_eq!(
        config.get("LOGGING"),
        Some(&json!({
            "version": 1,
            "handlers": {"console": {"class": "logging.StreamHandler"}},
            "root": {"level": "INFO", "handlers": ["console"]},
        }))
    );
    assert_eq!(config.get_str("SERVICE_TOKEN").ok().flatten(), Some("0123"));
    assert_eq!(
        config.get_str("LITERAL").ok().flatten(),
        Some("${NOT_SUBSTITUTED}")
    );
}

#[test]
fn a_full_config_from_the_environment() {
    let file = TempFile::new("full-env.yaml", FULL_CONFIG);
    let vars = env(&[
        ("RABBIT_USER", "svc"),
        ("RABBIT_PASSWORD", "s3cret"),
        ("RABBIT_HOST", "rabbit"),
        ("RABBIT_VHOST", "prod"),
        ("ACCEPT", "[json, msgpack]"),
        ("PREFETCH", "100"),
        ("AUTO_DELETE", "true"),
        ("DECLARE", "false"),
        ("RPC_TIMEOUT", ""),
        ("RETRIES", "0"),
        ("LOG_LEVEL", "DEBUG"),
        ("SERVICE_TOKEN", "0042"),
    ]);
    let config = load(&file, &vars);
    assert_eq!(
        config.amqp_uri().ok().flatten(),
        Some("amqp://svc:s3cret@rabbit:5672/prod")
    );
    assert_eq!(config.get("ACCEPT"), Some(&json!(["json", "msgpack"])));
    assert_eq!(config.prefetch_count().ok(), Some(100));
    assert_eq!(config.auto_delete_event_exchanges().ok(), Some(true));
    assert!(!config.declare_event_exchanges());
    // Set but empty: null (the default is not used).
    assert_eq!(config.get("RPC_TIMEOUT"), Some(&json!(null)));
    assert_eq!(
        config.rpc_retry_policy().map(|p| p.max_retries).ok(),
        Some(0)
    );
    assert_eq!(
        config.get("LOGGING").map(|l| &l["root"]["level"]),
        Some(&json!("DEBUG"))
    );
    // `!raw_env_var` keeps the leading zeros of a string that looks like a number.
    assert_eq!(config.get_str("SERVICE_TOKEN").ok().flatten(), Some("0042"));
}

#[test]
fn defines_override_the_file() {
    let file = TempFile::new("defines.yaml", BENCH_CONFIG);
    let mut config = load(&file, &env(&[("MAX_WORKERS", "4")]));
    config
        .apply_defines([
            "max_workers=2",
            "AMQP_URI=memory://",
            "RPC_TIMEOUT=5",
            "DEBUG",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        config.to_value(),
        json!({
            "AMQP_URI": "memory://",
            "max_workers": 2,
            "parent_calls_tracked": 10,
            "RPC_TIMEOUT": 5,
            "DEBUG": true,
        })
    );
    assert_eq!(
        config.get_seconds("RPC_TIMEOUT").ok(),
        Some(Some(Duration::from_secs(5)))
    );
}

#[test]
fn show_config_prints_the_substituted_yaml_without_passwords() {
    let file = TempFile::new("show.yaml", BENCH_CONFIG);
    let config = load(
        &file,
        &env(&[("AMQP_URI", "amqps://svc:s3cret@rabbit:5671/prod")]),
    );
    assert_eq!(
        config.to_yaml_string(),
        "AMQP_URI: amqps://svc:s3cret@rabbit:5671/prod\nmax_workers: 10\nparent_calls_tracked: 10\n"
    );
    let shown = config.redacted().to_yaml_string();
    assert_eq!(
        shown,
        "AMQP_URI: amqps://svc:***@rabbit:5671/prod\nmax_workers: 10\nparent_calls_tracked: 10\n"
    );
    assert!(!shown.contains("s3cret"));
    // What show-config prints loads back to the same (redacted) config.
    let back = Config::from_yaml_str(&shown, &env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, config.redacted());
}

#[test]
fn errors_name_the_file_line_and_key() {
    let file = TempFile::new("broken.yaml", "AMQP_URI: memory://\nmax_workers: [1, 2\n");
    let error = Config::from_yaml_file(&file.0, &env(&[])).map(|_| ());
    let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
    let expected = format!("{}:3:1: invalid YAML: ", file.0.display());
    assert!(message.starts_with(&expected), "{message}");

    let file = TempFile::new(
        "unbalanced.yaml",
        "a: 1\nAMQP_URI: ${AMQP_URI:amqp://u:pw@host\n",
    );
    let error = Config::from_yaml_file(&file.0, &env(&[])).map(|_| ());
    assert!(
        matches!(&error, Err(ConfigLoadError::UnbalancedReference { at, key, .. })
            if key == "AMQP_URI" && at.line == 2 && at.column == 11 && at.file.as_ref() == Some(&file.0)),
        "{error:?}"
    );
    let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(!message.contains("pw@"), "{message}");

    let missing = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("no-such-config.yaml");
    let error = Config::from_yaml_file(&missing, &env(&[])).map(|_| ());
    assert!(
        matches!(&error, Err(ConfigLoadError::Read { path, .. }) if *path == missing),
        "{error:?}"
    );
}

#[test]
fn the_process_environment_is_read_through_process_env() {
    let file = TempFile::new(
        "process.yaml",
        "path: !raw_env_var \"${PATH}\"\nunset: ${NAMEKO_RS_TEST_SURELY_UNSET:fallback}\n",
    );
    let config = Config::from_yaml_file(&file.0, &ProcessEnv).unwrap_or_else(|e| panic!("{e}"));
    let path = std::env::var_os("PATH")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_eq!(config.get_str("path").ok().flatten(), Some(path.as_str()));
    assert_eq!(config.get_str("unset").ok().flatten(), Some("fallback"));
}

#[test]
fn a_full_config_as_typed_settings() {
    use nameko_core::config::{AmqpStartup, Settings};
    use tracing::level_filters::LevelFilter;

    let file = TempFile::new("settings.yaml", FULL_CONFIG);
    let config = load(&file, &env(&[("RABBIT_PASSWORD", "s3cret")]));
    let settings = config.settings().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        settings.amqp_uri.as_deref(),
        Some("amqp://guest:s3cret@localhost:5672/")
    );
    assert_eq!(settings.rpc_exchange, "nameko-rpc");
    assert_eq!(settings.max_workers, 10);
    assert_eq!(settings.prefetch_count, 20);
    assert_eq!(settings.parent_calls_tracked, 5);
    assert_eq!(settings.heartbeat, Some(30));
    assert!(!settings.auto_delete_event_exchanges);
    assert!(settings.declare_event_exchanges);
    assert_eq!(settings.rpc_timeout, Duration::from_millis(2500));
    assert_eq!(settings.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(
        settings.rpc_retry_policy,
        RetryPolicy::new(
            5,
            Duration::from_millis(500),
            Duration::from_millis(500),
            Duration::from_secs(2),
        )
    );
    assert_eq!(settings.amqp_startup, AmqpStartup::FailFast);
    assert_eq!(settings.logging, Some(LevelFilter::INFO));
    assert!(!format!("{settings:?}").contains("s3cret"));
    assert_eq!(config.extract::<Settings>().as_ref(), Ok(&settings));
}

#[test]
fn extensions_read_their_own_keys() {
    use nameko_core::config::{ConfigError, seconds};
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Retry {
        max_retries: u32,
        #[serde(with = "seconds")]
        interval_max: Duration,
    }

    #[derive(Debug, Deserialize)]
    struct Extension {
        #[serde(rename = "WEB_SERVER_ADDRESS")]
        address: std::net::SocketAddr,
        #[serde(rename = "ACCEPT")]
        accept: Vec<String>,
        #[serde(rename = "SERVICE_TOKEN")]
        token: String,
        #[serde(rename = "TRANSPORT_OPTIONS")]
        retry: Retry,
    }

    let file = TempFile::new("extension.yaml", FULL_CONFIG);
    let config = load(&file, &env(&[]));
    let extension: Extension = config.extract().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(extension.address.port(), 8000);
    assert_eq!(extension.accept, ["json"]);
    assert_eq!(extension.token, "0123");
    assert_eq!(extension.retry.max_retries, 3);
    assert_eq!(extension.retry.interval_max, Duration::from_secs(2));

    let config = load(&file, &env(&[("WEB_ADDRESS", "amqp://u:pw@nowhere")]));
    let error = config.extract::<Extension>().map(|_| ());
    assert!(
        matches!(&error, Err(ConfigError::Deserialize { key, .. }) if key == "WEB_SERVER_ADDRESS"),
        "{error:?}"
    );
    let message = error.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert!(!message.contains("pw@"), "{message}");
}
