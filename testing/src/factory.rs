//! `worker_factory`: a service instance for unit tests, with mocks for its dependencies.

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use nameko_core::context::ContextData;
use nameko_core::dependency::State;
use nameko_core::service::{BuildError, DependencyValues, Service};

use crate::mocks::{Mock, Mocks, default_mock, default_value};

/// A service instance could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FactoryError {
    /// A replacement names a dependency the service does not have.
    #[error("the service has no dependency `{name}`; its dependencies are: {known}")]
    UnknownDependency {
        /// The name given.
        name: String,
        /// The names that exist, comma separated.
        known: String,
    },
    /// A replacement is not of the dependency's type.
    #[error("dependency `{name}` is a {expected}, but the replacement is a {given}")]
    WrongType {
        /// The dependency.
        name: String,
        /// Its type.
        expected: String,
        /// The replacement's type.
        given: String,
    },
    /// A dependency has no built-in mock and the test supplied none.
    #[error(
        "dependency `{name}` ({type_name}) has no built-in mock; supply one with `.with_value(\"{name}\", ...)` or `.with(\"{name}\", mock)`"
    )]
    NoMock {
        /// The dependency.
        name: String,
        /// Its type.
        type_name: String,
    },
    /// A [`State`] dependency was given no value.
    #[error(
        "dependency `{name}` ({type_name}) is state given at startup; give its value with `.with_state(value)`"
    )]
    NoState {
        /// The dependency.
        name: String,
        /// Its type.
        type_name: String,
    },
    /// The service could not be built from the values.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Makes a `State<T>` value for every field of that type.
type StateValue = Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>;

enum Replacement {
    Mock(Box<dyn Mock>),
    Value(TypeId, &'static str, Box<dyn Any + Send>),
}

/// Builds a service instance outside any container, every dependency replaced by a mock
/// or by what the test supplies: nameko's `worker_factory`.
///
/// Built-in dependencies get useful mocks: an [`RpcProxyMock`](crate::RpcProxyMock) for
/// each `RpcProxy` (unscripted calls return `null`), an
/// [`EventDispatcherMock`](crate::EventDispatcherMock) for each `EventDispatcher`, the
/// factory's context for `ContextData`, an empty config for `Arc<Config>`; a
/// [`State<T>`] field gets the value given with
/// [`with_state`](WorkerFactory::with_state). Any other dependency must be supplied.
///
/// ```
/// use nameko::prelude::*;
/// use nameko_testing::{RpcProxyMock, worker_factory};
///
/// #[derive(Dependencies)]
/// struct Greeter {
///     names: RpcProxy,
/// }
///
/// #[service(name = "greeter")]
/// impl Greeter {
///     #[rpc]
///     async fn greet(&self, id: u32) -> Result<String, RpcError> {
///         let name: String = self.names.call("lookup", (id,)).await?;
///         Ok(format!("hello {name}"))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let names = RpcProxyMock::new().reply("lookup", "ada");
/// let greeter = worker_factory::<Greeter>().with("names", names.clone()).build().unwrap();
/// assert_eq!(greeter.greet(7).await.unwrap(), "hello ada");
/// names.assert_called_once_with("lookup", (7,));
/// # });
/// ```
pub fn worker_factory<S: Service>() -> WorkerFactory<S> {
    WorkerFactory {
        replacements: Vec::new(),
        states: Vec::new(),
        context: ContextData::new(),
        _service: PhantomData,
    }
}

/// The builder [`worker_factory`] returns.
#[must_use]
pub struct WorkerFactory<S> {
    replacements: Vec<(String, Replacement)>,
    states: Vec<(TypeId, StateValue)>,
    context: ContextData,
    _service: PhantomData<fn() -> S>,
}

impl<S> fmt::Debug for WorkerFactory<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerFactory")
            .field(
                "replaced",
                &self.replacements.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("states", &self.states.len())
            .field("context", &self.context)
            .finish()
    }
}

impl<S: Service> WorkerFactory<S> {
    /// Replaces a dependency with a mock (an [`RpcProxyMock`](crate::RpcProxyMock), an
    /// [`EventDispatcherMock`](crate::EventDispatcherMock), or your own [`Mock`]).
    pub fn with(mut self, name: &str, mock: impl Mock) -> Self {
        self.replacements
            .push((name.to_owned(), Replacement::Mock(Box::new(mock))));
        self
    }

    /// Replaces a dependency with a value of its type.
    pub fn with_value<T: Send + 'static>(mut self, name: &str, value: T) -> Self {
        self.replacements.push((
            name.to_owned(),
            Replacement::Value(
                TypeId::of::<T>(),
                std::any::type_name::<T>(),
                Box::new(value),
            ),
        ));
        self
    }

    /// Gives `value` to every [`State<T>`] field of its type, as `with_state` does when
    /// the services start (replacing a value of the same type given before).
    ///
    /// ```
    /// use nameko::prelude::*;
    /// use nameko_testing::worker_factory;
    ///
    /// #[derive(Debug, Clone)]
    /// struct Greeting(String);
    ///
    /// #[derive(Dependencies)]
    /// struct Greeter {
    ///     greeting: State<Greeting>,
    /// }
    ///
    /// #[service(name = "greeter")]
    /// impl Greeter {
    ///     #[rpc]
    ///     async fn greet(&self, name: String) -> String {
    ///         format!("{} {name}", self.greeting.0)
    ///     }
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let greeter = worker_factory::<Greeter>()
    ///     .with_state(Greeting("hello".to_owned()))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(greeter.greet("ada".to_owned()).await, "hello ada");
    /// # });
    /// ```
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        let id = TypeId::of::<State<T>>();
        self.states.retain(|(t, _)| *t != id);
        let make: StateValue = Arc::new(move || Box::new(State::new(value.clone())));
        self.states.push((id, make));
        self
    }

    /// The context data the instance's `ContextData` dependencies (and its mocks' calls)
    /// carry.
    pub fn context(mut self, context: ContextData) -> Self {
        self.context = context;
        self
    }

    /// Builds the instance.
    ///
    /// # Errors
    ///
    /// See [`FactoryError`].
    pub fn build(self) -> Result<S, FactoryError> {
        self.build_with_mocks().map(|(service, _)| service)
    }

    /// Builds the instance and returns the mocks it got, to assert on them.
    ///
    /// # Errors
    ///
    /// See [`FactoryError`].
    pub fn build_with_mocks(self) -> Result<(S, Mocks), FactoryError> {
        let defs = S::dependencies();
        let known = || defs.iter().map(|d| d.name).collect::<Vec<_>>().join(", ");
        let mut replacements = self.replacements;
        for (name, _) in &replacements {
            if !defs.iter().any(|d| d.name == name) {
                return Err(FactoryError::UnknownDependency {
                    name: name.clone(),
                    known: if defs.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known()
                    },
                });
            }
        }
        let mut mocks = Mocks::default();
        let mut values = Vec::with_capacity(defs.len());
        for def in &defs {
            let wrong_type = |given: &str| FactoryError::WrongType {
                name: def.name.to_owned(),
                expected: def.type_name.to_owned(),
                given: given.to_owned(),
            };
            let value = match replacements
                .iter()
                .position(|(n, _)| n == def.name)
                .map(|i| replacements.remove(i).1)
            {
                Some(Replacement::Mock(mock)) => {
                    let (type_id, type_name) = mock.target();
                    if type_id != def.type_id {
                        return Err(wrong_type(type_name));
                    }
                    let value = mock.value(def.name, &self.context);
                    mocks.push(def.name, mock);
                    value
                }
                Some(Replacement::Value(type_id, type_name, value)) => {
                    if type_id != def.type_id {
                        return Err(wrong_type(type_name));
                    }
                    value
                }
                None => match default_mock(def.type_id) {
                    Some(mock) => {
                        let value = mock.value(def.name, &self.context);
                        mocks.push(def.name, mock);
                        value
                    }
                    None => match self.states.iter().find(|(t, _)| *t == def.type_id) {
                        Some((_, make)) => make(),
                        None => default_value(def.type_id, &self.context)
                            .ok_or_else(|| missing(def.name, def.type_name))?,
                    },
                },
            };
            values.push((def.name, value));
        }
        let service = S::build(DependencyValues::new(values))?;
        Ok((service, mocks))
    }
}

/// The error for a dependency nothing was given for.
fn missing(name: &str, type_name: &str) -> FactoryError {
    let state = std::any::type_name::<State<()>>();
    let state = state.split('<').next().unwrap_or(state);
    if type_name.starts_with(state) {
        FactoryError::NoState {
            name: name.to_owned(),
            type_name: type_name.to_owned(),
        }
    } else {
        FactoryError::NoMock {
            name: name.to_owned(),
            type_name: type_name.to_owned(),
        }
    }
}
