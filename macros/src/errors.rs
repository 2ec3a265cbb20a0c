//! `#[derive(NamekoError)]`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr};

/// What `#[nameko(...)]` on the type says.
#[derive(Default)]
struct TypeAttrs {
    exc_type: Option<LitStr>,
    exc_path: Option<LitStr>,
    deserialize_to_instance: Option<Span>,
    display: Option<LitStr>,
}

const TYPE_KEYS: &str = "expected `exc_type = \"...\"`, `exc_path = \"...\"`, `display = \"...\"` or `deserialize_to_instance`";

fn type_attrs(attrs: &[Attribute]) -> syn::Result<TypeAttrs> {
    let mut out = TypeAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("nameko")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("exc_type") {
                out.exc_type = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("exc_path") {
                out.exc_path = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("display") {
                out.display = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("deserialize_to_instance") {
                out.deserialize_to_instance = Some(meta.path.span());
            } else {
                return Err(meta.error(TYPE_KEYS));
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// `#[nameko(display = "...")]` on an enum variant.
fn variant_display(attrs: &[Attribute]) -> syn::Result<Option<LitStr>> {
    let mut display = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("nameko")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("display") {
                display = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("a variant takes only `display = \"...\"`"))
            }
        })?;
    }
    Ok(display)
}

pub(crate) fn expand(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let attrs = type_attrs(&input.attrs)?;
    let type_name = name.to_string();
    let exc_type = attrs
        .exc_type
        .as_ref()
        .map_or_else(|| quote!(#type_name), |lit| quote!(#lit));
    let exc_path = match &attrs.exc_path {
        Some(lit) => quote!(#lit),
        None => quote! {{
            static PATH: ::std::sync::OnceLock<::std::string::String> = ::std::sync::OnceLock::new();
            PATH.get_or_init(|| ::std::format!("{}.{}", ::core::module_path!().replace("::", "."), #type_name))
        }},
    };
    let display = display(&input, attrs.display.as_ref())?;
    // Neither `display` nor thiserror's `#[error]`: `Display`/`Error` may be missing.
    let check = if display.is_empty() && !has_error_attr(&input) {
        quote::quote_spanned! {name.span()=>
            const _: () = {
                fn needs_error<T: ?::core::marker::Sized + ::nameko::__private::ErrorWithDisplay>() {}
                let _ = needs_error::<#name #ty_generics>;
            };
        }
    } else {
        TokenStream::new()
    };
    let from_remote = from_remote(&input)?;
    let exc_args = exc_args(&input);
    let registration = registration(&input, attrs.deserialize_to_instance)?;
    Ok(quote! {
        impl #impl_generics ::nameko::__private::NamekoError for #name #ty_generics #where_clause {
            fn exc_type() -> &'static str {
                #exc_type
            }

            fn exc_path() -> &'static str {
                #exc_path
            }

            #exc_args
        }

        #check
        #display
        #from_remote
        #registration
    })
}

/// Whether the type (or one of its variants) carries thiserror's `#[error(...)]`.
fn has_error_attr(input: &DeriveInput) -> bool {
    let on = |attrs: &[Attribute]| attrs.iter().any(|a| a.path().is_ident("error"));
    on(&input.attrs)
        || matches!(&input.data, Data::Enum(e) if e.variants.iter().any(|v| on(&v.attrs)))
}

/// Submits the type to the process's error registry (see `nameko::errors`).
fn registration(input: &DeriveInput, typed: Option<Span>) -> syn::Result<TokenStream> {
    let name = &input.ident;
    if !input.generics.params.is_empty() {
        return match typed {
            Some(span) => Err(syn::Error::new(
                span,
                "`deserialize_to_instance` needs a type without generic parameters: callers rebuild one concrete type from an `exc_path`",
            )),
            None => Ok(TokenStream::new()),
        };
    }
    let entry = match typed {
        Some(span) => {
            quote::quote_spanned! {span=> ::nameko::__private::ErrorRegistration::typed::<#name>() }
        }
        None => quote!(::nameko::__private::ErrorRegistration::encoder::<#name>()),
    };
    Ok(quote! {
        ::nameko::__private::inventory::submit! { #entry }
    })
}

/// `Display` and `std::error::Error` from `#[nameko(display = "...")]`, on the type or on
/// every variant of an enum.
fn display(input: &DeriveInput, on_type: Option<&LitStr>) -> syn::Result<TokenStream> {
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let body = match &input.data {
        Data::Struct(data) => {
            let Some(lit) = on_type else {
                return Ok(TokenStream::new());
            };
            let pattern = bindings(&data.fields);
            let lit = positional_to_named(lit)?;
            quote! {
                let Self #pattern = self;
                ::core::write!(__formatter, #lit)
            }
        }
        Data::Enum(data) => {
            let mut arms = Vec::new();
            let mut any = false;
            for variant in &data.variants {
                let own = variant_display(&variant.attrs)?;
                any |= own.is_some();
                let lit = match (own, on_type) {
                    (Some(lit), _) => lit,
                    (None, Some(lit)) => lit.clone(),
                    (None, None) => {
                        arms.push(None);
                        continue;
                    }
                };
                let pattern = bindings(&variant.fields);
                let ident = &variant.ident;
                let lit = positional_to_named(&lit)?;
                arms.push(Some(
                    quote! { Self::#ident #pattern => ::core::write!(__formatter, #lit), },
                ));
            }
            if !any && on_type.is_none() {
                return Ok(TokenStream::new());
            }
            if let Some(missing) = data
                .variants
                .iter()
                .zip(&arms)
                .find_map(|(v, arm)| arm.is_none().then_some(v))
            {
                return Err(syn::Error::new(
                    missing.ident.span(),
                    "every variant needs `#[nameko(display = \"...\")]` once one has it",
                ));
            }
            let arms = arms.into_iter().flatten();
            quote! {
                match self {
                    #(#arms)*
                }
            }
        }
        Data::Union(u) => {
            return Err(syn::Error::new(
                u.union_token.span(),
                "`NamekoError` can only be derived for a struct or an enum",
            ));
        }
    };
    Ok(quote! {
        impl #impl_generics ::core::fmt::Display for #name #ty_generics #where_clause {
            #[allow(unused_variables)]
            fn fmt(&self, __formatter: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                #body
            }
        }

        impl #impl_generics ::std::error::Error for #name #ty_generics #where_clause {}
    })
}

/// A pattern binding every field: `(_0, _1)` for a tuple, `{ a, b }` for named fields.
fn bindings(fields: &Fields) -> TokenStream {
    match fields {
        Fields::Unit => TokenStream::new(),
        Fields::Unnamed(f) => {
            let names = (0..f.unnamed.len()).map(|i| format_ident!("_{}", i));
            quote!((#(#names),*))
        }
        Fields::Named(f) => {
            let names = f.named.iter().filter_map(|f| f.ident.as_ref());
            quote!({ #(#names),* })
        }
    }
}

/// `"{0} of {1:?}"` becomes `"{_0} of {_1:?}"`, naming the bindings of [`bindings`];
/// `{field}` is kept, `{{` and `}}` are escapes, `{}` is refused.
fn positional_to_named(lit: &LitStr) -> syn::Result<LitStr> {
    let text = lit.value();
    let mut out = String::with_capacity(text.len() + 4);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '{' {
            continue;
        }
        match chars.peek() {
            Some('{') => {
                out.push('{');
                chars.next();
            }
            Some(d) if d.is_ascii_digit() => out.push('_'),
            Some('}' | ':') => {
                return Err(syn::Error::new(
                    lit.span(),
                    "name what to show: `{0}` for the first field of a tuple struct, `{field}` for a named one",
                ));
            }
            _ => {}
        }
    }
    Ok(LitStr::new(&out, lit.span()))
}

/// The one `String` field of a struct, if that is all it has.
fn message_field(input: &DeriveInput) -> Option<TokenStream> {
    let Data::Struct(data) = &input.data else {
        return None;
    };
    match &data.fields {
        Fields::Unnamed(f) if f.unnamed.len() == 1 && is_string(&f.unnamed[0].ty) => {
            Some(quote!(0))
        }
        Fields::Named(f) if f.named.len() == 1 && is_string(&f.named[0].ty) => {
            f.named[0].ident.as_ref().map(|i| quote!(#i))
        }
        _ => None,
    }
}

/// A struct made of one `String` sends it as its one argument (Python's `exc.args`), so
/// that a caller rebuilds the same value; other types send their `Display`.
fn exc_args(input: &DeriveInput) -> TokenStream {
    match message_field(input) {
        Some(field) => quote! {
            fn exc_args(&self) -> ::std::vec::Vec<::nameko::__private::Value> {
                ::std::vec![::nameko::__private::Value::String(::std::clone::Clone::clone(&self.#field))]
            }
        },
        None => TokenStream::new(),
    }
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
