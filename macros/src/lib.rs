//! Procedural macros of nameko-rs. Use them through the `nameko` crate:
//!
//! - `#[service(name = "...")]` on an `impl` block: its `#[rpc]`, `#[event_handler]`,
//!   `#[timer]`, `#[consume]`, `#[once]` and `#[dummy]` methods become the service's
//!   entrypoints;
//! - `#[derive(Dependencies)]` on the service struct: its fields are its dependencies;
//! - `#[derive(NamekoError)]` on an error type: choose the `exc_type`/`exc_path` Python
//!   callers see.

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
