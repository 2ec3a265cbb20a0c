//! What the extensions of a container share.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::transport::Transport;

/// Makes the unique part of call ids (and of other ids a container makes up).
///
/// Random UUIDs by default; [`IdGenerator::sequential`] gives `"0"`, `"1"`, ... for tests
/// that assert on call id stacks (nameko's `predictable_call_ids`).
#[derive(Clone)]
pub struct IdGenerator {
    inner: Arc<dyn Fn() -> String + Send + Sync>,
}

impl IdGenerator {
    /// Random UUID4 strings, as nameko makes them.
    #[must_use]
    pub fn uuid() -> Self {
        Self::from_fn(|| uuid::Uuid::new_v4().to_string())
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
        Self { inner: Arc::new(f) }
    }

    /// The next id.
    #[must_use]
    pub fn next_id(&self) -> String {
        (self.inner)()
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

/// What a container's extensions (dependency providers and entrypoints) share: its
/// service name, configuration, transport, call id generator, shared extensions, and
/// its lifecycle signals.
#[derive(Clone)]
pub struct ContainerContext {
    inner: Arc<Shared>,
}

struct Shared {
    service_name: &'static str,
    config: Arc<Config>,
    transport: Arc<dyn Transport>,
    ids: IdGenerator,
    extensions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    stopping: CancellationToken,
    killed: CancellationToken,
    crash: Mutex<Option<String>>,
    crashed: CancellationToken,
}

impl ContainerContext {
    pub(crate) fn new(
        service_name: &'static str,
        config: Arc<Config>,
        transport: Arc<dyn Transport>,
        ids: IdGenerator,
    ) -> Self {
        Self {
            inner: Arc::new(Shared {
                service_name,
                config,
                transport,
                ids,
                extensions: Mutex::default(),
                stopping: CancellationToken::new(),
                killed: CancellationToken::new(),
                crash: Mutex::default(),
                crashed: CancellationToken::new(),
            }),
        }
    }

    /// The service name.
    #[must_use]
    pub fn service_name(&self) -> &'static str {
        self.inner.service_name
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
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

    /// The container's one instance of a shared extension (nameko's
    /// `SharedExtension`), made by `init` on first use.
    pub fn shared<T: Send + Sync + 'static>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        let mut map = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(init()) as Arc<dyn Any + Send + Sync>)
            .clone();
        drop(map);
        entry
            .downcast::<T>()
            .expect("the shared extension map holds a `T` under `TypeId::of::<T>()`")
    }

    /// The shared extension of type `T`, if one was made.
    #[must_use]
    pub fn get_shared<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let map = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(&TypeId::of::<T>())
            .cloned()
            .and_then(|e| e.downcast::<T>().ok())
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
        let mut slot = self
            .inner
            .crash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        self.inner
            .crash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
