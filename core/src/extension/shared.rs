//! Shared extensions: one instance used by several entrypoints or dependency providers of
//! a container, or by every container of a process (nameko's `SharedExtension` and
//! `ProviderCollector`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;

use super::ExtensionError;
use super::context::{ContainerContext, WeakContext};

/// An extension shared by the entrypoints and dependency providers that ask for it.
///
/// Get one with [`ContainerContext::shared`](super::ContainerContext::shared) (one per
/// container and key: nameko's `SharedExtension` with its `sharing_key`) or
/// [`ContainerContext::process_shared`](super::ContainerContext::process_shared) (one per
/// process and key, for every container of a `ServiceRunner` or a test cluster: one web
/// server for all services, say), during the asking extension's `setup`.
///
/// The containers drive its life: `setup` and `start` once, when the first container that
/// uses it starts (after the dependency providers started, before the entrypoints start);
/// `stop` when the last one stops taking work, `close` once that container's workers have
/// finished; `kill` when the last one is killed. Hooks take `&self`: keep state behind
/// interior mutability. An instance may start again after it stopped, if a container that
/// uses it starts later.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use nameko_core::extension::{ExtensionError, SharedExtension};
///
/// /// Counts the jobs of every entrypoint that registered with it.
/// #[derive(Debug, Default)]
/// struct JobCounter {
///     jobs: AtomicUsize,
/// }
///
/// #[async_trait::async_trait]
/// impl SharedExtension for JobCounter {
///     async fn start(&self) -> Result<(), ExtensionError> {
///         self.jobs.store(0, Ordering::Relaxed);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait SharedExtension: Send + Sync + 'static {
    /// Prepares (declares queues, binds a listener), once every extension that uses it
    /// registered.
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    async fn setup(&self) -> Result<(), ExtensionError> {
        Ok(())
    }

    /// Starts taking work.
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    async fn start(&self) -> Result<(), ExtensionError> {
        Ok(())
    }

    /// Stops taking work and gives back what it had not started; running workers go on.
    async fn stop(&self) {}

    /// Releases what it holds, once every worker finished.
    async fn close(&self) {}

    /// Stops at once.
    async fn kill(&self) {}
}

/// Shared extensions of one scope (a container, or a process), by type and key.
///
/// A `ServiceRunner` makes one for all its containers; a container built alone has its
/// own.
#[derive(Clone, Default)]
pub struct SharedExtensions {
    entries: Arc<Mutex<HashMap<(TypeId, String), Entry>>>,
    containers: Arc<Mutex<Vec<WeakContext>>>,
}

impl fmt::Debug for SharedExtensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.entries.lock().values().map(|e| e.name()).collect();
        f.debug_struct("SharedExtensions")
            .field("extensions", &names)
            .finish()
    }
}

impl SharedExtensions {
    /// An empty scope.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The instance of `T` under `key`, if an extension made one (a test harness finds
    /// the process's web server this way, to learn its port).
    #[must_use]
    pub fn get<T: SharedExtension>(&self, key: &str) -> Option<Arc<T>> {
        let entries = self.entries.lock();
        let entry = entries.get(&(TypeId::of::<T>(), key.to_owned()))?.clone();
        drop(entries);
        Arc::clone(&entry.inner.value).downcast::<T>().ok()
    }

    /// The containers of this scope that still exist, in the order they were built: a
    /// process's health check asks each for its state and its broker connection.
    #[must_use]
    pub fn containers(&self) -> Vec<ContainerContext> {
        let mut containers = self.containers.lock();
        let mut alive = Vec::with_capacity(containers.len());
        containers.retain(|weak| match weak.upgrade() {
            Some(context) => {
                alive.push(context);
                true
            }
            None => false,
        });
        alive
    }

    pub(crate) fn add_container(&self, container: WeakContext) {
        let mut containers = self.containers.lock();
        containers.retain(|weak| weak.upgrade().is_some());
        containers.push(container);
    }

    /// The instance of `T` under `key`, made by `init` if there is none yet.
    pub(crate) fn get_or_init<T: SharedExtension>(
        &self,
        key: &str,
        init: impl FnOnce() -> T,
    ) -> (Arc<T>, Entry) {
        let mut entries = self.entries.lock();
        let entry = entries
            .entry((TypeId::of::<T>(), key.to_owned()))
            .or_insert_with(|| Entry::new(Arc::new(init()), key))
            .clone();
        drop(entries);
        let value = Arc::clone(&entry.inner.value)
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("entries are keyed by the TypeId of their value"));
        (value, entry)
    }
}

/// One shared extension in a scope, with the count of containers using it.
#[derive(Clone)]
pub(crate) struct Entry {
    inner: Arc<EntryInner>,
}

struct EntryInner {
    value: Arc<dyn Any + Send + Sync>,
    extension: Arc<dyn SharedExtension>,
    type_name: &'static str,
    key: String,
    life: tokio::sync::Mutex<Life>,
}

#[derive(Default)]
struct Life {
    users: usize,
    stopped: bool,
}

impl Entry {
    fn new<T: SharedExtension>(value: Arc<T>, key: &str) -> Self {
        Self {
            inner: Arc::new(EntryInner {
                value: value.clone(),
                extension: value,
                type_name: std::any::type_name::<T>(),
                key: key.to_owned(),
                life: tokio::sync::Mutex::default(),
            }),
        }
    }

    /// `Type` or `Type("key")`, for messages.
    pub(crate) fn name(&self) -> String {
        let short = self
            .inner
            .type_name
            .rsplit("::")
            .next()
            .unwrap_or(self.inner.type_name);
        if self.inner.key.is_empty() {
            short.to_owned()
        } else {
            format!("{short}({:?})", self.inner.key)
        }
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A container starts using it: the first one sets it up and starts it.
    pub(crate) async fn acquire(&self) -> Result<(), ExtensionError> {
        let mut life = self.inner.life.lock().await;
        if life.users == 0 {
            self.inner.extension.setup().await?;
            if let Err(error) = self.inner.extension.start().await {
                self.inner.extension.kill().await;
                return Err(error);
            }
            life.stopped = false;
        }
        life.users += 1;
        Ok(())
    }

    /// A container stops taking work: the last one stops it.
    pub(crate) async fn stop(&self) {
        let mut life = self.inner.life.lock().await;
        if life.users == 1 && !life.stopped {
            self.inner.extension.stop().await;
            life.stopped = true;
        }
    }

    /// A container's workers have finished: the last one closes it.
    pub(crate) async fn release(&self) {
        let mut life = self.inner.life.lock().await;
        life.users = life.users.saturating_sub(1);
        if life.users == 0 {
            if !life.stopped {
                self.inner.extension.stop().await;
            }
            self.inner.extension.close().await;
            life.stopped = true;
        }
    }

    /// A container is killed: the last one kills it.
    pub(crate) async fn kill(&self) {
        let mut life = self.inner.life.lock().await;
        life.users = life.users.saturating_sub(1);
        if life.users == 0 {
            self.inner.extension.kill().await;
            life.stopped = true;
        }
    }
}

/// What a shared extension collects from the extensions that use it (nameko's
/// `ProviderCollector`): the RPC consumer collects the methods it serves, a web server
/// its routes.
///
/// ```
/// use nameko_core::extension::Collector;
///
/// let methods = Collector::new();
/// methods.register("add");
/// methods.register("multiply");
/// methods.unregister(|m| *m == "add");
/// assert_eq!(methods.items(), vec!["multiply"]);
/// ```
pub struct Collector<T> {
    items: Mutex<Vec<T>>,
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Collector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.items.lock().iter()).finish()
    }
}

impl<T: Clone> Collector<T> {
    /// An empty collector.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an item.
    pub fn register(&self, item: T) {
        self.items.lock().push(item);
    }

    /// Removes the items that match.
    pub fn unregister(&self, matches: impl Fn(&T) -> bool) {
        self.items.lock().retain(|item| !matches(item));
    }

    /// The items, in the order they were registered.
    #[must_use]
    pub fn items(&self) -> Vec<T> {
        self.items.lock().clone()
    }

    /// Whether any item matches.
    #[must_use]
    pub fn contains(&self, matches: impl Fn(&T) -> bool) -> bool {
        self.items.lock().iter().any(matches)
    }

    /// The number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.lock().len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.lock().is_empty()
    }
}
