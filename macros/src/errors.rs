//! `#[derive(NamekoError)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr};

pub(crate) fn expand(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut exc_type: Option<LitStr> = None;
    let mut exc_path: Option<LitStr> = None;
    for attr in &input.attrs {
        if !attr.path().is_ident("nameko") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("exc_type") {
                exc_type = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("exc_path") {
                exc_path = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected `exc_type = \"...\"` or `exc_path = \"...\"`"))
            }
        })?;
    }
    let type_name = name.to_string();
    let exc_type = exc_type.map_or_else(|| quote!(#type_name), |lit| quote!(#lit));
    let exc_path = match exc_path {
        Some(lit) => quote!(#lit),
        None => quote! {{
            static PATH: ::std::sync::OnceLock<::std::string::String> = ::std::sync::OnceLock::new();
            PATH.get_or_init(|| ::std::format!("{}.{}", ::core::module_path!().replace("::", "."), #type_name))
        }},
    };
    let from_remote = from_remote(&input)?;
    Ok(quote! {
        impl #impl_generics ::nameko::__private::NamekoError for #name #ty_generics #where_clause {
            fn exc_type() -> &'static str {
                #exc_type
            }

            fn exc_path() -> &'static str {
                #exc_path
            }
        }

        #from_remote
    })
}

/// Errors that can be rebuilt from a message get `FromRemoteError`: unit structs, and
/// structs whose one field is a `String` message.
fn from_remote(input: &DeriveInput) -> syn::Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Ok(TokenStream::new());
    }
    let name = &input.ident;
    let body = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Unit => quote!(::core::option::Option::Some(Self)),
            Fields::Unnamed(f) if f.unnamed.len() == 1 && is_string(&f.unnamed[0].ty) => {
                quote!(::core::option::Option::Some(Self(
                    remote.message().to_owned()
                )))
            }
            Fields::Named(f) if f.named.len() == 1 && is_string(&f.named[0].ty) => {
                let field = f.named[0]
                    .ident
                    .as_ref()
                    .ok_or_else(|| syn::Error::new(f.span(), "unnamed field"))?;
                quote!(::core::option::Option::Some(Self { #field: remote.message().to_owned() }))
            }
            _ => return Ok(TokenStream::new()),
        },
        _ => return Ok(TokenStream::new()),
    };
    Ok(quote! {
        impl ::nameko::__private::FromRemoteError for #name {
            fn from_remote(remote: &::nameko::__private::RemoteError) -> ::core::option::Option<Self> {
                #body
            }
        }
    })
}

fn is_string(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "String"))
}
