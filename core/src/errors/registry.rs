//! The process's error registry: which user error types callers get back typed, and how
//! error types keep their nameko identity through `?` into a
//! [`ServiceError`](super::ServiceError).
//!
//! Python nameko keeps one module-global registry, filled by `@deserialize_to_instance`
//! when the module defining an exception class is imported: a reply whose `exc_path` is
//! in it is raised as that class, any other as `RemoteError`. nameko-rs does the same,
//! and fills its registry the same way, independently of which services run:
//!
//! - every type deriving `NamekoError` (and every type given to [`register_error`] or
//!   [`register_nameko_error`]) is known by its `TypeId`, so that it keeps its
//!   `exc_type`/`exc_path` when converted into a `ServiceError` with `?`;
//! - a type deriving `NamekoError` with `#[nameko(deserialize_to_instance)]` (or given
//!   to [`register_error`]) is also known by its `exc_path`: a reply with that path comes
//!   back as [`RpcError::Registered`](super::RpcError::Registered), ready to downcast, and
//!   a service that lets it propagate re-raises it as is.
//!
//! The derive's registrations are collected when the registry is first used, from every
//! crate linked into the binary (as Python's come from every module imported), so a
//! binary that runs one service and a binary that runs ten decode the same replies the
//! same way.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use serde_json::Value;

use super::{FromRemoteError, NamekoError, RemoteError, safe_for_serialization};

/// Rebuilds an error from an error dict.
type Decoder = fn(&RemoteError) -> Option<Arc<dyn std::error::Error + Send + Sync>>;
/// Writes the error dict of an error known by its `TypeId`.
type Encoder = fn(&dyn Any) -> Option<RemoteError>;

/// One error type's entry in the registry, as `#[derive(NamekoError)]` submits it.
///
/// Made with [`ErrorRegistration::encoder`] (the default: the type keeps its
/// identity through `?`) or [`ErrorRegistration::typed`] (`deserialize_to_instance`:
/// callers also get it back typed). Generated code submits it with `inventory`; write
/// [`register_error`] or [`register_nameko_error`] by hand instead.
#[derive(Debug)]
pub struct ErrorRegistration {
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
    exc_path: fn() -> &'static str,
    encode: Encoder,
    decode: Option<Decoder>,
}

impl ErrorRegistration {
    /// `E` keeps its `exc_type`/`exc_path` when converted into a
    /// [`ServiceError`](super::ServiceError); callers get it as a `RemoteError`.
    #[must_use]
    pub const fn encoder<E: NamekoError>() -> Self {
        Self {
            type_id: TypeId::of::<E>,
            type_name: std::any::type_name::<E>,
            exc_path: E::exc_path,
            encode: encode::<E>,
            decode: None,
        }
    }

    /// As [`ErrorRegistration::encoder`], and callers receiving an error dict with `E`'s
    /// `exc_path` get [`RpcError::Registered`](super::RpcError::Registered) holding an
    /// `E` (Python's `@deserialize_to_instance`).
    #[must_use]
    pub const fn typed<E: FromRemoteError>() -> Self {
        Self {
            decode: Some(decode::<E>),
            ..Self::encoder::<E>()
        }
    }
}

inventory::collect!(ErrorRegistration);

fn encode<E: NamekoError>(any: &dyn Any) -> Option<RemoteError> {
    let error = any.downcast_ref::<E>()?;
    Some(RemoteError {
        exc_type: E::exc_type().to_owned(),
        exc_path: E::exc_path().to_owned(),
        exc_args: error
            .exc_args()
            .into_iter()
            .map(safe_for_serialization)
            .collect::<Vec<Value>>(),
        value: error.to_string(),
    })
}

fn decode<E: FromRemoteError>(
    remote: &RemoteError,
) -> Option<Arc<dyn std::error::Error + Send + Sync>> {
    E::from_remote(remote).map(|e| Arc::new(e) as Arc<dyn std::error::Error + Send + Sync>)
}

/// What callers get back for one `exc_path`.
#[derive(Clone)]
enum Typed {
    /// One type claims it.
    One { type_id: TypeId, decode: Decoder },
    /// Several types claim it through their derive: none is chosen, callers get
    /// `RemoteError` (an explicit [`register_error`] settles it).
    Ambiguous(Vec<&'static str>),
}

struct Registry {
    typed: RwLock<HashMap<String, Typed>>,
    encoders: RwLock<HashMap<TypeId, Encoder>>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut typed: HashMap<String, Typed> = HashMap::new();
        let mut encoders = HashMap::new();
        let mut names: HashMap<TypeId, &'static str> = HashMap::new();
        for entry in inventory::iter::<ErrorRegistration> {
            let type_id = (entry.type_id)();
            encoders.insert(type_id, entry.encode);
            names.insert(type_id, (entry.type_name)());
            let Some(decode) = entry.decode else { continue };
            let path = (entry.exc_path)().to_owned();
            let claim = match typed.remove(&path) {
                None => Typed::One { type_id, decode },
                Some(Typed::One { type_id: other, .. }) if other == type_id => {
                    Typed::One { type_id, decode }
                }
                Some(Typed::One { type_id: other, .. }) => Typed::Ambiguous(vec![
                    names.get(&other).copied().unwrap_or("?"),
                    (entry.type_name)(),
                ]),
                Some(Typed::Ambiguous(mut types)) => {
                    types.push((entry.type_name)());
                    Typed::Ambiguous(types)
                }
            };
            typed.insert(path, claim);
        }
        for (path, claim) in &typed {
            if let Typed::Ambiguous(types) = claim {
                tracing::warn!(
                    exc_path = %path,
                    types = ?types,
                    "several error types deserialize_to_instance the same exc_path; \
                     callers get RemoteError for it"
                );
            }
        }
        Registry {
            typed: RwLock::new(typed),
            encoders: RwLock::new(encoders),
        }
    })
}

/// Registers an error type so that it keeps its `exc_type`/`exc_path` when converted
/// into a [`ServiceError`](super::ServiceError) with `?`. Idempotent.
///
/// `#[derive(NamekoError)]` does this for its type; call it for a type that implements
/// [`NamekoError`] by hand.
pub fn register_nameko_error<E: NamekoError>() {
    registry()
        .encoders
        .write()
        .insert(TypeId::of::<E>(), encode::<E>);
}

/// Registers a user error type in both directions, like Python's
/// `@deserialize_to_instance`: callers receiving an error dict with its `exc_path` get
/// [`RpcError::Registered`](super::RpcError::Registered) holding the rebuilt error, and
/// services converting it to a [`ServiceError`](super::ServiceError) keep its
/// `exc_type`/`exc_path`. Idempotent; the last type registered for an `exc_path` wins.
///
/// `#[derive(NamekoError)]` with `#[nameko(deserialize_to_instance)]` does this for its
/// type before `main` runs; call it (early in `main`) for a type that implements
/// [`FromRemoteError`] by hand.
pub fn register_error<E: FromRemoteError>() {
    register_nameko_error::<E>();
    registry().typed.write().insert(
        E::exc_path().to_owned(),
        Typed::One {
            type_id: TypeId::of::<E>(),
            decode: decode::<E>,
        },
    );
}

/// Whether callers get errors with this `exc_path` back typed (see the module docs).
///
/// ```
/// assert!(!nameko_core::errors::is_registered("builtins.ValueError"));
/// ```
#[must_use]
pub fn is_registered(exc_path: &str) -> bool {
    matches!(
        registry().typed.read().get(exc_path),
        Some(Typed::One { .. })
    )
}

/// The registered error rebuilt from `remote`, if its `exc_path` is registered and the
/// type could rebuild it.
pub(super) fn decode_registered(
    remote: &RemoteError,
) -> Option<Arc<dyn std::error::Error + Send + Sync>> {
    let decode = match registry().typed.read().get(&remote.exc_path) {
        Some(Typed::One { decode, .. }) => *decode,
        _ => return None,
    };
    decode(remote)
}

/// Lets values of `T` keep the error dict `encode` writes when converted into a
/// [`ServiceError`](super::ServiceError) (for generic types, which no derive registers:
/// a typed client's `CallError<E>`). Cheap once registered.
pub(crate) fn register_encoder<T: 'static>(encode: Encoder) {
    let type_id = TypeId::of::<T>();
    if registry().encoders.read().contains_key(&type_id) {
        return;
    }
    registry().encoders.write().insert(type_id, encode);
}

/// The error dict of a registered error type, found by its `TypeId`.
pub(super) fn encode_registered<E: 'static>(error: &E) -> Option<RemoteError> {
    let encode = *registry().encoders.read().get(&TypeId::of::<E>())?;
    encode(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Late(String);

    impl std::fmt::Display for Late {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Late {}
    impl NamekoError for Late {
        fn exc_type() -> &'static str {
            "Late"
        }
        fn exc_path() -> &'static str {
            "tests.registry.Late"
        }
    }
    impl FromRemoteError for Late {
        fn from_remote(error: &RemoteError) -> Option<Self> {
            Some(Self(error.message().to_owned()))
        }
    }

    #[test]
    fn explicit_registration_decodes_and_encodes() {
        let remote = RemoteError::new("Late", "tests.registry.Late", ["x"], "x");
        assert!(decode_registered(&remote).is_none());
        assert!(encode_registered(&Late("y".to_owned())).is_none());
        register_error::<Late>();
        assert!(is_registered("tests.registry.Late"));
        let decoded = decode_registered(&remote).unwrap();
        assert_eq!(decoded.downcast_ref::<Late>().unwrap().0, "x");
        let encoded = encode_registered(&Late("y".to_owned())).unwrap();
        assert_eq!(encoded.exc_path, "tests.registry.Late");
        assert_eq!(encoded.exc_args, vec![Value::from("y")]);
    }
}
