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

/// How `#[service]`'s generated code turns a method's return value into an [`Output`]:
/// a [`Value`] is moved in as it is, any other type goes through [`IntoOutput`] (which
/// would copy a `Value` through its serializer). Chosen at compile time by method
/// resolution on the value's concrete type:
///
/// ```
/// use nameko_core::method::__convert::{SerializeKind as _, ValueKind as _};
///
/// let value = serde_json::json!({"n": 1});
/// let output = (&value).output_kind().into_output(value).unwrap();
/// assert_eq!(output.json(), Some(&serde_json::json!({"n": 1})));
/// let number = 3_u8;
/// let output = (&number).output_kind().into_output(number).unwrap();
/// assert_eq!(output.json(), Some(&serde_json::json!(3)));
/// ```
#[doc(hidden)]
pub mod __convert {
    use serde_json::Value;

    use super::{IntoOutput, Output};
    use crate::errors::RemoteError;

    /// The value is a [`Value`].
    #[derive(Debug, Clone, Copy)]
    pub struct ValueTag;

    impl ValueTag {
        /// Moves the value into an output.
        ///
        /// # Errors
        ///
        /// Never.
        #[inline]
        pub fn into_output(self, value: Value) -> Result<Output, RemoteError> {
            Ok(Output::Json(value))
        }
    }

    /// Any other type.
    #[derive(Debug, Clone, Copy)]
    pub struct SerializeTag;

    impl SerializeTag {
        /// Converts the value through [`IntoOutput`].
        ///
        /// # Errors
        ///
        /// As [`IntoOutput::into_output`].
        #[inline]
        pub fn into_output<T: IntoOutput>(self, value: T) -> Result<Output, RemoteError> {
            value.into_output()
        }
    }

    /// Picked for `(&value).output_kind()` when `value` is a [`Value`].
    pub trait ValueKind {
        /// The tag of [`Value`]s.
        #[inline]
        fn output_kind(&self) -> ValueTag {
            ValueTag
        }
    }

    impl ValueKind for Value {}

    /// Picked for `(&value).output_kind()` otherwise (one auto-reference further).
    pub trait SerializeKind {
        /// The tag of other types.
        #[inline]
        fn output_kind(&self) -> SerializeTag {
            SerializeTag
        }
    }

    impl<T: ?Sized> SerializeKind for &T {}

    /// The parameter is a [`Value`].
    #[derive(Debug, Clone, Copy)]
    pub struct ValueArgTag;

    impl ValueArgTag {
        /// [`Binder::take_value`](crate::method::Binder::take_value).
        ///
        /// # Errors
        ///
        /// As [`Binder::take`](crate::method::Binder::take).
        #[inline]
        pub fn take(
            self,
            bound: &mut crate::method::Binder<'_>,
            index: usize,
        ) -> Result<Value, crate::method::BindError> {
            bound.take_value(index)
        }
    }

    /// A parameter of any other type.
    #[derive(Debug, Clone, Copy)]
    pub struct FromArgTag;

    impl FromArgTag {
        /// [`Binder::take`](crate::method::Binder::take).
        ///
        /// # Errors
        ///
        /// As [`Binder::take`](crate::method::Binder::take).
        #[inline]
        pub fn take<T: crate::method::FromArg>(
            self,
            bound: &mut crate::method::Binder<'_>,
            index: usize,
        ) -> Result<T, crate::method::BindError> {
            bound.take::<T>(index)
        }
    }

    /// Picked for `(&PhantomData::<T>).arg_kind()` when `T` is [`Value`].
    pub trait ValueArgKind {
        /// The tag of [`Value`] parameters.
        #[inline]
        fn arg_kind(&self) -> ValueArgTag {
            ValueArgTag
        }
    }

    impl ValueArgKind for std::marker::PhantomData<Value> {}

    /// Picked for `(&PhantomData::<T>).arg_kind()` otherwise.
    pub trait FromArgKind {
        /// The tag of other parameters.
        #[inline]
        fn arg_kind(&self) -> FromArgTag {
            FromArgTag
        }
    }

    impl<T: ?Sized> FromArgKind for &T {}
}
