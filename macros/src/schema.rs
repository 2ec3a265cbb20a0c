//! The JSON schemas `#[service]` generates for documents of the service's messaging: one
//! per method parameter and result, and one per event the service declares it dispatches
//! (`dispatches("order_placed" = OrderPlaced)`).
//!
//! A type that implements `JsonSchema` gets its schema; any other type gets `{}`, chosen
//! at compile time (see `SchemaOf` in nameko-core), so no user type has to implement it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, LitStr, Token, Type};

use crate::client::{Returns, mentions_impl, wire_name};

/// One event of `dispatches(...)`: its type, and its payload's Rust type if given.
pub(crate) struct Dispatch {
    event_type: LitStr,
    payload: Option<Type>,
}

impl Parse for Dispatch {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let event_type: LitStr = input.parse()?;
        if event_type.value().is_empty() {
            return Err(syn::Error::new(
                event_type.span(),
                "an event type cannot be empty",
            ));
        }
        let payload = if input.peek(Token![=]) {
            let _: Token![=] = input.parse()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Self {
            event_type,
            payload,
        })
    }
}

/// `dispatches("a" = A, "b")` of `#[service(...)]`.
pub(crate) fn parse_dispatches(
    meta: &syn::meta::ParseNestedMeta<'_>,
) -> syn::Result<Vec<Dispatch>> {
    let content;
    syn::parenthesized!(content in meta.input);
    let items = content.parse_terminated(Dispatch::parse, Token![,])?;
    Ok(items.into_iter().collect())
}

/// The schema of `ty`: typed when it implements `JsonSchema`, `{}` otherwise.
fn schema_of(ty: &Type) -> TokenStream {
    quote! {
        (&&::nameko::__private::SchemaOf::<#ty>::new()).schema(generator)
    }
}

/// The text of doc comments, one line each, without the space after `///`.
fn doc_text(docs: &[Attribute]) -> String {
    docs.iter()
        .filter_map(|attr| match &attr.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Some(text.value()),
                _ => None,
            },
            _ => None,
        })
        .map(|line| line.strip_prefix(' ').map(str::to_owned).unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// `.method(MethodSchemas::new(...).param(...).result(...))` for one method.
pub(crate) fn method(
    ident: &syn::Ident,
    docs: &[Attribute],
    params: &[(syn::Ident, Type)],
    returns: &Returns,
) -> TokenStream {
    let name = wire_name(ident);
    let docs = doc_text(docs);
    let params = params.iter().map(|(_, ty)| {
        let schema = schema_of(ty);
        quote!(.param(#schema))
    });
    let result = match returns {
        Returns::Unit => quote!(::nameko::__private::schema::null()),
        Returns::Value(ty) if !mentions_impl(ty) => schema_of(ty),
        Returns::Result(Some(types)) if !mentions_impl(&types.0) => schema_of(&types.0),
        _ => quote!(::nameko::__private::schema::untyped()),
    };
    quote! {
        .method(
            ::nameko::__private::MethodSchemas::new(#name, #docs)
                #(#params)*
                .result(#result)
        )
    }
}

/// The service's `schemas` function, from its methods' parts and `dispatches(...)`.
pub(crate) fn service(methods: &[TokenStream], dispatches: &[Dispatch]) -> TokenStream {
    let dispatches = dispatches.iter().map(|d| {
        let event_type = &d.event_type;
        let schema = match &d.payload {
            Some(ty) => schema_of(ty),
            None => quote!(::nameko::__private::schema::untyped()),
        };
        quote!(.dispatches(#event_type, #schema))
    });
    quote! {
        #[allow(clippy::needless_borrow, clippy::let_underscore_untyped)]
        fn schemas(
            generator: &mut ::nameko::__private::SchemaGenerator,
        ) -> ::nameko::__private::ServiceSchemas {
            #[allow(unused_imports)]
            use ::nameko::__private::{TypedSchema as _, UntypedSchema as _};
            let _ = &generator;
            ::nameko::__private::ServiceSchemas::new()
                #(#methods)*
                #(#dispatches)*
        }
    }
}
