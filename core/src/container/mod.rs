//! The service container: one running service, its extensions and its workers.
//!
//! A [`ServiceContainer`] runs one [`Service`] on a transport: it sets up and starts the
//! service's dependency providers and entrypoints, spawns a worker for every call
//! (bounded by `max_workers`), and stops gracefully: entrypoints stop taking work, what
//! was prefetched but not started goes back to the broker, running workers finish and
//! settle their messages within `SHUTDOWN_TIMEOUT`, then the providers stop.

mod context;
mod run;

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Semaphore, broadcast, oneshot, watch};
use tokio_util::task::TaskTracker;

pub use context::{ContainerContext, IdGenerator};

use crate::config::{Config, ConfigError};
use crate::context::ContextData;
use crate::dependency::{ErasedProvider, ProviderError};
use crate::entrypoint::EntrypointKind;
use crate::errors::RemoteError;
use crate::service::{BindError, EntrypointDef, Service};
use crate::transport::{Transport, TransportError};
use crate::wire::CallArgs;
use crate::worker::{WorkerEvent, WorkerResult};

pub(crate) use run::{Driver, ResultHandler, Spawner};

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerState {
    /// Built, not started: dependencies can still be replaced.
    Created,
    /// Setting up and starting its extensions.
    Starting,
    /// Serving.
    Running,
    /// Stopping gracefully.
    Stopping,
    /// Stopped gracefully.
    Stopped,
    /// Killed by its owner.
    Killed,
    /// Killed by a failure it could not go on after.
    Crashed(String),
}

impl ContainerState {
    /// Whether the container is done (stopped, killed or crashed).
    #[must_use]
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Stopped | Self::Killed | Self::Crashed(_))
    }
}

/// An error of a container's life.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// A configuration value is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The service is configured in a way nameko refuses (e.g. a broadcast handler with
    /// reliable delivery and no broadcast identifier).
    #[error("invalid service definition: {0}")]
    Definition(String),
    /// A dependency provider failed to set up or start.
    #[error("dependency `{name}` failed: {error}")]
    Provider {
        /// The dependency's name.
        name: String,
        /// What went wrong.
        error: ProviderError,
    },
    /// The broker refused a declaration, or could not be reached.
    #[error("transport error in {context}: {error}")]
    Transport {
        /// What the container was doing.
        context: String,
        /// The transport's error.
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
    pub(crate) fn transport(context: impl Into<String>, error: TransportError) -> Self {
        Self::Transport {
            context: context.into(),
            error,
        }
    }
}

/// A worker could not be spawned.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The arguments do not fit the entrypoint.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The container is stopping and takes no new work.
    #[error("the container is stopping")]
    Stopping,
    /// The container was killed (nameko's `ContainerBeingKilled`).
    #[error("the container is being killed")]
    Killed,
    /// The container is not running.
    #[error("the container is not running ({0:?})")]
    NotRunning(ContainerState),
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

pub(crate) struct EntrypointInfo {
    pub(crate) name: Arc<str>,
    pub(crate) def: EntrypointDef,
}

struct Started {
    providers: Arc<[(&'static str, Arc<dyn ErasedProvider>)]>,
    drivers: Vec<Box<dyn Driver>>,
}

pub(crate) struct Inner<S> {
    ctx: ContainerContext,
    state: watch::Sender<ContainerState>,
    pending: Mutex<Option<Pending>>,
    providers: OnceLock<Arc<[(&'static str, Arc<dyn ErasedProvider>)]>>,
    entrypoints: OnceLock<Vec<EntrypointInfo>>,
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
            .field("state", &*self.inner.state.borrow())
            .finish_non_exhaustive()
    }
}

impl<S: Service> ServiceContainer<S> {
    /// A container for `S` on `transport`, reading nameko's keys from `config`.
    ///
    /// # Errors
    ///
    /// [`ContainerError::Config`] for a configuration value of the wrong type, and
    /// [`ContainerError::Definition`] for entrypoints nameko would refuse.
    pub fn new(transport: Arc<dyn Transport>, config: Config) -> Result<Self, ContainerError> {
        Self::with_ids(transport, config, IdGenerator::uuid())
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
        let max_workers = config.max_workers()?;
        config.prefetch_count()?;
        config.rpc_exchange()?;
        config.serializer()?;
        config.rpc_timeout()?;
        config.rpc_retry_policy()?;
        config.max_message_size()?;
        let parent_calls_tracked = config.parent_calls_tracked()?;
        let shutdown_timeout = config.shutdown_timeout()?;
        let entrypoints = S::entrypoints();
        validate_entrypoints(&entrypoints)?;
        let providers = S::dependencies()
            .into_iter()
            .map(|d| ProviderSlot {
                name: d.name,
                type_name: d.type_name,
                type_id: d.type_id,
                provider: d.provider,
            })
            .collect();
        let ctx = ContainerContext::new(S::name(), Arc::new(config), transport, ids);
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                state: watch::Sender::new(ContainerState::Created),
                pending: Mutex::new(Some(Pending {
                    providers,
                    entrypoints,
                })),
                providers: OnceLock::new(),
                entrypoints: OnceLock::new(),
                started: tokio::sync::Mutex::new(None),
                pool: Arc::new(Semaphore::new(max_workers)),
                workers: TaskTracker::new(),
                events,
                parent_calls_tracked,
                shutdown_timeout,
                lifecycle: tokio::sync::Mutex::new(()),
                _service: PhantomData,
            }),
        })
    }

    /// The service name.
    #[must_use]
    pub fn service_name(&self) -> &'static str {
        S::name()
    }

    /// What the container's extensions share: configuration, transport, shared
    /// extensions.
    #[must_use]
    pub fn context(&self) -> &ContainerContext {
        &self.inner.ctx
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> ContainerState {
        self.inner.state.borrow().clone()
    }

    /// A watch of the state.
    #[must_use]
    pub fn watch_state(&self) -> watch::Receiver<ContainerState> {
        self.inner.state.subscribe()
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
        match &*lock(&self.inner.pending) {
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
        match &*lock(&self.inner.pending) {
            Some(p) => p.providers.iter().map(|p| p.name).collect(),
            None => self
                .inner
                .providers
                .get()
                .map(|p| p.iter().map(|(n, _)| *n).collect())
                .unwrap_or_default(),
        }
    }

    /// Names of the entrypoints that will run.
    #[must_use]
    pub fn entrypoint_names(&self) -> Vec<&'static str> {
        match &*lock(&self.inner.pending) {
            Some(p) => p.entrypoints.iter().map(|e| e.name).collect(),
            None => self
                .inner
                .entrypoints
                .get()
                .map(|e| e.iter().map(|e| e.def.name).collect())
                .unwrap_or_default(),
        }
    }

    /// Replaces the provider of a dependency, before the container starts (nameko's
    /// `replace_dependencies`). The provider's output must be the field's type.
    ///
    /// # Errors
    ///
    /// [`ContainerError::AlreadyStarted`] once started;
    /// [`ContainerError::UnknownDependency`] naming the dependencies that exist;
    /// [`ContainerError::Definition`] if the provider's output is not the field's type.
    pub fn replace_dependency<P: crate::dependency::DependencyProvider>(
        &self,
        name: &str,
        provider: P,
    ) -> Result<(), ContainerError> {
        self.replace_dependency_boxed(
            name,
            std::any::TypeId::of::<P::Output>(),
            std::any::type_name::<P::Output>(),
            Box::new(provider),
        )
    }

    /// [`ServiceContainer::replace_dependency`] with the provider's type erased: `output`
    /// and `output_name` describe what it provides.
    ///
    /// # Errors
    ///
    /// As [`ServiceContainer::replace_dependency`].
    pub fn replace_dependency_boxed(
        &self,
        name: &str,
        output: std::any::TypeId,
        output_name: &str,
        provider: Box<dyn ErasedProvider>,
    ) -> Result<(), ContainerError> {
        let mut pending = lock(&self.inner.pending);
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
        if slot.type_id != output {
            return Err(ContainerError::Definition(format!(
                "dependency `{name}` is a {}, not a {output_name}",
                slot.type_name
            )));
        }
        slot.provider = provider;
        Ok(())
    }

    /// Keeps only the named entrypoints, before the container starts (nameko's
    /// `restrict_entrypoints`).
    ///
    /// # Errors
    ///
    /// [`ContainerError::AlreadyStarted`] once started;
    /// [`ContainerError::UnknownEntrypoint`] naming the entrypoints that exist.
    pub fn restrict_entrypoints(&self, names: &[&str]) -> Result<(), ContainerError> {
        let mut pending = lock(&self.inner.pending);
        let pending = pending.as_mut().ok_or(ContainerError::AlreadyStarted)?;
        for name in names {
            if !pending.entrypoints.iter().any(|e| e.name == *name) {
                return Err(ContainerError::UnknownEntrypoint {
                    name: (*name).to_owned(),
                    known: join(pending.entrypoints.iter().map(|e| e.name)),
                });
            }
        }
        pending.entrypoints.retain(|e| names.contains(&e.name));
        Ok(())
    }

    /// Sets up and starts every dependency provider and entrypoint: the service is
    /// serving when this returns.
    ///
    /// # Errors
    ///
    /// [`ContainerError::AlreadyStarted`] if started before; any setup or start failure
    /// (after which the container is killed and reports the failure).
    pub async fn start(&self) -> Result<(), ContainerError> {
        let guard = self.inner.lifecycle.lock().await;
        let pending = lock(&self.inner.pending)
            .take()
            .ok_or(ContainerError::AlreadyStarted)?;
        self.inner.state.send_replace(ContainerState::Starting);
        match self.inner.clone().start_extensions(pending).await {
            Ok(()) => {
                self.inner.state.send_replace(ContainerState::Running);
                tracing::info!(service = S::name(), "service started");
                let inner = self.inner.clone();
                tokio::spawn(async move {
                    let ctx = inner.ctx.clone();
                    tokio::select! {
                        () = ctx.crashed().cancelled() => {
                            let reason = ctx.crash_reason().unwrap_or_default();
                            inner.kill(ContainerState::Crashed(reason)).await;
                        }
                        // Killed from outside (a test cluster dropped mid-test): finish
                        // the kill so the state says so. A graceful stop that cancels
                        // this token at its end is already finished by then.
                        () = ctx.killed().cancelled() => inner.kill(ContainerState::Killed).await,
                    }
                });
                Ok(())
            }
            Err(error) => {
                // `kill` takes the lifecycle lock itself.
                drop(guard);
                self.inner.ctx.crash(error.to_string());
                self.inner
                    .kill(ContainerState::Crashed(error.to_string()))
                    .await;
                Err(error)
            }
        }
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
        let mut rx = self.inner.state.subscribe();
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

    /// Runs an entrypoint through the real worker path (dependencies, hooks), with the
    /// given arguments and context data, as a test's entrypoint hook does. Waits for a
    /// free worker like any call.
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
        let call = self.inner.bind(entrypoint, args)?;
        let slot = self.inner.worker_slot().await?;
        Ok(self.inner.spawn(slot, call, context, &[], None))
    }
}

impl<S: Service> Inner<S> {
    async fn start_extensions(self: Arc<Self>, pending: Pending) -> Result<(), ContainerError> {
        let Pending {
            providers,
            entrypoints,
        } = pending;
        let infos: Vec<EntrypointInfo> = entrypoints
            .iter()
            .map(|def| EntrypointInfo {
                name: Arc::from(def.name),
                def: def.clone(),
            })
            .collect();
        let _ = self.entrypoints.set(infos);
        let mut drivers = crate::drivers::build(&entrypoints, &self.ctx)?;
        let mut ready = Vec::with_capacity(providers.len());
        for mut slot in providers {
            slot.provider
                .setup(&self.ctx)
                .await
                .map_err(|error| ContainerError::Provider {
                    name: slot.name.to_owned(),
                    error,
                })?;
            ready.push((slot.name, Arc::<dyn ErasedProvider>::from(slot.provider)));
        }
        for driver in &mut drivers {
            driver.setup(&self.ctx).await?;
        }
        let providers: Arc<[(&'static str, Arc<dyn ErasedProvider>)]> = ready.into();
        let _ = self.providers.set(providers.clone());
        *self.started.lock().await = Some(Started {
            providers: providers.clone(),
            drivers,
        });
        for (name, provider) in providers.iter() {
            provider
                .start()
                .await
                .map_err(|error| ContainerError::Provider {
                    name: (*name).to_owned(),
                    error,
                })?;
        }
        let spawner: Arc<dyn Spawner> = self.clone();
        let started = self.started.lock().await;
        if let Some(started) = &*started {
            for driver in &started.drivers {
                driver.start(spawner.clone()).await?;
            }
        }
        Ok(())
    }

    async fn stop(self: &Arc<Self>) -> Result<(), ContainerError> {
        let _guard = self.lifecycle.lock().await;
        match self.state.borrow().clone() {
            ContainerState::Created => {
                lock(&self.pending).take();
                self.state.send_replace(ContainerState::Stopped);
                return Ok(());
            }
            ContainerState::Crashed(reason) => return Err(ContainerError::Crashed(reason)),
            ContainerState::Stopped | ContainerState::Killed => return Ok(()),
            _ => {}
        }
        self.state.send_replace(ContainerState::Stopping);
        tracing::info!(service = S::name(), "stopping service");
        self.ctx.stopping().cancel();
        let started = self.started.lock().await.take();
        if let Some(started) = &started {
            for driver in &started.drivers {
                driver.stop().await;
            }
        }
        self.workers.close();
        if tokio::time::timeout(self.shutdown_timeout, self.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = S::name(),
                running = self.workers.len(),
                timeout = ?self.shutdown_timeout,
                "workers still running at the shutdown deadline; killing them (the broker redelivers their messages)"
            );
            self.ctx.killed().cancel();
            self.workers.wait().await;
        }
        if let Some(started) = started {
            for (_, provider) in started.providers.iter() {
                provider.stop().await;
            }
            for driver in &started.drivers {
                driver.close().await;
            }
        }
        self.ctx.killed().cancel();
        if let Some(reason) = self.ctx.crash_reason() {
            self.state
                .send_replace(ContainerState::Crashed(reason.clone()));
            return Err(ContainerError::Crashed(reason));
        }
        self.state.send_replace(ContainerState::Stopped);
        tracing::info!(service = S::name(), "service stopped");
        Ok(())
    }

    async fn kill(self: &Arc<Self>, final_state: ContainerState) {
        self.ctx.stopping().cancel();
        self.ctx.killed().cancel();
        let _guard = self.lifecycle.lock().await;
        if self.state.borrow().is_finished() {
            return;
        }
        lock(&self.pending).take();
        let started = self.started.lock().await.take();
        if let Some(started) = started {
            for driver in &started.drivers {
                driver.kill().await;
            }
            self.workers.close();
            self.workers.wait().await;
            for (_, provider) in started.providers.iter() {
                provider.kill().await;
            }
        }
        tracing::warn!(service = S::name(), state = ?final_state, "service killed");
        self.state.send_replace(final_state);
    }

    pub(crate) fn entrypoint(&self, name: &str) -> Option<&EntrypointInfo> {
        self.entrypoints.get()?.iter().find(|e| &*e.name == name)
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

fn validate_entrypoints(entrypoints: &[EntrypointDef]) -> Result<(), ContainerError> {
    for ep in entrypoints {
        match &ep.kind {
            EntrypointKind::EventHandler(cfg)
                if cfg.handler_type == crate::entrypoint::HandlerType::Broadcast
                    && cfg.reliable_delivery
                    && cfg.broadcast_identifier.is_none() =>
            {
                return Err(ContainerError::Definition(format!(
                    "EventHandlerConfigurationError: `{}`: you are using the default broadcast identifier, which is not compatible with reliable delivery",
                    ep.name
                )));
            }
            EntrypointKind::Timer(cfg) if cfg.interval.is_zero() => {
                return Err(ContainerError::Definition(format!(
                    "timer `{}` has a zero interval",
                    ep.name
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn join<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The error dict a worker fails with when the service panicked.
pub(crate) fn panic_error(payload: &(dyn std::any::Any + Send)) -> RemoteError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned());
    let message = format!("worker panicked: {message}");
    RemoteError::new(
        "WorkerPanic",
        "nameko_rs.WorkerPanic",
        [message.clone()],
        message,
    )
}
