//! Dependency providers: what fills a service's fields for each worker.
//!
//! A provider lives as long as its container (`setup`, `start`, `stop`, `kill`) and hands
//! every worker a value ([`DependencyProvider::get_dependency`]), with hooks around the
//! worker's run (`worker_setup`, `worker_result`, `worker_teardown`): nameko's
//! `DependencyProvider`. That is how an [`RpcProxy`](crate::rpc::RpcProxy) carries its
//! caller's call id stack, and how a database session per worker is written.
//!
//! A field type names its default provider by implementing [`Dependency`]; a field can
//! also be given any provider whose output is the field's type.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Config, ConfigError};
use crate::context::ContextData;
use crate::errors::{IntoRemoteError, RemoteError};
use crate::extension::ContainerContext;
use crate::worker::{WorkerContext, WorkerResult};

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

/// Provides one dependency of a service.
///
/// ```
/// use nameko_core::dependency::{DependencyProvider, ProviderError};
/// use nameko_core::worker::WorkerContext;
///
/// /// Hands each worker the id of its call.
/// #[derive(Debug)]
/// struct CallIdProvider;
///
/// #[async_trait::async_trait]
/// impl DependencyProvider for CallIdProvider {
///     type Output = String;
///
///     async fn get_dependency(&self, worker: &WorkerContext) -> Result<String, ProviderError> {
///         Ok(worker.call_id().to_owned())
///     }
/// }
/// ```
#[async_trait]
pub trait DependencyProvider: Send + Sync + 'static {
    /// What each worker gets.
    type Output: Send + 'static;

    /// Prepares the provider when its container starts; it may keep what it needs from
    /// the container (configuration, transport, shared extensions).
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let _ = container;
        Ok(())
    }

    /// Starts the provider, after every provider and entrypoint was set up.
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    async fn start(&self) -> Result<(), ProviderError> {
        Ok(())
    }

    /// Stops the provider once every worker has finished.
    async fn stop(&self) {}

    /// Stops the provider at once; workers may still be running.
    async fn kill(&self) {}

    /// The value a worker's service instance gets.
    ///
    /// # Errors
    ///
    /// The worker fails with the error's dict, without running the method.
    async fn get_dependency(&self, worker: &WorkerContext) -> Result<Self::Output, ProviderError>;

    /// Runs before the worker's method.
    ///
    /// # Errors
    ///
    /// The worker fails with the error's dict, without running the method.
    async fn worker_setup(&self, worker: &WorkerContext) -> Result<(), ProviderError> {
        let _ = worker;
        Ok(())
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
    async fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> Result<(), ProviderError> {
        let _ = (worker, outcome);
        Ok(())
    }

    /// Sees the worker's result, after the entrypoint has handled it (for RPC: after the
    /// reply was sent).
    async fn worker_result(&self, worker: &WorkerContext, result: &WorkerResult) {
        let _ = (worker, result);
    }

    /// Runs last, after the worker finished.
    async fn worker_teardown(&self, worker: &WorkerContext) {
        let _ = worker;
    }
}

/// A field type with a default provider, so the field needs no attribute.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no default dependency provider",
    label = "the container cannot fill this field",
    note = "give the field a provider: `#[dependency(MyProvider::new(...))]`, or implement `nameko::dependency::Dependency` for `{Self}`"
)]
pub trait Dependency: Send + 'static {
    /// The provider of this type.
    type Provider: DependencyProvider<Output = Self>;

    /// The provider for a field named `field`. (An [`RpcProxy`](crate::rpc::RpcProxy)
    /// field calls the service named like the field.)
    fn provider(field: &'static str) -> Self::Provider;
}

/// A [`DependencyProvider`] with its output type erased, as the container holds it.
#[async_trait]
pub trait ErasedProvider: Send + Sync + 'static {
    /// See [`DependencyProvider::setup`].
    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError>;
    /// See [`DependencyProvider::start`].
    async fn start(&self) -> Result<(), ProviderError>;
    /// See [`DependencyProvider::stop`].
    async fn stop(&self);
    /// See [`DependencyProvider::kill`].
    async fn kill(&self);
    /// See [`DependencyProvider::get_dependency`].
    async fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> Result<Box<dyn Any + Send>, ProviderError>;
    /// See [`DependencyProvider::worker_setup`].
    async fn worker_setup(&self, worker: &WorkerContext) -> Result<(), ProviderError>;
    /// See [`DependencyProvider::worker_complete`].
    async fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> Result<(), ProviderError>;
    /// See [`DependencyProvider::worker_result`].
    async fn worker_result(&self, worker: &WorkerContext, result: &WorkerResult);
    /// See [`DependencyProvider::worker_teardown`].
    async fn worker_teardown(&self, worker: &WorkerContext);
}

#[async_trait]
impl<P: DependencyProvider> ErasedProvider for P {
    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        DependencyProvider::setup(self, container).await
    }
    async fn start(&self) -> Result<(), ProviderError> {
        DependencyProvider::start(self).await
    }
    async fn stop(&self) {
        DependencyProvider::stop(self).await;
    }
    async fn kill(&self) {
        DependencyProvider::kill(self).await;
    }
    async fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> Result<Box<dyn Any + Send>, ProviderError> {
        Ok(Box::new(
            DependencyProvider::get_dependency(self, worker).await?,
        ))
    }
    async fn worker_setup(&self, worker: &WorkerContext) -> Result<(), ProviderError> {
        DependencyProvider::worker_setup(self, worker).await
    }
    async fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> Result<(), ProviderError> {
        DependencyProvider::worker_complete(self, worker, outcome).await
    }
    async fn worker_result(&self, worker: &WorkerContext, result: &WorkerResult) {
        DependencyProvider::worker_result(self, worker, result).await;
    }
    async fn worker_teardown(&self, worker: &WorkerContext) {
        DependencyProvider::worker_teardown(self, worker).await;
    }
}

/// Boxes a provider for a [`DependencyDef`](crate::service::DependencyDef).
#[must_use]
pub fn boxed<P: DependencyProvider>(provider: P) -> Box<dyn ErasedProvider> {
    Box::new(provider)
}

/// Hands each worker a clone of one value; the provider of replaced dependencies and of
/// plain values.
pub struct ValueProvider<T> {
    value: T,
}

impl<T: Clone + Send + Sync + 'static> ValueProvider<T> {
    /// Every worker gets a clone of `value`.
    #[must_use]
    pub fn new(value: T) -> Self {
        Self { value }
    }
}

impl<T> fmt::Debug for ValueProvider<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueProvider")
            .field("type", &std::any::type_name::<T>())
            .finish()
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> DependencyProvider for ValueProvider<T> {
    type Output = T;

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<T, ProviderError> {
        Ok(self.value.clone())
    }
}

/// Provides the worker's [`ContextData`] (nameko's `Language`, `UserId`, `UserAgent` and
/// `AuthToken` in one).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContextDataProvider;

#[async_trait]
impl DependencyProvider for ContextDataProvider {
    type Output = ContextData;

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<ContextData, ProviderError> {
        Ok(worker.context().clone())
    }
}

impl Dependency for ContextData {
    type Provider = ContextDataProvider;

    fn provider(_field: &'static str) -> ContextDataProvider {
        ContextDataProvider
    }
}

/// Provides the container's configuration (nameko's `Config` dependency).
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigProvider;

#[async_trait]
impl DependencyProvider for ConfigProvider {
    type Output = Arc<Config>;

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<Arc<Config>, ProviderError> {
        Ok(worker.config().clone())
    }
}

impl Dependency for Arc<Config> {
    type Provider = ConfigProvider;

    fn provider(_field: &'static str) -> ConfigProvider {
        ConfigProvider
    }
}

/// Provides the worker's own [`WorkerContext`] (call id, call id stack, arguments).
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerContextProvider;

#[async_trait]
impl DependencyProvider for WorkerContextProvider {
    type Output = Arc<WorkerContext>;

    async fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> Result<Arc<WorkerContext>, ProviderError> {
        Ok(Arc::new(worker.clone()))
    }
}

impl Dependency for Arc<WorkerContext> {
    type Provider = WorkerContextProvider;

    fn provider(_field: &'static str) -> WorkerContextProvider {
        WorkerContextProvider
    }
}
