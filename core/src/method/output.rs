//! What an entrypoint method returns, as the entrypoint that ran it receives it.

use std::any::Any;
use std::fmt;

use serde::Serialize;
use serde_json::Value;

use crate::errors::{IntoRemoteError, RemoteError};

/// A method's return value, converted for the entrypoint that ran it.
///
/// Almost every method returns something serializable, which becomes [`Output::Json`]
/// (an RPC reply's `result`, what an event handler returned). An entrypoint can also
/// define a return type of its own that is not JSON (an HTTP response, say): it
/// implements [`IntoOutput`] for that type as [`Output::Native`], and takes it back with
/// [`Output::downcast`].
#[non_exhaustive]
pub enum Output {
    /// A JSON value.
    Json(Value),
    /// A value an entrypoint knows how to use.
    Native(Box<dyn Any + Send>),
}

impl Output {
    /// The JSON value, if this is one.
    #[must_use]
    pub fn json(&self) -> Option<&Value> {
        match self {
            Self::Json(value) => Some(value),
            Self::Native(_) => None,
        }
    }

    /// The native value, if it is a `T`; otherwise `self` back.
    ///
    /// # Errors
    ///
    /// `self` unchanged when it is JSON or another native type.
    pub fn downcast<T: 'static>(self) -> Result<T, Self> {
        match self {
            Self::Native(value) => value.downcast::<T>().map(|b| *b).map_err(Self::Native),
            json @ Self::Json(_) => Err(json),
        }
    }

    /// The JSON view of the output, as dependency providers and entrypoint waiters see
    /// it: the value itself, or `null` for a native value.
    #[must_use]
    pub fn into_json(self) -> Value {
        match self {
            Self::Json(value) => value,
            Self::Native(_) => Value::Null,
        }
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(value) => f.debug_tuple("Json").field(value).finish(),
            Self::Native(_) => f.write_str("Native(..)"),
        }
    }
}

impl From<Value> for Output {
    fn from(value: Value) -> Self {
        Self::Json(value)
    }
}

/// A type an entrypoint method can return.
///
/// Every `Serialize` type converts to [`Output::Json`]; an entrypoint crate implements it
/// for its own non-JSON return types.
///
/// ```
/// use nameko_core::method::{IntoOutput, Output};
///
/// let output = IntoOutput::into_output(vec![1, 2]).unwrap();
/// assert_eq!(output.json(), Some(&serde_json::json!([1, 2])));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned by an entrypoint method",
    label = "not serializable, and no entrypoint takes it natively",
    note = "entrypoint methods return values that serialize to JSON: derive `serde::Serialize` for `{Self}`"
)]
pub trait IntoOutput {
    /// Converts the value.
    ///
    /// # Errors
    ///
    /// nameko's `UnserializableValueError` when the value cannot be represented.
    fn into_output(self) -> Result<Output, RemoteError>;
}

impl<T: Serialize> IntoOutput for T {
    fn into_output(self) -> Result<Output, RemoteError> {
        serde_json::to_value(&self).map(Output::Json).map_err(|e| {
            RemoteError::unserializable_value(format!("{} ({e})", std::any::type_name::<T>()))
        })
    }
}

/// The output of a method returning a `Result`: the `Ok` value converted, or the error's
/// dict.
///
/// # Errors
///
/// The method's error, or an unserializable `Ok` value.
pub fn result_output<T: IntoOutput, E: IntoRemoteError>(
    result: Result<T, E>,
) -> Result<Output, RemoteError> {
    match result {
        Ok(value) => value.into_output(),
        Err(error) => Err(error.into_remote_error()),
    }
}
