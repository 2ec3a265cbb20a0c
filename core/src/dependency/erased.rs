//! Providers with their output type erased, as service definitions and containers hold
//! them.

use std::any::{Any, TypeId};
use std::fmt;

use async_trait::async_trait;

use super::{DependencyProvider, ProviderError};
use crate::errors::RemoteError;
use crate::extension::ContainerContext;
use crate::worker::{WorkerContext, WorkerResult};

/// A [`DependencyProvider`] with its output type erased (object safe, boxed futures).
#[async_trait]
pub(crate) trait ErasedProvider: Send + Sync + 'static {
    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError>;
    async fn start(&self) -> Result<(), ProviderError>;
    async fn stop(&self);
    async fn kill(&self);
    async fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> Result<Box<dyn Any + Send>, ProviderError>;
    async fn worker_setup(&self, worker: &WorkerContext) -> Result<(), ProviderError>;
    async fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> Result<(), ProviderError>;
    async fn worker_result(&self, worker: &WorkerContext, result: &WorkerResult);
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

/// A dependency provider of any type, as a service definition
/// ([`DependencyDef`](crate::service::DependencyDef)), a container's replaced dependency
/// or a test mock holds it: the provider, and the type of what it provides.
///
/// ```
/// use nameko_core::dependency::{BoxedProvider, ValueProvider};
///
/// let provider = BoxedProvider::new(ValueProvider::new(42_u32));
/// assert!(provider.provides::<u32>());
/// assert_eq!(provider.output_name(), "u32");
/// ```
pub struct BoxedProvider {
    provider: Box<dyn ErasedProvider>,
    output: TypeId,
    output_name: &'static str,
}

impl BoxedProvider {
    /// Boxes `provider`.
    #[must_use]
    pub fn new<P: DependencyProvider>(provider: P) -> Self {
        Self {
            provider: Box::new(provider),
            output: TypeId::of::<P::Output>(),
            output_name: std::any::type_name::<P::Output>(),
        }
    }

    /// The type of what the provider hands each worker.
    #[must_use]
    pub fn output(&self) -> TypeId {
        self.output
    }

    /// The name of that type, for messages.
    #[must_use]
    pub fn output_name(&self) -> &'static str {
        self.output_name
    }

    /// Whether the provider hands each worker a `T`.
    #[must_use]
    pub fn provides<T: 'static>(&self) -> bool {
        self.output == TypeId::of::<T>()
    }

    pub(crate) fn into_erased(self) -> Box<dyn ErasedProvider> {
        self.provider
    }
}

impl fmt::Debug for BoxedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxedProvider")
            .field("output", &self.output_name)
            .finish_non_exhaustive()
    }
}

/// Boxes a provider for a [`DependencyDef`](crate::service::DependencyDef): the same as
/// [`BoxedProvider::new`].
#[must_use]
pub fn boxed<P: DependencyProvider>(provider: P) -> BoxedProvider {
    BoxedProvider::new(provider)
}
