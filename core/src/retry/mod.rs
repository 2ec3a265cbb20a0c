//! Delayed retries with backoff, and dead-letter queues, for event handlers and
//! `#[consume]` entrypoints, on nameko-amqp-retry 0.7.1's wire format.
//!
//! A [`Backoff`] on an entrypoint (`#[event_handler(..., retry = Backoff { limit: 3,
//! schedule: [1, 2, 4] })]`, or `DEFAULT_RETRY` in the config) changes what happens when
//! a worker fails:
//!
//! - while retries are left, the message is re-published to the `backoff` headers
//!   exchange with a per-message TTL (`expiration`) of the next delay; it waits in the
//!   queue `backoff--<ms>ms` (declared with `x-expires` = delay + 5 s and the default
//!   exchange as its dead-letter exchange) and, expired, is dead-lettered back to the
//!   entrypoint's queue by its routing key. The broker holds it; no worker waits. The
//!   failed delivery is acked once the re-publish is confirmed;
//! - the attempt number is counted by the broker, in the `x-death` entries of the
//!   `backoff` exchange (as nameko-amqp-retry counts it), and the last error travels in
//!   the `x-retry-exc-type` / `x-retry-value` headers; a worker reads its attempt with
//!   [`WorkerContext::attempt`](crate::worker::WorkerContext::attempt);
//! - after `limit` retries (`limit + 1` attempts), the message goes to the queue
//!   `<queue>.dead` (or to a configured exchange) with the headers `exc_type`, `exc_path`,
//!   `value`, `attempts` and `original_queue`, and a warning is logged and the
//!   [`RetryListener`] told. `nameko dead-letters replay <queue>` sends them back.
//!
//! A Python service using nameko-amqp-retry and a Rust one share the same `backoff`
//! exchange and queues. Ordering and delivery guarantees are in `RELIABILITY.md`.
//!
//! ```
//! use std::time::Duration;
//! use nameko_core::retry::Backoff;
//!
//! let policy = Backoff::schedule(3, [1, 2, 4].map(Duration::from_secs));
//! assert_eq!(policy.delay_before_retry(1), Some(Duration::from_secs(1)));
//! assert_eq!(policy.delay_before_retry(3), Some(Duration::from_secs(4)));
//! assert_eq!(policy.delay_before_retry(4), None); // limit reached: dead-lettered
//!
//! let exponential = Backoff::exponential(5, Duration::from_secs(1), 2.0, Duration::from_secs(10));
//! let delays: Vec<_> = (1..=5).filter_map(|n| exponential.delay_before_retry(n)).collect();
//! assert_eq!(delays, [1, 2, 4, 8, 10].map(Duration::from_secs));
//! ```

mod config;
pub mod dead_letters;
mod publish;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::transport::{FieldTable, FieldValue};

pub use config::{RetryDefaults, parse_backoff};
pub(crate) use publish::{Handled, Retrier};

/// The headers exchange of the delay queues, shared with nameko-amqp-retry.
pub const BACKOFF_EXCHANGE: &str = "backoff";
/// How much longer than its delay an unused delay queue lives (`x-expires`).
pub const EXPIRY_GRACE_PERIOD: Duration = Duration::from_secs(5);
/// The header naming the delay, which the delay queues' bindings match.
pub const BACKOFF_HEADER: &str = "backoff";
/// The attempt that failed, on a message waiting for its retry.
pub const RETRY_ATTEMPT_HEADER: &str = "x-retry-attempt";
/// The last error's type, on a message waiting for its retry.
pub const RETRY_EXC_TYPE_HEADER: &str = "x-retry-exc-type";
/// The last error's value, on a message waiting for its retry.
pub const RETRY_VALUE_HEADER: &str = "x-retry-value";
/// On a dead letter: the last error's type.
pub const EXC_TYPE_HEADER: &str = "exc_type";
/// On a dead letter: the last error's module path.
pub const EXC_PATH_HEADER: &str = "exc_path";
/// On a dead letter: the last error's value.
pub const VALUE_HEADER: &str = "value";
/// On a dead letter: how many attempts were made.
pub const ATTEMPTS_HEADER: &str = "attempts";
/// On a dead letter: the queue it was consumed from, where a replay sends it.
pub const ORIGINAL_QUEUE_HEADER: &str = "original_queue";

/// The name of the delay queue for `delay`, as nameko-amqp-retry names it.
#[must_use]
pub fn backoff_queue_name(delay: Duration) -> String {
    format!("backoff--{}ms", delay.as_millis())
}

/// The default dead-letter queue of an entrypoint's queue: `<queue>.dead`.
#[must_use]
pub fn dead_letter_queue_name(queue: &str) -> String {
    format!("{queue}.dead")
}

/// How many retries a message has had: the `x-death` counts of its deaths in queues it
/// reached through the `backoff` exchange (nameko-amqp-retry's count).
#[must_use]
pub fn retries_so_far(headers: &FieldTable) -> u32 {
    let Some(deaths) = headers.get("x-death").and_then(FieldValue::as_array) else {
        return 0;
    };
    let total: i64 = deaths
        .iter()
        .filter_map(FieldValue::as_table)
        .filter(|d| d.get("exchange").and_then(FieldValue::as_str) == Some(BACKOFF_EXCHANGE))
        .filter_map(|d| d.get("count").and_then(FieldValue::as_i64))
        .sum();
    u32::try_from(total.max(0)).unwrap_or(u32::MAX)
}

/// How the delays between attempts grow.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Delays {
    /// The n-th retry waits the n-th delay; past the end, the last one.
    Schedule(Vec<Duration>),
    /// The n-th retry waits `base * multiplier^(n-1)`, at most `max`.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The factor between consecutive delays.
        multiplier: f64,
        /// The longest delay.
        max: Duration,
    },
}

/// Where a message goes after its last attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeadLetter {
    /// The durable queue `<queue>.dead`, declared with the entrypoint's queue.
    #[default]
    Queue,
    /// An exchange of the application's, with the original queue's name as routing key.
    Exchange(String),
}

/// A retry policy: how many retries, how long between them, where what keeps failing
/// goes. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// Retries after the first attempt; `limit + 1` attempts in all.
    pub limit: u32,
    /// The delays.
    pub delays: Delays,
    /// Where the message goes after the last attempt.
    pub dead_letter: DeadLetter,
}

impl Backoff {
    /// `limit` retries waiting the delays of `schedule` (the last one repeated).
    ///
    /// # Panics
    ///
    /// If `schedule` is empty.
    #[must_use]
    pub fn schedule(limit: u32, schedule: impl IntoIterator<Item = Duration>) -> Self {
        let schedule: Vec<Duration> = schedule.into_iter().collect();
        assert!(
            !schedule.is_empty(),
            "a backoff schedule needs at least one delay"
        );
        Self {
            limit,
            delays: Delays::Schedule(schedule),
            dead_letter: DeadLetter::Queue,
        }
    }

    /// `limit` retries waiting `base`, `base * multiplier`, ... at most `max`.
    #[must_use]
    pub fn exponential(limit: u32, base: Duration, multiplier: f64, max: Duration) -> Self {
        Self {
            limit,
            delays: Delays::Exponential {
                base,
                multiplier,
                max,
            },
            dead_letter: DeadLetter::Queue,
        }
    }

    /// Dead-letters to `exchange` instead of `<queue>.dead`.
    #[must_use]
    pub fn dead_letter_exchange(mut self, exchange: impl Into<String>) -> Self {
        self.dead_letter = DeadLetter::Exchange(exchange.into());
        self
    }

    /// The delay before retry number `retry` (from 1), or `None` past the limit. Delays
    /// are whole milliseconds, as a message's `expiration` is.
    #[must_use]
    pub fn delay_before_retry(&self, retry: u32) -> Option<Duration> {
        if retry == 0 || retry > self.limit {
            return None;
        }
        let index = retry - 1;
        let delay = match &self.delays {
            Delays::Schedule(schedule) => {
                let i = usize::try_from(index).unwrap_or(usize::MAX);
                *schedule.get(i).or(schedule.last())?
            }
            Delays::Exponential {
                base,
                multiplier,
                max,
            } => {
                let factor = multiplier.powi(i32::try_from(index).unwrap_or(i32::MAX));
                let secs = base.as_secs_f64() * factor;
                if secs.is_finite() && secs < max.as_secs_f64() {
                    Duration::from_secs_f64(secs.max(0.0))
                } else {
                    *max
                }
            }
        };
        Some(Duration::from_millis(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        ))
    }
}

/// An entrypoint's retry setting: its own policy, none, or `DEFAULT_RETRY`'s.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub enum RetrySetting {
    /// `DEFAULT_RETRY` from the config, if set (and the entrypoint does not requeue on
    /// error).
    #[default]
    FromConfig,
    /// No retries, whatever the config says.
    Off,
    /// This policy.
    Policy(Backoff),
}

impl RetrySetting {
    /// The policy that applies under `config`.
    ///
    /// # Errors
    ///
    /// When `DEFAULT_RETRY` is malformed.
    pub fn resolve(
        &self,
        config: &crate::config::Config,
        requeue_on_error: bool,
    ) -> Result<Option<Backoff>, crate::config::ConfigError> {
        match self {
            Self::Policy(policy) => Ok(Some(policy.clone())),
            Self::Off => Ok(None),
            Self::FromConfig if requeue_on_error => Ok(None),
            Self::FromConfig => Ok(config.extract::<RetryDefaults>()?.default_retry),
        }
    }
}

impl From<Backoff> for RetrySetting {
    fn from(policy: Backoff) -> Self {
        Self::Policy(policy)
    }
}

impl From<Option<Backoff>> for RetrySetting {
    fn from(policy: Option<Backoff>) -> Self {
        policy.map_or(Self::Off, Self::Policy)
    }
}

/// What happened to a failed delivery under a retry policy, for a [`RetryListener`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RetryEvent {
    /// The entrypoint's queue.
    pub queue: String,
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// The error's type.
    pub exc_type: String,
    /// The error's value.
    pub value: String,
    /// The delay before the next attempt; `None` when dead-lettered.
    pub delay: Option<Duration>,
}

/// Told of every retry scheduled and every message dead-lettered, e.g. to count them
/// in a metrics registry. Set once per process with [`set_listener`].
pub trait RetryListener: Send + Sync + 'static {
    /// A failed delivery will be retried after `event.delay`.
    fn retried(&self, event: &RetryEvent) {
        let _ = event;
    }

    /// A delivery failed its last attempt and was dead-lettered.
    fn dead_lettered(&self, event: &RetryEvent) {
        let _ = event;
    }
}

static LISTENER: OnceLock<Arc<dyn RetryListener>> = OnceLock::new();

/// Sets the process's [`RetryListener`]; false when one was set already.
pub fn set_listener(listener: Arc<dyn RetryListener>) -> bool {
    LISTENER.set(listener).is_ok()
}

pub(crate) fn listener() -> Option<&'static Arc<dyn RetryListener>> {
    LISTENER.get()
}

impl fmt::Display for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} retries", self.limit)?;
        match &self.delays {
            Delays::Schedule(s) => write!(f, " after {s:?}"),
            Delays::Exponential {
                base,
                multiplier,
                max,
            } => write!(f, " from {base:?} times {multiplier} up to {max:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_counted_from_backoff_deaths_only() {
        let death = |exchange: &str, queue: &str, count: i64| {
            FieldValue::Table(
                FieldTable::new()
                    .with("exchange", exchange)
                    .with("queue", queue)
                    .with("count", FieldValue::I64(count)),
            )
        };
        let headers = FieldTable::new().with(
            "x-death",
            FieldValue::Array(vec![
                death("backoff", "backoff--2000ms", 1),
                death("backoff", "backoff--1000ms", 2),
                death("", "other", 5),
            ]),
        );
        assert_eq!(retries_so_far(&headers), 3);
        assert_eq!(retries_so_far(&FieldTable::new()), 0);
    }

    #[test]
    fn schedules_repeat_their_last_delay_up_to_the_limit() {
        let policy = Backoff::schedule(4, [Duration::from_millis(1500)]);
        assert_eq!(
            policy.delay_before_retry(4),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(policy.delay_before_retry(0), None);
        assert_eq!(policy.delay_before_retry(5), None);
        assert_eq!(
            backoff_queue_name(Duration::from_millis(1500)),
            "backoff--1500ms"
        );
    }
}
