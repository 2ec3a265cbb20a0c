//! AMQP URIs: parsing, and printing with the password redacted.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use nameko_transport::redact::redact_secret;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use url::{Host, Url};

/// Why an AMQP URI was refused. The message never contains the URI itself, so it can be
/// logged without leaking a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AMQP URI: {reason}")]
pub struct InvalidUri {
    reason: String,
}

impl InvalidUri {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// Whether the connection is plain TCP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `amqp://` (and nameko's `pyamqp://`): plain TCP, port 5672 by default.
    Amqp,
    /// `amqps://`: TLS, port 5671 by default.
    Amqps,
}

impl Scheme {
    /// The scheme as written in a URI.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Amqp => "amqp",
            Self::Amqps => "amqps",
        }
    }

    /// The broker's usual port for this scheme.
    #[must_use]
    pub fn default_port(self) -> u16 {
        match self {
            Self::Amqp => 5672,
            Self::Amqps => 5671,
        }
    }
}

/// The order in which the brokers of a URI listing several are tried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failover {
    /// The first connection tries the brokers in the order written; a reconnection
    /// starts with the broker after the one that was lost and tries it last (kombu's
    /// `round-robin`).
    #[default]
    InOrder,
    /// As `InOrder`, in an order shuffled for each connection, so that many clients with
    /// the same list spread over the brokers (kombu's `shuffle`).
    Shuffle,
}

/// One broker of an [`AmqpUri`]: a host (an IPv6 address without brackets) and a port.
///
/// ```
/// use nameko_amqp::AmqpUri;
///
/// let uri: AmqpUri = "amqp://guest:guest@rabbit-1,rabbit-2:5673,[::1]/".parse()?;
/// let brokers: Vec<String> = uri.brokers().iter().map(ToString::to_string).collect();
/// assert_eq!(brokers, ["rabbit-1:5672", "rabbit-2:5673", "[::1]:5672"]);
/// # Ok::<(), nameko_amqp::InvalidUri>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    host: String,
    port: u16,
}

impl BrokerAddress {
    /// The host name or IP address.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A parsed AMQP URI: `amqp[s]://user:password@host:port/vhost?heartbeat=60`.
///
/// # Several brokers
///
/// The nodes of a RabbitMQ cluster are listed in the host part, separated by commas
/// (`amqp://user:pass@rabbit-1:5672,rabbit-2:5672,rabbit-3:5672/vhost`), or as whole URIs
/// separated by `;`, as kombu (and so Python nameko) writes them
/// (`amqp://user:pass@rabbit-1//;amqp://user:pass@rabbit-2//`; they must then agree on
/// scheme, credentials and virtual host). A host without a port gets the scheme's port.
/// The transport connects to the first broker that answers and, when it loses that
/// connection, to any other ([`Failover`]: in the order written, or shuffled with the
/// query parameter `failover=shuffle`; kombu's names `round-robin` and `shuffle` are
/// accepted too).
///
/// ```
/// use nameko_amqp::{AmqpUri, Failover};
///
/// let uri: AmqpUri = "amqp://app:s3cret@10.0.0.1:5672,10.0.0.2,10.0.0.3:5673/prod?failover=shuffle".parse()?;
/// assert_eq!(uri.brokers().len(), 3);
/// assert_eq!(uri.failover(), Failover::Shuffle);
/// assert_eq!(uri.to_string(), "amqp://app:***@10.0.0.1:5672,10.0.0.2:5672,10.0.0.3:5673/prod");
///
/// let kombu: AmqpUri = "amqp://app:s3cret@r1//;amqp://app:s3cret@r2:5673//".parse()?;
/// assert_eq!(kombu.to_string(), "amqp://app:***@r1:5672,r2:5673/%2f");
/// # Ok::<(), nameko_amqp::InvalidUri>(())
/// ```
///
/// The vhost follows kombu, and therefore Python nameko: an empty path (`amqp://host` or
/// `amqp://host/`) means the default vhost `/`, and `%2f` or `//` spell `/` explicitly.
/// Missing credentials default to `guest`/`guest`. The query parameters `heartbeat`
/// (seconds), `connection_timeout` (milliseconds), `channel_max` and `frame_max` are read;
/// others are ignored. `pyamqp://` is accepted as a synonym of `amqp://`, since nameko
/// configurations often use it.
///
/// `Display` and `Debug` never show the password:
///
/// ```
/// use nameko_amqp::AmqpUri;
///
/// let uri: AmqpUri = "amqp://guest:s3cret@rabbit:5672/%2f?heartbeat=30".parse()?;
/// assert_eq!(uri.to_string(), "amqp://guest:***@rabbit:5672/%2f");
/// assert_eq!(uri.vhost(), "/");
/// assert_eq!(uri.heartbeat(), Some(30));
/// assert!(!format!("{uri:?}").contains("s3cret"));
/// # Ok::<(), nameko_amqp::InvalidUri>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AmqpUri {
    scheme: Scheme,
    hosts: Vec<BrokerAddress>,
    failover: Failover,
    username: String,
    password: String,
    vhost: String,
    heartbeat: Option<u16>,
    connection_timeout: Option<Duration>,
    channel_max: Option<u16>,
    frame_max: Option<u32>,
}

impl AmqpUri {
    /// Whether the connection uses TLS (`amqps://`).
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.scheme == Scheme::Amqps
    }

    /// The scheme.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The (first) broker's host name or IP address (an IPv6 address without brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.hosts[0].host
    }

    /// The (first) broker's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.hosts[0].port
    }

    /// Every broker the URI lists, in the order written (never empty).
    #[must_use]
    pub fn brokers(&self) -> &[BrokerAddress] {
        &self.hosts
    }

    /// The order in which the brokers are tried (`failover` query parameter).
    #[must_use]
    pub fn failover(&self) -> Failover {
        self.failover
    }

    /// The same URI with the brokers tried in this order instead.
    #[must_use]
    pub fn with_failover(mut self, failover: Failover) -> Self {
        self.failover = failover;
        self
    }

    /// The user name.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The password (do not print it).
    #[cfg(feature = "management")]
    pub(crate) fn password(&self) -> &str {
        &self.password
    }

    /// The virtual host, decoded (`/` for `%2f`).
    #[must_use]
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// The `heartbeat` query parameter, in seconds.
    #[must_use]
    pub fn heartbeat(&self) -> Option<u16> {
        self.heartbeat
    }

    /// The `connection_timeout` query parameter.
    #[must_use]
    pub fn connection_timeout(&self) -> Option<Duration> {
        self.connection_timeout
    }

    /// The URI with the password replaced by `***`, for logs and errors.
    #[must_use]
    pub fn redacted(&self) -> String {
        self.to_string()
    }

    /// `text` (a message of the AMQP client, which may quote the URI or the password)
    /// with the password hidden wherever it appears, as written or percent-encoded, and
    /// the passwords of every URI in it ([`redact_secret`]).
    pub(crate) fn scrub(&self, text: &str) -> String {
        redact_secret(text, &self.password)
    }

    /// The URI of one of its brokers in lapin's form, with the heartbeat to negotiate.
    pub(crate) fn to_lapin(&self, broker: &BrokerAddress, heartbeat: u16) -> AMQPUri {
        AMQPUri {
            scheme: match self.scheme {
                Scheme::Amqp => AMQPScheme::AMQP,
                Scheme::Amqps => AMQPScheme::AMQPS,
            },
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: self.username.clone(),
                    password: self.password.clone(),
                },
                host: broker.host.clone(),
                port: broker.port,
            },
            vhost: self.vhost.clone(),
            query: AMQPQueryString {
                frame_max: self.frame_max,
                channel_max: self.channel_max,
                heartbeat: Some(heartbeat),
                ..AMQPQueryString::default()
            },
        }
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded in a URI component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a URI component, with lower-case hex digits so that `/` prints as
/// `%2f`, as nameko's documentation writes it.
fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT)
        .map(|piece| {
            if piece.starts_with('%') {
                Cow::Owned(piece.to_ascii_lowercase())
            } else {
                Cow::Borrowed(piece)
            }
        })
        .collect()
}

/// Decodes `%XX` escapes (a `%` not followed by two hex digits is kept as it is).
fn decode(s: &str, what: &str) -> Result<String, InvalidUri> {
    percent_decode_str(s)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| InvalidUri::new(format!("the {what} is not valid UTF-8")))
}

fn query_number<T: FromStr>(url: &Url, key: &str) -> Result<Option<T>, InvalidUri> {
    match url.query_pairs().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, value)) => value
            .parse()
            .map(Some)
            .map_err(|_| InvalidUri::new(format!("the `{key}` parameter is not a valid number"))),
    }
}

/// Parses one host entry of a host list (`host`, `host:port`, `[v6]:port`).
fn parse_host_entry(scheme: Scheme, entry: &str) -> Result<BrokerAddress, InvalidUri> {
    if entry.is_empty() {
        return Err(InvalidUri::new("an empty host in the host list"));
    }
    if entry.contains(['/', '?', '#', '@']) {
        return Err(InvalidUri::new(
            "a host of the host list is not `host[:port]`",
        ));
    }
    let url = Url::parse(&format!("{}://{entry}/", scheme.as_str()))
        .map_err(|e| InvalidUri::new(format!("a host of the host list: {e}")))?;
    let host = match url.host() {
        Some(Host::Domain(domain)) => decode(domain, "host")?,
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(InvalidUri::new("an empty host in the host list")),
    };
    Ok(BrokerAddress {
        host,
        port: url.port().unwrap_or_else(|| scheme.default_port()),
    })
}

/// Splits `scheme://[userinfo@]h1,h2,h3/rest` into the URI with its first host only and
/// the other host entries.
fn split_host_list(s: &str) -> (String, Vec<&str>) {
    let Some((scheme, rest)) = s.split_once("://") else {
        return (s.to_owned(), Vec::new());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    if !hosts.contains(',') {
        return (s.to_owned(), Vec::new());
    }
    let mut entries = hosts.split(',');
    let first = entries.next().unwrap_or_default();
    (
        format!("{scheme}://{userinfo}{first}{tail}"),
        entries.collect(),
    )
}

impl AmqpUri {
    /// Parses one URI, with one host or a comma-separated host list.
    fn parse_one(s: &str) -> Result<Self, InvalidUri> {
        let (first, others) = split_host_list(s);
        let mut uri = Self::parse_single(&first)?;
        for entry in others {
            let broker = parse_host_entry(uri.scheme, entry)?;
            uri.hosts.push(broker);
        }
        Ok(uri)
    }

    /// Parses `;`-separated URIs (kombu's failover list) into one with all their hosts.
    fn parse_list(s: &str) -> Result<Self, InvalidUri> {
        let mut parts = s.split(';').map(str::trim).filter(|p| !p.is_empty());
        let mut uri = Self::parse_one(parts.next().unwrap_or_default())?;
        for part in parts {
            let next = Self::parse_one(part)?;
            if (next.scheme, &next.username, &next.password, &next.vhost)
                != (uri.scheme, &uri.username, &uri.password, &uri.vhost)
            {
                return Err(InvalidUri::new(
                    "the URIs of a `;`-separated list must agree on scheme, credentials and virtual host",
                ));
            }
            uri.hosts.extend(next.hosts);
        }
        Ok(uri)
    }
}

impl FromStr for AmqpUri {
    type Err = InvalidUri;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_list(s)
    }
}

impl AmqpUri {
    /// Parses a URI with one host.
    fn parse_single(s: &str) -> Result<Self, InvalidUri> {
        let url = Url::parse(s).map_err(|e| InvalidUri::new(e.to_string()))?;
        let scheme = match url.scheme() {
            "amqp" | "pyamqp" => Scheme::Amqp,
            "amqps" => Scheme::Amqps,
            other => {
                return Err(InvalidUri::new(format!(
                    "unsupported scheme `{other}` (expected amqp or amqps)"
                )));
            }
        };
        let host = match url.host() {
            Some(Host::Domain(domain)) => decode(domain, "host")?,
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => "localhost".to_owned(),
        };
        let host = if host.is_empty() {
            "localhost".to_owned()
        } else {
            host
        };
        let (username, password) = if url.username().is_empty() && url.password().is_none() {
            ("guest".to_owned(), "guest".to_owned())
        } else {
            (
                decode(url.username(), "user name")?,
                decode(url.password().unwrap_or(""), "password")?,
            )
        };
        let path = url.path();
        let vhost = match path.strip_prefix('/').unwrap_or(path) {
            "" => "/".to_owned(),
            rest => decode(rest, "vhost")?,
        };
        let connection_timeout =
            query_number::<u64>(&url, "connection_timeout")?.map(Duration::from_millis);
        let failover = match url.query_pairs().find(|(k, _)| k == "failover") {
            None => Failover::InOrder,
            Some((_, value)) => match value.as_ref() {
                "in_order" | "in-order" | "round-robin" | "round_robin" => Failover::InOrder,
                "shuffle" => Failover::Shuffle,
                _ => {
                    return Err(InvalidUri::new(
                        "the `failover` parameter is `in_order` (or `round-robin`) or `shuffle`",
                    ));
                }
            },
        };
        Ok(Self {
            scheme,
            hosts: vec![BrokerAddress {
                host,
                port: url.port().unwrap_or_else(|| scheme.default_port()),
            }],
            failover,
            username,
            password,
            vhost,
            heartbeat: query_number(&url, "heartbeat")?,
            connection_timeout,
            channel_max: query_number(&url, "channel_max")?,
            frame_max: query_number(&url, "frame_max")?,
        })
    }
}

impl TryFrom<&str> for AmqpUri {
    type Error = InvalidUri;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl fmt::Display for AmqpUri {
    /// The URI without its query, with the password replaced by `***`; every broker of a
    /// list, separated by commas.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self.hosts.iter().map(ToString::to_string).collect();
        write!(
            f,
            "{}://{}:***@{}/{}",
            self.scheme.as_str(),
            encode(&self.username),
            hosts.join(","),
            encode(&self.vhost),
        )
    }
}

impl fmt::Debug for AmqpUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AmqpUri").field(&self.to_string()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_survives_display_debug_or_scrub() {
        let cases = [
            ("amqp://svc:s3cret@rabbit/", "s3cret"),
            ("amqps://svc:s3cret@rabbit:5671/prod", "s3cret"),
            ("amqp://svc:p%40ss%2Fw0rd@rabbit/%2f", "p@ss/w0rd"),
            ("pyamqp://svc:p%40ss%2fw0rd@rabbit/", "p@ss/w0rd"),
        ];
        for (written, password) in cases {
            let uri: AmqpUri = written.parse().unwrap_or_else(|e| panic!("{written}: {e}"));
            let encoded = written
                .split_once("svc:")
                .and_then(|(_, rest)| rest.split_once('@'))
                .map_or("", |(encoded, _)| encoded);
            let lower = encoded.to_ascii_lowercase();
            let messages = [
                format!(
                    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN for {password}"
                ),
                format!("cannot connect to {written}: refused"),
                format!("bad password {encoded} ({lower}) in {written}"),
            ];
            let mut shown = vec![uri.to_string(), format!("{uri:?}"), uri.redacted()];
            shown.extend(messages.iter().map(|m| uri.scrub(m)));
            for text in shown {
                assert!(!text.contains(password), "{written}: {text}");
                assert!(!text.contains(encoded), "{written}: {text}");
                assert!(!text.contains(&lower), "{written}: {text}");
            }
        }
    }
}
