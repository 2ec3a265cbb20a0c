//! What the macros' generated code uses. Not a public API.

pub use async_trait::async_trait;
pub use inventory;
pub use nameko_core::dependency::{BoxedProvider, Dependency, DependencyProvider};
pub use nameko_core::errors::RpcError;
pub use nameko_core::errors::{
    ErrorRegistration, FromRemoteError, IntoRemoteError, NamekoError, RemoteError,
};
pub use nameko_core::method::{IntoOutput, Natives, Output, result_output};
pub use nameko_core::rpc::{
    CallError, CallResult, Client, ClientDouble, ClientProvider, ClientRegistration, ExpectedError,
    IntoArgs, RpcProxy, RpcProxyProvider, ScriptedBackend, ScriptedCall, TypedReply,
    scripted_convert, typed_call,
};
pub use nameko_core::schemars::SchemaGenerator;
pub use nameko_core::service::schema::{
    self, MethodSchemas, SchemaOf, ServiceSchemas, TypedSchema, UntypedSchema,
};
pub use nameko_core::service::{
    BindError, Binder, BuildError, Dependencies, DependencyDef, DependencyValues, EntrypointDef,
    Param, Service,
};
pub use nameko_core::wire::CallArgs;
pub use serde::Serialize;
pub use serde::de::DeserializeOwned;
pub use serde_json::Error as SerdeJsonError;
pub use serde_json::Value;

/// Boxes a field's default provider.
pub fn boxed_provider<P: DependencyProvider>(provider: P) -> BoxedProvider {
    BoxedProvider::new(provider)
}

/// Boxes a provider given with `#[dependency(...)]`, checking that it provides the
/// field's type.
pub fn provider_for<T: Send + 'static, P: DependencyProvider<Output = T>>(
    provider: P,
) -> BoxedProvider {
    BoxedProvider::new(provider)
}

/// An error type a nameko error can be made of; checked by `#[derive(NamekoError)]` to
/// say what is missing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` needs `Display` and `std::error::Error` to be a nameko error",
    label = "no `Display`/`Error` for this type",
    note = "let the derive write them: `#[nameko(display = \"product {{0}} not found\")]` (`{{0}}` is the first field, `{{name}}` a named one)",
    note = "or derive `thiserror::Error` with `#[error(\"...\")]`, or implement both by hand"
)]
pub trait ErrorWithDisplay: std::error::Error {}

impl<T: std::error::Error + ?Sized> ErrorWithDisplay for T {}
