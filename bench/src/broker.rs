//! The broker side of a benchmark: a virtual host of its own (so nothing it declares
//! outlives it or meets other users' queues), and watching queues for consumers.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nameko::amqp::{AmqpOptions, AmqpTransport};
use nameko::transport::{QueueOptions, Transport as _, TransportError};

use crate::error::{BenchError, Result};

/// The parts of an AMQP URI needed to make the URI of another vhost on the same broker.
#[derive(Clone, PartialEq, Eq)]
struct Endpoint {
    scheme: String,
    user: String,
    password: String,
    host: String,
    port: u16,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:***@{}:{}",
            self.scheme, self.user, self.host, self.port
        )
    }
}

impl Endpoint {
    fn parse(uri: &str) -> Option<Self> {
        let (scheme, rest) = uri.split_once("://")?;
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .unwrap_or(("guest:guest", authority));
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let default_port = if scheme == "amqps" { 5671 } else { 5672 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().ok()?),
            None => (hostport, default_port),
        };
        Some(Self {
            scheme: scheme.to_owned(),
            user: percent_decode(user),
            password: percent_decode(password),
            host: if host.is_empty() { "localhost" } else { host }.to_owned(),
            port,
        })
    }

    fn uri(&self, vhost: &str) -> String {
        format!(
            "{}://{}:{}@{}:{}/{}",
            self.scheme,
            percent_encode(&self.user),
            percent_encode(&self.password),
            self.host,
            self.port,
            percent_encode(vhost)
        )
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The RabbitMQ management API (HTTP on port 15672, or `NAMEKO_BENCH_API_PORT`).
#[derive(Debug, Clone)]
struct ManagementApi {
    address: String,
    authorization: String,
}

impl ManagementApi {
    fn new(endpoint: &Endpoint) -> Self {
        let port = std::env::var("NAMEKO_BENCH_API_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(15672_u16);
        Self {
            address: format!("{}:{port}", endpoint.host),
            authorization: base64(format!("{}:{}", endpoint.user, endpoint.password).as_bytes()),
        }
    }

    /// One HTTP/1.0 request; fails unless the status is 2xx.
    fn call(&self, method: &str, path: &str, body: &str) -> Result<()> {
        let mut stream = TcpStream::connect(&self.address)
            .map_err(|e| BenchError::new(format!("management API at {}: {e}", self.address)))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {}\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.address,
            self.authorization,
            body.len()
        );
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status: u16 = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let first = response.lines().next().unwrap_or_default();
            Err(BenchError::new(format!("{method} {path}: {first}")))
        }
    }
}

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A virtual host made for one benchmark run and deleted when dropped, with whatever
/// the contenders declared in it.
#[derive(Debug)]
pub struct BenchVhost {
    name: String,
    uri: String,
    api: ManagementApi,
}

impl BenchVhost {
    /// Creates `nameko-bench-<random>` on the broker of `base_uri`, with full
    /// permissions for the URI's user, through the management API.
    ///
    /// # Errors
    ///
    /// If the URI cannot be read or the management API refuses.
    pub fn create(base_uri: &str) -> Result<Self> {
        let endpoint =
            Endpoint::parse(base_uri).ok_or_else(|| BenchError::new("cannot read the AMQP URI"))?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("nameko-bench-{}", &id[..12]);
        let api = ManagementApi::new(&endpoint);
        let vhost = Self {
            uri: endpoint.uri(&name),
            name,
            api,
        };
        vhost
            .api
            .call("PUT", &format!("/api/vhosts/{}", vhost.name), "")?;
        vhost.api.call(
            "PUT",
            &format!(
                "/api/permissions/{}/{}",
                vhost.name,
                percent_encode(&endpoint.user)
            ),
            r#"{"configure": ".*", "write": ".*", "read": ".*"}"#,
        )?;
        Ok(vhost)
    }

    /// The vhost's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The AMQP URI of the vhost (with the password: do not print it).
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }
}

impl Drop for BenchVhost {
    fn drop(&mut self) {
        if let Err(error) = self
            .api
            .call("DELETE", &format!("/api/vhosts/{}", self.name), "")
        {
            eprintln!("could not delete vhost {}: {error}", self.name);
        }
    }
}

/// A connection that watches queues for consumers: when a service is ready, and when it
/// has gone.
#[derive(Debug)]
pub struct Probe {
    transport: AmqpTransport,
}

impl Probe {
    /// Connects to `uri`.
    ///
    /// # Errors
    ///
    /// If the broker cannot be reached.
    pub async fn connect(uri: &str) -> Result<Self> {
        let options = AmqpOptions::new()
            .connection_name("nameko-bench probe")
            .connect_timeout(Duration::from_secs(3));
        Ok(Self {
            transport: AmqpTransport::connect_with(uri, options).await?,
        })
    }

    /// Consumers on `queue`; zero when it does not exist.
    ///
    /// # Errors
    ///
    /// If the broker fails otherwise.
    pub async fn consumers(&self, queue: &str) -> Result<u32> {
        match self
            .transport
            .declare_queue(queue, QueueOptions::passive())
            .await
        {
            Ok(declared) => Ok(declared.consumer_count),
            Err(TransportError::NotFound(_)) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    /// Waits until `queue` has a consumer, polling every millisecond; returns when.
    ///
    /// # Errors
    ///
    /// If none comes within `timeout`.
    pub async fn wait_for_consumer(&self, queue: &str, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.consumers(queue).await? > 0 {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                return Err(BenchError::new(format!(
                    "no consumer on {queue} after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until `queue` has no consumer left.
    ///
    /// # Errors
    ///
    /// If one is still there after `timeout`.
    pub async fn wait_for_no_consumer(&self, queue: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.consumers(queue).await? > 0 {
            if Instant::now() > deadline {
                return Err(BenchError::new(format!("{queue} still has a consumer")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.transport.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vhost_uris_keep_the_credentials() {
        let e = Endpoint::parse("amqp://us%40r:p%2Fss@rabbit:5673/%2f?heartbeat=5").unwrap();
        assert_eq!((e.user.as_str(), e.password.as_str()), ("us@r", "p/ss"));
        assert_eq!(
            e.uri("nameko-bench-1"),
            "amqp://us%40r:p%2Fss@rabbit:5673/nameko-bench-1"
        );
        assert!(!format!("{e:?}").contains("p/ss"));
        let e = Endpoint::parse("amqp://localhost").unwrap();
        assert_eq!((e.user.as_str(), e.port), ("guest", 5672));
    }

    #[test]
    fn base64_is_rfc4648() {
        assert_eq!(base64(b"guest:guest"), "Z3Vlc3Q6Z3Vlc3Q=");
        assert_eq!(base64(b"fo"), "Zm8=");
    }
}
