//! Procedural macros of nameko-rs. Use them through the `nameko` crate:
//!
//! - `#[service(name = "...")]` on an `impl` block: its methods with entrypoint
//!   attributes (`#[rpc]`, `#[event_handler]`, `#[timer]`, `#[consume]`, `#[once]`,
//!   `#[dummy]`, or one of another crate) become the service's entrypoints;
//! - the built-in entrypoint macros `rpc!`, `event_handler!`, `timer!`, `consume!`,
//!   `once!`, `dummy!`, which `#[service]` calls for those attributes;
//! - `#[derive(Dependencies)]` on the service struct: its fields are its dependencies;
//! - `#[derive(NamekoError)]` on an error type: choose the `exc_type`/`exc_path` Python
//!   callers see.

mod attribute;
mod dependencies;
mod entrypoints;
mod errors;
mod service;

use proc_macro::TokenStream;

/// Turns the methods of an `impl` block into a nameko service's entrypoints.
///
/// See the `nameko` crate for the full documentation.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a struct's fields the dependencies of a service.
///
/// See the `nameko` crate for the full documentation.
#[proc_macro_derive(Dependencies, attributes(dependency))]
pub fn derive_dependencies(item: TokenStream) -> TokenStream {
    dependencies::expand(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Gives an error type the `exc_type` and `exc_path` Python callers see.
///
/// See the `nameko` crate for the full documentation.
#[proc_macro_derive(NamekoError, attributes(nameko))]
pub fn derive_nameko_error(item: TokenStream) -> TokenStream {
    errors::expand(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn builtin(name: &'static str, input: TokenStream) -> TokenStream {
    entrypoints::expand(name, input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The entrypoint of `#[rpc]`. See the `nameko` crate.
#[proc_macro]
pub fn rpc(input: TokenStream) -> TokenStream {
    builtin("rpc", input)
}

/// The entrypoint of `#[event_handler(...)]`. See the `nameko` crate.
#[proc_macro]
pub fn event_handler(input: TokenStream) -> TokenStream {
    builtin("event_handler", input)
}

/// The entrypoint of `#[timer(...)]`. See the `nameko` crate.
#[proc_macro]
pub fn timer(input: TokenStream) -> TokenStream {
    builtin("timer", input)
}

/// The entrypoint of `#[consume(...)]`. See the `nameko` crate.
#[proc_macro]
pub fn consume(input: TokenStream) -> TokenStream {
    builtin("consume", input)
}

/// The entrypoint of `#[once(...)]`. See the `nameko` crate.
#[proc_macro]
pub fn once(input: TokenStream) -> TokenStream {
    builtin("once", input)
}

/// The entrypoint of `#[dummy]`. See the `nameko` crate.
#[proc_macro]
pub fn dummy(input: TokenStream) -> TokenStream {
    builtin("dummy", input)
}
