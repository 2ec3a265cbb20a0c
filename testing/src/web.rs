//! An HTTP client bound to a test cluster's web server (nameko's `web_session`).

use std::net::SocketAddr;
use std::time::Duration;

use nameko_web::WebServer;

use crate::TestCluster;

/// How long a request of a [`WebSession`] may take.
pub const WEB_SESSION_TIMEOUT: Duration = Duration::from_secs(30);

/// An HTTP client ([`reqwest`]) bound to the web server of a [`TestCluster`], as nameko's
/// `web_session` fixture: paths are relative to the server.
///
/// A test cluster serves HTTP on a free port of 127.0.0.1 (`WEB_SERVER_ADDRESS` is
/// `127.0.0.1:0` unless the test sets it).
///
/// ```
/// use nameko::prelude::*;
/// use nameko::testing::TestCluster;
///
/// #[derive(Dependencies)]
/// struct Hello;
///
/// #[service(name = "hello")]
/// impl Hello {
///     #[http("GET", "/hello/<name>")]
///     async fn hello(&self, name: String) -> String {
///         format!("hello {name}")
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut cluster = TestCluster::memory();
/// cluster.start::<Hello>().await;
/// let web = cluster.web_session();
/// let response = web.get("/hello/world").send().await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.text().await.unwrap(), "hello world");
/// cluster.shutdown().await;
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct WebSession {
    client: reqwest::Client,
    addr: SocketAddr,
}

impl WebSession {
    /// A session on the server at `addr`.
    ///
    /// # Panics
    ///
    /// If the HTTP client cannot be built (no TLS backend is needed for `http://`).
    #[must_use]
    pub fn new(addr: SocketAddr) -> Self {
        let client = reqwest::Client::builder()
            .timeout(WEB_SESSION_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Self { client, addr }
    }

    /// Where the server listens.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on the server (`/get/1` → `http://127.0.0.1:PORT/get/1`).
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The client, for requests of its own.
    #[must_use]
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// A request with any method.
    ///
    /// # Panics
    ///
    /// On a method that is not a valid token.
    pub fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        self.client.request(method, self.url(path))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path))
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// `HEAD path`.
    pub fn head(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.head(self.url(path))
    }
}

impl TestCluster {
    /// A client bound to the cluster's web server (nameko's `web_session`).
    ///
    /// # Panics
    ///
    /// When no started service of the cluster has an HTTP entrypoint (or another user of
    /// the web server).
    #[must_use]
    pub fn web_session(&self) -> WebSession {
        let addr = WebServer::in_scope(&self.scope)
            .and_then(|server| server.local_addr())
            .expect("web_session: no service of this cluster serves HTTP (start one with an #[http] entrypoint first)");
        WebSession::new(addr)
    }
}

impl crate::EntrypointHook<'_> {
    /// Runs an `#[http]` entrypoint on a request built by hand
    /// ([`Request::builder`](nameko_web::Request::builder)), through the entrypoint's
    /// whole path (worker, error answers, hooks), and returns its response.
    ///
    /// # Errors
    ///
    /// [`HookError::UnknownEntrypoint`](crate::HookError::UnknownEntrypoint) when the
    /// container serves no such HTTP entrypoint or the path does not match its rule,
    /// [`HookError::Timeout`](crate::HookError::Timeout) after the hook's timeout.
    pub async fn http(
        &self,
        request: nameko_web::Request,
    ) -> Result<nameko_web::Response, crate::HookError> {
        let container = self.container;
        let unknown = |reason: String| crate::HookError::UnknownEntrypoint {
            name: self.entrypoint.clone(),
            known: reason,
        };
        let server = WebServer::in_scope(container.context().process_scope())
            .ok_or_else(|| unknown("(the container serves no HTTP)".to_owned()))?;
        let call = server.call_entrypoint(container.service_name(), &self.entrypoint, request);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(unknown(error.to_string())),
            Err(_) => Err(crate::HookError::Timeout {
                entrypoint: self.entrypoint.clone(),
                timeout: self.timeout,
            }),
        }
    }
}
