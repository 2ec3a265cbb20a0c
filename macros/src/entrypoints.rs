//! The built-in entrypoint attributes `#[rpc]`, `#[event_handler]`, `#[timer]`,
//! `#[consume]`, `#[once]` and `#[dummy]`: `#[service]` turns each into a call of the
//! function-like macro of the same name, which checks its arguments and builds the
//! entrypoint from `nameko::entrypoints`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Ident, Lit, LitBool, LitStr, Token};

/// One argument of an entrypoint attribute: positional, or `name = value`.
pub(crate) enum Arg {
    Positional(Expr),
    Named(Ident, Expr),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            let name: Ident = input.parse()?;
            let _: Token![=] = input.parse()?;
            Ok(Self::Named(name, input.parse()?))
        } else {
            Ok(Self::Positional(input.parse()?))
        }
    }
}

struct Args {
    positional: Vec<Expr>,
    named: Vec<(Ident, Expr)>,
}

impl Args {
    fn parse(input: TokenStream) -> syn::Result<Self> {
        let list: Punctuated<Arg, Token![,]> =
            syn::parse::Parser::parse2(Punctuated::parse_terminated, input)?;
        let mut positional = Vec::new();
        let mut named: Vec<(Ident, Expr)> = Vec::new();
        for arg in list {
            match arg {
                Arg::Positional(e) => {
                    if !named.is_empty() {
                        return Err(syn::Error::new(
                            e.span(),
                            "positional arguments must come before `key = value` ones",
                        ));
                    }
                    positional.push(e);
                }
                Arg::Named(k, v) => {
                    if named.iter().any(|(n, _)| *n == k) {
                        return Err(syn::Error::new(k.span(), format!("`{k}` is given twice")));
                    }
                    named.push((k, v));
                }
            }
        }
        Ok(Self { positional, named })
    }

    fn take(&mut self, key: &str) -> Option<Expr> {
        let i = self.named.iter().position(|(k, _)| k == key)?;
        Some(self.named.remove(i).1)
    }

    /// The argument at `position`, or the named one.
    fn take_either(&mut self, position: usize, key: &str) -> syn::Result<Option<Expr>> {
        let named = self.take(key);
        let positional = self.positional.get(position).cloned();
        match (positional, named) {
            (Some(p), Some(_)) => Err(syn::Error::new(p.span(), format!("`{key}` is given twice"))),
            (p, n) => Ok(p.or(n)),
        }
    }

    fn finish(self, attr: &str, allowed_positional: usize, keys: &[&str]) -> syn::Result<()> {
        if let Some(extra) = self.positional.get(allowed_positional) {
            return Err(syn::Error::new(
                extra.span(),
                format!("`#[{attr}]` takes at most {allowed_positional} positional argument(s)"),
            ));
        }
        if let Some((k, _)) = self.named.first() {
            return Err(syn::Error::new(
                k.span(),
                format!(
                    "unknown argument `{k}` for `#[{attr}]`; expected one of: {}",
                    keys.join(", ")
                ),
            ));
        }
        Ok(())
    }
}

fn lit_str(expr: &Expr, what: &str) -> syn::Result<LitStr> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{what}` must be a string literal"),
        )),
    }
}

/// An integer literal of type `T`; `expected` says what else was wanted.
fn lit_int<T>(expr: &Expr, expected: &str) -> syn::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse(),
        other => Err(syn::Error::new(other.span(), expected)),
    }
}

fn lit_bool(expr: &Expr, what: &str) -> syn::Result<LitBool> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{what}` must be `true` or `false`"),
        )),
    }
}

fn seconds(expr: &Expr) -> syn::Result<TokenStream> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => {
            let v: u64 = i.base10_parse()?;
            if v == 0 {
                return Err(syn::Error::new(
                    i.span(),
                    "`interval` must be more than 0 seconds",
                ));
            }
            Ok(quote!(::core::time::Duration::from_secs(#v)))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => {
            let v: f64 = f.base10_parse()?;
            if v.is_nan() || v <= 0.0 {
                return Err(syn::Error::new(
                    f.span(),
                    "`interval` must be more than 0 seconds",
                ));
            }
            Ok(quote!(::core::time::Duration::from_secs_f64(#v)))
        }
        other => Err(syn::Error::new(
            other.span(),
            "`interval` must be a number of seconds, e.g. `interval = 5` or `interval = 0.5`",
        )),
    }
}

fn handler_type(expr: &Expr) -> syn::Result<TokenStream> {
    let name = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => s.value(),
        Expr::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "`handler_type` must be `service_pool`, `singleton` or `broadcast`",
            ));
        }
    };
    let normalized: String = name
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    match normalized.as_str() {
        "servicepool" => Ok(quote!(::nameko::entrypoints::HandlerType::ServicePool)),
        "singleton" => Ok(quote!(::nameko::entrypoints::HandlerType::Singleton)),
        "broadcast" => Ok(quote!(::nameko::entrypoints::HandlerType::Broadcast)),
        _ => Err(syn::Error::new(
            expr.span(),
            format!(
                "unknown handler type `{name}`; expected `service_pool`, `singleton` or `broadcast`"
            ),
        )),
    }
}

fn exchange_kind(expr: &Expr) -> syn::Result<TokenStream> {
    let name = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => s.value(),
        Expr::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        other => {
            return Err(syn::Error::new(
                other.span(),
                "`exchange_type` must be `direct`, `fanout` or `topic`",
            ));
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "direct" => Ok(quote!(::nameko::transport::ExchangeKind::Direct)),
        "fanout" => Ok(quote!(::nameko::transport::ExchangeKind::Fanout)),
        "topic" => Ok(quote!(::nameko::transport::ExchangeKind::Topic)),
        _ => Err(syn::Error::new(
            expr.span(),
            format!("unknown exchange type `{name}`; expected `direct`, `fanout` or `topic`"),
        )),
    }
}

/// Expands the built-in entrypoint macro `name` with its attribute's arguments.
/// A number of seconds as a literal (integer or float), for delays.
fn seconds_value(expr: &Expr, what: &str) -> syn::Result<f64> {
    let value = match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>()? as f64,
        Expr::Lit(ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>()?,
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!("`{what}` must be a number of seconds, e.g. `1` or `0.5`"),
            ));
        }
    };
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(syn::Error::new(
            expr.span(),
            format!("`{what}` must not be negative"),
        ))
    }
}

fn duration_tokens(secs: f64) -> TokenStream {
    quote!(::core::time::Duration::from_secs_f64(#secs))
}

/// `retry = Backoff { limit: 3, schedule: [1, 2, 4] }` (seconds), `retry = Backoff {
/// limit: 5, base: 1, multiplier: 2, max: 60 }`, either with `dead_letter_exchange:
/// "name"`; `retry = false` for none; any other expression is a `Backoff` or an
/// `Option<Backoff>`.
fn retry(expr: &Expr) -> syn::Result<TokenStream> {
    let Expr::Struct(s) = expr else {
        if let Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) = expr
        {
            if b.value {
                return Err(syn::Error::new(
                    b.span(),
                    "`retry = true` needs a policy: `retry = Backoff { limit: 3, schedule: [1, 2, 4] }`",
                ));
            }
            return Ok(quote!(
                ::core::option::Option::<::nameko::retry::Backoff>::None
            ));
        }
        return Ok(quote!(#expr));
    };
    let is_backoff = s
        .path
        .segments
        .last()
        .is_some_and(|seg| seg.ident == "Backoff");
    if !is_backoff {
        return Ok(quote!(#expr));
    }
    let mut limit = None;
    let mut schedule = None;
    let (mut base, mut multiplier, mut max) = (None, None, None);
    let mut dead_letter_exchange = None;
    for field in &s.fields {
        let syn::Member::Named(name) = &field.member else {
            return Err(syn::Error::new(field.span(), "unexpected field"));
        };
        match name.to_string().as_str() {
            "limit" => match &field.expr {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => limit = Some(i.base10_parse::<u32>()?),
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "`limit` must be an integer: the retries after the first attempt",
                    ));
                }
            },
            "schedule" => {
                let Expr::Array(array) = &field.expr else {
                    return Err(syn::Error::new(
                        field.expr.span(),
                        "`schedule` must be a list of delays in seconds, e.g. `[1, 2, 4]`",
                    ));
                };
                let delays = array
                    .elems
                    .iter()
                    .map(|e| seconds_value(e, "schedule").map(duration_tokens))
                    .collect::<syn::Result<Vec<_>>>()?;
                if delays.is_empty() {
                    return Err(syn::Error::new(
                        array.span(),
                        "`schedule` needs at least one delay",
                    ));
                }
                schedule = Some(delays);
            }
            "base" => base = Some(seconds_value(&field.expr, "base")?),
            "multiplier" => {
                let m = seconds_value(&field.expr, "multiplier")?;
                if m < 1.0 {
                    return Err(syn::Error::new(
                        field.expr.span(),
                        "`multiplier` must be at least 1",
                    ));
                }
                multiplier = Some(m);
            }
            "max" => max = Some(seconds_value(&field.expr, "max")?),
            "dead_letter_exchange" => {
                dead_letter_exchange = Some(lit_str(&field.expr, "dead_letter_exchange")?);
            }
            other => {
                return Err(syn::Error::new(
                    name.span(),
                    format!(
                        "unknown `Backoff` field `{other}`; expected limit, schedule, base, multiplier, max, dead_letter_exchange"
                    ),
                ));
            }
        }
    }
    let limit = limit.ok_or_else(|| syn::Error::new(s.span(), "`Backoff` needs a `limit`"))?;
    let mut policy = match (schedule, base) {
        (Some(delays), None) if multiplier.is_none() && max.is_none() => {
            quote!(::nameko::retry::Backoff::schedule(#limit, [#(#delays),*]))
        }
        (None, Some(base)) => {
            let base = duration_tokens(base);
            let multiplier = multiplier.unwrap_or(2.0);
            let max = duration_tokens(max.unwrap_or(3600.0));
            quote!(::nameko::retry::Backoff::exponential(#limit, #base, #multiplier, #max))
        }
        _ => {
            return Err(syn::Error::new(
                s.span(),
                "`Backoff` takes either `schedule: [...]` or `base` (with `multiplier` and `max`)",
            ));
        }
    };
    if let Some(exchange) = dead_letter_exchange {
        policy = quote!(#policy.dead_letter_exchange(#exchange));
    }
    Ok(policy)
}

/// The queue arguments an event handler or consumer accepts, as `.queue_argument(..)`
/// calls on `entrypoint`.
fn queue_arguments(args: &mut Args, mut entrypoint: TokenStream) -> syn::Result<TokenStream> {
    if let Some(e) = args.take("dead_letter_exchange") {
        let v = lit_str(&e, "dead_letter_exchange")?;
        entrypoint = quote!(#entrypoint.queue_argument("x-dead-letter-exchange", #v));
    }
    if let Some(e) = args.take("dead_letter_routing_key") {
        let v = lit_str(&e, "dead_letter_routing_key")?;
        entrypoint = quote!(#entrypoint.queue_argument("x-dead-letter-routing-key", #v));
    }
    if let Some(e) = args.take("message_ttl") {
        let ms = (seconds_value(&e, "message_ttl")? * 1000.0).round();
        if ms > f64::from(i32::MAX) {
            return Err(syn::Error::new(e.span(), "`message_ttl` is too long"));
        }
        #[allow(clippy::cast_possible_truncation)]
        let ms = ms as i32;
        entrypoint = quote!(#entrypoint.queue_argument("x-message-ttl", #ms));
    }
    if let Some(e) = args.take("max_length") {
        let n: i32 = lit_int(&e, "`max_length` must be an integer")?;
        entrypoint = quote!(#entrypoint.queue_argument("x-max-length", #n));
    }
    if let Some(e) = args.take("overflow") {
        let v = lit_str(&e, "overflow")?;
        if !["drop-head", "reject-publish", "reject-publish-dlx"].contains(&v.value().as_str()) {
            return Err(syn::Error::new(
                v.span(),
                "`overflow` must be \"drop-head\", \"reject-publish\" or \"reject-publish-dlx\"",
            ));
        }
        entrypoint = quote!(#entrypoint.queue_argument("x-overflow", #v));
    }
    if let Some(e) = args.take("max_priority") {
        let n: u8 = lit_int(&e, "`max_priority` must be an integer from 1 to 255")?;
        if n == 0 {
            return Err(syn::Error::new(
                e.span(),
                "`max_priority` must be from 1 to 255",
            ));
        }
        let n = i32::from(n);
        entrypoint = quote!(#entrypoint.queue_argument("x-max-priority", #n));
    }
    if let Some(e) = args.take("queue_type") {
        let v = lit_str(&e, "queue_type")?;
        if !["classic", "quorum"].contains(&v.value().as_str()) {
            return Err(syn::Error::new(
                v.span(),
                "`queue_type` must be \"classic\" or \"quorum\"",
            ));
        }
        entrypoint = quote!(#entrypoint.queue_argument("x-queue-type", #v));
    }
    if let Some(e) = args.take("retry") {
        let policy = retry(&e)?;
        entrypoint = quote!(#entrypoint.retry(#policy));
    }
    Ok(entrypoint)
}

const QUEUE_ARGUMENT_KEYS: &[&str] = &[
    "retry",
    "dead_letter_exchange",
    "dead_letter_routing_key",
    "message_ttl",
    "max_length",
    "overflow",
    "max_priority",
    "queue_type",
];

pub(crate) fn expand(name: &'static str, input: TokenStream) -> syn::Result<TokenStream> {
    let span = Span::call_site();
    let mut args = Args::parse(input)?;
    let entrypoint = match name {
        "rpc" => {
            let mut rpc = quote!(::nameko::entrypoints::Rpc::new());
            if let Some(e) = args.take("retry") {
                let policy = retry(&e)?;
                rpc = quote!(#rpc.retry(#policy));
            }
            args.finish(
                name,
                0,
                &["expected_exceptions", "sensitive_arguments", "retry"],
            )?;
            rpc
        }
        "event_handler" => {
            let source = args
                .take_either(0, "source")?
                .ok_or_else(|| syn::Error::new(span, "`#[event_handler]` needs the source service and the event type: `#[event_handler(\"order_service\", \"order_placed\")]`"))?;
            let event_type = args
                .take_either(1, "event_type")?
                .ok_or_else(|| syn::Error::new(span, "`#[event_handler]` needs the event type: `#[event_handler(\"order_service\", \"order_placed\")]`"))?;
            let source = lit_str(&source, "source")?;
            let event_type = lit_str(&event_type, "event_type")?;
            let mut handler =
                quote!(::nameko::entrypoints::EventHandler::new(#source, #event_type));
            if let Some(t) = args.take("handler_type") {
                let t = handler_type(&t)?;
                handler = quote!(#handler.handler_type(#t));
            }
            if let Some(b) = args.take("reliable_delivery") {
                let b = lit_bool(&b, "reliable_delivery")?;
                handler = quote!(#handler.reliable_delivery(#b));
            }
            if let Some(b) = args.take("requeue_on_error") {
                let b = lit_bool(&b, "requeue_on_error")?;
                handler = quote!(#handler.requeue_on_error(#b));
            }
            if let Some(id) = args.take("broadcast_identifier") {
                handler = quote!(#handler.broadcast_identifier(#id));
            }
            handler = queue_arguments(&mut args, handler)?;
            let keys = [
                "source",
                "event_type",
                "handler_type",
                "reliable_delivery",
                "requeue_on_error",
                "broadcast_identifier",
                "expected_exceptions",
                "sensitive_arguments",
            ];
            args.finish(name, 2, &[&keys[..], QUEUE_ARGUMENT_KEYS].concat())?;
            handler
        }
        "timer" => {
            let interval = args.take_either(0, "interval")?.ok_or_else(|| {
                syn::Error::new(
                    span,
                    "`#[timer]` needs an interval in seconds: `#[timer(interval = 5)]`",
                )
            })?;
            let interval = seconds(&interval)?;
            let eager = match args.take("eager") {
                Some(e) => lit_bool(&e, "eager")?,
                None => LitBool::new(false, span),
            };
            args.finish(name, 1, &["interval", "eager", "expected_exceptions"])?;
            quote!(::nameko::entrypoints::Timer::new(#interval).eager(#eager))
        }
        "consume" => {
            let queue = args.take_either(0, "queue")?.ok_or_else(|| {
                syn::Error::new(
                    span,
                    "`#[consume]` needs a queue: `#[consume(queue = \"my_queue\")]`",
                )
            })?;
            let queue = lit_str(&queue, "queue")?;
            let mut consume = quote!(::nameko::entrypoints::Consume::new(#queue));
            let exchange = args.take("exchange");
            let routing_key = args.take("routing_key");
            let kind = match args.take("exchange_type") {
                Some(k) => exchange_kind(&k)?,
                None => quote!(::nameko::transport::ExchangeKind::Topic),
            };
            match (exchange, routing_key) {
                (Some(exchange), routing_key) => {
                    let exchange = lit_str(&exchange, "exchange")?;
                    let routing_key = match routing_key {
                        Some(rk) => lit_str(&rk, "routing_key")?,
                        None => queue.clone(),
                    };
                    consume = quote!(#consume.bind(::nameko::messaging::ExchangeDef::new(#exchange, #kind), #routing_key));
                }
                (None, Some(rk)) => {
                    return Err(syn::Error::new(
                        rk.span(),
                        "`routing_key` needs an `exchange`",
                    ));
                }
                (None, None) => {}
            }
            if let Some(b) = args.take("requeue_on_error") {
                let b = lit_bool(&b, "requeue_on_error")?;
                consume = quote!(#consume.requeue_on_error(#b));
            }
            if let Some(p) = args.take("prefetch") {
                consume = quote!(#consume.prefetch(#p));
            }
            consume = queue_arguments(&mut args, consume)?;
            let keys = [
                "queue",
                "exchange",
                "exchange_type",
                "routing_key",
                "requeue_on_error",
                "prefetch",
                "expected_exceptions",
                "sensitive_arguments",
            ];
            args.finish(name, 1, &[&keys[..], QUEUE_ARGUMENT_KEYS].concat())?;
            consume
        }
        "once" => {
            let values = std::mem::take(&mut args.positional);
            args.finish(name, 0, &[])?;
            quote!(::nameko::entrypoints::Once::new(
                ::nameko::wire::CallArgs::new()#(.arg(#values))*
            ))
        }
        _ => {
            args.finish(name, 0, &["expected_exceptions", "sensitive_arguments"])?;
            quote!(::nameko::entrypoints::Dummy)
        }
    };
    Ok(entrypoint)
}
