//! What the macros' generated code uses. Not a public API.

use std::marker::PhantomData;

pub use async_trait::async_trait;
pub use nameko_core::dependency::{Dependency, DependencyProvider, ErasedProvider};
pub use nameko_core::errors::{FromRemoteError, IntoRemoteError, NamekoError, RemoteError};
pub use nameko_core::method::{IntoOutput, Natives, Output, result_output};
pub use nameko_core::rpc::RpcProxyProvider;
pub use nameko_core::service::{
    BindError, Binder, BuildError, Dependencies, DependencyDef, DependencyValues, EntrypointDef,
    Param, Service,
};
pub use nameko_core::wire::CallArgs;
pub use serde_json::Value;

/// Boxes a field's default provider.
pub fn boxed_provider<P: DependencyProvider>(provider: P) -> Box<dyn ErasedProvider> {
    Box::new(provider)
}

/// Boxes a provider given with `#[dependency(...)]`, checking that it provides the
/// field's type.
pub fn provider_for<T: Send + 'static, P: DependencyProvider<Output = T>>(
    provider: P,
) -> Box<dyn ErasedProvider> {
    Box::new(provider)
}

/// Registers an error type of a service, as far as it allows: see the three
/// `Register*` traits, picked by autoref at the call site.
#[derive(Debug)]
pub struct Registrar<E>(PhantomData<fn() -> E>);

impl<E> Registrar<E> {
    /// A registrar.
    #[must_use]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E> Default for Registrar<E> {
    fn default() -> Self {
        Self::new()
    }
}

/// Errors that can be rebuilt from an error dict: registered both ways.
pub trait RegisterFromRemote {
    /// Registers.
    fn register(&self);
}

impl<E: FromRemoteError> RegisterFromRemote for &&Registrar<E> {
    fn register(&self) {
        nameko_core::errors::register_error::<E>();
    }
}

/// Errors with a nameko identity: registered for `?` into `ServiceError`.
pub trait RegisterAsNameko {
    /// Registers.
    fn register(&self);
}

impl<E: NamekoError> RegisterAsNameko for &Registrar<E> {
    fn register(&self) {
        nameko_core::errors::register_nameko_error::<E>();
    }
}

/// Other error types: nothing to register.
pub trait RegisterNothing {
    /// Does nothing.
    fn register(&self);
}

impl<E> RegisterNothing for Registrar<E> {
    fn register(&self) {}
}
