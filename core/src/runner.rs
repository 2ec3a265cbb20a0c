//! Running several services in one process: nameko's `ServiceRunner`.
//!
//! A [`ServiceRunner`] holds one [`ServiceContainer`] per service, each on its own
//! transport connection (or all on one shared connection). It starts them together, stops
//! them together (gracefully, each bounded by `SHUTDOWN_TIMEOUT`), kills them, and waits
//! for them: if one crashes, the others are stopped and [`ServiceRunner::wait`] names the
//! one that crashed.
//!
//! The runner knows nothing about brokers: it is given a transport, or a function that
//! connects one per service. The `nameko` facade crate connects them from `AMQP_URI` and
//! adds signal handling.
//!
//! ```
//! use std::sync::Arc;
//! use nameko_core::config::Config;
//! use nameko_core::runner::ServiceRunner;
//! # use nameko_core::transport::Transport;
//! # async fn example<A: nameko_core::service::Service, B: nameko_core::service::Service>(
//! #     connect: impl Fn() -> Arc<dyn Transport> + Send + Sync + 'static,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! // `connect` makes a new connection to the broker; each service gets its own.
//! let runner = ServiceRunner::with_connector(Config::new(), move |_service| {
//!     let transport = connect();
//!     async move { Ok::<_, std::convert::Infallible>(transport) }
//! });
//! runner.add::<A>()?.add::<B>()?;
//! runner.start().await?;
//! // ... serve until asked to stop ...
//! let report = runner.stop().await;
//! assert!(report.is_clean());
//! # Ok(()) }
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, join_all};
use futures_util::stream::{FuturesUnordered, StreamExt};

use crate::config::Config;
use crate::container::{ContainerError, ContainerState, ErasedContainer, ServiceContainer};
use crate::dependency::States;
use crate::extension::SharedExtensions;
use crate::service::Service;
use crate::transport::Transport;

/// Any error a connector returns.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How long a container may take to stop after its `SHUTDOWN_TIMEOUT` has passed (its
/// workers are killed at the deadline; this bounds what comes after: dependency providers
/// stopping, consumers closing) before the runner kills it.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

type Connector =
    dyn Fn(&'static str) -> BoxFuture<'static, Result<Arc<dyn Transport>, BoxError>> + Send + Sync;

type MakeContainer = fn(
    Arc<dyn Transport>,
    Config,
    SharedExtensions,
    States,
) -> Result<Arc<dyn ErasedContainer>, ContainerError>;

/// Where the runner's containers get their transport.
#[derive(Clone)]
enum Source {
    /// Every container uses this connection; the runner does not close it.
    Shared(Arc<dyn Transport>),
    /// Each container gets a connection of its own, closed when it stops.
    Connector(Arc<Connector>),
}

/// A service added but not started yet.
enum Pending {
    Service {
        name: &'static str,
        make: MakeContainer,
    },
    Container(Arc<dyn ErasedContainer>),
}

impl Pending {
    fn name(&self) -> &'static str {
        match self {
            Self::Service { name, .. } => name,
            Self::Container(container) => container.service_name(),
        }
    }
}

/// A container the runner started (or tried to), with the connection it owns.
struct Entry {
    container: Arc<dyn ErasedContainer>,
    transport: Option<Arc<dyn Transport>>,
}

#[derive(Default)]
struct Registry {
    pending: Vec<Pending>,
    entries: Vec<Entry>,
    started: bool,
}

struct Inner {
    config: Config,
    scope: SharedExtensions,
    states: parking_lot::Mutex<States>,
    source: Source,
    registry: Mutex<Registry>,
    lifecycle: tokio::sync::Mutex<()>,
}

/// Several services in one process: nameko's `ServiceRunner`.
///
/// [`add`](ServiceRunner::add) services, [`start`](ServiceRunner::start) them together,
/// then [`wait`](ServiceRunner::wait), [`stop`](ServiceRunner::stop) or
/// [`kill`](ServiceRunner::kill). Every service gets its own container built from the
/// runner's configuration, so one name runs once. Cheap to clone: clones share the
/// containers, so one task can `wait` while another `stop`s.
///
/// Containers are built when the runner starts; [`add_container`](ServiceRunner::add_container)
/// adds one built beforehand (for example with dependencies replaced).
#[derive(Clone)]
pub struct ServiceRunner {
    inner: Arc<Inner>,
}

impl fmt::Debug for ServiceRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceRunner")
            .field("services", &self.service_names())
            .field("started", &self.registry().started)
            .finish_non_exhaustive()
    }
}

impl ServiceRunner {
    /// A runner whose containers all share `transport` (one connection). The runner does
    /// not close it.
    #[must_use]
    pub fn new(config: Config, transport: Arc<dyn Transport>) -> Self {
        Self::from_source(config, Source::Shared(transport))
    }

    /// A runner that connects a transport for each service with `connect`, given the
    /// service's name (handy to name the connection). The runner closes these connections
    /// when their containers have stopped.
    #[must_use]
    pub fn with_connector<F, Fut, E>(config: Config, connect: F) -> Self
    where
        F: Fn(&'static str) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn Transport>, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let connector: Arc<Connector> =
            Arc::new(move |service| connect(service).map(|r| r.map_err(Into::into)).boxed());
        Self::from_source(config, Source::Connector(connector))
    }

    fn from_source(config: Config, source: Source) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                scope: SharedExtensions::new(),
                states: parking_lot::Mutex::default(),
                source,
                registry: Mutex::default(),
                lifecycle: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The configuration every container gets.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The scope of the process-wide shared extensions of the runner's containers (see
    /// [`ContainerContext::process_shared`](crate::extension::ContainerContext::process_shared)).
    /// A container built beforehand for [`add_container`](Self::add_container) shares
    /// them when built with [`ContainerBuilder::scope`](crate::container::ContainerBuilder::scope).
    #[must_use]
    pub fn shared_extensions(&self) -> &SharedExtensions {
        &self.inner.scope
    }

    /// Gives `value` to the [`State<T>`](crate::dependency::State) fields of its type in
    /// every service the runner starts (replacing a value of the same type given
    /// before). Give it before [`start`](Self::start).
    ///
    /// ```no_run
    /// # async fn run<S: nameko_core::service::Service>(transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), Box<dyn std::error::Error>> {
    /// use nameko_core::config::Config;
    /// use nameko_core::runner::ServiceRunner;
    ///
    /// #[derive(Clone)]
    /// struct Pool; // a connection pool, a client, settings...
    ///
    /// let runner = ServiceRunner::new(Config::new(), transport).with_state(Pool);
    /// runner.add::<S>()?;
    /// runner.start().await?;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_state<T: Clone + Send + Sync + 'static>(self, value: T) -> Self {
        self.inner.states.lock().insert(value);
        self
    }

    /// Gives every value of `states` as [`with_state`](Self::with_state) does, in place
    /// of those given before.
    #[must_use]
    pub fn with_states(self, states: States) -> Self {
        *self.inner.states.lock() = states;
        self
    }

    /// The values given with [`with_state`](Self::with_state). A container built
    /// beforehand for [`add_container`](Self::add_container) gets them when built with
    /// [`ContainerBuilder::states`](crate::container::ContainerBuilder::states).
    #[must_use]
    pub fn state_values(&self) -> States {
        self.inner.states.lock().clone()
    }

    /// Adds service `S`, to be started with the others.
    ///
    /// # Errors
    ///
    /// [`RunnerError::DuplicateService`] if a service of the same name was added;
    /// [`RunnerError::AlreadyStarted`] once the runner has started.
    pub fn add<S: Service>(&self) -> Result<&Self, RunnerError> {
        self.push(Pending::Service {
            name: S::name(),
            make: make_container::<S>,
        })
    }

    /// Adds a container built beforehand (on a transport of the caller's choice, with
    /// dependencies replaced, ...). The runner starts and stops it with the others, but
    /// does not close its transport.
    ///
    /// # Errors
    ///
    /// As [`ServiceRunner::add`], and [`RunnerError::Container`] with
    /// [`ContainerError::AlreadyStarted`] if the container has started already.
    pub fn add_container(&self, container: Arc<dyn ErasedContainer>) -> Result<&Self, RunnerError> {
        if container.state() != ContainerState::Created {
            return Err(RunnerError::Container {
                service: container.service_name(),
                error: Box::new(ContainerError::AlreadyStarted),
            });
        }
        self.push(Pending::Container(container))
    }

    fn push(&self, pending: Pending) -> Result<&Self, RunnerError> {
        let mut registry = self.registry();
        if registry.started {
            return Err(RunnerError::AlreadyStarted);
        }
        let name = pending.name();
        if registry.pending.iter().any(|p| p.name() == name) {
            return Err(RunnerError::DuplicateService(name));
        }
        registry.pending.push(pending);
        drop(registry);
        Ok(self)
    }

    /// The names of the services added, in the order they were added.
    #[must_use]
    pub fn service_names(&self) -> Vec<&'static str> {
        let registry = self.registry();
        if registry.started {
            registry
                .entries
                .iter()
                .map(|e| e.container.service_name())
                .collect()
        } else {
            registry.pending.iter().map(Pending::name).collect()
        }
    }

    /// The containers, once the runner has started (empty before).
    #[must_use]
    pub fn containers(&self) -> Vec<Arc<dyn ErasedContainer>> {
        self.registry()
            .entries
            .iter()
            .map(|e| e.container.clone())
            .collect()
    }

    /// The container of one service, once the runner has started (nameko's
    /// `get_container`).
    #[must_use]
    pub fn container(&self, service: &str) -> Option<Arc<dyn ErasedContainer>> {
        self.registry()
            .entries
            .iter()
            .find(|e| e.container.service_name() == service)
            .map(|e| e.container.clone())
    }

    /// Each service and the state of its container (`Created` before the runner starts).
    #[must_use]
    pub fn states(&self) -> Vec<(&'static str, ContainerState)> {
        let registry = self.registry();
        if registry.started {
            registry
                .entries
                .iter()
                .map(|e| (e.container.service_name(), e.container.state()))
                .collect()
        } else {
            registry
                .pending
                .iter()
                .map(|p| (p.name(), ContainerState::Created))
                .collect()
        }
    }

    /// The longest a graceful stop waits for running workers: the configuration's
    /// `SHUTDOWN_TIMEOUT` (30 s unless set).
    #[must_use]
    pub fn shutdown_timeout(&self) -> Duration {
        self.inner
            .config
            .shutdown_timeout()
            .unwrap_or(Duration::from_secs(30))
    }

    /// Connects, builds and starts every service's container, all together. The services
    /// are serving when this returns.
    ///
    /// If one of them fails (its connection, its configuration, its start), the ones that
    /// started are stopped, every connection the runner opened is closed, and the first
    /// failure (in the order the services were added) is returned.
    ///
    /// # Errors
    ///
    /// [`RunnerError::AlreadyStarted`], [`RunnerError::NoServices`],
    /// [`RunnerError::Connect`] or [`RunnerError::Container`] naming the service.
    pub async fn start(&self) -> Result<(), RunnerError> {
        let _guard = self.inner.lifecycle.lock().await;
        let pending = {
            let mut registry = self.registry();
            if registry.started {
                return Err(RunnerError::AlreadyStarted);
            }
            if registry.pending.is_empty() {
                return Err(RunnerError::NoServices);
            }
            registry.started = true;
            std::mem::take(&mut registry.pending)
        };
        let names: Vec<&str> = pending.iter().map(Pending::name).collect();
        tracing::info!(services = ?names, "starting services");
        let outcomes = join_all(pending.into_iter().map(|p| self.start_one(p))).await;
        let mut first_error = None;
        let mut entries = Vec::with_capacity(outcomes.len());
        for (entry, result) in outcomes {
            if let Some(entry) = entry {
                entries.push(entry);
            }
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        self.registry().entries = entries;
        match first_error {
            None => {
                tracing::info!(services = ?names, "services started");
                Ok(())
            }
            Some(error) => {
                tracing::error!(%error, "a service failed to start; stopping the others");
                self.stop_all().await;
                Err(error)
            }
        }
    }

    async fn start_one(&self, pending: Pending) -> (Option<Entry>, Result<(), RunnerError>) {
        let (container, transport) = match pending {
            Pending::Container(container) => (container, None),
            Pending::Service { name, make } => {
                let (transport, owned) = match &self.inner.source {
                    Source::Shared(transport) => (transport.clone(), false),
                    Source::Connector(connect) => match connect(name).await {
                        Ok(transport) => (transport, true),
                        Err(error) => {
                            let error = RunnerError::Connect {
                                service: name,
                                error: Arc::from(error),
                            };
                            return (None, Err(error));
                        }
                    },
                };
                match make(
                    transport.clone(),
                    self.inner.config.clone(),
                    self.inner.scope.clone(),
                    self.state_values(),
                ) {
                    Ok(container) => (container, owned.then_some(transport)),
                    Err(error) => {
                        if owned {
                            close(name, &transport).await;
                        }
                        return (
                            None,
                            Err(RunnerError::Container {
                                service: name,
                                error: Box::new(error),
                            }),
                        );
                    }
                }
            }
        };
        let service = container.service_name();
        let result = container
            .start()
            .await
            .map_err(|error| RunnerError::Container {
                service,
                error: Box::new(error),
            });
        (
            Some(Entry {
                container,
                transport,
            }),
            result,
        )
    }

    /// Stops every container gracefully, all at once: entrypoints stop taking work,
    /// running workers finish (each container waits at most its `SHUTDOWN_TIMEOUT`, then
    /// kills the workers left, whose messages the broker redelivers), dependencies stop.
    /// A container still not stopped [`STOP_GRACE`] after its deadline is killed. Then the
    /// connections the runner opened are closed.
    ///
    /// Stopping a runner that is stopped already reports the same outcomes again.
    pub async fn stop(&self) -> StopReport {
        let _guard = self.inner.lifecycle.lock().await;
        self.stop_all().await
    }

    async fn stop_all(&self) -> StopReport {
        let containers = self.containers();
        let timeout = self.shutdown_timeout();
        let services = join_all(containers.iter().map(|c| async move {
            ServiceStop {
                service: c.service_name(),
                outcome: stop_one(c.as_ref(), timeout).await,
            }
        }))
        .await;
        self.close_transports().await;
        let report = StopReport { services };
        if report.is_clean() {
            tracing::info!("services stopped");
        } else {
            tracing::warn!(%report, "services stopped");
        }
        report
    }

    /// Kills every container at once: running workers are abandoned and the broker
    /// redelivers their messages. Then the connections the runner opened are closed.
    pub async fn kill(&self) {
        let containers = self.containers();
        join_all(containers.iter().map(|c| c.kill())).await;
        self.close_transports().await;
    }

    /// Waits until every container has stopped. If one crashes, the others are stopped
    /// gracefully and the crash is returned. Returns at once when nothing was started.
    ///
    /// # Errors
    ///
    /// [`RunnerError::Crashed`] naming the service that crashed first, and why.
    pub async fn wait(&self) -> Result<(), RunnerError> {
        let containers = self.containers();
        let mut waits: FuturesUnordered<_> = containers
            .iter()
            .map(|c| async move { (c.service_name(), c.wait().await) })
            .collect();
        while let Some((service, result)) = waits.next().await {
            if let Err(error) = result {
                let reason = match error {
                    ContainerError::Crashed(reason) => reason,
                    other => other.to_string(),
                };
                drop(waits);
                tracing::error!(service, %reason, "service crashed; stopping the others");
                self.stop().await;
                return Err(RunnerError::Crashed { service, reason });
            }
        }
        Ok(())
    }

    /// Starts the services, serves until `shutdown` completes, then stops them
    /// gracefully; if a service crashes meanwhile, the others are stopped and the crash
    /// returned.
    ///
    /// ```no_run
    /// # async fn example(runner: nameko_core::runner::ServiceRunner) -> Result<(), Box<dyn std::error::Error>> {
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// # drop(stop);
    /// let report = runner.run_until(async { stopped.await.ok(); }).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The errors of [`ServiceRunner::start`] and [`ServiceRunner::wait`].
    pub async fn run_until<F>(&self, shutdown: F) -> Result<StopReport, RunnerError>
    where
        F: Future<Output = ()>,
    {
        self.start().await?;
        tokio::select! {
            result = self.wait() => {
                result?;
                Ok(self.report())
            }
            () = shutdown => Ok(self.stop().await),
        }
    }

    /// How each container ended, as far as its state tells (without stopping anything).
    fn report(&self) -> StopReport {
        StopReport {
            services: self
                .containers()
                .iter()
                .map(|c| ServiceStop {
                    service: c.service_name(),
                    outcome: outcome_of(c.state()),
                })
                .collect(),
        }
    }

    async fn close_transports(&self) {
        let owned: Vec<(&'static str, Arc<dyn Transport>)> = self
            .registry()
            .entries
            .iter_mut()
            .filter_map(|e| Some((e.container.service_name(), e.transport.take()?)))
            .collect();
        join_all(owned.iter().map(|(name, t)| close(name, t))).await;
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.inner
            .registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// nameko's `run_services`: starts the runner's services, runs `body`, then stops them
/// gracefully (or kills them, with `kill_on_exit`), returning what `body` returned.
///
/// If a service crashes while `body` runs, `body` is dropped, the other services are
/// stopped, and the crash is returned.
///
/// ```no_run
/// # async fn example(runner: nameko_core::runner::ServiceRunner, transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), Box<dyn std::error::Error>> {
/// use nameko_core::config::Config;
/// use nameko_core::rpc::ClusterRpcProxy;
/// use nameko_core::runner::run_services;
///
/// let answer: String = run_services(&runner, false, async {
///     let proxy = ClusterRpcProxy::start(transport, &Config::new()).await?;
///     proxy.service("service_y").call("append_identifier", ("x",)).await
/// })
/// .await??;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// The errors of [`ServiceRunner::start`], and [`RunnerError::Crashed`] for a service
/// that crashed while `body` ran or while stopping.
pub async fn run_services<F>(
    runner: &ServiceRunner,
    kill_on_exit: bool,
    body: F,
) -> Result<F::Output, RunnerError>
where
    F: Future,
{
    runner.start().await?;
    let output = tokio::select! {
        output = body => output,
        result = runner.wait() => {
            result?;
            return Err(RunnerError::AllStopped);
        }
    };
    if kill_on_exit {
        runner.kill().await;
        return Ok(output);
    }
    let report = runner.stop().await;
    match report.crashed().next() {
        Some((service, reason)) => Err(RunnerError::Crashed {
            service,
            reason: reason.to_owned(),
        }),
        None => Ok(output),
    }
}

fn make_container<S: Service>(
    transport: Arc<dyn Transport>,
    config: Config,
    scope: SharedExtensions,
    states: States,
) -> Result<Arc<dyn ErasedContainer>, ContainerError> {
    Ok(Arc::new(
        ServiceContainer::<S>::builder(transport, config)
            .scope(scope)
            .states(states)
            .build()?,
    ))
}

async fn close(service: &str, transport: &Arc<dyn Transport>) {
    if let Err(error) = transport.close().await {
        tracing::debug!(service, %error, "closing the service's connection failed");
    }
}

/// Stops one container within its deadline (see [`ServiceRunner::stop`]).
async fn stop_one(container: &dyn ErasedContainer, timeout: Duration) -> StopOutcome {
    let state = container.state();
    if state.is_finished() || state == ContainerState::Created {
        if state == ContainerState::Created {
            let _ = container.stop().await;
        }
        return outcome_of(container.state());
    }
    // Boxed (by `async_trait`), so that it can be dropped, releasing the container's
    // lifecycle lock, before a kill.
    let mut stop = container.stop();
    tokio::select! {
        result = &mut stop => return outcome_of_stop(result, 0),
        () = tokio::time::sleep(timeout) => {}
    }
    // The deadline has passed: the container kills the workers it still has, now.
    let abandoned = container.running_workers();
    tokio::select! {
        result = &mut stop => outcome_of_stop(result, abandoned),
        () = tokio::time::sleep(STOP_GRACE) => {
            drop(stop);
            tracing::error!(
                service = container.service_name(),
                "service still stopping {STOP_GRACE:?} after its shutdown deadline; killing it"
            );
            if tokio::time::timeout(STOP_GRACE, container.kill()).await.is_err() {
                tracing::error!(service = container.service_name(), "service did not die; abandoning it");
            }
            StopOutcome::Killed
        }
    }
}

fn outcome_of_stop(result: Result<(), ContainerError>, abandoned: usize) -> StopOutcome {
    match result {
        Err(ContainerError::Crashed(reason)) => StopOutcome::Crashed(reason),
        Err(other) => StopOutcome::Crashed(other.to_string()),
        Ok(()) if abandoned > 0 => StopOutcome::Forced {
            abandoned_workers: abandoned,
        },
        Ok(()) => StopOutcome::Stopped,
    }
}

fn outcome_of(state: ContainerState) -> StopOutcome {
    match state {
        ContainerState::Crashed(reason) => StopOutcome::Crashed(reason),
        ContainerState::Killed => StopOutcome::Killed,
        ContainerState::Stopped | ContainerState::Created => StopOutcome::Stopped,
        other => StopOutcome::Crashed(format!("still {other:?}")),
    }
}

/// How a runner's services ended, from [`ServiceRunner::stop`] or
/// [`ServiceRunner::run_until`].
///
/// It displays as one `service: outcome` per service, comma separated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StopReport {
    /// Each service, in the order they were added.
    pub services: Vec<ServiceStop>,
}

impl StopReport {
    /// Whether every service stopped gracefully, with no worker killed.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.services
            .iter()
            .all(|s| s.outcome == StopOutcome::Stopped)
    }

    /// The services that crashed, and why.
    pub fn crashed(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.services.iter().filter_map(|s| match &s.outcome {
            StopOutcome::Crashed(reason) => Some((s.service, reason.as_str())),
            _ => None,
        })
    }

    /// Whether the shutdown deadline forced a kill: workers abandoned at
    /// `SHUTDOWN_TIMEOUT`, or a container killed after it.
    #[must_use]
    pub fn was_forced(&self) -> bool {
        self.services
            .iter()
            .any(|s| matches!(s.outcome, StopOutcome::Forced { .. } | StopOutcome::Killed))
    }
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.services.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", s.service, s.outcome)?;
        }
        Ok(())
    }
}

/// How one service ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceStop {
    /// The service.
    pub service: &'static str,
    /// How it ended.
    pub outcome: StopOutcome,
}

/// How one container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopOutcome {
    /// Stopped gracefully: every worker finished.
    Stopped,
    /// Stopped at its `SHUTDOWN_TIMEOUT`, killing the workers still running (the broker
    /// redelivers their messages).
    Forced {
        /// Workers running at the deadline.
        abandoned_workers: usize,
    },
    /// Killed: by its owner, or because it would not stop after its deadline.
    Killed,
    /// Crashed, with the reason.
    Crashed(String),
}

impl fmt::Display for StopOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stopped => f.write_str("stopped"),
            Self::Forced { abandoned_workers } => write!(
                f,
                "stopped at the shutdown deadline, killing {abandoned_workers} running worker(s)"
            ),
            Self::Killed => f.write_str("killed"),
            Self::Crashed(reason) => write!(f, "crashed: {reason}"),
        }
    }
}

/// An error of a [`ServiceRunner`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// Two services of the same name were added.
    #[error("service `{0}` was added twice; a runner runs one container per service name")]
    DuplicateService(&'static str),
    /// The runner has started already (services are added, and a runner started, once).
    #[error("the runner has already started")]
    AlreadyStarted,
    /// The runner was started without services.
    #[error("no services to run")]
    NoServices,
    /// A service's transport could not be connected.
    #[error("service `{service}`: {error}")]
    Connect {
        /// The service.
        service: &'static str,
        /// The connector's error.
        error: Arc<dyn StdError + Send + Sync + 'static>,
    },
    /// A service's container could not be built or started.
    #[error("service `{service}` did not start: {error}")]
    Container {
        /// The service.
        service: &'static str,
        /// The container's error.
        error: Box<ContainerError>,
    },
    /// A service crashed.
    #[error("service `{service}` crashed: {reason}")]
    Crashed {
        /// The service.
        service: &'static str,
        /// Why.
        reason: String,
    },
    /// Every service stopped while [`run_services`]' body was still running.
    #[error("every service stopped while the body was running")]
    AllStopped,
}

impl RunnerError {
    /// The service the error is about, if it is about one.
    #[must_use]
    pub fn service(&self) -> Option<&'static str> {
        match self {
            Self::DuplicateService(service)
            | Self::Connect { service, .. }
            | Self::Container { service, .. }
            | Self::Crashed { service, .. } => Some(service),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_tell_clean_forced_and_crashed_stops_apart() {
        let stop = |service, outcome| ServiceStop { service, outcome };
        let clean = StopReport {
            services: vec![
                stop("a", StopOutcome::Stopped),
                stop("b", StopOutcome::Stopped),
            ],
        };
        assert!(clean.is_clean() && !clean.was_forced());
        assert_eq!(clean.crashed().count(), 0);
        assert_eq!(clean.to_string(), "a: stopped, b: stopped");

        let forced = StopReport {
            services: vec![
                stop(
                    "a",
                    StopOutcome::Forced {
                        abandoned_workers: 2,
                    },
                ),
                stop("b", StopOutcome::Crashed("boom".to_owned())),
            ],
        };
        assert!(!forced.is_clean() && forced.was_forced());
        assert_eq!(forced.crashed().collect::<Vec<_>>(), [("b", "boom")]);
        assert_eq!(
            forced.to_string(),
            "a: stopped at the shutdown deadline, killing 2 running worker(s), b: crashed: boom"
        );
    }

    #[test]
    fn errors_name_their_service() {
        let crashed = RunnerError::Crashed {
            service: "orders",
            reason: "consumer died".to_owned(),
        };
        assert_eq!(crashed.service(), Some("orders"));
        assert_eq!(
            crashed.to_string(),
            "service `orders` crashed: consumer died"
        );
        assert_eq!(RunnerError::NoServices.service(), None);
    }
}
