//! Command-line flags of the benchmark binaries: `--name value` pairs and switches.

use std::collections::VecDeque;
use std::str::FromStr;

use nameko::prelude::{Config, Value};

use crate::error::{BenchError, Result};

/// The flags left to read.
#[derive(Debug)]
pub struct Flags {
    rest: VecDeque<String>,
}

impl Flags {
    /// The process's arguments, without the program name.
    #[must_use]
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    /// These arguments.
    pub fn new(args: impl IntoIterator<Item = String>) -> Self {
        Self {
            rest: args.into_iter().collect(),
        }
    }

    /// The next flag, if any.
    pub fn next_flag(&mut self) -> Option<String> {
        self.rest.pop_front()
    }

    /// The value of `flag`.
    ///
    /// # Errors
    ///
    /// If it is missing.
    pub fn value(&mut self, flag: &str) -> Result<String> {
        self.rest
            .pop_front()
            .ok_or_else(|| BenchError::new(format!("{flag} needs a value")))
    }

    /// The value of `flag`, parsed.
    ///
    /// # Errors
    ///
    /// If it is missing or does not parse.
    pub fn parsed<T: FromStr>(&mut self, flag: &str) -> Result<T> {
        let value = self.value(flag)?;
        value
            .parse()
            .map_err(|_| BenchError::new(format!("{flag}: cannot read `{value}`")))
    }
}

/// Applies a `KEY=VALUE` setting to a config; the value is read as JSON when it is JSON
/// (`PREFETCH_COUNT=100`), as a string otherwise.
///
/// # Errors
///
/// If there is no `=`.
pub fn set(config: Config, setting: &str) -> Result<Config> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| BenchError::new(format!("--set wants KEY=VALUE, not `{setting}`")))?;
    let value = serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::from(value));
    Ok(config.with(key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_json_or_strings() {
        let config = set(Config::new(), "PREFETCH_COUNT=100").unwrap();
        let config = set(config, "AMQP_URI=amqp://x/").unwrap();
        assert_eq!(config.prefetch_count().unwrap(), 100);
        assert_eq!(config.get("AMQP_URI"), Some(&Value::from("amqp://x/")));
        assert!(set(Config::new(), "nope").is_err());
    }

    #[test]
    fn flags_take_values() {
        let mut flags = Flags::new(["--runs".to_owned(), "3".to_owned(), "--x".to_owned()]);
        assert_eq!(flags.next_flag().as_deref(), Some("--runs"));
        assert_eq!(flags.parsed::<usize>("--runs").unwrap(), 3);
        assert_eq!(flags.next_flag().as_deref(), Some("--x"));
        assert!(flags.value("--x").is_err());
    }
}
