//! The default retry policy from the config: `DEFAULT_RETRY`.

use std::time::Duration;

use serde::Deserialize;
use serde::de::Error as _;

use super::Backoff;

/// The config keys of retries: `DEFAULT_RETRY`, the policy of every event handler and
/// `#[consume]` entrypoint that sets none (`retry = false` opts one out).
///
/// ```yaml
/// DEFAULT_RETRY:
///   limit: 3
///   schedule: [1, 2, 4]          # seconds; or base: 1, multiplier: 2, max: 60
///   dead_letter_exchange: errors # optional; default: the queue <queue>.dead
/// ```
///
/// ```
/// use nameko_core::config::Config;
/// use nameko_core::retry::{Backoff, RetryDefaults};
/// use serde_json::json;
/// use std::time::Duration;
///
/// let config = Config::from_value(json!({"DEFAULT_RETRY": {"limit": 3, "schedule": [1, 2, 4]}}))?;
/// let defaults: RetryDefaults = config.extract()?;
/// assert_eq!(defaults.default_retry, Some(Backoff::schedule(3, [1, 2, 4].map(Duration::from_secs))));
/// # Ok::<(), nameko_core::config::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct RetryDefaults {
    /// `DEFAULT_RETRY`.
    #[serde(rename = "DEFAULT_RETRY", default, deserialize_with = "de_backoff")]
    pub default_retry: Option<Backoff>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    limit: u32,
    schedule: Option<Vec<f64>>,
    base: Option<f64>,
    multiplier: Option<f64>,
    max: Option<f64>,
    dead_letter_exchange: Option<String>,
}

fn secs(what: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value >= 0.0 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "`{what}` must be a non-negative number of seconds, not {value}"
        ))
    }
}

fn build(spec: Spec) -> Result<Backoff, String> {
    let policy = match (spec.schedule, spec.base, spec.multiplier, spec.max) {
        (Some(schedule), None, None, None) => {
            if schedule.is_empty() {
                return Err("`schedule` needs at least one delay".to_owned());
            }
            let delays = schedule
                .into_iter()
                .map(|s| secs("schedule", s))
                .collect::<Result<Vec<_>, _>>()?;
            Backoff::schedule(spec.limit, delays)
        }
        (None, Some(base), multiplier, max) => {
            let multiplier = multiplier.unwrap_or(2.0);
            if !multiplier.is_finite() || multiplier < 1.0 {
                return Err(format!("`multiplier` must be at least 1, not {multiplier}"));
            }
            let base = secs("base", base)?;
            let max = match max {
                Some(max) => secs("max", max)?,
                None => Duration::from_secs(3600),
            };
            Backoff::exponential(spec.limit, base, multiplier, max)
        }
        _ => {
            return Err(
                "a retry policy has either `schedule` or `base` (with `multiplier` and `max`)"
                    .to_owned(),
            );
        }
    };
    Ok(match spec.dead_letter_exchange {
        Some(exchange) => policy.dead_letter_exchange(exchange),
        None => policy,
    })
}

/// Reads a retry policy written as in `DEFAULT_RETRY`.
///
/// # Errors
///
/// A message saying what is wrong with it.
pub fn parse_backoff(value: &serde_json::Value) -> Result<Backoff, String> {
    let spec = Spec::deserialize(value).map_err(|e| e.to_string())?;
    build(spec)
}

fn de_backoff<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Backoff>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => parse_backoff(&value).map(Some).map_err(D::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn policies_read_from_config_values() {
        let exponential =
            parse_backoff(&json!({"limit": 5, "base": 0.5, "multiplier": 3, "max": 10}))
                .expect("valid");
        assert_eq!(
            exponential,
            Backoff::exponential(5, Duration::from_millis(500), 3.0, Duration::from_secs(10))
        );
        let to_exchange =
            parse_backoff(&json!({"limit": 1, "schedule": [2], "dead_letter_exchange": "errors"}))
                .expect("valid");
        assert_eq!(
            to_exchange.dead_letter,
            super::super::DeadLetter::Exchange("errors".to_owned())
        );
        for bad in [
            json!({"limit": 1}),
            json!({"limit": 1, "schedule": []}),
            json!({"limit": 1, "schedule": [1], "base": 1}),
            json!({"limit": 1, "schedule": [-1]}),
            json!({"limit": 1, "base": 1, "multiplier": 0.5}),
            json!({"limit": 1, "schedule": [1], "jitter": 1}),
        ] {
            assert!(parse_backoff(&bad).is_err(), "{bad}");
        }
    }
}
