//! Helpers for tests that need a real RabbitMQ (feature `test-support`).
//!
//! The broker comes from `NAMEKO_TEST_AMQP_URI` (default
//! `amqp://guest:guest@127.0.0.1:5672/%2f`). When it cannot be reached, [`test_broker`]
//! prints `skipping: no RabbitMQ at <uri> (set NAMEKO_TEST_AMQP_URI)` and returns `None`,
//! so the test passes without running; with `NAMEKO_REQUIRE_AMQP=1` it panics instead, for
//! CI runs that must exercise the broker.
//!
//! Each test runs in a [`Scope`]: names unique to the run, and whatever queues and
//! exchanges it declared under them deleted at the end, even when the test panics.
//!
//! [`rabbitmqctl`] runs the broker's control tool, with a time limit, for what AMQP cannot
//! do (list or close connections, manage users and vhosts).
//!
//! ```no_run
//! use nameko_amqp::test_support::test_broker;
//! use nameko_transport::{QueueOptions, Transport};
//!
//! # async fn example() {
//! let Some(broker) = test_broker().await else { return };
//! broker
//!     .run("declares", |scope| async move {
//!         let transport = scope.connect().await;
//!         let queue = scope.queue("work");
//!         transport.declare_queue(&queue, QueueOptions::default()).await.unwrap();
//!     })
//!     .await;
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use nameko_transport::Transport;
use parking_lot::Mutex;

use crate::{AmqpOptions, AmqpTransport, AmqpUri};

mod rabbitmqctl;

pub use rabbitmqctl::{RabbitmqctlError, rabbitmqctl};

/// The variable naming the test broker's URI.
pub const URI_VAR: &str = "NAMEKO_TEST_AMQP_URI";

/// The variable that turns a missing broker from a skip into a failure (`1`).
pub const REQUIRE_VAR: &str = "NAMEKO_REQUIRE_AMQP";

/// The variable naming the port of the test broker's management API (default
/// 15672, on the broker's host).
pub const API_PORT_VAR: &str = "NAMEKO_TEST_AMQP_API_PORT";

/// The broker tests use when [`URI_VAR`] is not set.
pub const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The test broker's URI.
#[must_use]
pub fn test_uri() -> String {
    std::env::var(URI_VAR).unwrap_or_else(|_| DEFAULT_URI.to_owned())
}

/// Whether broker tests must fail, rather than skip, without a broker.
#[must_use]
pub fn broker_required() -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

fn redacted(uri: &str) -> String {
    uri.parse::<AmqpUri>()
        .map_or_else(|e| format!("<{e}>"), |u| u.redacted())
}

/// The test broker, or `None` (after printing a skip line) when it cannot be reached.
///
/// # Panics
///
/// When the broker cannot be reached and `NAMEKO_REQUIRE_AMQP=1`.
pub async fn test_broker() -> Option<TestBroker> {
    let uri = test_uri();
    let options = AmqpOptions::new()
        .connect_timeout(Duration::from_secs(3))
        .connection_name("nameko-rs test probe");
    match AmqpTransport::connect_with(&uri, options).await {
        Ok(probe) => {
            let _ = probe.close().await;
            Some(TestBroker { uri })
        }
        Err(error) => {
            let shown = redacted(&uri);
            assert!(
                !broker_required(),
                "no RabbitMQ at {shown} ({error}) and {REQUIRE_VAR}=1"
            );
            eprintln!("skipping: no RabbitMQ at {shown} (set {URI_VAR})");
            None
        }
    }
}

/// A reachable test broker.
#[derive(Debug, Clone)]
pub struct TestBroker {
    uri: String,
}

impl TestBroker {
    /// The broker's URI (with its password: do not print it; see [`TestBroker::redacted`]).
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The broker's URI with the password redacted.
    #[must_use]
    pub fn redacted(&self) -> String {
        redacted(&self.uri)
    }

    /// A client of the broker's management API (on port [`API_PORT_VAR`], 15672 by
    /// default), with the test URI's credentials. Whether the API is there shows only
    /// when it is used.
    ///
    /// # Errors
    ///
    /// When the URI or the port cannot be read.
    #[cfg(feature = "management")]
    pub fn management(
        &self,
    ) -> Result<crate::management::ManagementClient, crate::management::ManagementError> {
        use crate::management::{DEFAULT_PORT, ManagementClient, ManagementError};
        let uri: AmqpUri = self.uri.parse()?;
        let port = match std::env::var(API_PORT_VAR) {
            Ok(port) => port.parse().map_err(|_| ManagementError::InvalidAddress {
                reason: format!("{API_PORT_VAR}=`{port}` is not a port number"),
            })?,
            Err(_) => DEFAULT_PORT,
        };
        ManagementClient::for_broker_on_port(&uri, port)
    }

    /// Runs a test body in a fresh [`Scope`] named after `test`, then deletes every queue
    /// and exchange the scope handed out, whether the body succeeded or panicked (the
    /// panic is then resumed).
    pub async fn run<F, Fut>(&self, test: &str, body: F)
    where
        F: FnOnce(Arc<Scope>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let scope = Arc::new(Scope::new(self.clone(), test));
        let outcome = AssertUnwindSafe(body(Arc::clone(&scope)))
            .catch_unwind()
            .await;
        scope.cleanup().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    /// Connects with the default options.
    ///
    /// # Panics
    ///
    /// When the connection fails.
    pub async fn connect(&self) -> AmqpTransport {
        self.connect_with(AmqpOptions::new()).await
    }

    /// Connects with these options.
    ///
    /// # Panics
    ///
    /// When the connection fails.
    pub async fn connect_with(&self, options: AmqpOptions) -> AmqpTransport {
        match AmqpTransport::connect_with(&self.uri, options).await {
            Ok(transport) => transport,
            Err(error) => panic!("cannot connect to {}: {error}", self.redacted()),
        }
    }
}

/// Unique names for one test, and the cleanup of what was declared under them.
#[derive(Debug)]
pub struct Scope {
    broker: TestBroker,
    prefix: String,
    queues: Mutex<Vec<String>>,
    exchanges: Mutex<Vec<String>>,
    connections: Mutex<Vec<AmqpTransport>>,
}

impl Scope {
    fn new(broker: TestBroker, test: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            broker,
            prefix: format!("nameko-rs-test.{test}.{}", &id[..12]),
            queues: Mutex::new(Vec::new()),
            exchanges: Mutex::new(Vec::new()),
            connections: Mutex::new(Vec::new()),
        }
    }

    /// The broker.
    #[must_use]
    pub fn broker(&self) -> &TestBroker {
        &self.broker
    }

    /// A name unique to this test run: `nameko-rs-test.<test>.<id>.<suffix>`.
    #[must_use]
    pub fn name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// A unique queue name, deleted at the end of the test.
    #[must_use]
    pub fn queue(&self, suffix: &str) -> String {
        let name = self.name(suffix);
        self.track_queue(&name);
        name
    }

    /// A unique exchange name, deleted at the end of the test.
    #[must_use]
    pub fn exchange(&self, suffix: &str) -> String {
        let name = self.name(suffix);
        self.track_exchange(&name);
        name
    }

    /// Deletes this queue at the end of the test.
    pub fn track_queue(&self, name: &str) {
        self.queues.lock().push(name.to_owned());
    }

    /// Deletes this exchange at the end of the test.
    pub fn track_exchange(&self, name: &str) {
        self.exchanges.lock().push(name.to_owned());
    }

    /// Connects with the default options; the connection is closed at the end of the test.
    pub async fn connect(&self) -> AmqpTransport {
        self.connect_with(AmqpOptions::new()).await
    }

    /// Connects with these options; the connection is closed at the end of the test.
    pub async fn connect_with(&self, options: AmqpOptions) -> AmqpTransport {
        let transport = self.broker.connect_with(options).await;
        self.connections.lock().push(transport.clone());
        transport
    }

    async fn cleanup(&self) {
        let connections = std::mem::take(&mut *self.connections.lock());
        for connection in connections {
            let _ = connection.close().await;
        }
        let queues = std::mem::take(&mut *self.queues.lock());
        let exchanges = std::mem::take(&mut *self.exchanges.lock());
        if queues.is_empty() && exchanges.is_empty() {
            return;
        }
        let admin = match AmqpTransport::connect(&self.broker.uri).await {
            Ok(admin) => admin,
            Err(error) => {
                eprintln!("cleanup of {}: cannot connect: {error}", self.prefix);
                return;
            }
        };
        for queue in &queues {
            if let Err(error) = admin.delete_queue(queue).await {
                eprintln!("cleanup: deleting queue {queue}: {error}");
            }
        }
        for exchange in &exchanges {
            if let Err(error) = admin.delete_exchange(exchange).await {
                eprintln!("cleanup: deleting exchange {exchange}: {error}");
            }
        }
        let _ = admin.close().await;
    }
}
