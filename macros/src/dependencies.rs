//! `#[derive(Dependencies)]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, Fields, LitStr, Token};

pub(crate) fn expand(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "a service struct cannot be generic: the container builds one per worker from its dependencies",
        ));
    }
    let name = &input.ident;
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => named.named.iter().collect::<Vec<_>>(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(unnamed) => {
                return Err(syn::Error::new(
                    unnamed.span(),
                    "service dependencies must be named fields (`calculator: RpcProxy`)",
                ));
            }
        },
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "`Dependencies` can only be derived for a struct",
            ));
        }
    };
    let mut defs = Vec::new();
    let mut builds = Vec::new();
    for (index, field) in fields.iter().enumerate() {
        let ident = field
            .ident
            .as_ref()
            .ok_or_else(|| syn::Error::new(field.span(), "unnamed field"))?;
        let ty = &field.ty;
        let field_name = ident.to_string();
        let mut provider = None;
        for attr in &field.attrs {
            if !attr.path().is_ident("dependency") {
                continue;
            }
            if provider.is_some() {
                return Err(syn::Error::new(
                    attr.span(),
                    "a field takes at most one `#[dependency(...)]`",
                ));
            }
            provider = Some(parse_provider(attr, ty)?);
        }
        let provider = provider.unwrap_or_else(|| {
            quote_spanned! {ty.span()=>
                ::nameko::__private::boxed_provider(<#ty as ::nameko::__private::Dependency>::provider(#field_name))
            }
        });
        defs.push(quote! {
            ::nameko::__private::DependencyDef::new(#field_name, #provider)
        });
        builds.push(quote! { #ident: values.take::<#ty>(#index)? });
    }
    let build = match &input.data {
        Data::Struct(data) if matches!(data.fields, Fields::Unit) => {
            quote! { ::core::result::Result::Ok(Self) }
        }
        _ => quote! { ::core::result::Result::Ok(Self { #(#builds,)* }) },
    };
    Ok(quote! {
        impl ::nameko::__private::Dependencies for #name {
            fn dependencies() -> ::std::vec::Vec<::nameko::__private::DependencyDef> {
                ::std::vec![#(#defs),*]
            }

            #[allow(unused_mut, unused_variables)]
            fn build(
                mut values: ::nameko::__private::DependencyValues,
            ) -> ::core::result::Result<Self, ::nameko::__private::BuildError> {
                #build
            }
        }
    })
}

/// `#[dependency(service = "name")]` for an RPC proxy to another service, or
/// `#[dependency(<provider expression>)]`.
fn parse_provider(attr: &syn::Attribute, ty: &syn::Type) -> syn::Result<TokenStream> {
    let expr: Expr = attr.parse_args_with(|input: syn::parse::ParseStream<'_>| {
        if input.peek(syn::Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let key: syn::Ident = input.parse()?;
            let _: Token![=] = input.parse()?;
            let value: LitStr = input.parse()?;
            if key != "service" {
                return Err(syn::Error::new(
                    key.span(),
                    "expected `service = \"name\"` or a provider expression",
                ));
            }
            return Ok(syn::parse_quote!(::nameko::__private::RpcProxyProvider::new(#value)));
        }
        input.parse()
    })?;
    Ok(quote_spanned! {expr.span()=>
        ::nameko::__private::provider_for::<#ty, _>(#expr)
    })
}
