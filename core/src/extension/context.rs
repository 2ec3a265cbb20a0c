//! What the extensions of a container share: its identity, configuration, transport,
//! lifecycle signals and shared extensions.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ExtensionError;
use super::observe::Observers;
use super::shared::{Entry, SharedExtension, SharedExtensions};
use crate::config::{Config, Settings};
use crate::dependency::States;
use crate::transport::Transport;

/// Makes the unique part of call ids (and of other ids a container makes up).
///
/// Random UUIDs by default; [`IdGenerator::sequential`] gives `"0"`, `"1"`, ... for tests
/// that assert on call id stacks (nameko's `predictable_call_ids`).
#[derive(Clone)]
pub struct IdGenerator {
    /// `None` for random UUIDs, written where they go without a `String` of their own.
    inner: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

impl IdGenerator {
    /// Random UUID4 strings, as nameko makes them.
    #[must_use]
    pub fn uuid() -> Self {
        Self { inner: None }
    }

    /// `"0"`, `"1"`, `"2"`, ...
    #[must_use]
    pub fn sequential() -> Self {
        let next = Arc::new(AtomicU64::new(0));
        Self::from_fn(move || next.fetch_add(1, Ordering::Relaxed).to_string())
    }

    /// Ids from any function.
    #[must_use]
    pub fn from_fn(f: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self {
            inner: Some(Arc::new(f)),
        }
    }

    /// The next id.
    #[must_use]
    pub fn next_id(&self) -> String {
        match &self.inner {
            None => uuid::Uuid::new_v4().to_string(),
            Some(f) => f(),
        }
    }

    /// Appends the next id to `out`.
    pub(crate) fn push_next_id(&self, out: &mut String) {
        match &self.inner {
            None => {
                let mut buf = uuid::Uuid::encode_buffer();
                out.push_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf));
            }
            Some(f) => out.push_str(&f()),
        }
    }

    /// The length of the ids [`push_next_id`](Self::push_next_id) writes, when known.
    pub(crate) fn id_len_hint(&self) -> usize {
        match &self.inner {
            None => uuid::fmt::Hyphenated::LENGTH,
            Some(_) => 0,
        }
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::uuid()
    }
}

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdGenerator")
    }
}

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

/// What a container's extensions (entrypoints, dependency providers, shared extensions)
/// share: its service name, configuration, transport, call id generator, lifecycle signals
/// and state, and shared extensions.
#[derive(Clone)]
pub struct ContainerContext {
    inner: Arc<Shared>,
}

struct Shared {
    service_name: &'static str,
    /// The service name as every worker's context holds it.
    shared_name: Arc<str>,
    config: Arc<Config>,
    settings: Settings,
    transport: Arc<dyn Transport>,
    ids: IdGenerator,
    container_scope: SharedExtensions,
    process_scope: SharedExtensions,
    states: States,
    used: Mutex<Vec<Entry>>,
    acquired: Mutex<Vec<Entry>>,
    state: watch::Sender<ContainerState>,
    stopping: CancellationToken,
    killed: CancellationToken,
    crash: Mutex<Option<String>>,
    crashed: CancellationToken,
    observers: Observers,
    pool: std::sync::OnceLock<Arc<tokio::sync::Semaphore>>,
}

/// A container context that does not keep its container alive, as the process scope
/// lists them.
#[derive(Clone)]
pub(crate) struct WeakContext(std::sync::Weak<Shared>);

impl WeakContext {
    pub(crate) fn upgrade(&self) -> Option<ContainerContext> {
        self.0.upgrade().map(|inner| ContainerContext { inner })
    }
}

impl ContainerContext {
    pub(crate) fn new(
        service_name: &'static str,
        config: Arc<Config>,
        settings: Settings,
        transport: Arc<dyn Transport>,
        ids: IdGenerator,
        process_scope: SharedExtensions,
        states: States,
    ) -> Self {
        let context = Self {
            inner: Arc::new(Shared {
                service_name,
                shared_name: Arc::from(service_name),
                config,
                settings,
                transport,
                ids,
                container_scope: SharedExtensions::new(),
                process_scope,
                states,
                used: Mutex::default(),
                acquired: Mutex::default(),
                state: watch::Sender::new(ContainerState::Created),
                stopping: CancellationToken::new(),
                killed: CancellationToken::new(),
                crash: Mutex::default(),
                crashed: CancellationToken::new(),
                observers: Observers::new(),
                pool: std::sync::OnceLock::new(),
            }),
        };
        context
            .inner
            .process_scope
            .add_container(WeakContext(Arc::downgrade(&context.inner)));
        context
    }

    pub(crate) fn set_pool(&self, pool: Arc<tokio::sync::Semaphore>) {
        let _ = self.inner.pool.set(pool);
    }

    /// How many of its `max_workers` the container's workers hold now.
    #[must_use]
    pub fn workers_in_use(&self) -> usize {
        self.inner.pool.get().map_or(0, |pool| {
            self.inner
                .settings
                .max_workers
                .saturating_sub(pool.available_permits())
        })
    }

    /// The container's [`Observers`]: register one during `setup` to be told of the
    /// calls its proxies make and the messages its entrypoints requeue, reject or
    /// dead-letter.
    #[must_use]
    pub fn observers(&self) -> &Observers {
        &self.inner.observers
    }

    /// The service name.
    #[must_use]
    pub fn service_name(&self) -> &'static str {
        self.inner.service_name
    }

    /// The service name, shared.
    pub(crate) fn shared_service_name(&self) -> &Arc<str> {
        &self.inner.shared_name
    }

    /// The configuration, with the user's and extensions' own keys (read them with
    /// [`Config::extract`]).
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    /// nameko's keys of the configuration, parsed and checked when the container was
    /// built.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The transport.
    #[must_use]
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.inner.transport
    }

    /// The id generator.
    #[must_use]
    pub fn ids(&self) -> &IdGenerator {
        &self.inner.ids
    }

    /// The values given at startup for the service's
    /// [`State<T>`](crate::dependency::State) fields (see
    /// [`ContainerBuilder::with_state`](crate::container::ContainerBuilder::with_state)).
    #[must_use]
    pub fn states(&self) -> &States {
        &self.inner.states
    }

    /// The container's current state.
    #[must_use]
    pub fn state(&self) -> ContainerState {
        self.inner.state.borrow().clone()
    }

    /// A watch of the container's state.
    #[must_use]
    pub fn watch_state(&self) -> watch::Receiver<ContainerState> {
        self.inner.state.subscribe()
    }

    pub(crate) fn set_state(&self, state: ContainerState) {
        self.inner.state.send_replace(state);
    }

    /// The container's instance of the shared extension `T` under `key` (nameko's
    /// `SharedExtension` and its `sharing_key`), made by `init` on first use. Ask for it
    /// in `setup`: the container then drives its life (see [`SharedExtension`]).
    pub fn shared<T: SharedExtension>(&self, key: &str, init: impl FnOnce() -> T) -> Arc<T> {
        let (value, entry) = self.inner.container_scope.get_or_init(key, init);
        self.use_entry(entry);
        value
    }

    /// The process's instance of the shared extension `T` under `key`, for every
    /// container of the same `ServiceRunner` (or test cluster): made by `init` on first
    /// use, started when the first of those containers starts, stopped when the last one
    /// stops. Ask for it in `setup`.
    pub fn process_shared<T: SharedExtension>(
        &self,
        key: &str,
        init: impl FnOnce() -> T,
    ) -> Arc<T> {
        let (value, entry) = self.inner.process_scope.get_or_init(key, init);
        self.use_entry(entry);
        value
    }

    /// The process scope this container shares extensions in.
    #[must_use]
    pub fn process_scope(&self) -> &SharedExtensions {
        &self.inner.process_scope
    }

    fn use_entry(&self, entry: Entry) {
        let mut used = self.inner.used.lock();
        if !used.iter().any(|e| e.same(&entry)) {
            used.push(entry);
        }
    }

    /// Sets up and starts the shared extensions this container uses (those it is the
    /// first user of), in the order they were first asked for.
    pub(crate) async fn acquire_shared(&self) -> Result<(), (String, ExtensionError)> {
        let used = self.inner.used.lock().clone();
        for entry in used {
            if self.inner.acquired.lock().iter().any(|e| e.same(&entry)) {
                continue;
            }
            entry.acquire().await.map_err(|e| (entry.name(), e))?;
            self.inner.acquired.lock().push(entry);
        }
        Ok(())
    }

    /// This container stops taking work: the shared extensions it is the last user of
    /// stop.
    pub(crate) async fn stop_shared(&self) {
        let acquired = self.inner.acquired.lock().clone();
        for entry in acquired.iter().rev() {
            entry.stop().await;
        }
    }

    /// This container's workers finished: it stops using its shared extensions.
    pub(crate) async fn release_shared(&self) {
        let acquired = std::mem::take(&mut *self.inner.acquired.lock());
        for entry in acquired.iter().rev() {
            entry.release().await;
        }
    }

    /// This container is killed: it stops using its shared extensions.
    pub(crate) async fn kill_shared(&self) {
        let acquired = std::mem::take(&mut *self.inner.acquired.lock());
        for entry in acquired.iter().rev() {
            entry.kill().await;
        }
    }

    /// Cancelled when the container begins a graceful stop: entrypoints stop taking work.
    #[must_use]
    pub fn stopping(&self) -> &CancellationToken {
        &self.inner.stopping
    }

    /// Cancelled when the container is killed: everything ends now.
    #[must_use]
    pub fn killed(&self) -> &CancellationToken {
        &self.inner.killed
    }

    /// Reports a failure the container cannot go on after (a consumer that died for
    /// good, a background task that failed): the container is killed and its `wait`
    /// returns the reason. Only the first reason is kept.
    pub fn crash(&self, reason: impl Into<String>) {
        let mut slot = self.inner.crash.lock();
        if slot.is_none() {
            let reason = reason.into();
            tracing::error!(service = self.inner.service_name, %reason, "container crashed");
            *slot = Some(reason);
        }
        drop(slot);
        self.inner.crashed.cancel();
    }

    pub(crate) fn crashed(&self) -> &CancellationToken {
        &self.inner.crashed
    }

    pub(crate) fn crash_reason(&self) -> Option<String> {
        self.inner.crash.lock().clone()
    }
}

impl fmt::Debug for ContainerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerContext")
            .field("service_name", &self.inner.service_name)
            .field("transport", &self.inner.transport.endpoint())
            .finish_non_exhaustive()
    }
}
