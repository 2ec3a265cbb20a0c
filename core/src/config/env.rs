//! Where `${VAR}` references find their values: the [`Env`] trait and [`ProcessEnv`].

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

/// Where `${VAR}` references find their values.
///
/// Loading never reads the process environment by itself: pass [`ProcessEnv`] for that, or
/// a map, an array or slice of pairs, or a closure, which keeps tests independent of the
/// environment they run in.
///
/// ```
/// use std::collections::HashMap;
/// use nameko_core::config::{Config, Env};
///
/// let map = HashMap::from([("PORT".to_owned(), "5673".to_owned())]);
/// assert_eq!(map.var("PORT").as_deref(), Some("5673"));
///
/// let pairs = [("PORT", "5674")];
/// assert_eq!(pairs.var("PORT").as_deref(), Some("5674"));
///
/// let closure = |name: &str| (name == "PORT").then(|| "5675".to_owned());
/// let config = Config::from_yaml_str("port: ${PORT:5672}", &closure)?;
/// assert_eq!(config.get("port"), Some(&5675.into()));
/// # Ok::<(), nameko_core::config::ConfigLoadError>(())
/// ```
pub trait Env {
    /// The value of variable `name`, or `None` when it is unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// The environment of the running process, as `os.environ` is for Python nameko.
///
/// Values that are not valid UTF-8 are read lossily. Names that no environment can hold
/// (empty, or containing `=` or NUL) are unset.
///
/// ```no_run
/// use nameko_core::config::{Config, ProcessEnv};
///
/// let config = Config::from_yaml_file("config.yaml", &ProcessEnv)?;
/// # Ok::<(), nameko_core::config::ConfigLoadError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        if name.is_empty() || name.contains(['=', '\0']) {
            return None;
        }
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    }
}

impl<S: BuildHasher> Env for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<S: BuildHasher> Env for HashMap<&str, &str, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| (*value).to_owned())
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).map(|value| (*value).to_owned())
    }
}

/// Pairs of name and value; when a name appears twice, the last pair wins.
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref().to_owned())
    }
}

/// Pairs of name and value; when a name appears twice, the last pair wins.
impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

/// Pairs of name and value; when a name appears twice, the last pair wins.
impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

impl<F> Env for F
where
    F: Fn(&str) -> Option<String>,
{
    fn var(&self, name: &str) -> Option<String> {
        self(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    #[test]
    fn env_sources() {
        let owned = HashMap::from([("A".to_owned(), "1".to_owned())]);
        let borrowed = HashMap::from([("A", "2")]);
        let tree = BTreeMap::from([("A".to_owned(), "3".to_owned())]);
        let tree_borrowed = BTreeMap::from([("A", "4")]);
        let pairs = [("A", "0"), ("A", "5")];
        let list = vec![("A".to_owned(), "6".to_owned())];
        let closure = |name: &str| (name == "A").then(|| "7".to_owned());
        let envs: [(&dyn Env, &str); 7] = [
            (&owned, "1"),
            (&borrowed, "2"),
            (&tree, "3"),
            (&tree_borrowed, "4"),
            (&pairs, "5"),
            (&list, "6"),
            (&closure, "7"),
        ];
        for (env, expected) in envs {
            assert_eq!(env.var("A").as_deref(), Some(expected));
            assert_eq!(env.var("B"), None);
            let config = Config::from_yaml_str("a: ${A}", env).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                config.get("a"),
                Some(&json!(expected.parse::<i64>().unwrap_or(-1)))
            );
        }
    }

    #[test]
    fn the_process_env_reads_std_env() {
        for name in ["PATH", "HOME", "NAMEKO_RS_SURELY_UNSET_VARIABLE"] {
            let expected = std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
            assert_eq!(ProcessEnv.var(name), expected, "{name}");
        }
        for name in ["", "A=B", "A\0B"] {
            assert_eq!(ProcessEnv.var(name), None, "{name:?}");
        }
    }
}
