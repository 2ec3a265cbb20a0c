//! Connection options: heartbeat, TLS, connection name, timeouts and reconnection.

use std::fmt;
use std::time::Duration;

use backon::{Backoff, BackoffBuilder as _, ExponentialBuilder};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};

/// nameko's default `HEARTBEAT`, in seconds.
pub const DEFAULT_HEARTBEAT: u16 = 60;

/// How an [`AmqpTransport`](crate::AmqpTransport) connects to RabbitMQ.
///
/// Every option has a default that matches Python nameko: a 60 s heartbeat (unless the
/// URI's `heartbeat` parameter says otherwise), system TLS roots, reconnection with
/// exponential backoff from 100 ms to 2 s.
///
/// ```
/// use std::time::Duration;
/// use nameko_amqp::{AmqpOptions, ReconnectPolicy, Startup};
///
/// let options = AmqpOptions::new()
///     .connection_name("orders-service")
///     .heartbeat(Duration::from_secs(30))
///     .connect_timeout(Duration::from_secs(5))
///     .reconnect(ReconnectPolicy::exponential(
///         Duration::from_millis(100),
///         Duration::from_secs(5),
///     ))
///     .startup(Startup::WaitForBroker);
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct AmqpOptions {
    pub(crate) heartbeat: Option<u16>,
    pub(crate) connection_name: Option<String>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) tls: TlsOptions,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) startup: Startup,
}

impl AmqpOptions {
    /// The defaults.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The heartbeat to negotiate, in whole seconds (zero asks for none, but RabbitMQ may
    /// still impose its own). Takes precedence over the URI's `heartbeat` parameter;
    /// without either, 60 s as nameko's `HEARTBEAT`.
    #[must_use]
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = Some(u16::try_from(heartbeat.as_secs()).unwrap_or(u16::MAX));
        self
    }

    /// The connection name shown by RabbitMQ (`rabbitmqctl list_connections
    /// client_properties`, the management UI).
    #[must_use]
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// How long one connection attempt (TCP, TLS and the AMQP handshake) may take before
    /// it fails with [`TransportError::Timeout`](nameko_transport::TransportError).
    /// Defaults to the URI's `connection_timeout`, or 10 s.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Trusts the certificate authorities in this PEM text for `amqps://`, in addition to
    /// the system's roots (for a broker with a private or self-signed CA).
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<String>) -> Self {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Authenticates to the broker with a client certificate, for `amqps://` listeners
    /// that require one.
    #[must_use]
    pub fn client_identity(mut self, identity: ClientIdentity) -> Self {
        self.tls.identity = Some(identity);
        self
    }

    /// How to reconnect after losing the connection.
    #[must_use]
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// What to do when the broker cannot be reached for the very first connection.
    #[must_use]
    pub fn startup(mut self, startup: Startup) -> Self {
        self.startup = startup;
        self
    }
}

impl fmt::Debug for AmqpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpOptions")
            .field("heartbeat", &self.heartbeat)
            .field("connection_name", &self.connection_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.tls)
            .field("reconnect", &self.reconnect)
            .field("startup", &self.startup)
            .finish()
    }
}

/// TLS settings for `amqps://`.
#[derive(Clone, Default)]
pub(crate) struct TlsOptions {
    pub(crate) ca_pem: Option<String>,
    pub(crate) identity: Option<ClientIdentity>,
}

impl TlsOptions {
    pub(crate) fn to_lapin(&self) -> OwnedTLSConfig {
        OwnedTLSConfig {
            identity: self.identity.as_ref().map(|id| match id {
                ClientIdentity::Pem { certificate, key } => OwnedIdentity::PKCS8 {
                    pem: certificate.clone().into_bytes(),
                    key: key.clone().into_bytes(),
                },
                ClientIdentity::Pkcs12 { der, password } => OwnedIdentity::PKCS12 {
                    der: der.clone(),
                    password: password.clone(),
                },
            }),
            cert_chain: self.ca_pem.clone(),
        }
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("custom_ca", &self.ca_pem.is_some())
            .field("identity", &self.identity)
            .finish()
    }
}

/// A TLS client certificate and its private key.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientIdentity {
    /// A PEM certificate (chain) and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    Pem {
        /// The certificate chain, leaf first.
        certificate: String,
        /// The private key.
        key: String,
    },
    /// A PKCS#12 archive and its password.
    Pkcs12 {
        /// The DER-encoded archive.
        der: Vec<u8>,
        /// The archive's password.
        password: String,
    },
}

impl ClientIdentity {
    /// An identity from a PEM certificate chain and a PEM private key.
    #[must_use]
    pub fn pem(certificate: impl Into<String>, key: impl Into<String>) -> Self {
        Self::Pem {
            certificate: certificate.into(),
            key: key.into(),
        }
    }

    /// An identity from a PKCS#12 archive.
    #[must_use]
    pub fn pkcs12(der: impl Into<Vec<u8>>, password: impl Into<String>) -> Self {
        Self::Pkcs12 {
            der: der.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pem { .. } => "ClientIdentity::Pem(..)",
            Self::Pkcs12 { .. } => "ClientIdentity::Pkcs12(..)",
        })
    }
}

/// What to do when the broker cannot be reached for the very first connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Startup {
    /// Fail at once with the connection error (the default).
    #[default]
    FailFast,
    /// Keep trying with the reconnection backoff until the broker answers (as nameko's
    /// consumers do). Wrap the connect call in a timeout to bound the wait. A refused
    /// login is not retried.
    WaitForBroker,
}

/// When and how fast to reconnect after the connection is lost.
///
/// The delay before attempt `n` (counting from 1) is `initial * multiplier^(n-1)`, capped
/// at `max`.
///
/// ```
/// use std::time::Duration;
/// use nameko_amqp::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::default();
/// assert_eq!(policy.delay(1), Some(Duration::from_millis(100)));
/// assert_eq!(policy.delay(2), Some(Duration::from_millis(200)));
/// assert_eq!(policy.delay(20), Some(Duration::from_secs(2)));
/// assert_eq!(ReconnectPolicy::never().delay(1), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    enabled: bool,
    initial: Duration,
    max: Duration,
    multiplier: f64,
    max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// Exponential from 100 ms, doubling, capped at 2 s, retrying forever: once the
    /// broker is back, a connection is back within about 2 s.
    fn default() -> Self {
        Self::exponential(Duration::from_millis(100), Duration::from_secs(2))
    }
}

impl ReconnectPolicy {
    /// Doubling delays from `initial`, capped at `max`, retrying forever.
    #[must_use]
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Self {
            enabled: true,
            initial,
            max: max.max(initial),
            multiplier: 2.0,
            max_attempts: None,
        }
    }

    /// No reconnection: a lost connection closes the transport
    /// ([`TransportStatus::Closed`](nameko_transport::TransportStatus)).
    #[must_use]
    pub fn never() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Sets the growth factor between delays (at least 1).
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier.is_finite() {
            multiplier.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// Gives up (and closes the transport) after this many failed attempts in a row.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// The delay before reconnection attempt `attempt` (from 1), or `None` when the
    /// policy gives up before it.
    #[must_use]
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        let skipped = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
        self.backoff().nth(skipped)
    }

    /// The delays before attempts 1, 2, ..., ending when the policy gives up: backon's
    /// exponential backoff (without jitter), to the microsecond.
    pub(crate) fn backoff(&self) -> impl Backoff + use<> {
        let builder = ExponentialBuilder::new()
            .with_min_delay(self.initial)
            .with_max_delay(self.max)
            .with_factor(self.multiplier as f32);
        let builder = match (self.enabled, self.max_attempts) {
            (false, _) => builder.with_max_times(0),
            (true, None) => builder.without_max_times(),
            (true, Some(max)) => builder.with_max_times(usize::try_from(max).unwrap_or(usize::MAX)),
        };
        builder.build().map(whole_micros)
    }
}

/// `delay` rounded to the microsecond: backon grows delays in `f32` seconds, which
/// leaves nanoseconds of noise (200.000003 ms for 100 ms doubled).
fn whole_micros(delay: Duration) -> Duration {
    let micros = (delay.as_nanos() + 500) / 1000;
    Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delays as they were computed before backon: `initial * multiplier^(n-1)`,
    /// capped at `max`, in `f64`.
    fn formula(initial: Duration, max: Duration, multiplier: f64, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt - 1).unwrap_or(i32::MAX);
        let delay = initial.as_secs_f64() * multiplier.powi(exponent);
        if !delay.is_finite() || delay >= max.as_secs_f64() {
            max
        } else {
            Duration::from_secs_f64(delay)
        }
    }

    #[test]
    fn delays_follow_the_exponential_formula() {
        for (initial, max, multiplier) in [
            (100, 2_000, 2.0),
            (20, 200, 2.0),
            (250, 30_000, 1.5),
            (1, 60_000, 3.0),
            (500, 500, 1.0),
        ] {
            let (initial, max) = (Duration::from_millis(initial), Duration::from_millis(max));
            let policy = ReconnectPolicy::exponential(initial, max).with_multiplier(multiplier);
            for attempt in 1..=40 {
                let got = policy.delay(attempt).expect("retries forever");
                let want = formula(initial, max, multiplier, attempt);
                let off = got.abs_diff(want);
                assert!(
                    off <= Duration::from_micros(1)
                        || off.as_secs_f64() <= want.as_secs_f64() * 1e-6,
                    "{policy:?} attempt {attempt}: {got:?}, not {want:?}"
                );
            }
        }
    }

    #[test]
    fn delays_end_where_the_policy_gives_up() {
        let policy = ReconnectPolicy::default().with_max_attempts(3);
        let delays: Vec<Duration> = policy.backoff().collect();
        assert_eq!(delays, [100, 200, 400].map(Duration::from_millis));
        assert_eq!(policy.delay(3), Some(Duration::from_millis(400)));
        assert_eq!(policy.delay(4), None);
        assert_eq!(ReconnectPolicy::never().backoff().next(), None);
    }
}
