//! Test clusters in one line: services on one broker, a proxy to call them, a
//! dispatcher, `run_until_idle`, and cleanup even when the test panics.

use std::sync::Arc;
use std::time::Duration;

use nameko_amqp::AmqpTransport;
use nameko_core::config::Config;
use nameko_core::container::{ContainerState, ErasedContainer, IdGenerator, ServiceContainer};
use nameko_core::context::ContextData;
use nameko_core::dependency::States;
use nameko_core::events::StandaloneDispatcher;
use nameko_core::extension::SharedExtensions;
use nameko_core::rpc::ClusterRpcProxy;
use nameko_core::service::Service;
use nameko_core::transport::{QueueOptions, Transport};
use nameko_memory::MemoryBroker;
use serde_json::Value;

use crate::vhost::TestVhost;

/// The variable that runs [`TestCluster::from_env`] clusters on RabbitMQ: `amqp` (or
/// `rabbitmq`); anything else, or unset, means the in-memory broker.
pub const TRANSPORT_VAR: &str = "NAMEKO_TEST_TRANSPORT";

/// The cluster did not become idle in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the cluster was still busy after {waited:?}: {busy}")]
pub struct NotIdle {
    /// How long it waited.
    pub waited: Duration,
    /// What was still busy.
    pub busy: String,
}

enum Backend {
    Memory(MemoryBroker),
    Amqp {
        vhost: Box<TestVhost>,
        probe: Arc<dyn Transport>,
    },
}

/// Several services on one broker, for integration tests: nameko's `runner_factory` and
/// `container_factory` in one.
///
/// On the in-memory broker (the default) everything is deterministic and
/// [`run_until_idle`](TestCluster::run_until_idle) knows when nothing is in flight. The
/// same test runs against RabbitMQ through [`TestCluster::from_env`] with
/// `NAMEKO_TEST_TRANSPORT=amqp`, each cluster in a fresh virtual host deleted afterwards.
/// Containers still running when the cluster is dropped (a test that panicked) are
/// killed.
///
/// ```
/// use nameko::prelude::*;
/// use nameko_testing::TestCluster;
///
/// #[derive(Dependencies)]
/// struct Echo;
///
/// #[service(name = "echo")]
/// impl Echo {
///     #[rpc]
///     async fn echo(&self, value: Value) -> Value {
///         value
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mut cluster = TestCluster::memory();
/// cluster.start::<Echo>().await;
/// let proxy = cluster.proxy().await;
/// let out: Value = proxy.service("echo").call("echo", (json!({"a": 1}),)).await.unwrap();
/// assert_eq!(out, json!({"a": 1}));
/// cluster.shutdown().await;
/// # });
/// ```
pub struct TestCluster {
    backend: Backend,
    config: Config,
    pub(crate) scope: SharedExtensions,
    states: States,
    ids: Option<IdGenerator>,
    containers: Vec<Arc<dyn ErasedContainer>>,
    #[cfg(feature = "db")]
    pub(crate) databases: Vec<(String, crate::db::TestDatabase)>,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match &self.backend {
            Backend::Memory(b) => format!("memory ({})", b.name()),
            Backend::Amqp { vhost, .. } => format!("rabbitmq (vhost {})", vhost.name()),
        };
        f.debug_struct("TestCluster")
            .field("backend", &backend)
            .field(
                "services",
                &self
                    .containers
                    .iter()
                    .map(|c| c.service_name())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What every test cluster's configuration starts with: with the `web` feature, its web
/// server listens on a free port of 127.0.0.1.
fn default_config(config: Config) -> Config {
    #[cfg(feature = "web")]
    let config = config.with(nameko_web::WEB_SERVER_ADDRESS, "127.0.0.1:0");
    config
}

impl TestCluster {
    /// A cluster on a fresh in-memory broker.
    #[must_use]
    pub fn memory() -> Self {
        Self::on_broker(MemoryBroker::new())
    }

    /// A cluster on this in-memory broker (to inspect it, or inject faults).
    #[must_use]
    pub fn on_broker(broker: MemoryBroker) -> Self {
        Self {
            backend: Backend::Memory(broker),
            config: default_config(Config::new().with("AMQP_URI", "memory://")),
            ids: None,
            scope: SharedExtensions::new(),
            states: States::new(),
            containers: Vec::new(),
            #[cfg(feature = "db")]
            databases: Vec::new(),
        }
    }

    /// A cluster in a fresh virtual host of the RabbitMQ test broker
    /// (`NAMEKO_TEST_AMQP_URI`, default `amqp://guest:guest@127.0.0.1:5672/%2f`).
    ///
    /// The virtual host is made through the management API, or through `rabbitmqctl`
    /// when the management plugin is off (see [`TestVhost`]).
    ///
    /// `None`, after printing why, when no broker is reachable or no virtual host can be
    /// made on it.
    ///
    /// # Panics
    ///
    /// When either happens and `NAMEKO_REQUIRE_AMQP=1`.
    pub async fn rabbitmq() -> Option<Self> {
        let broker = nameko_amqp::test_support::test_broker().await?;
        let vhost = match TestVhost::create(broker.uri()).await {
            Ok(vhost) => Box::new(vhost),
            Err(error) => {
                let shown = broker.redacted();
                assert!(
                    !nameko_amqp::test_support::broker_required(),
                    "cannot make a test vhost on {shown} ({error}) and NAMEKO_REQUIRE_AMQP=1"
                );
                eprintln!(
                    "skipping: cannot make a test vhost on {shown} ({error}); enable the \
                     management plugin (`rabbitmq-plugins enable rabbitmq_management`) or \
                     put rabbitmqctl on PATH"
                );
                return None;
            }
        };
        let probe = AmqpTransport::connect(vhost.uri())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to test vhost {}: {e}", vhost.name()));
        let config = default_config(Config::new().with("AMQP_URI", vhost.uri()));
        Some(Self {
            backend: Backend::Amqp {
                vhost,
                probe: Arc::new(probe),
            },
            config,
            ids: None,
            scope: SharedExtensions::new(),
            states: States::new(),
            containers: Vec::new(),
            #[cfg(feature = "db")]
            databases: Vec::new(),
        })
    }

    /// RabbitMQ when `NAMEKO_TEST_TRANSPORT=amqp`, the in-memory broker otherwise: the
    /// same test, run either way by changing one setting.
    ///
    /// `None` (after printing why) only when RabbitMQ was asked for and is not reachable.
    ///
    /// # Panics
    ///
    /// As [`TestCluster::rabbitmq`].
    pub async fn from_env() -> Option<Self> {
        match std::env::var(TRANSPORT_VAR).map(|v| v.to_ascii_lowercase()) {
            Ok(v) if v == "amqp" || v == "rabbitmq" => Self::rabbitmq().await,
            _ => Some(Self::memory()),
        }
    }

    /// Whether the cluster runs on the in-memory broker.
    #[must_use]
    pub fn is_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory(_))
    }

    /// The in-memory broker, if the cluster runs on one.
    #[must_use]
    pub fn broker(&self) -> Option<&MemoryBroker> {
        match &self.backend {
            Backend::Memory(broker) => Some(broker),
            Backend::Amqp { .. } => None,
        }
    }

    /// The RabbitMQ virtual host's AMQP URI, if the cluster runs on RabbitMQ. It holds the
    /// password: do not print it.
    #[must_use]
    pub fn amqp_uri(&self) -> Option<&str> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Amqp { vhost, .. } => Some(vhost.uri()),
        }
    }

    /// The RabbitMQ virtual host the cluster runs in, if it runs on RabbitMQ.
    #[must_use]
    pub fn vhost(&self) -> Option<&TestVhost> {
        match &self.backend {
            Backend::Memory(_) => None,
            Backend::Amqp { vhost, .. } => Some(vhost),
        }
    }

    /// Sets a configuration key for the services started from now on.
    #[must_use]
    pub fn with_config(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.config.set(key, value);
        self
    }

    /// Gives `value` to the [`State<T>`](nameko_core::dependency::State) fields of its
    /// type in the services started from now on (as `ServiceRunner::with_state` does).
    #[must_use]
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Call ids `"0"`, `"1"`, ... in every container started from now on (nameko's
    /// `predictable_call_ids`).
    #[must_use]
    pub fn predictable_call_ids(mut self) -> Self {
        self.ids = Some(IdGenerator::sequential());
        self
    }

    /// The configuration services get.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A new connection to the cluster's broker.
    ///
    /// # Panics
    ///
    /// If RabbitMQ refuses the connection.
    pub async fn connect(&self) -> Arc<dyn Transport> {
        match &self.backend {
            Backend::Memory(broker) => Arc::new(broker.connect()),
            Backend::Amqp { vhost, .. } => Arc::new(
                AmqpTransport::connect(vhost.uri())
                    .await
                    .unwrap_or_else(|e| {
                        panic!("cannot connect to test vhost {}: {e}", vhost.name())
                    }),
            ),
        }
    }

    /// A container for `S` on its own connection, not started (so its dependencies can
    /// be replaced); started and stopped with the cluster.
    ///
    /// # Panics
    ///
    /// If the service's definition or the configuration is refused.
    pub async fn container<S: Service>(&mut self) -> ServiceContainer<S> {
        let transport = self.connect().await;
        let ids = self.ids.clone().unwrap_or_default();
        let container = ServiceContainer::<S>::builder(transport, self.config.clone())
            .ids(ids)
            .scope(self.scope.clone())
            .states(self.states.clone())
            .build()
            .unwrap_or_else(|e| panic!("cannot make a container for `{}`: {e}", S::name()));
        self.containers.push(Arc::new(container.clone()));
        container
    }

    /// Starts a container for `S` (nameko's `runner_factory`); several of the same
    /// service compete for its requests, as instances do.
    ///
    /// # Panics
    ///
    /// If the container does not start.
    pub async fn start<S: Service>(&mut self) -> ServiceContainer<S> {
        let container = self.container::<S>().await;
        container
            .start()
            .await
            .unwrap_or_else(|e| panic!("`{}` did not start: {e}", S::name()));
        container
    }

    /// Starts every container that is not started yet.
    ///
    /// # Panics
    ///
    /// If one does not start.
    pub async fn start_all(&self) {
        for container in &self.containers {
            if container.state() == ContainerState::Created {
                container.start().await.unwrap_or_else(|e| {
                    panic!("`{}` did not start: {e}", container.service_name())
                });
            }
        }
    }

    /// A standalone proxy to the cluster's services.
    ///
    /// # Panics
    ///
    /// If its reply queue cannot be declared.
    pub async fn proxy(&self) -> ClusterRpcProxy {
        self.proxy_with_context(ContextData::new()).await
    }

    /// A standalone proxy sending this context data with every call.
    ///
    /// # Panics
    ///
    /// If its reply queue cannot be declared.
    pub async fn proxy_with_context(&self, context: ContextData) -> ClusterRpcProxy {
        ClusterRpcProxy::start_with_context(self.connect().await, &self.config, context)
            .await
            .unwrap_or_else(|e| panic!("cannot start a cluster proxy: {e}"))
    }

    /// A standalone event dispatcher.
    ///
    /// # Panics
    ///
    /// On a configuration value of the wrong type.
    pub async fn dispatcher(&self) -> StandaloneDispatcher {
        StandaloneDispatcher::new(self.connect().await, &self.config)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Dispatches one event as `source`.
    ///
    /// # Panics
    ///
    /// If the event cannot be published.
    pub async fn dispatch(&self, source: &str, event_type: &str, payload: impl serde::Serialize) {
        self.dispatcher()
            .await
            .dispatch(source, event_type, payload)
            .await
            .unwrap_or_else(|e| panic!("cannot dispatch {source}.{event_type}: {e}"));
    }

    /// Waits until nothing is in flight: no message waiting in a queue that has a
    /// consumer, no delivery unsettled, no worker running. Bounded by `timeout`.
    ///
    /// On the in-memory broker this is exact. On RabbitMQ it polls the broker's queues
    /// and the containers until they stay quiet for two polls in a row.
    ///
    /// # Errors
    ///
    /// [`NotIdle`] describing what was still busy.
    pub async fn run_until_idle_within(&self, timeout: Duration) -> Result<(), NotIdle> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let mut quiet_polls = 0;
        loop {
            let busy = self.busy().await;
            if busy.is_empty() {
                quiet_polls += 1;
                if quiet_polls >= 2 {
                    return Ok(());
                }
            } else {
                quiet_polls = 0;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(NotIdle {
                    waited: started.elapsed(),
                    busy: if busy.is_empty() {
                        "settling".to_owned()
                    } else {
                        busy.join(", ")
                    },
                });
            }
            match &self.backend {
                Backend::Memory(broker) => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if let Err(e) = broker.run_until_idle_within(left).await {
                        return Err(NotIdle {
                            waited: started.elapsed(),
                            busy: e.to_string(),
                        });
                    }
                    for _ in 0..8 {
                        tokio::task::yield_now().await;
                    }
                }
                Backend::Amqp { .. } => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// [`TestCluster::run_until_idle_within`] 30 seconds.
    ///
    /// # Errors
    ///
    /// See [`TestCluster::run_until_idle_within`].
    pub async fn run_until_idle(&self) -> Result<(), NotIdle> {
        self.run_until_idle_within(Duration::from_secs(30)).await
    }

    async fn busy(&self) -> Vec<String> {
        let mut busy: Vec<String> = self
            .containers
            .iter()
            .filter(|c| c.running_workers() > 0)
            .map(|c| format!("{} workers of `{}`", c.running_workers(), c.service_name()))
            .collect();
        match &self.backend {
            Backend::Memory(broker) => {
                if !broker.is_idle() {
                    busy.push("messages in flight on the broker".to_owned());
                }
            }
            Backend::Amqp { vhost, probe } => {
                let names = match vhost.queue_names().await {
                    Ok(names) => names,
                    Err(e) => return vec![format!("cannot list queues: {e}")],
                };
                for name in names {
                    if let Ok(q) = probe.declare_queue(&name, QueueOptions::passive()).await
                        && q.message_count > 0
                        && q.consumer_count > 0
                    {
                        busy.push(format!("{} messages in `{name}`", q.message_count));
                    }
                }
            }
        }
        busy
    }

    /// Stops every container gracefully, then deletes the RabbitMQ virtual host.
    ///
    /// # Panics
    ///
    /// If a container had crashed.
    pub async fn shutdown(mut self) {
        let containers = std::mem::take(&mut self.containers);
        let mut crashed = Vec::new();
        for container in &containers {
            if let Err(e) = container.stop().await {
                crashed.push(format!("`{}`: {e}", container.service_name()));
            }
        }
        if let Backend::Amqp { vhost, probe } = &self.backend {
            let _ = probe.close().await;
            vhost.delete().await;
        }
        #[cfg(feature = "db")]
        for (key, database) in std::mem::take(&mut self.databases) {
            if let Err(e) = database.drop_now().await {
                eprintln!("cannot drop the test database of `{key}`: {e}");
            }
        }
        assert!(
            crashed.is_empty(),
            "containers crashed: {}",
            crashed.join("; ")
        );
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for container in &self.containers {
            if !container.state().is_finished() {
                let ctx = container.context();
                ctx.stopping().cancel();
                ctx.killed().cancel();
            }
        }
    }
}
