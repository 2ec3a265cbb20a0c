//! Procedural macros of nameko-rs. Use them through the `nameko` crate (its prelude
//! brings them all in), where each is documented with every argument it takes:
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
mod client;
mod dependencies;
mod entrypoints;
mod errors;
mod schema;
mod service;

use proc_macro::TokenStream;

#[doc = include_str!("../docs/service.md")]
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    service::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[doc = include_str!("../docs/client.md")]
#[proc_macro_attribute]
pub fn client(attr: TokenStream, item: TokenStream) -> TokenStream {
    client::expand_trait(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[doc = include_str!("../docs/dependencies.md")]
#[proc_macro_derive(Dependencies, attributes(dependency))]
pub fn derive_dependencies(item: TokenStream) -> TokenStream {
    dependencies::expand(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[doc = include_str!("../docs/nameko_error.md")]
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

#[doc = include_str!("../docs/rpc.md")]
#[proc_macro]
pub fn rpc(input: TokenStream) -> TokenStream {
    builtin("rpc", input)
}

#[doc = include_str!("../docs/event_handler.md")]
#[proc_macro]
pub fn event_handler(input: TokenStream) -> TokenStream {
    builtin("event_handler", input)
}

#[doc = include_str!("../docs/timer.md")]
#[proc_macro]
pub fn timer(input: TokenStream) -> TokenStream {
    builtin("timer", input)
}

#[doc = include_str!("../docs/consume.md")]
#[proc_macro]
pub fn consume(input: TokenStream) -> TokenStream {
    builtin("consume", input)
}

#[doc = include_str!("../docs/once.md")]
#[proc_macro]
pub fn once(input: TokenStream) -> TokenStream {
    builtin("once", input)
}

#[doc = include_str!("../docs/dummy.md")]
#[proc_macro]
pub fn dummy(input: TokenStream) -> TokenStream {
    builtin("dummy", input)
}
