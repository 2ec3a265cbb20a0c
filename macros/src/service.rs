//! `#[service(name = "...")]` on an `impl` block.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ItemImpl, LitStr, Pat, Type};

use crate::attribute::EntrypointAttr;
use crate::client::{ClientMethod, Returns, returns};
use crate::schema;

struct Method {
    ident: syn::Ident,
    docs: Vec<syn::Attribute>,
    entrypoints: Vec<EntrypointAttr>,
    params: Vec<(syn::Ident, Type)>,
    returns: Returns,
}

/// What `#[service(...)]` says.
pub(crate) struct ServiceArgs {
    pub(crate) name: LitStr,
    client: ClientOption,
    /// `dispatches("order_placed" = OrderPlaced, "other")`: the events it dispatches.
    dispatches: Vec<schema::Dispatch>,
}

/// `client = ...` of `#[service(...)]`.
enum ClientOption {
    /// `<Type>Client`.
    Default,
    /// `client = MyClient`.
    Named(syn::Ident),
    /// `client = false`.
    Off,
}

pub(crate) fn parse_name(attr: TokenStream) -> syn::Result<ServiceArgs> {
    let span = attr.span();
    if attr.is_empty() {
        return Err(syn::Error::new(
            span,
            "a service needs a name: `#[service(name = \"calculator\")]`",
        ));
    }
    let mut name = syn::parse2::<LitStr>(attr.clone()).ok();
    let mut client = ClientOption::Default;
    let mut dispatches = Vec::new();
    if name.is_none() {
        let parser = syn::meta::parser(|meta| {
            if meta.path.is_ident("name") {
                name = Some(meta.value()?.parse::<LitStr>()?);
                Ok(())
            } else if meta.path.is_ident("client") {
                let value = meta.value()?;
                if value.peek(syn::LitBool) {
                    let enabled: syn::LitBool = value.parse()?;
                    if enabled.value {
                        return Err(syn::Error::new(
                            enabled.span(),
                            "`client = true` is the default; name the client with `client = MyClient`, or leave it out with `client = false`",
                        ));
                    }
                    client = ClientOption::Off;
                } else {
                    client = ClientOption::Named(value.parse::<syn::Ident>()?);
                }
                Ok(())
            } else if meta.path.is_ident("dispatches") {
                dispatches.extend(schema::parse_dispatches(&meta)?);
                Ok(())
            } else {
                Err(meta.error(
                    "expected `name = \"...\"`, `client = false | ClientName` or `dispatches(\"event_type\" = PayloadType, ...)`",
                ))
            }
        });
        syn::parse::Parser::parse2(parser, attr)?;
    }
    let name = name.ok_or_else(|| {
        syn::Error::new(
            span,
            "a service needs a name: `#[service(name = \"calculator\")]`",
        )
    })?;
    let value = name.value();
    if value.is_empty() || value.contains('.') || value.chars().any(char::is_whitespace) {
        return Err(syn::Error::new(
            name.span(),
            "a service name must be non-empty, without dots or spaces (it makes the routing key `<name>.<method>`)",
        ));
    }
    Ok(ServiceArgs {
        name,
        client,
        dispatches,
    })
}

fn method(item: &mut syn::ImplItemFn) -> syn::Result<Option<Method>> {
    let mut entrypoints = Vec::new();
    let mut keep = Vec::with_capacity(item.attrs.len());
    for attr in item.attrs.drain(..) {
        match EntrypointAttr::parse(&attr)? {
            Some(ep) => entrypoints.push(ep),
            None => keep.push(attr),
        }
    }
    item.attrs = keep;
    if entrypoints.is_empty() {
        return Ok(None);
    }
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!("entrypoint `{}` must be an `async fn`", sig.ident),
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "entrypoint methods cannot be generic",
        ));
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) => {
            return Err(syn::Error::new(
                r.span(),
                "entrypoint methods take `&self` (a fresh instance serves each worker)",
            ));
        }
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                format!("entrypoint `{}` must take `&self` first", sig.ident),
            ));
        }
    }
    let mut params = Vec::new();
    for input in inputs {
        let FnArg::Typed(pat) = input else { continue };
        let Pat::Ident(ident) = &*pat.pat else {
            return Err(syn::Error::new(
                pat.pat.span(),
                "entrypoint parameters must be plain names: callers pass them by name",
            ));
        };
        if let Type::Reference(r) = &*pat.ty {
            return Err(syn::Error::new(
                r.span(),
                "entrypoint parameters must be owned types (e.g. `String`, not `&str`): they are deserialized from the request",
            ));
        }
        params.push((ident.ident.clone(), (*pat.ty).clone()));
    }
    let docs = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    Ok(Some(Method {
        ident: sig.ident.clone(),
        docs,
        entrypoints,
        params,
        returns: returns(&sig.output),
    }))
}

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_name(attr)?;
    let name = args.name.clone();
    let mut block: ItemImpl = syn::parse2(item)?;
    if let Some((_, path, _)) = &block.trait_ {
        return Err(syn::Error::new(
            path.span(),
            "`#[service]` goes on the service's own `impl` block, not a trait impl",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new(
            block.generics.span(),
            "a service cannot be generic",
        ));
    }
    let mut methods = Vec::new();
    for item in &mut block.items {
        if let ImplItem::Fn(f) = item
            && let Some(m) = method(f)?
        {
            methods.push(m);
        }
    }
    if methods.is_empty() {
        return Err(syn::Error::new(
            block.self_ty.span(),
            "a service needs at least one entrypoint: mark a method `#[rpc]`, `#[event_handler(...)]`, `#[timer(...)]`, `#[consume(...)]`, `#[once]`, `#[dummy]`, or with the entrypoint attribute of another crate (`#[http(...)]`)",
        ));
    }
    let self_ty = &block.self_ty;
    let type_ident = match &**self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    }
    .ok_or_else(|| syn::Error::new(self_ty.span(), "`#[service]` needs a named struct type"))?;
    let call = format_ident!("__NamekoCall{}", type_ident);

    let mut variants = Vec::new();
    let mut defs = Vec::new();
    let mut binds = Vec::new();
    let mut invokes = Vec::new();
    let mut schemas = Vec::new();
    for m in &methods {
        schemas.push(schema::method(&m.ident, &m.docs, &m.params, &m.returns));
        let ident = &m.ident;
        let method_name = ident.to_string();
        let types: Vec<&Type> = m.params.iter().map(|(_, t)| t).collect();
        variants.push(quote! { #ident(#(#types),*) });

        let params: Vec<TokenStream> = m
            .params
            .iter()
            .map(|(name, ty)| {
                let name = name.to_string().trim_start_matches("r#").to_owned();
                if is_option(ty) {
                    quote!(::nameko::__private::Param::optional(#name))
                } else {
                    quote!(::nameko::__private::Param::required(#name))
                }
            })
            .collect();
        for ep in &m.entrypoints {
            let expected = &ep.expected;
            let sensitive = &ep.sensitive;
            let build = &ep.build;
            defs.push(quote! {{
                const PARAMS: &[::nameko::__private::Param] = &[#(#params),*];
                ::nameko::__private::EntrypointDef::new(#method_name, PARAMS, #build)
                    #(.expect(<#expected as ::nameko::__private::NamekoError>::exc_path()))*
                    #(.sensitive(#sensitive))*
            }});
        }

        let takes: Vec<TokenStream> = m
            .params
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| {
                // A `Value` parameter is copied from its argument, any other converted
                // through `FromArg` (see `method::__convert`).
                quote_spanned!(ty.span()=> {
                    #[allow(unused_imports)]
                    use ::nameko::method::__convert::{FromArgKind as _, ValueArgKind as _};
                    (&::core::marker::PhantomData::<#ty>).arg_kind().take(&mut bound, #i)?
                })
            })
            .collect();
        binds.push(quote! {
            #method_name => {
                const PARAMS: &[::nameko::__private::Param] = &[#(#params),*];
                #[allow(unused_mut)]
                let mut bound = ::nameko::__private::Binder::bind(#method_name, PARAMS, args)?
                    .with_natives(natives);
                ::core::result::Result::Ok(#call::#ident(#(#takes),*))
            }
        });

        let vars: Vec<syn::Ident> = (0..m.params.len())
            .map(|i| format_ident!("arg{}", i))
            .collect();
        let convert = match &m.returns {
            Returns::Unit => {
                quote! { { self.#ident(#(#vars),*).await; ::core::result::Result::Ok(::nameko::__private::Output::Json(::nameko::__private::Value::Null)) } }
            }
            Returns::Value(ty) => {
                let into_output = output_of(ty);
                quote! { #into_output(self.#ident(#(#vars),*).await) }
            }
            Returns::Result(Some(types)) => {
                let (ok, err) = &**types;
                let into_output = output_of(ok);
                let into_remote = quote_spanned! {err.span()=>
                    <#err as ::nameko::__private::IntoRemoteError>::into_remote_error
                };
                quote! {
                    match self.#ident(#(#vars),*).await {
                        ::core::result::Result::Ok(value) => #into_output(value),
                        ::core::result::Result::Err(error) => ::core::result::Result::Err(#into_remote(error)),
                    }
                }
            }
            Returns::Result(None) => {
                quote! { ::nameko::__private::result_output(self.#ident(#(#vars),*).await) }
            }
        };
        invokes.push(quote! { #call::#ident(#(#vars),*) => #convert, });
    }

    let client = match args.client {
        ClientOption::Off => TokenStream::new(),
        named => {
            let ident = match named {
                ClientOption::Named(ident) => ident,
                _ => format_ident!("{}Client", type_ident),
            };
            let rpcs: Vec<ClientMethod<'_>> = methods
                .iter()
                .filter(|m| m.entrypoints.iter().any(|e| e.name == "rpc"))
                .map(|m| ClientMethod {
                    ident: &m.ident,
                    docs: m.docs.iter().collect(),
                    params: &m.params,
                    returns: &m.returns,
                })
                .collect();
            let vis: syn::Visibility = syn::parse_quote!(pub);
            crate::client::generate(&vis, &name, &ident, &rpcs)
        }
    };

    let schemas = schema::service(&schemas, &args.dispatches);

    // Spanned at the type, so that a struct without `#[derive(Dependencies)]` is pointed at.
    let service_impl =
        quote_spanned! {self_ty.span()=> impl ::nameko::__private::Service for #self_ty };
    Ok(quote! {
        #block

        #client

        #[doc(hidden)]
        #[allow(non_camel_case_types, private_interfaces)]
        pub enum #call {
            #(#variants,)*
        }

        #service_impl {
            type Call = #call;

            fn name() -> &'static str {
                #name
            }

            fn entrypoints() -> ::std::vec::Vec<::nameko::__private::EntrypointDef> {
                ::std::vec![#(#defs),*]
            }

            fn bind(
                method: &str,
                args: &::nameko::__private::CallArgs,
                natives: ::nameko::__private::Natives,
            ) -> ::core::result::Result<Self::Call, ::nameko::__private::BindError> {
                match method {
                    #(#binds)*
                    other => ::core::result::Result::Err(::nameko::__private::BindError::MethodNotFound(other.to_owned())),
                }
            }

            async fn invoke(
                &self,
                call: Self::Call,
            ) -> ::core::result::Result<::nameko::__private::Output, ::nameko::__private::RemoteError> {
                match call {
                    #(#invokes)*
                }
            }

            #schemas
        }
    })
}

/// A closure converting a method's return value of type `ty` into an `Output`: a `Value`
/// is moved in, any other type goes through `IntoOutput` (see `method::__convert`).
fn output_of(ty: &Type) -> TokenStream {
    quote_spanned! {ty.span()=>
        (|value: #ty| {
            #[allow(unused_imports)]
            use ::nameko::method::__convert::{SerializeKind as _, ValueKind as _};
            (&value).output_kind().into_output(value)
        })
    }
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}
