//! The evaluator: statements run against the cluster, with Python's semantics for names,
//! attributes, subscripts and calls, and Python's error messages.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use nameko_core::context::ContextData;
use nameko_core::errors::RpcError;
use nameko_core::wire::CallArgs;
use serde_json::Map;

use super::client::Client;
use super::complete::{SharedKnown, lock};
use super::error::ShellError;
use super::handle::CallHandle;
use super::parser::{Arg, Expr, Stmt, parse};
use super::repr;
use super::value::{Builtin, Dict, MAX_DEPTH, NAMESPACE_MEMBERS, Object, Value, list, tuple};

/// What the shell does after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flow {
    /// Read the next line.
    Continue,
    /// `exit()` was called.
    Exit,
}

/// The help `help()` prints.
pub(crate) const HELP: &str = "\
n.rpc.<service>.<method>(*args, **kwargs)      call a method and wait for its result
n.rpc[\"<service>\"].<method>(...)               the same, for any service name
r = n.rpc.<service>.<method>.call_async(...)   send a call; r.result() waits for its result
n.dispatch_event(source, event_type, payload)  dispatch an event as service `source`
n.config                                       the configuration (passwords hidden)
n.context(user_id=7, language='en')            context data for the calls that follow;
                                               n.context() shows it, n.context({}) clears it
n.timeout(5)                                   seconds to wait for a reply; n.timeout() shows
                                               it, n.timeout(None) restores RPC_TIMEOUT
x = <expression>                               keep a value, then use x, x['key'], x[0]
Values are Python literals ('text', \"text\", 1, 2.5, True, None, [..], (..), {..}) or JSON.
Results print as Python's repr. print(), len(), repr() work as in Python.
Tab completes; Ctrl-C cancels the line or the call; Ctrl-D or exit() leaves.";

/// Arguments of a call, evaluated.
struct Arguments {
    positional: Vec<Value>,
    keywords: Vec<(String, Value)>,
}

type Eval<'a> = Pin<Box<dyn Future<Output = Result<Value, ShellError>> + Send + 'a>>;

/// The state of one shell: its connection and its names.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) client: Client,
    names: HashMap<String, Value>,
    known: SharedKnown,
    /// What `print` wrote, for the caller to show.
    printed: String,
    exit: bool,
}

impl Session {
    pub(crate) fn new(client: Client, known: SharedKnown) -> Self {
        Self {
            client,
            names: HashMap::new(),
            known,
            printed: String::new(),
            exit: false,
        }
    }

    /// Runs `source`, writing what it prints (the `repr` of each expression's value that
    /// is not `None`, and what `print` prints) to `out`.
    pub(crate) async fn run(
        &mut self,
        source: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Flow, ShellError> {
        let statements = parse(source)?;
        for statement in &statements {
            let result = self.statement(statement).await;
            let printed = std::mem::take(&mut self.printed);
            let _ = out.write_all(printed.as_bytes());
            if let Some(value) = result? {
                let _ = writeln!(out, "{}", repr::repr(&value));
            }
            let _ = out.flush();
            if self.exit {
                return Ok(Flow::Exit);
            }
        }
        Ok(Flow::Continue)
    }

    /// Runs one statement; the value to print, if any.
    async fn statement(&mut self, statement: &Stmt) -> Result<Option<Value>, ShellError> {
        match statement {
            Stmt::Assign { name, value } => {
                let value = self.eval(value).await?;
                lock(&self.known).variable(name, matches!(value, Value::Object(Object::Handle(_))));
                self.names.insert(name.clone(), value);
                Ok(None)
            }
            Stmt::Expr(expr) => {
                let value = self.eval(expr).await?;
                if matches!(value, Value::None) {
                    return Ok(None);
                }
                // As Python's prompt, `_` is the last value printed.
                self.names.insert("_".to_owned(), value.clone());
                Ok(Some(value))
            }
        }
    }

    fn eval<'a>(&'a mut self, expr: &'a Expr) -> Eval<'a> {
        Box::pin(async move {
            match expr {
                Expr::Name(name) => self.name(name),
                Expr::None => Ok(Value::None),
                Expr::Bool(b) => Ok(Value::Bool(*b)),
                Expr::Int(i) => Ok(Value::Int(*i)),
                Expr::Float(f) => Ok(Value::Float(*f)),
                Expr::Str(s) => Ok(Value::str(s.as_str())),
                Expr::List(items) => {
                    let items = self.eval_all(items).await?;
                    checked_depth(list(items))
                }
                Expr::Tuple(items) => {
                    let items = self.eval_all(items).await?;
                    checked_depth(tuple(items))
                }
                Expr::Dict(entries) => {
                    let mut dict = Dict::default();
                    for (key, value) in entries {
                        let key = self.eval(key).await?;
                        let value = self.eval(value).await?;
                        dict.insert(key, value).map_err(|key| {
                            ShellError::Type(format!("unhashable type: '{}'", key.type_name()))
                        })?;
                    }
                    checked_depth(Value::Dict(Arc::new(dict)))
                }
                Expr::Neg(inner) => match self.eval(inner).await? {
                    Value::Int(i) => Ok(Value::Int(i.checked_neg().ok_or_else(too_large)?)),
                    Value::Bool(b) => Ok(Value::Int(-i128::from(b))),
                    Value::Float(f) => Ok(Value::Float(-f)),
                    other => Err(ShellError::Type(format!(
                        "bad operand type for unary -: '{}'",
                        other.type_name()
                    ))),
                },
                Expr::Pos(inner) => match self.eval(inner).await? {
                    Value::Bool(b) => Ok(Value::Int(i128::from(b))),
                    value @ (Value::Int(_) | Value::Float(_)) => Ok(value),
                    other => Err(ShellError::Type(format!(
                        "bad operand type for unary +: '{}'",
                        other.type_name()
                    ))),
                },
                Expr::Attr(object, name) => {
                    let object = self.eval(object).await?;
                    if matches!(object, Value::Object(Object::Namespace)) && name == "config" {
                        return Ok(self.config());
                    }
                    attribute(&object, name)
                }
                Expr::Index(object, key) => {
                    let object = self.eval(object).await?;
                    let key = self.eval(key).await?;
                    index(&object, &key)
                }
                Expr::Call(function, args) => {
                    let function = self.eval(function).await?;
                    let args = self.arguments(args).await?;
                    self.call(&function, args).await
                }
            }
        })
    }

    async fn eval_all(&mut self, items: &[Expr]) -> Result<Vec<Value>, ShellError> {
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            values.push(self.eval(item).await?);
        }
        Ok(values)
    }

    fn name(&self, name: &str) -> Result<Value, ShellError> {
        if let Some(value) = self.names.get(name) {
            return Ok(value.clone());
        }
        if name == "n" {
            return Ok(Value::Object(Object::Namespace));
        }
        if let Some(builtin) = Builtin::global(name) {
            return Ok(Value::Object(Object::Builtin(builtin)));
        }
        // JSON's spelling, for values pasted from JSON.
        match name {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "null" => return Ok(Value::None),
            _ => {}
        }
        let mut candidates: Vec<&str> = self.names.keys().map(String::as_str).collect();
        candidates.push("n");
        candidates.extend(Builtin::GLOBALS);
        Err(ShellError::Name {
            name: name.to_owned(),
            suggestion: closest(name, candidates).map(str::to_owned),
        })
    }

    async fn arguments(&mut self, args: &[Arg]) -> Result<Arguments, ShellError> {
        let mut out = Arguments {
            positional: Vec::new(),
            keywords: Vec::new(),
        };
        let keyword = |out: &mut Arguments, name: String, value: Value| {
            if out.keywords.iter().any(|(k, _)| *k == name) {
                return Err(ShellError::Type(format!(
                    "got multiple values for keyword argument '{name}'"
                )));
            }
            out.keywords.push((name, value));
            Ok(())
        };
        for arg in args {
            match arg {
                Arg::Positional(expr) => {
                    let value = self.eval(expr).await?;
                    out.positional.push(value);
                }
                Arg::Keyword(name, expr) => {
                    let value = self.eval(expr).await?;
                    keyword(&mut out, name.clone(), value)?;
                }
                Arg::Star(expr) => match self.eval(expr).await? {
                    Value::List(items) | Value::Tuple(items) => {
                        out.positional.extend(items.iter().cloned());
                    }
                    Value::Str(text) => out
                        .positional
                        .extend(text.chars().map(|c| Value::str(c.to_string()))),
                    Value::Dict(dict) => out.positional.extend(dict.iter().map(|(k, _)| k.clone())),
                    other => {
                        return Err(ShellError::Type(format!(
                            "argument after * must be an iterable, not {}",
                            other.type_name()
                        )));
                    }
                },
                Arg::StarStar(expr) => match self.eval(expr).await? {
                    Value::Dict(dict) => {
                        for (key, value) in dict.iter() {
                            let Value::Str(name) = key else {
                                return Err(ShellError::Type(
                                    "keywords must be strings".to_owned(),
                                ));
                            };
                            keyword(&mut out, name.to_string(), value.clone())?;
                        }
                    }
                    other => {
                        return Err(ShellError::Type(format!(
                            "argument after ** must be a mapping, not {}",
                            other.type_name()
                        )));
                    }
                },
            }
        }
        Ok(out)
    }

    async fn call(&mut self, function: &Value, args: Arguments) -> Result<Value, ShellError> {
        let Value::Object(object) = function else {
            return Err(not_callable(function));
        };
        match object {
            Object::Method { service, method } => {
                let call_args = to_call_args(args)?;
                let result = self.client.call(service, method, call_args).await;
                self.learn(service, method, result.as_ref().err());
                Ok(Value::from_json(&result?))
            }
            Object::CallAsync { service, method } => {
                let call_args = to_call_args(args)?;
                let reply = self.client.call_async(service, method, call_args).await;
                self.learn(service, method, reply.as_ref().err());
                let handle = CallHandle::spawn(service.clone(), method.clone(), reply?);
                Ok(Value::Object(Object::Handle(Arc::new(handle))))
            }
            Object::HandleResult(handle) => {
                no_arguments("result", &args)?;
                let (service, method) = handle.target();
                let result = handle.result().await.map_err(|error| ShellError::Call {
                    service: service.to_string(),
                    method: method.to_string(),
                    error: Box::new(error),
                });
                self.learn(service, method, result.as_ref().err());
                Ok(Value::from_json(&result?))
            }
            Object::Builtin(builtin) => self.builtin(*builtin, args).await,
            _ => Err(not_callable(function)),
        }
    }

    /// Records what a call showed about its service and method, for completion.
    fn learn(&self, service: &str, method: &str, error: Option<&ShellError>) {
        let mut known = lock(&self.known);
        match error {
            None => known.method_seen(service, method),
            Some(ShellError::Call { error, .. }) => match &**error {
                RpcError::UnknownService(_) | RpcError::Transport(_) => {}
                RpcError::MethodNotFound(_) | RpcError::Timeout(_) => known.service_seen(service),
                _ => known.method_seen(service, method),
            },
            Some(_) => {}
        }
    }

    async fn builtin(&mut self, builtin: Builtin, args: Arguments) -> Result<Value, ShellError> {
        match builtin {
            Builtin::DispatchEvent => {
                let [source, event_type, payload] = bind(
                    "dispatch_event",
                    args,
                    &["service_name", "event_type", "event_data"],
                )?;
                let source = string_arg("dispatch_event", "service_name", &source)?;
                let event_type = string_arg("dispatch_event", "event_type", &event_type)?;
                let payload = payload.to_json()?;
                self.client.dispatch(&source, &event_type, payload).await?;
                Ok(Value::None)
            }
            Builtin::Context => self.context(args),
            Builtin::Timeout => {
                if args.positional.is_empty() && args.keywords.is_empty() {
                    return Ok(Value::Float(self.client.timeout().as_secs_f64()));
                }
                let [seconds] = bind("timeout", args, &["seconds"])?;
                let timeout = match seconds {
                    Value::None => None,
                    Value::Int(_) | Value::Float(_) => Some(seconds_arg(&seconds)?),
                    other => {
                        return Err(ShellError::Type(format!(
                            "timeout() takes a number of seconds or None, not {}",
                            other.type_name()
                        )));
                    }
                };
                self.client.set_timeout(timeout);
                Ok(Value::None)
            }
            Builtin::Print => {
                if let Some((name, _)) = args.keywords.first() {
                    return Err(unexpected_keyword("print", name));
                }
                let line: Vec<String> = args.positional.iter().map(repr::str).collect();
                self.printed.push_str(&line.join(" "));
                self.printed.push('\n');
                Ok(Value::None)
            }
            Builtin::Len => {
                let [value] = bind("len", args, &["obj"])?;
                let len = match &value {
                    Value::Str(s) => s.chars().count(),
                    Value::List(items) | Value::Tuple(items) => items.len(),
                    Value::Dict(dict) => dict.len(),
                    other => {
                        return Err(ShellError::Type(format!(
                            "object of type '{}' has no len()",
                            other.type_name()
                        )));
                    }
                };
                Ok(Value::Int(i128::try_from(len).unwrap_or(i128::MAX)))
            }
            Builtin::Repr => {
                let [value] = bind("repr", args, &["obj"])?;
                Ok(Value::str(repr::repr(&value)))
            }
            Builtin::Help => {
                self.printed.push_str(HELP);
                self.printed.push('\n');
                Ok(Value::None)
            }
            Builtin::Exit => {
                self.exit = true;
                Ok(Value::None)
            }
        }
    }

    /// `n.context()`: the context; `n.context({...})`: replaces it; `n.context(k=v)`:
    /// sets keys (`None` removes one).
    fn context(&mut self, args: Arguments) -> Result<Value, ShellError> {
        let current = self.client.context();
        if args.positional.is_empty() && args.keywords.is_empty() {
            return Ok(Value::from_json(&serde_json::Value::Object(
                current.to_map(),
            )));
        }
        let mut map = match args.positional.as_slice() {
            [] => current.to_map(),
            [Value::Dict(dict)] => match Value::Dict(dict.clone()).to_json()? {
                serde_json::Value::Object(map) => map,
                _ => Map::new(),
            },
            [other] => {
                return Err(ShellError::Type(format!(
                    "context() takes a dict of context data, not {}",
                    other.type_name()
                )));
            }
            more => {
                return Err(ShellError::Type(format!(
                    "context() takes at most 1 positional argument ({} given)",
                    more.len()
                )));
            }
        };
        for (key, value) in &args.keywords {
            match value {
                Value::None => {
                    map.remove(key);
                }
                value => {
                    map.insert(key.clone(), value.to_json()?);
                }
            }
        }
        map.retain(|_, v| !v.is_null());
        self.client.set_context(ContextData::from_map(map));
        Ok(Value::None)
    }

    /// `n.config`: the configuration, passwords hidden.
    pub(crate) fn config(&self) -> Value {
        Value::from_json(&self.client.config().redacted().to_value())
    }
}

/// Values nested deeper than [`MAX_DEPTH`] are refused.
fn checked_depth(value: Value) -> Result<Value, ShellError> {
    if value.depth() > MAX_DEPTH {
        return Err(ShellError::Recursion(format!(
            "values nested more than {MAX_DEPTH} deep are not supported"
        )));
    }
    Ok(value)
}

fn too_large() -> ShellError {
    ShellError::Value("the integer is too large".to_owned())
}

fn not_callable(value: &Value) -> ShellError {
    ShellError::Type(format!("'{}' object is not callable", value.type_name()))
}

fn unexpected_keyword(function: &str, name: &str) -> ShellError {
    ShellError::Type(format!(
        "{function}() got an unexpected keyword argument '{name}'"
    ))
}

fn no_arguments(function: &str, args: &Arguments) -> Result<(), ShellError> {
    if let Some((name, _)) = args.keywords.first() {
        return Err(unexpected_keyword(function, name));
    }
    if !args.positional.is_empty() {
        return Err(ShellError::Type(format!(
            "{function}() takes no arguments ({} given)",
            args.positional.len()
        )));
    }
    Ok(())
}

/// Binds the arguments of a built-in with exactly these parameters, by position or name.
fn bind<const N: usize>(
    function: &str,
    args: Arguments,
    params: &[&str; N],
) -> Result<[Value; N], ShellError> {
    if args.positional.len() > N {
        return Err(ShellError::Type(format!(
            "{function}() takes {N} positional argument{} but {} were given",
            if N == 1 { "" } else { "s" },
            args.positional.len()
        )));
    }
    let mut slots: [Option<Value>; N] = std::array::from_fn(|_| None);
    for (slot, value) in slots.iter_mut().zip(args.positional) {
        *slot = Some(value);
    }
    for (name, value) in args.keywords {
        let Some(i) = params.iter().position(|p| *p == name) else {
            return Err(unexpected_keyword(function, &name));
        };
        if slots[i].is_some() {
            return Err(ShellError::Type(format!(
                "{function}() got multiple values for argument '{name}'"
            )));
        }
        slots[i] = Some(value);
    }
    let missing: Vec<String> = params
        .iter()
        .zip(&slots)
        .filter(|(_, slot)| slot.is_none())
        .map(|(p, _)| format!("'{p}'"))
        .collect();
    if !missing.is_empty() {
        return Err(ShellError::Type(format!(
            "{function}() missing {} required argument{}: {}",
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            missing.join(" and ")
        )));
    }
    Ok(slots.map(|slot| slot.unwrap_or(Value::None)))
}

fn string_arg(function: &str, param: &str, value: &Value) -> Result<String, ShellError> {
    match value {
        Value::Str(s) => Ok(s.to_string()),
        other => Err(ShellError::Type(format!(
            "{function}() argument '{param}' must be str, not {}",
            other.type_name()
        ))),
    }
}

fn seconds_arg(value: &Value) -> Result<Duration, ShellError> {
    #[allow(clippy::cast_precision_loss)]
    let seconds = match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => f64::NAN,
    };
    if seconds.is_nan() || seconds <= 0.0 {
        return Err(ShellError::Value(format!(
            "the timeout must be a positive number of seconds, not {}",
            repr::repr(value)
        )));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| ShellError::Value(e.to_string()))
}

fn to_call_args(args: Arguments) -> Result<CallArgs, ShellError> {
    let positional = args
        .positional
        .iter()
        .map(Value::to_json)
        .collect::<Result<Vec<_>, _>>()?;
    let mut call = CallArgs::positional(positional);
    for (name, value) in &args.keywords {
        call.kwargs.insert(name.clone(), value.to_json()?);
    }
    Ok(call)
}

/// `object.name`.
fn attribute(object: &Value, name: &str) -> Result<Value, ShellError> {
    let found = match object {
        Value::Object(Object::Namespace) => match name {
            "rpc" => Some(Object::Rpc),
            "dispatch_event" => Some(Object::Builtin(Builtin::DispatchEvent)),
            "context" => Some(Object::Builtin(Builtin::Context)),
            "timeout" => Some(Object::Builtin(Builtin::Timeout)),
            // `n.config` needs the session: see `Session::eval`.
            _ => None,
        },
        Value::Object(Object::Rpc) => Some(Object::Service(name.into())),
        Value::Object(Object::Service(service)) => Some(Object::Method {
            service: service.clone(),
            method: name.into(),
        }),
        Value::Object(Object::Method { service, method }) if name == "call_async" => {
            Some(Object::CallAsync {
                service: service.clone(),
                method: method.clone(),
            })
        }
        Value::Object(Object::Handle(handle)) if name == "result" => {
            Some(Object::HandleResult(handle.clone()))
        }
        _ => None,
    };
    if let Some(object) = found {
        return Ok(Value::Object(object));
    }
    Err(ShellError::Attribute(match object {
        Value::Object(Object::Namespace) => {
            let mut message = format!("module 'n' has no attribute '{name}'");
            if let Some(close) = closest(name, NAMESPACE_MEMBERS.iter().copied()) {
                message.push_str(&format!(". Did you mean: '{close}'?"));
            }
            message
        }
        Value::Dict(dict) if dict.get_str(name).is_some() => format!(
            "'dict' object has no attribute '{name}'. Did you mean: [{}]?",
            repr::string(name)
        ),
        other => format!("'{}' object has no attribute '{name}'", other.type_name()),
    }))
}

/// `object[key]`.
fn index(object: &Value, key: &Value) -> Result<Value, ShellError> {
    match object {
        Value::Object(Object::Rpc) => match key {
            Value::Str(service) => Ok(Value::Object(Object::Service(service.clone()))),
            other => Err(ShellError::Type(format!(
                "service names are str, not {}",
                other.type_name()
            ))),
        },
        Value::List(items) | Value::Tuple(items) => {
            let i = position(object, key, items.len())?;
            Ok(items[i].clone())
        }
        Value::Str(text) => {
            let count = text.chars().count();
            let i = position(object, key, count)?;
            Ok(Value::str(
                text.chars().nth(i).map(String::from).unwrap_or_default(),
            ))
        }
        Value::Dict(dict) => {
            if !key.is_hashable() {
                return Err(ShellError::Type(format!(
                    "unhashable type: '{}'",
                    key.type_name()
                )));
            }
            dict.get(key)
                .cloned()
                .ok_or_else(|| ShellError::Key(repr::repr(key)))
        }
        other => Err(ShellError::Type(format!(
            "'{}' object is not subscriptable",
            other.type_name()
        ))),
    }
}

/// A Python index (negative from the end) into a sequence of `len` items.
fn position(sequence: &Value, key: &Value, len: usize) -> Result<usize, ShellError> {
    let kind = sequence.type_name();
    let i = match key {
        Value::Int(i) => *i,
        Value::Bool(b) => i128::from(*b),
        other => {
            let what = if kind == "str" { "string" } else { kind };
            return Err(ShellError::Type(format!(
                "{what} indices must be integers or slices, not {}",
                other.type_name()
            )));
        }
    };
    let len_i = i128::try_from(len).unwrap_or(i128::MAX);
    let i = if i < 0 { i + len_i } else { i };
    if (0..len_i).contains(&i) {
        Ok(usize::try_from(i).unwrap_or(0))
    } else {
        let what = if kind == "str" { "string" } else { kind };
        Err(ShellError::Index(format!("{what} index out of range")))
    }
}

/// The candidate closest to `name` by edit distance, when close enough to be a typo.
fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        // About Python's own limit for its "Did you mean" suggestions.
        .filter(|(d, c)| *d <= (name.chars().count() + c.chars().count() + 3) / 6)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb {
                previous
            } else {
                1 + previous.min(row[j]).min(row[j + 1])
            };
            previous = current;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_for_typos() {
        assert_eq!(closest("nn", ["n", "print"]), Some("n"));
        assert_eq!(
            closest("rpcc", NAMESPACE_MEMBERS.iter().copied()),
            Some("rpc")
        );
        assert_eq!(closest("x", ["n"]), None);
        assert_eq!(
            closest("confgi", NAMESPACE_MEMBERS.iter().copied()),
            Some("config")
        );
        assert_eq!(closest("zzzzzz", NAMESPACE_MEMBERS.iter().copied()), None);
    }

    #[test]
    fn indexes_as_python() {
        let items = list(vec![Value::Int(1), Value::Int(2)]);
        assert!(matches!(index(&items, &Value::Int(-1)), Ok(Value::Int(2))));
        assert_eq!(
            index(&items, &Value::Int(2)).unwrap_err().to_string(),
            "IndexError: list index out of range"
        );
        assert_eq!(
            index(&items, &Value::str("a")).unwrap_err().to_string(),
            "TypeError: list indices must be integers or slices, not str"
        );
        let dict = Value::from_json(&serde_json::json!({"value": 42}));
        assert_eq!(
            index(&dict, &Value::str("nope")).unwrap_err().to_string(),
            "KeyError: 'nope'"
        );
        assert_eq!(
            attribute(&dict, "value").unwrap_err().to_string(),
            "AttributeError: 'dict' object has no attribute 'value'. Did you mean: ['value']?"
        );
        assert_eq!(
            index(&Value::Int(1), &Value::Int(0))
                .unwrap_err()
                .to_string(),
            "TypeError: 'int' object is not subscriptable"
        );
    }
}
