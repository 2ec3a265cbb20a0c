//! Retrying a transaction that failed for a reason that may pass: nameko-sqlalchemy's
//! `transaction_retry`.

use std::time::Duration;

/// How often, and how far apart, [`transaction_retry`](crate::Database::transaction_retry)
/// runs a transaction again: at most `max_attempts` runs, waiting `initial_backoff`,
/// then twice as long each time up to `max_backoff`, each wait shortened by up to a
/// half at random so that workers that collided do not collide again.
///
/// ```
/// use std::time::Duration;
/// use nameko_sqlx::RetryPolicy;
///
/// let policy = RetryPolicy::default().max_attempts(5).initial_backoff(Duration::from_millis(10));
/// assert_eq!(policy.get_max_attempts(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, waiting 50 ms then 100 ms (at most 1 s).
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Runs in all, the first included (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The wait before the second run.
    #[must_use]
    pub fn initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest wait.
    #[must_use]
    pub fn max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// Runs in all.
    #[must_use]
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after the `attempt`th run (from 1) failed.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(16);
        let full = self
            .initial_backoff
            .saturating_mul(1 << exp)
            .min(self.max_backoff);
        // up to half of it off, at random
        let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32;
        full.saturating_sub(full / 2 * jitter / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter_below() {
        let policy = RetryPolicy::default()
            .initial_backoff(Duration::from_millis(100))
            .max_backoff(Duration::from_millis(300));
        for (attempt, full) in [(1, 100), (2, 200), (3, 300), (10, 300)] {
            let wait = policy.backoff(attempt);
            let full = Duration::from_millis(full);
            assert!(wait <= full && wait >= full / 2, "{attempt}: {wait:?}");
        }
        assert_eq!(RetryPolicy::default().max_attempts(0).get_max_attempts(), 1);
    }
}
