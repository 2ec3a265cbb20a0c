//! Fresh RabbitMQ virtual hosts for tests, through the management API (or `rabbitmqctl`
//! when the API is not reachable), so tests against a real broker cannot see each
//! other's queues.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The parts of an AMQP URI a test needs to make another one.
#[derive(Clone)]
pub(crate) struct BrokerUri {
    scheme: String,
    user: String,
    password: String,
    host: String,
    port: u16,
    query: String,
}

impl std::fmt::Debug for BrokerUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}:***@{}:{}",
            self.scheme, self.user, self.host, self.port
        )
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl BrokerUri {
    pub(crate) fn parse(uri: &str) -> Option<Self> {
        let (scheme, rest) = uri.split_once("://")?;
        let (rest, query) = rest.split_once('?').map_or((rest, ""), |(a, q)| (a, q));
        let authority = rest.split('/').next().unwrap_or_default();
        let (userinfo, hostport) = authority
            .rsplit_once('@')
            .unwrap_or(("guest:guest", authority));
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let default_port = if scheme == "amqps" { 5671 } else { 5672 };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().ok()?),
            None => (hostport.to_owned(), default_port),
        };
        Some(Self {
            scheme: scheme.to_owned(),
            user: percent_decode(user),
            password: percent_decode(password),
            host: if host.is_empty() {
                "localhost".to_owned()
            } else {
                host
            },
            port,
            query: query.to_owned(),
        })
    }

    /// The URI of `vhost` on the same broker, with the same credentials.
    pub(crate) fn with_vhost(&self, vhost: &str) -> String {
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!(
            "{}://{}:{}@{}:{}/{}{query}",
            self.scheme,
            percent_encode(&self.user),
            percent_encode(&self.password),
            self.host,
            self.port,
            percent_encode(vhost)
        )
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
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The management API of the test broker.
#[derive(Clone)]
pub(crate) struct ManagementApi {
    host: String,
    port: u16,
    /// `user:password` in base64: never printed.
    auth: String,
}

impl std::fmt::Debug for ManagementApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl ManagementApi {
    pub(crate) fn new(broker: &BrokerUri) -> Self {
        let port = std::env::var("NAMEKO_TEST_AMQP_API_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(15672);
        Self {
            host: broker.host.clone(),
            port,
            auth: base64(format!("{}:{}", broker.user, broker.password).as_bytes()),
        }
    }

    /// One HTTP/1.0 request; the status code and body.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<(u16, String), String> {
        let addr = format!("{}:{}", self.host, self.port);
        let mut stream =
            TcpStream::connect(&addr).map_err(|e| format!("management API at {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let request = format!(
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Basic {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.auth,
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| e.to_string())?;
        let response = String::from_utf8_lossy(&response);
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad HTTP response from {addr}"))?;
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    fn expect_ok(&self, method: &str, path: &str, body: &str) -> Result<String, String> {
        match self.request(method, path, body)? {
            (status, body) if (200..300).contains(&status) => Ok(body),
            (status, body) => Err(format!("{method} {path}: HTTP {status}: {body}")),
        }
    }
}

/// How long a `rabbitmqctl` command may take here.
const RABBITMQCTL_TIMEOUT: Duration = Duration::from_secs(60);

fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    crate::rabbitmqctl(args, RABBITMQCTL_TIMEOUT).map_err(|e| e.to_string())
}

/// A virtual host made for one test, deleted when dropped.
pub(crate) struct Vhost {
    name: String,
    /// With the password: never printed.
    uri: String,
    user: String,
    api: Option<ManagementApi>,
    deleted: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Vhost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vhost")
            .field("name", &self.name)
            .field("user", &self.user)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Vhost {
    /// Makes a fresh vhost on the broker of `base_uri`, with full permissions for its
    /// user.
    pub(crate) fn create(base_uri: &str) -> Result<Self, String> {
        let broker = BrokerUri::parse(base_uri).ok_or("cannot read the test broker's URI")?;
        let name = format!("nameko_test_{}", uuid::Uuid::new_v4().simple());
        let api = ManagementApi::new(&broker);
        let permissions = r#"{"configure": ".*", "write": ".*", "read": ".*"}"#;
        let via_api = api
            .expect_ok("PUT", &format!("/api/vhosts/{name}"), "")
            .and_then(|_| {
                api.expect_ok(
                    "PUT",
                    &format!("/api/permissions/{name}/{}", percent_encode(&broker.user)),
                    permissions,
                )
            });
        let api = match via_api {
            Ok(_) => Some(api),
            Err(api_error) => {
                rabbitmqctl(&["add_vhost", &name]).map_err(|e| format!("{api_error}; {e}"))?;
                rabbitmqctl(&[
                    "set_permissions",
                    "-p",
                    &name,
                    &broker.user,
                    ".*",
                    ".*",
                    ".*",
                ])?;
                None
            }
        };
        Ok(Self {
            uri: broker.with_vhost(&name),
            user: broker.user.clone(),
            name,
            api,
            deleted: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The vhost's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The AMQP URI of the vhost (with the password).
    pub(crate) fn uri(&self) -> &str {
        &self.uri
    }

    /// Names of the queues in the vhost.
    pub(crate) fn queue_names(&self) -> Result<Vec<String>, String> {
        match &self.api {
            Some(api) => {
                let body = api.expect_ok(
                    "GET",
                    &format!("/api/queues/{}?columns=name", self.name),
                    "",
                )?;
                let value: serde_json::Value =
                    serde_json::from_str(&body).map_err(|e| e.to_string())?;
                Ok(value
                    .as_array()
                    .map(|qs| {
                        qs.iter()
                            .filter_map(|q| q.get("name")?.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default())
            }
            None => Ok(
                rabbitmqctl(&["list_queues", "-q", "-p", &self.name, "name"])?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && *l != "name")
                    .map(str::to_owned)
                    .collect(),
            ),
        }
    }

    /// Deletes the vhost (closing its connections). Idempotent; blocking.
    pub(crate) fn delete(&self) {
        if self.deleted.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let result = match &self.api {
            Some(api) => api
                .expect_ok("DELETE", &format!("/api/vhosts/{}", self.name), "")
                .map(|_| ()),
            None => rabbitmqctl(&["delete_vhost", &self.name]).map(|_| ()),
        };
        if let Err(error) = result {
            tracing::warn!(vhost = %self.name, user = %self.user, %error, "could not delete test vhost");
        }
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        self.delete();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_keep_credentials_and_swap_the_vhost() {
        let b = BrokerUri::parse("amqp://us%40r:p%2Fss@rabbit:5673/%2f?heartbeat=5").unwrap();
        assert_eq!(b.user, "us@r");
        assert_eq!(b.password, "p/ss");
        assert_eq!(
            b.with_vhost("v_1"),
            "amqp://us%40r:p%2Fss@rabbit:5673/v_1?heartbeat=5"
        );
        assert!(!format!("{b:?}").contains("p/ss"));
        let api = ManagementApi::new(&b);
        assert!(!format!("{api:?}").contains(&base64(b"us@r:p/ss")));
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b"guest:guest"), "Z3Vlc3Q6Z3Vlc3Q=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
