//! Shared state: one value given at startup, a clone of it for every worker (axum's
//! `State`).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use super::{Dependency, DependencyProvider, ProviderError};
use crate::extension::ContainerContext;
use crate::worker::WorkerContext;

/// A dependency that hands every worker a clone of a value given at startup: a
/// connection pool, a client, settings, a cache behind an `Arc`. axum's `State`, as a
/// service field.
///
/// The value is given by type when the services start, with `with_state(value)` on
/// whatever starts them: a service binary's `Cli`, a `ServiceRunner`, a container's
/// builder, a `TestCluster`; a unit test gives it to `worker_factory` the same way. Every
/// `State<T>` field of every service started there gets a clone of that `T`. A container
/// whose service has a `State<T>` field but was given no `T` refuses to start, naming
/// the type.
///
/// ```
/// use std::sync::Arc;
///
/// use nameko_core::container::ServiceContainer;
/// use nameko_core::dependency::State;
/// # use nameko_core::dependency::DependencyProvider;
///
/// /// What every worker of the service shares.
/// #[derive(Debug, Clone)]
/// struct Prices {
///     table: Arc<Vec<(String, f64)>>,
/// }
///
/// // In a service: `#[derive(Dependencies)] struct Shop { prices: State<Prices> }`,
/// // and in a method, `self.prices.table.iter()`: `State` derefs to the value.
///
/// # fn start<S: nameko_core::service::Service>(transport: std::sync::Arc<dyn nameko_core::transport::Transport>) -> Result<(), Box<dyn std::error::Error>> {
/// let prices = Prices { table: Arc::new(vec![("tea".to_owned(), 2.5)]) };
/// let container = ServiceContainer::<S>::builder(transport, Default::default())
///     .with_state(prices)
///     .build()?;
/// # Ok(()) }
/// ```
///
/// A `State<T>` derefs to the `T` (`self.prices.table` above, never `self.prices.0`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct State<T>(T);

impl<T> State<T> {
    /// A state holding `value` (what each worker gets; tests build one by hand).
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for State<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> Deref for State<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for State<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("State").field(&self.0).finish()
    }
}

impl<T: Clone + Send + Sync + 'static> Dependency for State<T> {
    type Provider = StateProvider<T>;

    fn provider(_field: &'static str) -> StateProvider<T> {
        StateProvider { value: None }
    }
}

/// Provides a [`State<T>`]: takes the `T` given at startup from the container's
/// [`States`] when the container sets up.
pub struct StateProvider<T> {
    value: Option<T>,
}

impl<T> fmt::Debug for StateProvider<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateProvider")
            .field("type", &std::any::type_name::<T>())
            .field("given", &self.value.is_some())
            .finish()
    }
}

impl<T: Clone + Send + Sync + 'static> DependencyProvider for StateProvider<T> {
    type Output = State<T>;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let value = container.states().get::<T>().cloned().ok_or_else(|| {
            ProviderError::new(format!(
                "no state of type `{}` was given at startup: give one with `.with_state(value)` \
                 on the Cli, ServiceRunner, container builder or TestCluster that starts `{}`",
                std::any::type_name::<T>(),
                container.service_name()
            ))
        })?;
        self.value = Some(value);
        Ok(())
    }

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<State<T>, ProviderError> {
        self.value
            .clone()
            .map(State)
            .ok_or_else(|| ProviderError::new("state used before its container set up"))
    }
}

/// Values given at startup, one per type, for the [`State<T>`] fields of services.
///
/// Cheap to clone; adding a value to a clone leaves the others as they were.
///
/// ```
/// use nameko_core::dependency::States;
///
/// let states = States::new().with(7_u32).with(String::from("eu-west"));
/// assert_eq!(states.get::<u32>(), Some(&7));
/// assert_eq!(states.get::<String>().map(String::as_str), Some("eu-west"));
/// assert_eq!(states.get::<u64>(), None);
/// ```
#[derive(Clone, Default)]
pub struct States {
    values: Arc<HashMap<TypeId, (&'static str, Arc<dyn Any + Send + Sync>)>>,
}

impl States {
    /// No values.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value`, replacing a value of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        Arc::make_mut(&mut self.values).insert(
            TypeId::of::<T>(),
            (std::any::type_name::<T>(), Arc::new(value)),
        );
    }

    /// These values and `value`, replacing a value of the same type.
    #[must_use]
    pub fn with<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// The value of type `T`, if one was given.
    #[must_use]
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|(_, value)| value.downcast_ref())
    }

    /// The number of values.
    #[must_use]
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for States {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.values.values().map(|(name, _)| name))
            .finish()
    }
}
