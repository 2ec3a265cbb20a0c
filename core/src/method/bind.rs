//! Binding a call's arguments to a method's parameters, with Python's rules and wording.

use std::any::{Any, TypeId};
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors::RemoteError;
use crate::wire::{CallArgs, json_kind};

/// Arguments that cannot be bound to an entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// No entrypoint of that name (nameko's `MethodNotFound`).
    #[error("MethodNotFound: {0}")]
    MethodNotFound(String),
    /// Wrong number or names of arguments (nameko's `IncorrectSignature`), with Python's
    /// wording.
    #[error("IncorrectSignature: {0}")]
    IncorrectSignature(String),
    /// An argument that does not convert to its parameter's type (a `TypeError`, as
    /// Python code would raise on it).
    #[error("TypeError: {0}")]
    InvalidArgument(String),
}

impl BindError {
    /// The error dict the caller is answered with.
    #[must_use]
    pub fn to_remote_error(&self) -> RemoteError {
        match self {
            Self::MethodNotFound(m) => RemoteError::method_not_found(m.clone()),
            Self::IncorrectSignature(m) => RemoteError::incorrect_signature(m.clone()),
            Self::InvalidArgument(m) => RemoteError::type_error(m.clone()),
        }
    }
}

/// A parameter of an entrypoint method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name, which keyword arguments use.
    pub name: &'static str,
    /// Whether the caller must give it (parameters of type `Option<T>` may be left out).
    pub required: bool,
}

impl Param {
    /// A required parameter.
    #[must_use]
    pub const fn required(name: &'static str) -> Self {
        Self {
            name,
            required: true,
        }
    }

    /// A parameter that may be left out.
    #[must_use]
    pub const fn optional(name: &'static str) -> Self {
        Self {
            name,
            required: false,
        }
    }
}

/// Values an entrypoint hands to a worker besides its JSON arguments: an HTTP request, a
/// socket, anything that does not travel as JSON. A parameter whose type implements
/// [`FromArg`] by taking from here receives it (see [`Natives::take`]).
///
/// An entrypoint that passes a native value usually passes a placeholder positional
/// argument for it too ([`Natives::positional`]), so that the parameter counts in the
/// signature as it does in Python (`def get(self, request, value)`).
#[derive(Default)]
pub struct Natives {
    values: Vec<(TypeId, Box<dyn Any + Send>)>,
}

impl Natives {
    /// No native values.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value; a parameter of type `T` takes it.
    #[must_use]
    pub fn with<T: Send + 'static>(mut self, value: T) -> Self {
        self.insert(value);
        self
    }

    /// Adds a value; a parameter of type `T` takes it.
    pub fn insert<T: Send + 'static>(&mut self, value: T) {
        self.values.push((TypeId::of::<T>(), Box::new(value)));
    }

    /// Adds `value` and a `null` positional argument standing for it in `args`, so that
    /// a parameter in that position receives the native value.
    pub fn positional<T: Send + 'static>(&mut self, args: &mut CallArgs, value: T) {
        args.args.push(Value::Null);
        self.insert(value);
    }

    /// Takes the first value of type `T`.
    pub fn take<T: 'static>(&mut self) -> Option<T> {
        let index = self
            .values
            .iter()
            .position(|(id, _)| *id == TypeId::of::<T>())?;
        let (_, value) = self.values.remove(index);
        value.downcast::<T>().ok().map(|b| *b)
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Natives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Natives")
            .field("count", &self.values.len())
            .finish()
    }
}

/// A type an entrypoint method's parameter can have.
///
/// Every `DeserializeOwned` type converts from its JSON argument. A type that an
/// entrypoint supplies natively (an HTTP request, say) implements it by taking itself
/// from the [`Natives`]:
///
/// ```
/// use nameko_core::method::{FromArg, Natives};
/// use serde_json::Value;
///
/// #[derive(Debug, PartialEq)]
/// struct Upload(Vec<u8>);
///
/// impl FromArg for Upload {
///     fn from_arg(_json: &Value, natives: &mut Natives) -> Result<Self, String> {
///         natives.take::<Upload>().ok_or_else(|| "no upload was given".to_owned())
///     }
/// }
///
/// let mut natives = Natives::new().with(Upload(vec![1, 2]));
/// assert_eq!(Upload::from_arg(&Value::Null, &mut natives), Ok(Upload(vec![1, 2])));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an entrypoint parameter",
    label = "neither deserializable from JSON nor supplied by an entrypoint",
    note = "parameters are deserialized from the call's JSON arguments: derive `serde::Deserialize` for `{Self}`"
)]
pub trait FromArg: Sized {
    /// Converts one argument: `json` is its JSON value (`null` when left out), `natives`
    /// what the entrypoint supplied besides.
    ///
    /// # Errors
    ///
    /// What was wrong, for a `TypeError` naming the parameter.
    fn from_arg(json: &Value, natives: &mut Natives) -> Result<Self, String>;
}

impl<T: DeserializeOwned> FromArg for T {
    fn from_arg(json: &Value, _natives: &mut Natives) -> Result<Self, String> {
        T::deserialize(json).map_err(|e| format!("got {}: {e}", json_kind(json)))
    }
}

/// Binds nameko's `args`/`kwargs` to a method's parameters with the rules and the error
/// messages of Python's `inspect.getcallargs`, which nameko uses to check signatures.
///
/// Messages count `self` as Python does, so a Python caller reads exactly what a Python
/// service would have said.
///
/// ```
/// use nameko_core::method::{Binder, Param};
/// use nameko_core::wire::CallArgs;
///
/// const PARAMS: &[Param] = &[Param::required("a"), Param::required("b")];
/// let args = CallArgs::new().arg(1.5).kwarg("b", 2.0);
/// let mut bound = Binder::bind("add", PARAMS, &args).unwrap();
/// let a: f64 = bound.take(0).unwrap();
/// let b: f64 = bound.take(1).unwrap();
/// assert_eq!(a + b, 3.5);
///
/// let err = Binder::bind("add", PARAMS, &CallArgs::new().arg(1)).unwrap_err();
/// assert_eq!(err.to_string(), "IncorrectSignature: add() missing 1 required positional argument: 'b'");
/// ```
#[derive(Debug)]
pub struct Binder<'a> {
    method: &'static str,
    params: &'static [Param],
    slots: Slots<'a>,
    natives: Natives,
}

/// How many parameters' arguments a [`Binder`] holds without allocating.
const INLINE_SLOTS: usize = 8;

/// The argument of each parameter, if given: inline for most methods.
#[derive(Debug)]
enum Slots<'a> {
    Inline([Option<&'a Value>; INLINE_SLOTS]),
    Heap(Vec<Option<&'a Value>>),
}

impl<'a> Slots<'a> {
    fn new(len: usize) -> Self {
        if len <= INLINE_SLOTS {
            Self::Inline([None; INLINE_SLOTS])
        } else {
            Self::Heap(vec![None; len])
        }
    }

    /// The first `len` slots (`len` as given to [`Slots::new`]).
    fn get(&mut self, len: usize) -> &mut [Option<&'a Value>] {
        match self {
            Self::Inline(slots) => &mut slots[..len],
            Self::Heap(slots) => slots,
        }
    }
}

impl<'a> Binder<'a> {
    /// Checks `args` against `params` and assigns each argument to its parameter.
    ///
    /// # Errors
    ///
    /// [`BindError::IncorrectSignature`] with Python's message.
    pub fn bind(
        method: &'static str,
        params: &'static [Param],
        args: &'a CallArgs,
    ) -> Result<Self, BindError> {
        let mut storage = Slots::new(params.len());
        let slots = storage.get(params.len());
        let given = args.args.len();
        if given > params.len() {
            return Err(BindError::IncorrectSignature(too_many(
                method, params, given,
            )));
        }
        for (slot, value) in slots.iter_mut().zip(&args.args) {
            *slot = Some(value);
        }
        for (name, value) in &args.kwargs {
            match params.iter().position(|p| p.name == name) {
                None => {
                    return Err(BindError::IncorrectSignature(format!(
                        "{method}() got an unexpected keyword argument '{name}'"
                    )));
                }
                Some(i) if slots[i].is_some() => {
                    return Err(BindError::IncorrectSignature(format!(
                        "{method}() got multiple values for argument '{name}'"
                    )));
                }
                Some(i) => slots[i] = Some(value),
            }
        }
        let missing: Vec<String> = params
            .iter()
            .zip(slots.iter())
            .filter(|(p, s)| p.required && s.is_none())
            .map(|(p, _)| format!("'{}'", p.name))
            .collect();
        if !missing.is_empty() {
            return Err(BindError::IncorrectSignature(missing_arguments(
                method, &missing,
            )));
        }
        Ok(Self {
            method,
            params,
            slots: storage,
            natives: Natives::new(),
        })
    }

    /// Makes `natives` available to the parameters whose types take from them.
    #[must_use]
    pub fn with_natives(mut self, natives: Natives) -> Self {
        self.natives = natives;
        self
    }

    /// Converts the argument of parameter `index` to its type. A parameter left out
    /// converts from `null` (so `Option<T>` parameters become `None`).
    ///
    /// # Errors
    ///
    /// [`BindError::InvalidArgument`] naming the parameter and what was wrong.
    pub fn take<T: FromArg>(&mut self, index: usize) -> Result<T, BindError> {
        let name = self.params.get(index).map_or("?", |p| p.name);
        let value = self
            .slots
            .get(self.params.len())
            .get_mut(index)
            .and_then(Option::take)
            .unwrap_or(&Value::Null);
        T::from_arg(value, &mut self.natives).map_err(|e| {
            BindError::InvalidArgument(format!("{}() argument '{name}' {e}", self.method))
        })
    }
}

impl Binder<'_> {
    /// [`Binder::take`] for a [`Value`] parameter: a copy of the argument (cheaper than
    /// deserializing one `Value` from another, with the same outcome).
    ///
    /// # Errors
    ///
    /// Never; fallible as [`Binder::take`] is.
    pub fn take_value(&mut self, index: usize) -> Result<Value, BindError> {
        Ok(self
            .slots
            .get(self.params.len())
            .get_mut(index)
            .and_then(Option::take)
            .cloned()
            .unwrap_or(Value::Null))
    }
}

fn too_many(method: &str, params: &[Param], given: usize) -> String {
    // Python counts `self` in both numbers.
    let total = params.len() + 1;
    let at_least = params.iter().filter(|p| p.required).count() + 1;
    let sig = if at_least < total {
        format!("from {at_least} to {total} positional arguments")
    } else if total == 1 {
        "1 positional argument".to_owned()
    } else {
        format!("{total} positional arguments")
    };
    let given = given + 1;
    let verb = if given == 1 { "was" } else { "were" };
    format!("{method}() takes {sig} but {given} {verb} given")
}

fn missing_arguments(method: &str, names: &[String]) -> String {
    let list = match names {
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [head @ .., a, b] => format!("{}, {a} and {b}", head.join(", ")),
        [] => String::new(),
    };
    let plural = if names.len() == 1 { "" } else { "s" };
    format!(
        "{method}() missing {} required positional argument{plural}: {list}",
        names.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AB: &[Param] = &[Param::required("a"), Param::required("b")];
    const AB_C: &[Param] = &[
        Param::required("a"),
        Param::required("b"),
        Param::optional("c"),
    ];

    fn sig_err(params: &'static [Param], args: CallArgs) -> String {
        match Binder::bind("m", params, &args) {
            Err(BindError::IncorrectSignature(msg)) => msg,
            other => panic!("expected IncorrectSignature, got {other:?}"),
        }
    }

    #[test]
    fn messages_match_python_getcallargs() {
        assert_eq!(
            sig_err(AB, CallArgs::new().arg(1).arg(2).arg(3)),
            "m() takes 3 positional arguments but 4 were given"
        );
        assert_eq!(
            sig_err(AB_C, CallArgs::new().arg(1).arg(2).arg(3).arg(4)),
            "m() takes from 3 to 4 positional arguments but 5 were given"
        );
        assert_eq!(
            sig_err(&[], CallArgs::new().arg(1)),
            "m() takes 1 positional argument but 2 were given"
        );
        assert_eq!(
            sig_err(AB, CallArgs::new()),
            "m() missing 2 required positional arguments: 'a' and 'b'"
        );
        const ABC: &[Param] = &[
            Param::required("a"),
            Param::required("b"),
            Param::required("c"),
        ];
        assert_eq!(
            sig_err(ABC, CallArgs::new()),
            "m() missing 3 required positional arguments: 'a', 'b' and 'c'"
        );
        assert_eq!(
            sig_err(AB, CallArgs::new().arg(1).kwarg("d", 1)),
            "m() got an unexpected keyword argument 'd'"
        );
        assert_eq!(
            sig_err(AB, CallArgs::new().arg(1).kwarg("a", 1)),
            "m() got multiple values for argument 'a'"
        );
    }

    #[test]
    fn optional_parameters_may_be_left_out() {
        let args = CallArgs::new().arg(1).kwarg("b", "x");
        let mut bound = Binder::bind("m", AB_C, &args).unwrap();
        assert_eq!(bound.take::<i32>(0).unwrap(), 1);
        assert_eq!(bound.take::<String>(1).unwrap(), "x");
        assert_eq!(bound.take::<Option<i32>>(2).unwrap(), None);
    }

    #[test]
    fn wrong_types_are_type_errors_naming_the_parameter() {
        let args = CallArgs::new().arg("x").arg(json!(2));
        let mut bound = Binder::bind("add", AB, &args).unwrap();
        let err = bound.take::<f64>(0).unwrap_err();
        assert!(
            matches!(&err, BindError::InvalidArgument(m) if m.starts_with("add() argument 'a' got a string")),
            "{err}"
        );
        assert_eq!(err.to_remote_error().exc_type, "TypeError");
    }

    #[derive(Debug, PartialEq)]
    struct Native(u8);

    impl FromArg for Native {
        fn from_arg(_json: &Value, natives: &mut Natives) -> Result<Self, String> {
            natives
                .take::<Native>()
                .ok_or_else(|| "was not supplied".to_owned())
        }
    }

    #[test]
    fn native_values_bind_in_their_position() {
        const RV: &[Param] = &[Param::required("request"), Param::required("value")];
        let mut args = CallArgs::new();
        let mut natives = Natives::new();
        natives.positional(&mut args, Native(7));
        let args = args.kwarg("value", 3);
        let mut bound = Binder::bind("get", RV, &args)
            .unwrap()
            .with_natives(natives);
        assert_eq!(bound.take::<Native>(0).unwrap(), Native(7));
        assert_eq!(bound.take::<u32>(1).unwrap(), 3);

        let args = CallArgs::new().arg(1).arg(2);
        let mut bound = Binder::bind("get", RV, &args).unwrap();
        assert_eq!(
            bound.take::<Native>(0).unwrap_err().to_string(),
            "TypeError: get() argument 'request' was not supplied"
        );
    }
}
