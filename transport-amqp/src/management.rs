//! A client of RabbitMQ's management HTTP API (feature `management`): virtual hosts,
//! permissions and queues, for tools and tests that need what AMQP itself cannot do.
//!
//! The API is served by the `rabbitmq_management` plugin, by default on port 15672 of
//! the broker's host, with the broker's users. [`ManagementClient::for_broker`] makes a
//! client for the broker of an AMQP URI, with its credentials:
//!
//! ```no_run
//! use nameko_amqp::AmqpUri;
//! use nameko_amqp::management::{ManagementClient, Permissions};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let broker: AmqpUri = "amqp://guest:guest@localhost:5672/".parse()?;
//! let api = ManagementClient::for_broker(&broker)?;
//! api.create_vhost("staging").await?;
//! api.set_permissions("staging", "guest", &Permissions::full()).await?;
//! for queue in api.list_queues("/").await? {
//!     if queue.name.starts_with("rpc-") {
//!         println!("{} ({} consumers)", queue.name, queue.consumers.unwrap_or(0));
//!     }
//! }
//! api.delete_vhost("staging").await?;
//! # Ok(())
//! # }
//! ```
//!
//! Every request is bounded by the client's timeout (10 seconds unless
//! [`ManagementClient::timeout`] says otherwise) and every response body by
//! [`MAX_BODY`]. The password is sent only in the `Authorization` header: it is in no
//! error, no log line and no `Debug` output.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::{Deserialize, Serialize};

use crate::{AmqpUri, InvalidUri};

/// The management plugin's usual port.
pub const DEFAULT_PORT: u16 = 15672;

/// How long one request may take, unless [`ManagementClient::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body read (64 MiB): a listing of every queue of a large broker
/// fits.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// How much of an error response's body is kept in [`ManagementError::Status`].
const ERROR_BODY_CHARS: usize = 300;

/// Why a management API request failed. No variant carries the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagementError {
    /// The API's address cannot be used (not `http://`, credentials in it).
    #[error("invalid management API address: {reason}")]
    InvalidAddress {
        /// Why.
        reason: String,
    },
    /// The API's address is not a URL.
    #[error("invalid management API address")]
    Url(#[from] url::ParseError),
    /// The broker's AMQP URI cannot be read.
    #[error(transparent)]
    Uri(#[from] InvalidUri),
    /// The HTTP client cannot be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The API could not be reached (nothing listens there: is the plugin enabled?).
    #[error("management API at {api} unreachable (is `rabbitmq_management` enabled?)")]
    Unreachable {
        /// The API's base URL.
        api: String,
        /// The connection error.
        #[source]
        source: reqwest::Error,
    },
    /// The request did not finish in time.
    #[error("management API {method} {path}: no answer within {within:?}")]
    TimedOut {
        /// The HTTP method.
        method: Method,
        /// The request's path.
        path: String,
        /// The time it was given.
        within: Duration,
    },
    /// The request failed on the way (the connection broke, the body was cut short).
    #[error("management API {method} {path}")]
    Request {
        /// The HTTP method.
        method: Method,
        /// The request's path.
        path: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status: 401 for refused credentials, 404 for a
    /// virtual host that does not exist, ...
    #[error("management API {method} {path}: HTTP {status}: {body}")]
    Status {
        /// The HTTP method.
        method: Method,
        /// The request's path.
        path: String,
        /// The status.
        status: StatusCode,
        /// The start of the response's body (the API's reason).
        body: String,
    },
    /// The response body is larger than [`MAX_BODY`].
    #[error("management API {method} {path}: the answer is larger than {limit} bytes")]
    TooLarge {
        /// The HTTP method.
        method: Method,
        /// The request's path.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// The response is not the JSON expected.
    #[error("management API {method} {path}: unreadable answer")]
    Decode {
        /// The HTTP method.
        method: Method,
        /// The request's path.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl ManagementError {
    /// The HTTP status, when the API answered with an error status.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the API answered 404 (the virtual host, user or queue does not exist).
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }
}

/// A user's permissions on a virtual host: regular expressions over the names of the
/// resources it may configure, write to and read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Permissions {
    /// Resources the user may declare and delete.
    pub configure: String,
    /// Resources the user may publish to.
    pub write: String,
    /// Resources the user may consume from and bind.
    pub read: String,
}

impl Permissions {
    /// Everything (`.*` three times).
    #[must_use]
    pub fn full() -> Self {
        Self::new(".*", ".*", ".*")
    }

    /// These patterns.
    #[must_use]
    pub fn new(configure: &str, write: &str, read: &str) -> Self {
        Self {
            configure: configure.to_owned(),
            write: write.to_owned(),
            read: read.to_owned(),
        }
    }
}

/// A queue, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct QueueInfo {
    /// The queue's name.
    pub name: String,
    /// Its virtual host.
    pub vhost: String,
    /// Messages ready and unacknowledged, when the broker has counted them yet.
    #[serde(default)]
    pub messages: Option<u64>,
    /// Its consumers, when the broker has counted them yet.
    #[serde(default)]
    pub consumers: Option<u64>,
    /// Its type: `classic`, `quorum` or `stream`.
    #[serde(rename = "type", default)]
    pub queue_type: Option<String>,
    /// The node it lives on (a quorum queue's leader).
    #[serde(default)]
    pub node: Option<String>,
}

/// A client of one broker's management API, with one user's credentials.
///
/// Cloning is cheap. No connection is kept between requests, so a client (or a clone)
/// may be used from any tokio runtime.
#[derive(Clone)]
pub struct ManagementClient {
    http: reqwest::Client,
    api: Url,
    username: String,
    password: String,
    timeout: Duration,
}

impl fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementClient")
            .field("api", &self.api.as_str())
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ManagementClient {
    /// A client of the API at `api` (`http://host:15672/`), as `username`.
    ///
    /// # Errors
    ///
    /// [`ManagementError::InvalidAddress`] when `api` is not an `http://` URL without
    /// credentials.
    pub fn new(
        api: &str,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<Self, ManagementError> {
        let invalid = |reason: String| ManagementError::InvalidAddress { reason };
        let mut api = Url::parse(api)?;
        if api.scheme() != "http" {
            return Err(invalid(format!(
                "the scheme is `{}`; only http:// is supported",
                api.scheme()
            )));
        }
        if !api.username().is_empty() || api.password().is_some() {
            return Err(invalid(
                "credentials go in the arguments, not in the URL".to_owned(),
            ));
        }
        if !api.path().ends_with('/') {
            let path = format!("{}/", api.path());
            api.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .build()
            .map_err(ManagementError::Client)?;
        Ok(Self {
            http,
            api,
            username: username.into(),
            password: password.into(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// A client of the API on the host of `broker`, port [`DEFAULT_PORT`], with the
    /// URI's credentials.
    ///
    /// # Errors
    ///
    /// As [`ManagementClient::new`].
    pub fn for_broker(broker: &AmqpUri) -> Result<Self, ManagementError> {
        Self::for_broker_on_port(broker, DEFAULT_PORT)
    }

    /// As [`ManagementClient::for_broker`], with the API on `port`.
    ///
    /// # Errors
    ///
    /// As [`ManagementClient::new`].
    pub fn for_broker_on_port(broker: &AmqpUri, port: u16) -> Result<Self, ManagementError> {
        let host = if broker.host().contains(':') {
            format!("[{}]", broker.host())
        } else {
            broker.host().to_owned()
        };
        Self::new(
            &format!("http://{host}:{port}/"),
            broker.username(),
            broker.password(),
        )
    }

    /// The same client with `timeout` for each request.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The API's base URL.
    #[must_use]
    pub fn api(&self) -> &Url {
        &self.api
    }

    /// The user the client acts as.
    #[must_use]
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Creates the virtual host `name` (nothing happens when it exists).
    ///
    /// # Errors
    ///
    /// See [`ManagementError`].
    pub async fn create_vhost(&self, name: &str) -> Result<(), ManagementError> {
        self.send(Method::PUT, &["vhosts", name], None).await?;
        Ok(())
    }

    /// Deletes the virtual host `name`, with everything in it; its connections are
    /// closed.
    ///
    /// # Errors
    ///
    /// See [`ManagementError`]; [`ManagementError::is_not_found`] when there is no such
    /// virtual host.
    pub async fn delete_vhost(&self, name: &str) -> Result<(), ManagementError> {
        self.send(Method::DELETE, &["vhosts", name], None).await?;
        Ok(())
    }

    /// Gives `user` these permissions on `vhost`.
    ///
    /// # Errors
    ///
    /// See [`ManagementError`].
    pub async fn set_permissions(
        &self,
        vhost: &str,
        user: &str,
        permissions: &Permissions,
    ) -> Result<(), ManagementError> {
        let body = serde_json::to_vec(permissions).map_err(|source| ManagementError::Decode {
            method: Method::PUT,
            path: "permissions".to_owned(),
            source,
        })?;
        self.send(Method::PUT, &["permissions", vhost, user], Some(body))
            .await?;
        Ok(())
    }

    /// The queues of `vhost`.
    ///
    /// # Errors
    ///
    /// See [`ManagementError`].
    pub async fn list_queues(&self, vhost: &str) -> Result<Vec<QueueInfo>, ManagementError> {
        let segments = ["queues", vhost];
        let body = self.send(Method::GET, &segments, None).await?;
        serde_json::from_slice(&body).map_err(|source| ManagementError::Decode {
            method: Method::GET,
            path: Self::path(&segments),
            source,
        })
    }

    /// `/api/<segments>`, each segment percent-encoded (`/` as `%2F`).
    fn path(segments: &[&str]) -> String {
        let mut url = Url::parse("http://api/api/").expect("a valid URL");
        url.path_segments_mut()
            .expect("an http URL has a path")
            .pop_if_empty()
            .extend(segments);
        url.path().to_owned()
    }

    /// One request; the body of a 2xx answer.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ManagementError> {
        let path = Self::path(segments);
        let url = self.api.join(path.trim_start_matches('/'))?;
        let mut request = self
            .http
            .request(method.clone(), url)
            .basic_auth(&self.username, Some(&self.password))
            .timeout(self.timeout);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let failed = |source: reqwest::Error| {
            let source = source.without_url();
            if source.is_timeout() {
                ManagementError::TimedOut {
                    method: method.clone(),
                    path: path.clone(),
                    within: self.timeout,
                }
            } else if source.is_connect() {
                ManagementError::Unreachable {
                    api: self.api.to_string(),
                    source,
                }
            } else {
                ManagementError::Request {
                    method: method.clone(),
                    path: path.clone(),
                    source,
                }
            }
        };
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ManagementError::TooLarge {
                    method,
                    path,
                    limit: MAX_BODY,
                });
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(%method, path, status = status.as_u16(), "management API");
        if status.is_success() {
            Ok(body)
        } else {
            let text = String::from_utf8_lossy(&body);
            Err(ManagementError::Status {
                method,
                path,
                status,
                body: text.chars().take(ERROR_BODY_CHARS).collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_encode_each_segment() {
        assert_eq!(ManagementClient::path(&["vhosts", "/"]), "/api/vhosts/%2F");
        assert_eq!(
            ManagementClient::path(&["permissions", "a b", "us@r"]),
            "/api/permissions/a%20b/us@r"
        );
    }

    #[test]
    fn the_password_is_never_shown() {
        let broker: AmqpUri = "amqp://us%40r:s3cr%2Ft@rabbit:5673/".parse().unwrap();
        let api = ManagementClient::for_broker(&broker).unwrap();
        assert_eq!(api.api().as_str(), "http://rabbit:15672/");
        assert_eq!(api.username(), "us@r");
        let shown = format!("{api:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
    }

    #[test]
    fn only_plain_http_urls_without_credentials() {
        for bad in ["https://rabbit:15671/", "http://u:p@rabbit/"] {
            let error = ManagementClient::new(bad, "guest", "guest").unwrap_err();
            assert!(
                matches!(error, ManagementError::InvalidAddress { .. }),
                "{bad}: {error:?}"
            );
        }
        let error = ManagementClient::new("not a url", "guest", "guest").unwrap_err();
        assert!(matches!(error, ManagementError::Url(_)), "{error:?}");
        let ipv6: AmqpUri = "amqp://[::1]:5672/".parse().unwrap();
        let api = ManagementClient::for_broker_on_port(&ipv6, 1).unwrap();
        assert_eq!(api.api().as_str(), "http://[::1]:1/");
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable_and_hides_the_password() {
        // Port 9 (discard) on loopback: nothing listens there.
        let api = ManagementClient::new("http://127.0.0.1:9/", "guest", "hunter2")
            .unwrap()
            .timeout(Duration::from_secs(5));
        let error = api.list_queues("/").await.unwrap_err();
        assert!(
            matches!(
                error,
                ManagementError::Unreachable { .. } | ManagementError::TimedOut { .. }
            ),
            "{error:?}"
        );
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
