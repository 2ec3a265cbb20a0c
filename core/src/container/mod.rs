//! The service container: one running service, its extensions and its workers.
//!
//! A [`ServiceContainer`] runs one [`Service`] on a transport: it sets up and starts the
//! service's entrypoints, dependency providers and shared extensions, runs a worker for
//! every call its entrypoints take (at most `max_workers` at once), and stops gracefully:
//! entrypoints stop taking work, what was prefetched but not started goes back to the
//! broker, running workers finish and settle their messages within `SHUTDOWN_TIMEOUT`,
//! then the providers stop.

mod lifecycle;
mod pool;

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::{Semaphore, broadcast, oneshot, watch};
use tokio_util::task::TaskTracker;

pub use crate::extension::{ContainerContext, ContainerState, IdGenerator, SpawnError};

use crate::config::{Config, ConfigError};
use crate::context::ContextData;
use crate::dependency::{BoxedProvider, DependencyProvider, ErasedProvider, ProviderError, States};
use crate::extension::{Entrypoint, ExtensionError, SharedExtensions, Workers};
use crate::service::{EntrypointDef, Service};
use crate::transport::{Transport, TransportError};
use crate::wire::CallArgs;
use crate::worker::{WorkerEvent, WorkerResult};

/// An error of a container's life.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// A configuration value is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service is defined in a way that cannot run.
    #[error("invalid service definition: {0}")]
    Definition(String),
    /// An entrypoint or a shared extension does not fit, or failed to set up or start.
    #[error("{name}: {source}")]
    Extension {
        /// Which extension: `rpc entrypoint `add``, `RpcConsumer`, ...
        name: String,
        /// What went wrong.
        #[source]
        source: ExtensionError,
    },
    /// A dependency provider failed to set up or start.
    #[error("dependency `{name}` failed: {error}")]
    Provider {
        /// The dependency's name.
        name: String,
        /// What went wrong.
        #[source]
        error: ProviderError,
    },
    /// The broker refused a declaration, or could not be reached.
    #[error("transport error in {context}: {error}")]
    Transport {
        /// What the container was doing.
        context: String,
        /// The transport's error.
        #[source]
        error: TransportError,
    },
    /// The operation needs a container that has not started yet.
    #[error("the container has already started")]
    AlreadyStarted,
    /// The operation needs a running container.
    #[error("the container is not running ({0:?})")]
    NotRunning(ContainerState),
    /// A dependency name the service does not have.
    #[error("the service has no dependency `{name}`; its dependencies are: {known}")]
    UnknownDependency {
        /// The name asked for.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// An entrypoint name the service does not have.
    #[error("the service has no entrypoint `{name}`; its entrypoints are: {known}")]
    UnknownEntrypoint {
        /// The name asked for.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// The container crashed.
    #[error("the container crashed: {0}")]
    Crashed(String),
}

impl ContainerError {
    fn extension(name: impl Into<String>, source: ExtensionError) -> Self {
        Self::Extension {
            name: name.into(),
            source,
        }
    }
}

/// A spawned worker: its call id, and its result to come.
#[derive(Debug)]
pub struct WorkerHandle {
    call_id: String,
    result: oneshot::Receiver<WorkerResult>,
}

impl WorkerHandle {
    /// The worker's call id.
    #[must_use]
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Waits for the worker's result.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Killed`] if the container was killed before the worker finished.
    pub async fn result(self) -> Result<WorkerResult, SpawnError> {
        self.result.await.map_err(|_| SpawnError::Killed)
    }
}

struct ProviderSlot {
    name: &'static str,
    type_name: &'static str,
    type_id: std::any::TypeId,
    provider: Box<dyn ErasedProvider>,
}

struct Pending {
    providers: Vec<ProviderSlot>,
    entrypoints: Vec<EntrypointDef>,
}

/// What the container knows of one method with an entrypoint.
pub(crate) struct MethodInfo {
    pub(crate) name: &'static str,
    pub(crate) shared_name: Arc<str>,
    pub(crate) expected_exceptions: Vec<&'static str>,
    pub(crate) params: &'static [crate::method::Param],
    pub(crate) sensitive: Option<Arc<[&'static str]>>,
}

type Providers = Arc<[(&'static str, Arc<dyn ErasedProvider>)]>;

struct Started {
    providers: Providers,
    entrypoints: Vec<(String, Box<dyn Entrypoint>)>,
}

pub(crate) struct Inner<S> {
    ctx: ContainerContext,
    pending: Mutex<Option<Pending>>,
    methods: OnceLock<Vec<MethodInfo>>,
    providers: OnceLock<Providers>,
    started: tokio::sync::Mutex<Option<Started>>,
    pool: Arc<Semaphore>,
    workers: TaskTracker,
    events: broadcast::Sender<WorkerEvent>,
    parent_calls_tracked: usize,
    shutdown_timeout: Duration,
    lifecycle: tokio::sync::Mutex<()>,
    _service: PhantomData<fn() -> S>,
}

/// One service running on a transport: nameko's `ServiceContainer`.
///
/// ```no_run
/// # use nameko_core::container::ServiceContainer;
/// # async fn run<S: nameko_core::service::Service>(transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), Box<dyn std::error::Error>> {
/// let container = ServiceContainer::<S>::new(transport, nameko_core::config::Config::new())?;
/// container.start().await?;
/// // ... serve until asked to stop ...
/// container.stop().await?;
/// # Ok(()) }
/// ```
pub struct ServiceContainer<S: Service> {
    inner: Arc<Inner<S>>,
}

impl<S: Service> Clone for ServiceContainer<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: Service> fmt::Debug for ServiceContainer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceContainer")
            .field("service", &S::name())
            .field("state", &self.inner.ctx.state())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ServiceContainer`] with more than a transport and a configuration.
#[must_use]
pub struct ContainerBuilder<S> {
    transport: Arc<dyn Transport>,
    config: Config,
    ids: IdGenerator,
    scope: SharedExtensions,
    states: States,
    _service: PhantomData<fn() -> S>,
}

impl<S: Service> fmt::Debug for ContainerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerBuilder")
            .field("service", &S::name())
            .field("scope", &self.scope)
            .field("states", &self.states)
            .finish_non_exhaustive()
    }
}

impl<S: Service> ContainerBuilder<S> {
    /// Call ids from `ids` (see [`IdGenerator::sequential`]).
    pub fn ids(mut self, ids: IdGenerator) -> Self {
        self.ids = ids;
        self
    }

    /// Shares process-wide extensions (one web server, ...) with the other containers
    /// of `scope` (a `ServiceRunner` gives all its containers one).
    pub fn scope(mut self, scope: SharedExtensions) -> Self {
        self.scope = scope;
        self
    }

    /// Gives `value` to the service's [`State<T>`](crate::dependency::State) fields of its
    /// type (replacing a value of the same type given before).
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// Gives these values to the service's [`State<T>`](crate::dependency::State) fields,
    /// in place of those given before (a `ServiceRunner` gives all its containers its
    /// own).
    pub fn states(mut self, states: States) -> Self {
        self.states = states;
        self
    }

    /// The container.
    ///
    /// # Errors
    ///
    /// [`ContainerError::Config`] for a configuration value of the wrong type, and
    /// [`ContainerError::Extension`] for an entrypoint that does not fit its method.
    pub fn build(self) -> Result<ServiceContainer<S>, ContainerError> {
        let config = self.config;
        let settings = config.settings()?;
        let max_workers = settings.max_workers;
        let parent_calls_tracked = settings.parent_calls_tracked;
        let shutdown_timeout = settings.shutdown_timeout;
        let entrypoints = S::entrypoints();
        for def in &entrypoints {
            def.entrypoint
                .check(&def.method)
                .map_err(|e| ContainerError::extension(entrypoint_name(def), e))?;
        }
        let providers = S::dependencies()
            .into_iter()
            .map(|d| ProviderSlot {
                name: d.name,
                type_name: d.type_name,
                type_id: d.type_id,
                provider: d.provider.into_erased(),
            })
            .collect();
        let ctx = ContainerContext::new(
            S::name(),
            Arc::new(config),
            settings,
            self.transport,
            self.ids,
            self.scope,
            self.states,
        );
        let (events, _) = broadcast::channel(1024);
        let pool = Arc::new(Semaphore::new(max_workers));
        ctx.set_pool(pool.clone());
        Ok(ServiceContainer {
            inner: Arc::new(Inner {
                ctx,
                pending: Mutex::new(Some(Pending {
                    providers,
                    entrypoints,
                })),
                methods: OnceLock::new(),
                providers: OnceLock::new(),
                started: tokio::sync::Mutex::new(None),
                pool,
                workers: TaskTracker::new(),
                events,
                parent_calls_tracked,
                shutdown_timeout,
                lifecycle: tokio::sync::Mutex::new(()),
                _service: PhantomData,
            }),
        })
    }
}

fn entrypoint_name(def: &EntrypointDef) -> String {
    format!("{} entrypoint `{}`", def.entrypoint.kind(), def.method.name)
}

impl<S: Service> ServiceContainer<S> {
    /// A container for `S` on `transport`, reading nameko's keys from `config`.
    ///
    /// # Errors
    ///
    /// [`ContainerError::Config`] for a configuration value of the wrong type, and
    /// [`ContainerError::Extension`] for an entrypoint that does not fit its method.
    pub fn new(transport: Arc<dyn Transport>, config: Config) -> Result<Self, ContainerError> {
        Self::builder(transport, config).build()
    }

    /// A container whose call ids come from `ids` (see [`IdGenerator::sequential`]).
    ///
    /// # Errors
    ///
    /// As [`ServiceContainer::new`].
    pub fn with_ids(
        transport: Arc<dyn Transport>,
        config: Config,
        ids: IdGenerator,
    ) -> Result<Self, ContainerError> {
        Self::builder(transport, config).ids(ids).build()
    }

    /// A builder, for call ids, shared extension scopes and startup
    /// [state](crate::dependency::State).
    pub fn builder(transport: Arc<dyn Transport>, config: Config) -> ContainerBuilder<S> {
        ContainerBuilder {
            transport,
            config,
            ids: IdGenerator::uuid(),
            scope: SharedExtensions::new(),
            states: States::new(),
            _service: PhantomData,
        }
    }

    /// The service name.
    #[must_use]
    pub fn service_name(&self) -> &'static str {
        S::name()
    }

    /// What the container's extensions share: configuration, transport, shared
    /// extensions, lifecycle signals.
    #[must_use]
    pub fn context(&self) -> &ContainerContext {
        &self.inner.ctx
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> ContainerState {
        self.inner.ctx.state()
    }

    /// A watch of the state.
    #[must_use]
    pub fn watch_state(&self) -> watch::Receiver<ContainerState> {
        self.inner.ctx.watch_state()
    }

    /// Workers that finished and were torn down, from now on (for entrypoint waiters).
    #[must_use]
    pub fn subscribe_workers(&self) -> broadcast::Receiver<WorkerEvent> {
        self.inner.events.subscribe()
    }

    /// Workers running now.
    #[must_use]
    pub fn running_workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// The service's dependencies: names and type names, in field order.
    #[must_use]
    pub fn dependency_types(&self) -> Vec<(&'static str, &'static str, std::any::TypeId)> {
        match &*self.inner.pending.lock() {
            Some(p) => p
                .providers
                .iter()
                .map(|p| (p.name, p.type_name, p.type_id))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Names of the service's dependencies.
    #[must_use]
    pub fn dependency_names(&self) -> Vec<&'static str> {
        match &*self.inner.pending.lock() {
            Some(p) => p.providers.iter().map(|p| p.name).collect(),
            None => self
                .inner
                .providers
                .get()
                .map(|p| p.iter().map(|(n, _)| *n).collect())
                .unwrap_or_default(),
        }
    }

    /// Names of the methods whose entrypoints will run (each once, in definition order).
    #[must_use]
    pub fn entrypoint_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = match &*self.inner.pending.lock() {
            Some(p) => p.entrypoints.iter().map(EntrypointDef::name).collect(),
            None => return self.inner.method_names(),
        };
        dedup_in_order(&mut names);
        names
    }

    /// Replaces the provider of a dependency, before the container starts (nameko's
    /// `replace_dependencies`). The provider's output must be the field's type.
    ///
    /// # Errors
    ///
    /// [`ContainerError::AlreadyStarted`] once started;
    /// [`ContainerError::UnknownDependency`] naming the dependencies that exist;
    /// [`ContainerError::Definition`] if the provider's output is not the field's type.
    pub fn replace_dependency<P: DependencyProvider>(
        &self,
        name: &str,
        provider: P,
    ) -> Result<(), ContainerError> {
        self.replace_dependency_boxed(name, BoxedProvider::new(provider))
    }

    /// [`ServiceContainer::replace_dependency`] with the provider's type erased.
    ///
    /// # Errors
    ///
    /// As [`ServiceContainer::replace_dependency`].
    pub fn replace_dependency_boxed(
        &self,
        name: &str,
        provider: BoxedProvider,
    ) -> Result<(), ContainerError> {
        let mut pending = self.inner.pending.lock();
        let pending = pending.as_mut().ok_or(ContainerError::AlreadyStarted)?;
        let known = join(pending.providers.iter().map(|p| p.name));
        let slot = pending
            .providers
            .iter_mut()
            .find(|p| p.name == name)
            .ok_or_else(|| ContainerError::UnknownDependency {
                name: name.to_owned(),
                known,
            })?;
        if slot.type_id != provider.output() {
            return Err(ContainerError::Definition(format!(
                "dependency `{name}` is a {}, not a {}",
                slot.type_name,
                provider.output_name()
            )));
        }
        slot.provider = provider.into_erased();
        Ok(())
    }

    /// Keeps only the entrypoints of the named methods, before the container starts
    /// (nameko's `restrict_entrypoints`).
    ///
    /// # Errors
    ///
    /// [`ContainerError::AlreadyStarted`] once started;
    /// [`ContainerError::UnknownEntrypoint`] naming the entrypoints that exist.
    pub fn restrict_entrypoints(&self, names: &[&str]) -> Result<(), ContainerError> {
        let mut pending = self.inner.pending.lock();
        let pending = pending.as_mut().ok_or(ContainerError::AlreadyStarted)?;
        for name in names {
            if !pending.entrypoints.iter().any(|e| e.name() == *name) {
                let mut known: Vec<&str> = pending.entrypoints.iter().map(|e| e.name()).collect();
                dedup_in_order(&mut known);
                return Err(ContainerError::UnknownEntrypoint {
                    name: (*name).to_owned(),
                    known: join(known.into_iter()),
                });
            }
        }
        pending.entrypoints.retain(|e| names.contains(&e.name()));
        Ok(())
    }

    /// Sets up and starts every entrypoint, dependency provider and shared extension:
    /// the service is serving when this returns.
    ///
    /// # Errors
    ///
    /// [`ContainerError::AlreadyStarted`] if started before; any setup or start failure
    /// (after which the container is killed and reports the failure).
    pub async fn start(&self) -> Result<(), ContainerError> {
        self.inner.clone().start().await
    }

    /// Stops gracefully: entrypoints stop taking work and give back what they had not
    /// started, running workers finish (for at most `SHUTDOWN_TIMEOUT`, then they are
    /// killed and their messages redelivered by the broker), then dependencies stop.
    ///
    /// # Errors
    ///
    /// [`ContainerError::Crashed`] if the container had crashed.
    pub async fn stop(&self) -> Result<(), ContainerError> {
        self.inner.stop().await
    }

    /// Stops at once: running workers are abandoned, and the broker redelivers their
    /// messages.
    pub async fn kill(&self) {
        self.inner.kill(ContainerState::Killed).await;
    }

    /// Waits until the container is stopped, killed or crashed.
    ///
    /// # Errors
    ///
    /// [`ContainerError::Crashed`] with the reason it crashed.
    pub async fn wait(&self) -> Result<(), ContainerError> {
        let mut rx = self.inner.ctx.watch_state();
        let state = rx
            .wait_for(ContainerState::is_finished)
            .await
            .map(|s| s.clone())
            .unwrap_or(ContainerState::Killed);
        match state {
            ContainerState::Crashed(reason) => Err(ContainerError::Crashed(reason)),
            _ => Ok(()),
        }
    }

    /// The container's workers, as its entrypoints use them.
    #[must_use]
    pub fn workers(&self) -> Workers {
        Workers::new(self.inner.clone())
    }

    /// Runs a method through the real worker path (dependencies, hooks), with the given
    /// arguments and context data, as a test's entrypoint hook does. Waits for a free
    /// worker like any call.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Bind`] for an unknown entrypoint or arguments that do not fit;
    /// [`SpawnError::NotRunning`] unless the container is running.
    pub async fn spawn_worker(
        &self,
        entrypoint: &str,
        args: CallArgs,
        context: ContextData,
    ) -> Result<WorkerHandle, SpawnError> {
        let state = self.state();
        if state != ContainerState::Running {
            return Err(SpawnError::NotRunning(state));
        }
        let workers = self.workers();
        let call = workers.bind(entrypoint, args)?;
        let slot = workers.slot().await?;
        let worker = workers.start(slot, call, context, &[]);
        let (tx, rx) = oneshot::channel();
        let call_id = worker.context().call_id().to_owned();
        workers.spawn(worker, |worker| async move {
            let result = worker.run().await.finish_with_result().await;
            let _ = tx.send(result);
        });
        Ok(WorkerHandle {
            call_id,
            result: rx,
        })
    }
}

#[async_trait]
impl<S: Service> ErasedContainer for ServiceContainer<S> {
    fn service_name(&self) -> &'static str {
        S::name()
    }

    fn state(&self) -> ContainerState {
        ServiceContainer::state(self)
    }

    fn watch_state(&self) -> watch::Receiver<ContainerState> {
        ServiceContainer::watch_state(self)
    }

    async fn start(&self) -> Result<(), ContainerError> {
        ServiceContainer::start(self).await
    }

    async fn stop(&self) -> Result<(), ContainerError> {
        ServiceContainer::stop(self).await
    }

    async fn kill(&self) {
        ServiceContainer::kill(self).await;
    }

    async fn wait(&self) -> Result<(), ContainerError> {
        ServiceContainer::wait(self).await
    }

    fn subscribe_workers(&self) -> broadcast::Receiver<WorkerEvent> {
        ServiceContainer::subscribe_workers(self)
    }

    async fn spawn_worker(
        &self,
        entrypoint: &str,
        args: CallArgs,
        context: ContextData,
    ) -> Result<WorkerHandle, SpawnError> {
        ServiceContainer::spawn_worker(self, entrypoint, args, context).await
    }

    fn entrypoint_names(&self) -> Vec<&'static str> {
        ServiceContainer::entrypoint_names(self)
    }

    fn context(&self) -> &ContainerContext {
        ServiceContainer::context(self)
    }

    fn running_workers(&self) -> usize {
        ServiceContainer::running_workers(self)
    }
}

/// A container with its service type erased, as a runner holds several.
#[async_trait]
pub trait ErasedContainer: Send + Sync + fmt::Debug {
    /// The service name.
    fn service_name(&self) -> &'static str;
    /// The current state.
    fn state(&self) -> ContainerState;
    /// A watch of the state.
    fn watch_state(&self) -> watch::Receiver<ContainerState>;
    /// See [`ServiceContainer::start`].
    async fn start(&self) -> Result<(), ContainerError>;
    /// See [`ServiceContainer::stop`].
    async fn stop(&self) -> Result<(), ContainerError>;
    /// See [`ServiceContainer::kill`].
    async fn kill(&self);
    /// See [`ServiceContainer::wait`].
    async fn wait(&self) -> Result<(), ContainerError>;
    /// See [`ServiceContainer::subscribe_workers`].
    fn subscribe_workers(&self) -> broadcast::Receiver<WorkerEvent>;
    /// See [`ServiceContainer::spawn_worker`].
    async fn spawn_worker(
        &self,
        entrypoint: &str,
        args: CallArgs,
        context: ContextData,
    ) -> Result<WorkerHandle, SpawnError>;
    /// See [`ServiceContainer::entrypoint_names`].
    fn entrypoint_names(&self) -> Vec<&'static str>;
    /// See [`ServiceContainer::context`].
    fn context(&self) -> &ContainerContext;
    /// See [`ServiceContainer::running_workers`].
    fn running_workers(&self) -> usize;
}

fn dedup_in_order(names: &mut Vec<&'static str>) {
    let mut seen = Vec::with_capacity(names.len());
    names.retain(|n| {
        if seen.contains(n) {
            false
        } else {
            seen.push(*n);
            true
        }
    });
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}
