//! [`SharedStr`]: an immutable string that clones by reference count.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// An immutable, cheaply cloned string: the names a delivery carries (exchange, routing
/// key, consumer tag), which a broker can hand to every delivery without copying.
///
/// It reads as a `&str` (through `Deref`), prints as one, and compares with `str`,
/// `&str` and `String`. The empty string holds nothing on the heap.
///
/// ```
/// use nameko_transport::SharedStr;
///
/// let key = SharedStr::from("echo.echo");
/// let copy = key.clone(); // a reference count, not a copy of the text
/// assert_eq!(copy, "echo.echo");
/// assert_eq!(key.strip_prefix("echo."), Some("echo"));
/// assert_eq!(key.to_string(), String::from("echo.echo"));
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl SharedStr {
    /// The empty string.
    #[must_use]
    pub const fn new() -> Self {
        Self(Repr::Static(""))
    }

    /// A string of static text, without allocating.
    #[must_use]
    pub const fn from_static(text: &'static str) -> Self {
        Self(Repr::Static(text))
    }

    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(text) => text,
            Repr::Shared(text) => text,
        }
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(text: Arc<str>) -> Self {
        Self(Repr::Shared(text))
    }
}

impl From<&Arc<str>> for SharedStr {
    fn from(text: &Arc<str>) -> Self {
        Self(Repr::Shared(Arc::clone(text)))
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        if text.is_empty() {
            Self::new()
        } else {
            Self(Repr::Shared(Arc::from(text)))
        }
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<&String> for SharedStr {
    fn from(text: &String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

macro_rules! compare_with {
    ($($other:ty),*) => {
        $(
            impl PartialEq<$other> for SharedStr {
                fn eq(&self, other: &$other) -> bool {
                    self.as_str() == AsRef::<str>::as_ref(other)
                }
            }

            impl PartialEq<SharedStr> for $other {
                fn eq(&self, other: &SharedStr) -> bool {
                    AsRef::<str>::as_ref(self) == other.as_str()
                }
            }
        )*
    };
}

compare_with!(str, &str, String, &String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_and_hashes_as_its_text() {
        use std::collections::hash_map::DefaultHasher;
        let shared = SharedStr::from(Arc::<str>::from("abc"));
        let copied = SharedStr::from("abc");
        let fixed = SharedStr::from_static("abc");
        assert_eq!(shared, copied);
        assert_eq!(shared, fixed);
        assert_eq!(shared, "abc");
        assert_eq!("abc", shared);
        let owned = String::from("abc");
        assert_eq!(shared, owned);
        assert_eq!(owned, shared);
        assert_eq!(shared, &owned);
        assert_eq!(*"abc", shared);
        assert_ne!(shared, "abd");
        let larger = SharedStr::from_static("abd");
        assert!(shared < larger);
        let hash = |s: &SharedStr| {
            let mut h = DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&shared), hash(&fixed));
        assert_eq!(format!("{shared}/{shared:?}"), "abc/\"abc\"");
        assert_eq!(String::from(shared), "abc");
    }

    #[test]
    fn empty_text_is_the_default() {
        assert_eq!(SharedStr::from(""), SharedStr::default());
        assert_eq!(SharedStr::from(String::new()), "");
        assert!(SharedStr::new().is_empty());
    }
}
