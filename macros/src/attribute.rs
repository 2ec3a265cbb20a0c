//! Entrypoint attributes on the methods of a `#[service]`: any attribute that is not one
//! of Rust's own (or `tracing`'s) is an entrypoint attribute, `#[path(args)]`, and becomes
//! the expression `path!(args)`, after the arguments every entrypoint understands are
//! taken out: `expected_exceptions = [Error, ...]` and `sensitive_arguments = ["a.b"]`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, LitStr, Path, Token};

use crate::entrypoints::Arg;

/// Attributes a method may carry that are not entrypoints.
const PASSTHROUGH: &[&str] = &[
    "doc",
    "allow",
    "warn",
    "deny",
    "forbid",
    "expect",
    "cfg",
    "cfg_attr",
    "inline",
    "cold",
    "must_use",
    "deprecated",
    "track_caller",
    "instrument",
];

/// Tools whose attributes (`#[tracing::instrument]`, `#[clippy::...]`) are not entrypoints.
const PASSTHROUGH_TOOLS: &[&str] = &["tracing", "clippy", "rustfmt", "diagnostic"];

/// One entrypoint attribute of a method.
pub(crate) struct EntrypointAttr {
    /// The attribute's name, the last segment of its path (`rpc`).
    pub(crate) name: String,
    /// The expression that builds the entrypoint.
    pub(crate) build: TokenStream,
    /// Types of the expected exceptions.
    pub(crate) expected: Vec<Path>,
    /// Dotted paths of the sensitive arguments.
    pub(crate) sensitive: Vec<LitStr>,
}

fn is_passthrough(path: &Path) -> bool {
    match path.get_ident() {
        Some(ident) => PASSTHROUGH.iter().any(|p| ident == p),
        None => path
            .segments
            .first()
            .is_some_and(|s| PASSTHROUGH_TOOLS.iter().any(|t| s.ident == t)),
    }
}

impl EntrypointAttr {
    /// The entrypoint of an attribute; `None` if it is not one.
    pub(crate) fn parse(attr: &Attribute) -> syn::Result<Option<Self>> {
        let path = attr.path();
        if is_passthrough(path) {
            return Ok(None);
        }
        let tokens = match &attr.meta {
            syn::Meta::Path(_) => TokenStream::new(),
            syn::Meta::List(list) => list.tokens.clone(),
            syn::Meta::NameValue(nv) => {
                return Err(syn::Error::new(
                    nv.span(),
                    "use parentheses: `#[name(arg, key = value)]`",
                ));
            }
        };
        let mut expected = Vec::new();
        let mut sensitive = Vec::new();
        let parser = Punctuated::<Arg, Token![,]>::parse_terminated;
        let rest = match syn::parse::Parser::parse2(parser, tokens.clone()) {
            Ok(list) => {
                let mut rest = Vec::new();
                for arg in list {
                    match arg {
                        Arg::Named(key, value) if key == "expected_exceptions" => {
                            expected.extend(types(value)?);
                        }
                        Arg::Named(key, value) if key == "sensitive_arguments" => {
                            sensitive.extend(strings(value)?);
                        }
                        Arg::Named(key, value) => rest.push(quote!(#key = #value)),
                        Arg::Positional(value) => rest.push(value.into_token_stream()),
                    }
                }
                quote!(#(#rest),*)
            }
            // Syntax of the entrypoint's own: its macro reads it.
            Err(_) => tokens,
        };
        let build = quote_spanned! {path.span()=> #path!(#rest) };
        Ok(Some(Self {
            name: path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .unwrap_or_default(),
            build,
            expected,
            sensitive,
        }))
    }
}

fn list(expr: Expr) -> Vec<Expr> {
    match expr {
        Expr::Array(a) => a.elems.into_iter().collect(),
        Expr::Tuple(t) => t.elems.into_iter().collect(),
        Expr::Paren(p) => vec![*p.expr],
        other => vec![other],
    }
}

fn types(expr: Expr) -> syn::Result<Vec<Path>> {
    list(expr)
        .into_iter()
        .map(|e| match e {
            Expr::Path(p) => Ok(p.path),
            other => Err(syn::Error::new(
                other.span(),
                "`expected_exceptions` lists error types: `[MyError, OtherError]`",
            )),
        })
        .collect()
}

fn strings(expr: Expr) -> syn::Result<Vec<LitStr>> {
    list(expr)
        .into_iter()
        .map(|e| match e {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Ok(s),
            other => Err(syn::Error::new(
                other.span(),
                "`sensitive_arguments` lists argument names or dotted paths: `[\"password\", \"card.number\"]`",
            )),
        })
        .collect()
}
