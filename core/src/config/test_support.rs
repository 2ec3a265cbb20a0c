//! Helpers shared by the tests of the config modules.

use serde_json::Value;

use super::{Config, ConfigLoadError};

/// An empty environment.
pub(super) const NO_ENV: [(&str, &str); 0] = [];

/// The config `yaml` loads to, as JSON; panics when it does not load.
pub(super) fn load_with(yaml: &str, env: &[(&str, &str)]) -> Value {
    match Config::from_yaml_str(yaml, env) {
        Ok(config) => config.to_value(),
        Err(error) => panic!("loading {yaml:?} failed: {error}"),
    }
}

/// Why `yaml` does not load; panics when it does.
pub(super) fn load_err(yaml: &str, env: &[(&str, &str)]) -> ConfigLoadError {
    match Config::from_yaml_str(yaml, env) {
        Ok(config) => panic!("loading {yaml:?} succeeded: {:?}", config.to_value()),
        Err(error) => error,
    }
}

/// The value of `v: <text>`.
pub(super) fn value_of(text: &str, env: &[(&str, &str)]) -> Value {
    load_with(&format!("v: {text}"), env)["v"].clone()
}
