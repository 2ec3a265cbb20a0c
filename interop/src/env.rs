//! One test's world: a fresh virtual host, the Rust services in-process, the Python
//! services in the agent.

use std::sync::Arc;
use std::time::Duration;

use nameko::container::ServiceContainer;
use nameko::dependency::ValueProvider;
use nameko::service::Service;
use nameko::testing::TestCluster;
use serde_json::{Value, json};

use crate::agent::{Agent, PythonError};
use crate::recorder::Recorder;

/// How long stopping a test's Python services may take when the test did not get to
/// [`Interop::shutdown`] (it panicked or timed out).
const DROP_STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// How long [`Interop::python_records`] waits for records to arrive.
const RECORDS_TIMEOUT: Duration = Duration::from_secs(10);

/// One interop test: a fresh RabbitMQ virtual host shared by the test's Rust services
/// (in-process, through a [`TestCluster`]) and its Python services and clients (in the
/// binary's [`Agent`]).
///
/// Dropping it kills the test's Python services, then the Rust containers, then deletes
/// the virtual host; [`Interop::shutdown`] does the same, stopping the Rust containers
/// gracefully and checking that none crashed.
#[derive(Debug)]
pub struct Interop {
    cluster: Option<TestCluster>,
    agent: Arc<Agent>,
    uri: String,
    python_running: bool,
}

impl Interop {
    /// A fresh virtual host and the Python agent; `None` (after printing why) when
    /// either RabbitMQ or Python is missing.
    ///
    /// # Panics
    ///
    /// When one is missing and required (`NAMEKO_REQUIRE_AMQP=1`,
    /// `NAMEKO_REQUIRE_PYTHON=1`).
    pub async fn start() -> Option<Self> {
        let agent = Agent::shared().await?;
        let cluster = TestCluster::rabbitmq().await?;
        let uri = cluster
            .amqp_uri()
            .expect("a RabbitMQ cluster has an AMQP URI")
            .to_owned();
        Some(Self {
            cluster: Some(cluster),
            agent,
            uri,
            python_running: false,
        })
    }

    /// The same test with a configuration key set for the Rust services and clients
    /// started from now on (Python services take theirs in
    /// [`Interop::start_python_with`]).
    #[must_use]
    pub fn with_config(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.cluster = self.cluster.take().map(|c| c.with_config(key, value));
        self
    }

    /// The Rust side: services, proxies, dispatchers, connections.
    #[must_use]
    pub fn cluster(&self) -> &TestCluster {
        self.cluster
            .as_ref()
            .expect("the cluster lives as long as the test")
    }

    /// The Rust side, to start services.
    pub fn cluster_mut(&mut self) -> &mut TestCluster {
        self.cluster
            .as_mut()
            .expect("the cluster lives as long as the test")
    }

    /// The Python agent.
    #[must_use]
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The AMQP URI of the test's virtual host (with its password: do not print it).
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Starts a Rust service; the cluster stops it at the end of the test, unless the
    /// test did.
    ///
    /// # Panics
    ///
    /// If it does not start.
    pub async fn start_rust<S: Service>(&mut self) -> ServiceContainer<S> {
        self.cluster_mut().start::<S>().await
    }

    /// Starts a Rust service whose `records` field (a [`Recorder`]) is `recorder`.
    ///
    /// # Panics
    ///
    /// If the service has no such field, or does not start.
    pub async fn start_rust_recording<S: Service>(&mut self, recorder: &Recorder) {
        let container = self.cluster_mut().container::<S>().await;
        container
            .replace_dependency("records", ValueProvider::new(recorder.clone()))
            .unwrap_or_else(|e| panic!("`{}` records nothing: {e}", S::name()));
        container
            .start()
            .await
            .unwrap_or_else(|e| panic!("`{}` did not start: {e}", S::name()));
    }

    /// Starts Python services (`"module:Class"`, from `interop/python`) in one runner,
    /// with the default configuration; returns once they consume.
    ///
    /// # Panics
    ///
    /// If they do not start.
    pub async fn start_python(&mut self, services: &[&str]) {
        self.start_python_with(services, json!({})).await;
    }

    /// [`Interop::start_python`] with configuration keys (`max_workers`,
    /// `parent_calls_tracked`, ...); `AMQP_URI` is the test's.
    ///
    /// # Panics
    ///
    /// If they do not start.
    pub async fn start_python_with(&mut self, services: &[&str], config: Value) {
        self.python_running = true;
        let args = json!({"uri": self.uri, "services": services, "config": config});
        if let Err(error) = self.agent.request("start", args).await {
            panic!(
                "Python services {services:?} did not start: {error}; Python's log is {}",
                self.agent.log().display()
            );
        }
    }

    /// Stops the test's Python containers of `service`, gracefully.
    ///
    /// # Panics
    ///
    /// If the agent cannot stop them.
    pub async fn stop_python(&self, service: &str) {
        let args = json!({"uri": self.uri, "service": service});
        if let Err(error) = self.agent.request("stop", args).await {
            panic!("cannot stop Python `{service}`: {error}");
        }
    }

    /// Runs a Python client function of `interop/python/clients.py` on the test's
    /// virtual host (`uri` is added to `args`).
    ///
    /// # Panics
    ///
    /// If `args` is not an object, or the agent does not answer.
    pub async fn python(&self, op: &str, args: Value) -> Result<Value, PythonError> {
        let Value::Object(mut args) = args else {
            panic!("the arguments of `{op}` must be an object");
        };
        args.insert("uri".to_owned(), Value::String(self.uri.clone()));
        self.agent.request(op, Value::Object(args)).await
    }

    /// One call from a Python `ClusterRpcProxy`: `service.method(*args)`.
    ///
    /// # Panics
    ///
    /// If the agent does not answer.
    pub async fn python_call(
        &self,
        service: &str,
        method: &str,
        args: Value,
    ) -> Result<Value, PythonError> {
        self.python(
            "call",
            json!({"service": service, "method": method, "args": args}),
        )
        .await
    }

    /// What the `Recorder` of the test's Python `service` containers holds, once it
    /// holds at least `count` records (or after 10 seconds).
    ///
    /// # Panics
    ///
    /// If the agent cannot read them.
    pub async fn python_records(&self, service: &str, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + RECORDS_TIMEOUT;
        loop {
            let records = match self.python("records", json!({"service": service})).await {
                Ok(Value::Array(records)) => records,
                other => panic!("cannot read the records of Python `{service}`: {other:?}"),
            };
            if records.len() >= count || tokio::time::Instant::now() >= deadline {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the Python services (a graceful stop of a nameko 2 container takes seconds,
    /// and the test is over), stops the Rust services gracefully, then deletes the
    /// virtual host.
    ///
    /// # Panics
    ///
    /// If a Rust container had crashed, or the Python services cannot be stopped.
    pub async fn shutdown(mut self) {
        if self.python_running {
            self.python_running = false;
            let args = json!({"uri": self.uri, "kill": true});
            if let Err(error) = self.agent.request("stop", args).await {
                panic!("cannot stop the Python services: {error}");
            }
        }
        if let Some(cluster) = self.cluster.take() {
            cluster.shutdown().await;
        }
    }
}

impl Drop for Interop {
    fn drop(&mut self) {
        // Python first: its services would otherwise try to reconnect to the deleted
        // virtual host. The cluster, dropped next, kills the Rust containers and
        // deletes the virtual host.
        if self.python_running {
            let args = json!({"uri": self.uri, "kill": true});
            if self
                .agent
                .request_blocking("stop", args, DROP_STOP_TIMEOUT)
                .is_none()
            {
                eprintln!(
                    "the Python services did not stop within {DROP_STOP_TIMEOUT:?}; Python's log is {}",
                    self.agent.log().display()
                );
            }
        }
    }
}
