//! The providers of the built-in dependency types: context data, configuration, the
//! worker's own context, and plain values.

use std::fmt;
use std::sync::Arc;

use super::{Dependency, DependencyProvider, ProviderError};
use crate::config::Config;
use crate::context::ContextData;
use crate::worker::WorkerContext;

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
