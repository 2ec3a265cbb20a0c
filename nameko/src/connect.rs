//! The transport chosen by configuration: `AMQP_URI` names the broker.
//!
//! | `AMQP_URI` | Transport |
//! |---|---|
//! | `amqp://user:password@host:port/vhost` (or nameko's `pyamqp://`) | RabbitMQ ([`AmqpTransport`]) |
//! | `amqps://...` | RabbitMQ over TLS |
//! | `memory://` | the process-wide in-process broker ([`MemoryBroker`]) |
//! | `memory://name` | a separate in-process broker called `name` |
//! | unset or null | nameko's default, `amqp://guest:guest@localhost:5672/` ([`connect`]), or the in-process broker ([`connect_or_memory`]) |
//!
//! Every service and proxy of a process configured with the same `memory://` URI shares
//! one broker, so a whole cluster runs in one process without RabbitMQ. Any other scheme
//! is refused with [`ConnectError::UnsupportedScheme`].
//!
//! # RabbitMQ options
//!
//! | Key | Meaning |
//! |---|---|
//! | `HEARTBEAT` | heartbeat in seconds (nameko's key; default 60, or the URI's `?heartbeat=`) |
//! | `AMQP_SSL` | TLS, as nameko passes it to kombu: `true`, or a mapping of options (below). Turns `amqp://` into TLS too (default port 5671) |
//! | `LOGIN_METHOD` | only `PLAIN` and `AMQPLAIN` (the default) are supported; anything else is refused |
//! | `AMQP_STARTUP` | `fail_fast` (default): fail at once when the broker cannot be reached; `wait`: retry with backoff until it answers (for services started before their broker) |
//! | `AMQP_STARTUP_TIMEOUT` | with `wait`, the longest wait in seconds (default 60) |
//!
//! `AMQP_SSL` options, with the names of Python's `ssl.wrap_socket`:
//!
//! | Option | Meaning |
//! |---|---|
//! | `ca_certs` | a PEM file of certificate authorities to trust, besides the system's |
//! | `certfile` | a PEM client certificate (chain), for brokers that ask for one |
//! | `keyfile` | the client certificate's PEM private key (default: read from `certfile`) |
//! | `cert_reqs` | only `CERT_REQUIRED` (or `2`): the broker's certificate is always verified |
//!
//! Other options are refused, so that a setting is never silently ignored.
//!
//! Errors and logs never show the password of a URI.
//!
//! ```no_run
//! use nameko::config::Config;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::new()
//!     .with("AMQP_URI", "amqps://app:s3cret@rabbit.internal/prod")
//!     .with("AMQP_SSL", serde_json::json!({"ca_certs": "/etc/ssl/rabbit-ca.pem"}))
//!     .with("AMQP_STARTUP", "wait");
//! let transport = nameko::connect(&config).await?;
//! # let _ = transport;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use nameko_amqp::{AmqpOptions, AmqpTransport, AmqpUri, ClientIdentity, Startup};
use nameko_core::config::{Config, ConfigError, DEFAULT_AMQP_URI, HEARTBEAT, redact_uri};
use nameko_core::transport::{Transport, TransportError};
use nameko_memory::{MemoryBroker, PublishLog};
use serde_json::Value;

/// `AMQP_SSL`: TLS options for RabbitMQ (`true`, or a mapping; see the [module
/// docs](self)).
pub const AMQP_SSL: &str = "AMQP_SSL";
/// `LOGIN_METHOD`: the SASL mechanism (only `PLAIN`/`AMQPLAIN`).
pub const LOGIN_METHOD: &str = "LOGIN_METHOD";
/// `AMQP_STARTUP` (a nameko-rs extra): `fail_fast` or `wait` for the broker at start-up.
pub const AMQP_STARTUP: &str = "AMQP_STARTUP";
/// `AMQP_STARTUP_TIMEOUT` (a nameko-rs extra): with `AMQP_STARTUP: wait`, the longest
/// wait for the broker, in seconds.
pub const AMQP_STARTUP_TIMEOUT: &str = "AMQP_STARTUP_TIMEOUT";
/// The URI of the process-wide in-process broker.
pub const MEMORY_URI: &str = "memory://";

/// The default of `AMQP_STARTUP_TIMEOUT`.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The transport for `config`'s `AMQP_URI`, connected; nameko's default broker
/// (`amqp://guest:guest@localhost:5672/`) when it is unset.
///
/// ```no_run
/// use nameko::config::Config;
/// use nameko::prelude::*;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::new().with("AMQP_URI", "amqp://guest:guest@localhost:5672/");
/// let proxy = ClusterRpcProxy::start(nameko::connect(&config).await?, &config).await?;
/// let out: String = proxy.service("service_y").call("append_identifier", ("x",)).await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// See [`ConnectError`].
pub async fn connect(config: &Config) -> Result<Arc<dyn Transport>, ConnectError> {
    Connector::from_config(config)?.connect().await
}

/// As [`connect`], but the process-wide in-process broker when `AMQP_URI` is unset: what
/// examples and demos use, so that they run without RabbitMQ unless told otherwise.
///
/// ```
/// use nameko::config::Config;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let transport = nameko::connect_or_memory(&Config::new()).await.unwrap();
/// assert_eq!(transport.endpoint(), "memory://");
/// # });
/// ```
///
/// # Errors
///
/// See [`ConnectError`].
pub async fn connect_or_memory(config: &Config) -> Result<Arc<dyn Transport>, ConnectError> {
    Connector::from_config_or(config, MEMORY_URI)?
        .connect()
        .await
}

/// The process-wide in-process broker that `memory://name` connects to (`""` for
/// `memory://`), made on first use. Tests use it to look inside, or to wait until idle.
///
/// It serves a process for as long as it runs, so it keeps no log of what was published
/// (a log holds on to the messages it records); turn one on with
/// [`MemoryBroker::set_publish_log`] to inspect the traffic.
///
/// ```
/// use nameko::config::Config;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let config = Config::new().with("AMQP_URI", "memory://docs");
/// let _transport = nameko::connect(&config).await.unwrap();
/// assert_eq!(nameko::connect::memory_broker("docs").connections().len(), 1);
/// # });
/// ```
#[must_use]
pub fn memory_broker(name: &str) -> MemoryBroker {
    static BROKERS: OnceLock<Mutex<HashMap<String, MemoryBroker>>> = OnceLock::new();
    let mut brokers = BROKERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    brokers
        .entry(name.to_owned())
        .or_insert_with(|| {
            MemoryBroker::builder()
                .name(if name.is_empty() { "" } else { name })
                .publish_log(PublishLog::Off)
                .build()
        })
        .clone()
}

/// The broker a URI names.
///
/// It displays as a URI without password.
///
/// ```
/// use nameko::connect::Broker;
///
/// let broker = Broker::parse("pyamqp://guest:s3cret@rabbit/")?;
/// assert_eq!(broker.to_string(), "amqp://guest:***@rabbit:5672/%2f");
/// assert!(Broker::parse("memory://tests")?.is_memory());
/// assert!(Broker::parse("kafka://broker").is_err());
/// # Ok::<(), nameko::connect::ConnectError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Broker {
    /// RabbitMQ.
    Amqp(AmqpUri),
    /// The in-process broker of this name (`""` for `memory://`).
    Memory(String),
}

impl Broker {
    /// Parses a broker URI.
    ///
    /// # Errors
    ///
    /// [`ConnectError::UnsupportedScheme`] and [`ConnectError::InvalidUri`], without the
    /// password.
    pub fn parse(uri: &str) -> Result<Self, ConnectError> {
        let Some((scheme, rest)) = uri.split_once("://") else {
            return Err(ConnectError::UnsupportedScheme {
                scheme: String::new(),
                uri: redact_uri(uri),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "amqp" | "amqps" | "pyamqp" => {
                uri.parse::<AmqpUri>()
                    .map(Self::Amqp)
                    .map_err(|error| ConnectError::InvalidUri {
                        uri: redact_uri(uri),
                        reason: error.to_string(),
                    })
            }
            "memory" => {
                let name = rest.split(['?', '#']).next().unwrap_or_default();
                Ok(Self::Memory(name.trim_end_matches('/').to_owned()))
            }
            _ => Err(ConnectError::UnsupportedScheme {
                scheme: scheme.to_owned(),
                uri: redact_uri(uri),
            }),
        }
    }

    /// Whether it is the in-process broker.
    #[must_use]
    pub fn is_memory(&self) -> bool {
        matches!(self, Self::Memory(_))
    }
}

impl fmt::Display for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Amqp(uri) => write!(f, "{uri}"),
            Self::Memory(name) => write!(f, "{MEMORY_URI}{name}"),
        }
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Broker({self})")
    }
}

/// Connects transports to the broker a configuration names: the configuration is read
/// (and TLS files loaded) once, then [`connect`](Connector::connect) opens as many
/// connections as needed, e.g. one per service.
///
/// ```no_run
/// use nameko::config::Config;
/// use nameko::connect::Connector;
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let connector = Connector::from_config(&Config::new().with("AMQP_URI", "amqp://localhost"))?;
/// println!("broker: {}", connector.broker());
/// let orders = connector.connect_as("orders").await?;
/// let billing = connector.connect_as("billing").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Connector {
    broker: Broker,
    options: AmqpOptions,
    startup: Startup,
    startup_timeout: Duration,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("broker", &self.broker)
            .field("options", &self.options)
            .field("startup_timeout", &self.startup_timeout)
            .finish()
    }
}

impl Connector {
    /// Reads the broker and its options from `config`; nameko's default broker when
    /// `AMQP_URI` is unset.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Config`] for a value of the wrong type or an unsupported option,
    /// [`ConnectError::UnsupportedScheme`], [`ConnectError::InvalidUri`],
    /// [`ConnectError::Tls`] for a TLS file that cannot be read.
    pub fn from_config(config: &Config) -> Result<Self, ConnectError> {
        Self::from_config_or(config, DEFAULT_AMQP_URI)
    }

    /// As [`Connector::from_config`], with `default_uri` when `AMQP_URI` is unset.
    ///
    /// # Errors
    ///
    /// As [`Connector::from_config`].
    pub fn from_config_or(config: &Config, default_uri: &str) -> Result<Self, ConnectError> {
        let uri = config.amqp_uri()?.unwrap_or(default_uri);
        let tls = tls_options(config)?;
        // With AMQP_SSL, every plain URI of a kombu-style `;` list turns to amqps://.
        let uri = match &tls {
            Some(_) => uri
                .split(';')
                .map(|part| match plain_amqp_rest(part.trim()) {
                    Some(rest) => format!("amqps://{rest}"),
                    None => part.to_owned(),
                })
                .collect::<Vec<_>>()
                .join(";"),
            None => uri.to_owned(),
        };
        let broker = Broker::parse(&uri)?;
        let mut options = AmqpOptions::new();
        if config.get(HEARTBEAT).is_some_and(|v| !v.is_null()) {
            options = options.heartbeat(Duration::from_secs(config.heartbeat()?.into()));
        }
        if let Some(tls) = tls {
            if let Some(ca) = tls.ca_pem {
                options = options.ca_certificate_pem(ca);
            }
            if let Some(identity) = tls.identity {
                options = options.client_identity(identity);
            }
        }
        match config.get_str(LOGIN_METHOD)? {
            None => {}
            Some(method)
                if method.eq_ignore_ascii_case("PLAIN")
                    || method.eq_ignore_ascii_case("AMQPLAIN") => {}
            Some(method) => {
                return Err(invalid(
                    LOGIN_METHOD,
                    format!("`{method}` is not supported (PLAIN and AMQPLAIN are)"),
                ));
            }
        }
        let startup = match config.get_str(AMQP_STARTUP)? {
            None => Startup::FailFast,
            Some(s) => match s.to_ascii_lowercase().replace('-', "_").as_str() {
                "fail_fast" | "failfast" => Startup::FailFast,
                "wait" | "wait_for_broker" => Startup::WaitForBroker,
                _ => {
                    return Err(invalid(
                        AMQP_STARTUP,
                        format!("`{s}` is neither `fail_fast` nor `wait`"),
                    ));
                }
            },
        };
        let startup_timeout = config
            .get_seconds(AMQP_STARTUP_TIMEOUT)?
            .unwrap_or(DEFAULT_STARTUP_TIMEOUT);
        Ok(Self {
            broker,
            options: options.startup(startup),
            startup,
            startup_timeout,
        })
    }

    /// The broker it connects to.
    #[must_use]
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// Opens a connection.
    ///
    /// # Errors
    ///
    /// [`ConnectError::Transport`] when the broker cannot be reached or refuses the
    /// login; with `AMQP_STARTUP: wait`, [`ConnectError::StartupTimeout`] after
    /// `AMQP_STARTUP_TIMEOUT`.
    pub async fn connect(&self) -> Result<Arc<dyn Transport>, ConnectError> {
        self.open(self.options.clone()).await
    }

    /// Opens a connection that RabbitMQ shows under this name (in `rabbitmqctl
    /// list_connections` and the management UI); a service runner names each service's
    /// connection after the service.
    ///
    /// # Errors
    ///
    /// As [`Connector::connect`].
    pub async fn connect_as(&self, name: &str) -> Result<Arc<dyn Transport>, ConnectError> {
        self.open(self.options.clone().connection_name(name)).await
    }

    async fn open(&self, options: AmqpOptions) -> Result<Arc<dyn Transport>, ConnectError> {
        let uri = match &self.broker {
            Broker::Memory(name) => return Ok(Arc::new(memory_broker(name).connect())),
            Broker::Amqp(uri) => uri.clone(),
        };
        let broker = self.broker.to_string();
        let connecting = AmqpTransport::connect_uri(uri, options);
        let result = match self.startup {
            Startup::WaitForBroker => {
                tracing::info!(%broker, timeout = ?self.startup_timeout, "waiting for the broker");
                tokio::time::timeout(self.startup_timeout, connecting)
                    .await
                    .map_err(|_| ConnectError::StartupTimeout {
                        broker: broker.clone(),
                        waited: self.startup_timeout,
                    })?
            }
            _ => connecting.await,
        };
        match result {
            Ok(transport) => Ok(Arc::new(transport)),
            Err(error) => Err(ConnectError::Transport { broker, error }),
        }
    }
}

/// The part after `amqp://` or `pyamqp://`, for a URI to be upgraded to TLS.
fn plain_amqp_rest(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once("://")?;
    (scheme.eq_ignore_ascii_case("amqp") || scheme.eq_ignore_ascii_case("pyamqp")).then_some(rest)
}

struct Tls {
    ca_pem: Option<String>,
    identity: Option<ClientIdentity>,
}

/// `AMQP_SSL`: `None` for no TLS (unset, null, false, or an empty mapping).
fn tls_options(config: &Config) -> Result<Option<Tls>, ConnectError> {
    let options = match config.get(AMQP_SSL) {
        None | Some(Value::Null | Value::Bool(false)) => return Ok(None),
        Some(Value::Bool(true)) => {
            return Ok(Some(Tls {
                ca_pem: None,
                identity: None,
            }));
        }
        Some(Value::Object(options)) if options.is_empty() => return Ok(None),
        Some(Value::Object(options)) => options,
        Some(other) => {
            return Err(ConnectError::Config(ConfigError::WrongType {
                key: AMQP_SSL.to_owned(),
                expected: "true, false or a mapping of TLS options",
                found: redact_uri(&other.to_string()),
            }));
        }
    };
    let mut paths: HashMap<&str, &str> = HashMap::new();
    for (key, value) in options {
        match (key.as_str(), value) {
            ("ca_certs" | "certfile" | "keyfile", Value::String(path)) => {
                paths.insert(key, path);
            }
            ("ca_certs" | "certfile" | "keyfile", Value::Null) => {}
            ("ca_certs" | "certfile" | "keyfile", _) => {
                return Err(invalid(
                    &format!("{AMQP_SSL}.{key}"),
                    "must be a file path".to_owned(),
                ));
            }
            ("cert_reqs", v) if is_cert_required(v) => {}
            ("cert_reqs", _) => {
                return Err(invalid(
                    &format!("{AMQP_SSL}.cert_reqs"),
                    "only CERT_REQUIRED is supported: the broker's certificate is always verified"
                        .to_owned(),
                ));
            }
            (other, _) => {
                return Err(invalid(
                    &format!("{AMQP_SSL}.{other}"),
                    "unsupported TLS option (supported: ca_certs, certfile, keyfile, cert_reqs)"
                        .to_owned(),
                ));
            }
        }
    }
    let read = |key: &str| -> Result<Option<String>, ConnectError> {
        let Some(path) = paths.get(key) else {
            return Ok(None);
        };
        std::fs::read_to_string(path)
            .map(Some)
            .map_err(|error| ConnectError::Tls {
                key: format!("{AMQP_SSL}.{key}"),
                path: PathBuf::from(path),
                error: Arc::new(error),
            })
    };
    let ca_pem = read("ca_certs")?;
    let identity = match (read("certfile")?, read("keyfile")?) {
        (Some(certificate), Some(key)) => Some(ClientIdentity::pem(certificate, key)),
        (Some(both), None) => Some(ClientIdentity::pem(both.clone(), both)),
        (None, Some(_)) => {
            return Err(invalid(
                &format!("{AMQP_SSL}.keyfile"),
                "a key file needs a `certfile`".to_owned(),
            ));
        }
        (None, None) => None,
    };
    Ok(Some(Tls { ca_pem, identity }))
}

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

fn invalid(key: &str, reason: String) -> ConnectError {
    ConnectError::Config(ConfigError::Invalid {
        key: key.to_owned(),
        reason,
    })
}

/// Why no transport could be made. No message shows a URI's password.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A configuration value of the wrong type, or an option that is not supported.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `AMQP_URI` has a scheme no transport handles.
    #[error(
        "unsupported broker URI `{uri}`: the scheme must be amqp://, amqps://, pyamqp:// or memory://"
    )]
    UnsupportedScheme {
        /// The scheme (empty when the text is no URI).
        scheme: String,
        /// The URI, redacted.
        uri: String,
    },
    /// An `amqp://` URI that does not parse.
    #[error("invalid broker URI `{uri}`: {reason}")]
    InvalidUri {
        /// The URI, redacted.
        uri: String,
        /// What is wrong.
        reason: String,
    },
    /// A TLS file of `AMQP_SSL` cannot be read.
    #[error("`{key}`: cannot read `{}`: {error}", path.display())]
    Tls {
        /// The option, e.g. `AMQP_SSL.ca_certs`.
        key: String,
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: Arc<std::io::Error>,
    },
    /// The broker cannot be reached, or refused the connection.
    #[error("cannot connect to {broker}: {}", transport_reason(.error))]
    Transport {
        /// The broker, redacted.
        broker: String,
        /// The transport's error.
        error: TransportError,
    },
    /// With `AMQP_STARTUP: wait`, the broker did not answer within
    /// `AMQP_STARTUP_TIMEOUT`.
    #[error("the broker {broker} did not answer within {waited:?} (AMQP_STARTUP_TIMEOUT)")]
    StartupTimeout {
        /// The broker, redacted.
        broker: String,
        /// How long it waited.
        waited: Duration,
    },
}

/// A transport error without the words the message already says.
fn transport_reason(error: &TransportError) -> String {
    match error {
        TransportError::Connect(reason) => reason.clone(),
        other => other.to_string(),
    }
}

impl ConnectError {
    /// Whether the configuration is at fault (rather than the broker or the network).
    #[must_use]
    pub fn is_config_error(&self) -> bool {
        matches!(
            self,
            Self::Config(_)
                | Self::UnsupportedScheme { .. }
                | Self::InvalidUri { .. }
                | Self::Tls { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn brokers_parse_by_scheme() {
        assert_eq!(
            Broker::parse("memory://").unwrap(),
            Broker::Memory(String::new())
        );
        assert_eq!(
            Broker::parse("memory://a/").unwrap(),
            Broker::Memory("a".to_owned())
        );
        assert_eq!(
            Broker::parse("MEMORY://b?x=1").unwrap().to_string(),
            "memory://b"
        );
        for uri in ["amqp://h", "AMQP://h", "pyamqp://h", "amqps://h"] {
            assert!(matches!(Broker::parse(uri), Ok(Broker::Amqp(_))), "{uri}");
        }
    }

    #[test]
    fn unsupported_schemes_are_refused_without_the_password() {
        let err = Broker::parse("redis://user:pw123@host:6379/0").unwrap_err();
        assert!(
            matches!(&err, ConnectError::UnsupportedScheme { scheme, .. } if scheme == "redis")
        );
        let text = err.to_string();
        assert!(text.contains("redis://user:***@host:6379/0"), "{text}");
        assert!(!text.contains("pw123"));
        let err = Broker::parse("not a uri").unwrap_err();
        assert!(matches!(err, ConnectError::UnsupportedScheme { .. }));
        let err = Broker::parse("amqp://user:pw123@host:notaport/").unwrap_err();
        assert!(matches!(err, ConnectError::InvalidUri { .. }), "{err:?}");
        assert!(!err.to_string().contains("pw123"), "{err}");
    }

    #[test]
    fn ssl_turns_amqp_into_amqps() {
        let config = Config::new()
            .with("AMQP_URI", "pyamqp://u:p@rabbit/")
            .with(AMQP_SSL, true);
        let connector = Connector::from_config(&config).unwrap();
        assert_eq!(
            connector.broker().to_string(),
            "amqps://u:***@rabbit:5671/%2f"
        );
        let plain = Connector::from_config(&config.clone().with(AMQP_SSL, false)).unwrap();
        assert_eq!(plain.broker().to_string(), "amqp://u:***@rabbit:5672/%2f");
        let empty = Connector::from_config(&config.with(AMQP_SSL, json!({}))).unwrap();
        assert_eq!(empty.broker().to_string(), "amqp://u:***@rabbit:5672/%2f");
    }

    #[test]
    fn ssl_options_are_checked() {
        let base = Config::new().with("AMQP_URI", "amqps://rabbit/");
        let err = |ssl: Value| {
            Connector::from_config(&base.clone().with(AMQP_SSL, ssl))
                .unwrap_err()
                .to_string()
        };
        assert!(err(json!({"cert_reqs": 0})).contains("only CERT_REQUIRED"));
        assert!(err(json!({"ciphers": "ALL"})).contains("AMQP_SSL.ciphers"));
        assert!(err(json!({"ca_certs": 5})).contains("must be a file path"));
        assert!(err(json!("yes")).contains("must be true, false or a mapping"));
        let missing = err(json!({"ca_certs": "/nonexistent/ca.pem"}));
        assert!(missing.contains("AMQP_SSL.ca_certs") && missing.contains("/nonexistent/ca.pem"));
        let dir = std::env::temp_dir().join(format!("nameko-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let ok = base.clone().with(
            AMQP_SSL,
            json!({"ca_certs": ca.to_str().unwrap(), "cert_reqs": "ssl.CERT_REQUIRED"}),
        );
        assert!(Connector::from_config(&ok).is_ok());
        assert!(err(json!({"keyfile": ca.to_str().unwrap()})).contains("needs a `certfile`"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn startup_login_and_heartbeat_options_are_checked() {
        let base = Config::new().with("AMQP_URI", "amqp://rabbit/");
        let connector =
            |key: &str, value: Value| Connector::from_config(&base.clone().with(key, value));
        assert_eq!(
            connector(AMQP_STARTUP, json!("wait")).unwrap().startup,
            Startup::WaitForBroker
        );
        assert_eq!(
            connector(AMQP_STARTUP, json!("FAIL-FAST")).unwrap().startup,
            Startup::FailFast
        );
        assert!(
            connector(AMQP_STARTUP, json!("later"))
                .unwrap_err()
                .to_string()
                .contains("AMQP_STARTUP")
        );
        assert!(
            connector(LOGIN_METHOD, json!("EXTERNAL"))
                .unwrap_err()
                .to_string()
                .contains("EXTERNAL")
        );
        assert!(connector(LOGIN_METHOD, json!("AMQPLAIN")).is_ok());
        assert!(
            connector(HEARTBEAT, json!(-1))
                .unwrap_err()
                .to_string()
                .contains("HEARTBEAT")
        );
        assert!(connector(AMQP_STARTUP_TIMEOUT, json!("soon")).is_err());
    }

    #[test]
    fn unset_uri_takes_the_default() {
        let connector = Connector::from_config(&Config::new()).unwrap();
        assert_eq!(
            connector.broker().to_string(),
            "amqp://guest:***@localhost:5672/%2f"
        );
        let memory = Connector::from_config_or(&Config::new(), MEMORY_URI).unwrap();
        assert_eq!(memory.broker(), &Broker::Memory(String::new()));
        let null = Config::new().with("AMQP_URI", Value::Null);
        assert!(!Connector::from_config(&null).unwrap().broker().is_memory());
    }
}
