//! Dependency providers: what fills a service's fields for each worker.
//!
//! A provider lives as long as its container (`setup`, `start`, `stop`, `kill`) and hands
//! every worker a value ([`DependencyProvider::get_dependency`]), with hooks around the
//! worker's run (`worker_setup`, `worker_result`, `worker_teardown`): nameko's
//! `DependencyProvider`. That is how an [`RpcProxy`](crate::rpc::RpcProxy) carries its
//! caller's call id stack, and how a database session per worker is written.
//!
//! A field type names its default provider by implementing [`Dependency`]; a field can
//! also be given any provider whose output is the field's type, with
//! `#[dependency(MyProvider::new(...))]`.
//!
//! For a value shared by every worker (a connection pool, a client, settings), no
//! provider is needed: a [`State<T>`] field hands each worker a clone of the value given
//! at startup.
//!
//! # Writing a provider
//!
//! The trait's methods are `async fn`s: implement them as such, with no extra crate.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use nameko_core::dependency::{Dependency, DependencyProvider, ProviderError};
//! use nameko_core::extension::ContainerContext;
//! use nameko_core::worker::WorkerContext;
//!
//! /// How many workers of this container ran before this one.
//! #[derive(Debug, Clone, Copy)]
//! pub struct Sequence(pub u64);
//!
//! #[derive(Debug, Default)]
//! pub struct SequenceProvider {
//!     next: Arc<AtomicU64>,
//! }
//!
//! impl DependencyProvider for SequenceProvider {
//!     type Output = Sequence;
//!
//!     async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
//!         tracing::debug!(service = container.service_name(), "sequence ready");
//!         Ok(())
//!     }
//!
//!     async fn get_dependency(&self, _worker: &WorkerContext) -> Result<Sequence, ProviderError> {
//!         Ok(Sequence(self.next.fetch_add(1, Ordering::Relaxed)))
//!     }
//! }
//!
//! // So that a `Sequence` field needs no attribute.
//! impl Dependency for Sequence {
//!     type Provider = SequenceProvider;
//!
//!     fn provider(_field: &'static str) -> SequenceProvider {
//!         SequenceProvider::default()
//!     }
//! }
//! ```

mod builtin;
mod call_log;
mod erased;
mod state;

use std::future::Future;
use std::sync::Arc;

use crate::config::ConfigError;
use crate::errors::{IntoRemoteError, RemoteError};
use crate::extension::ContainerContext;
use crate::worker::{WorkerContext, WorkerResult};

pub use builtin::{ConfigProvider, ContextDataProvider, ValueProvider, WorkerContextProvider};
pub use call_log::{
    CALL_LOG, CALL_LOG_TARGET, CallLog, CallLogProvider, DEFAULT_RESPONSE_MAX_LENGTH,
};
pub(crate) use erased::ErasedProvider;
pub use erased::{BoxedProvider, boxed};
pub use state::{State, StateProvider, States};

/// A provider failed: at container start, or while serving a worker.
///
/// Carries the error dict a worker fails with when the provider could not serve it, and
/// the error that caused it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{remote}")]
pub struct ProviderError {
    remote: Box<RemoteError>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl ProviderError {
    /// A provider error with a message (a Python `Exception` to callers).
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            remote: Box::new(message.into().into_remote_error()),
            source: None,
        }
    }

    /// A provider error with a message, caused by `source`.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            remote: Box::new(message.into().into_remote_error()),
            source: Some(Arc::new(source)),
        }
    }

    /// A configuration value the provider reads is wrong.
    #[must_use]
    pub fn config(error: ConfigError) -> Self {
        Self::with_source(error.to_string(), error)
    }

    /// A provider error that callers see as this error.
    #[must_use]
    pub fn from_error(error: impl IntoRemoteError) -> Self {
        Self {
            remote: Box::new(error.into_remote_error()),
            source: None,
        }
    }

    /// The error dict a worker fails with.
    #[must_use]
    pub fn remote(&self) -> &RemoteError {
        &self.remote
    }
}

/// Provides one dependency of a service: nameko's `DependencyProvider`.
///
/// Implement the methods as `async fn`s (see the [module docs](self) for a whole
/// provider); only [`get_dependency`](Self::get_dependency) is required.
///
/// ```
/// use nameko_core::dependency::{DependencyProvider, ProviderError};
/// use nameko_core::worker::WorkerContext;
///
/// /// Hands each worker the id of its call.
/// #[derive(Debug)]
/// struct CallIdProvider;
///
/// impl DependencyProvider for CallIdProvider {
///     type Output = String;
///
///     async fn get_dependency(&self, worker: &WorkerContext) -> Result<String, ProviderError> {
///         Ok(worker.call_id().to_owned())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a dependency provider",
    note = "implement `nameko::dependency::DependencyProvider` for `{Self}` (its `get_dependency` is an `async fn`), or give the field a `State<T>` type to share one value with every worker"
)]
pub trait DependencyProvider: Send + Sync + 'static {
    /// What each worker gets.
    type Output: Send + 'static;

    /// Prepares the provider when its container starts; it may keep what it needs from
    /// the container (configuration, transport, startup state, shared extensions).
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    fn setup(
        &mut self,
        container: &ContainerContext,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send {
        let _ = container;
        async { Ok(()) }
    }

    /// Starts the provider, after every provider and entrypoint was set up.
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    fn start(&self) -> impl Future<Output = Result<(), ProviderError>> + Send {
        async { Ok(()) }
    }

    /// Stops the provider once every worker has finished.
    fn stop(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Stops the provider at once; workers may still be running.
    fn kill(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// The value a worker's service instance gets.
    ///
    /// # Errors
    ///
    /// The worker fails with the error's dict, without running the method.
    fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> impl Future<Output = Result<Self::Output, ProviderError>> + Send;

    /// Runs before the worker's method.
    ///
    /// # Errors
    ///
    /// The worker fails with the error's dict, without running the method.
    fn worker_setup(
        &self,
        worker: &WorkerContext,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send {
        let _ = worker;
        async { Ok(()) }
    }

    /// Runs as soon as the worker's method has returned, failed or panicked, while the
    /// service instance (and so the value [`get_dependency`](Self::get_dependency) gave
    /// it) still exists, and before the entrypoint handles the result (for RPC: before
    /// the reply is sent). `outcome` is `Ok` when the method succeeded.
    ///
    /// This is where work that must be final before a caller hears of success belongs:
    /// a database session commits here on `Ok` and rolls back on `Err`. A worker that
    /// is killed never gets here; its dependency values are dropped instead.
    ///
    /// # Errors
    ///
    /// After a successful method, the worker fails with the error's dict instead (a
    /// commit that failed). After a failed method, the error is logged and the method's
    /// own error stands.
    fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> impl Future<Output = Result<(), ProviderError>> + Send {
        let _ = (worker, outcome);
        async { Ok(()) }
    }

    /// Sees the worker's result, after the entrypoint has handled it (for RPC: after the
    /// reply was sent).
    fn worker_result(
        &self,
        worker: &WorkerContext,
        result: &WorkerResult,
    ) -> impl Future<Output = ()> + Send {
        let _ = (worker, result);
        async {}
    }

    /// Runs last, after the worker finished.
    fn worker_teardown(&self, worker: &WorkerContext) -> impl Future<Output = ()> + Send {
        let _ = worker;
        async {}
    }
}

/// A field type with a default provider, so the field needs no attribute.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no default dependency provider",
    label = "the container cannot fill this field",
    note = "to share one value with every worker, make the field a `State<{Self}>` and give the value at startup with `.with_state(...)`",
    note = "or give the field a provider: `#[dependency(MyProvider::new(...))]`, or implement `nameko::dependency::Dependency` for `{Self}`"
)]
pub trait Dependency: Send + 'static {
    /// The provider of this type.
    type Provider: DependencyProvider<Output = Self>;

    /// The provider for a field named `field`. (An [`RpcProxy`](crate::rpc::RpcProxy)
    /// field calls the service named like the field.)
    fn provider(field: &'static str) -> Self::Provider;
}
