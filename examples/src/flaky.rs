//! An event handler that fails before it succeeds, retried with backoff by the broker,
//! and parked in a dead-letter queue when it keeps failing.

use std::sync::{Arc, Mutex};

use nameko::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko::prelude::*;

/// The error of a job that fails on this attempt.
#[derive(Debug, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
pub struct ValueError(pub String);

/// The jobs handled successfully, shared by all workers of a service instance.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    handled: Arc<Mutex<Vec<Value>>>,
}

impl Ledger {
    /// Records a job handled at its `attempts`-th attempt.
    pub fn record(&self, id: &str, attempts: u32) {
        self.handled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(json!({"id": id, "attempts": attempts}));
    }

    /// `{"id", "attempts"}` of every job handled, in order.
    #[must_use]
    pub fn all(&self) -> Vec<Value> {
        self.handled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Provides a [`Ledger`] that lives as long as its container.
#[derive(Debug, Default)]
pub struct LedgerProvider {
    ledger: Ledger,
}

impl DependencyProvider for LedgerProvider {
    type Output = Ledger;

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<Ledger, ProviderError> {
        Ok(self.ledger.clone())
    }
}

impl Dependency for Ledger {
    type Provider = LedgerProvider;

    fn provider(_field: &'static str) -> LedgerProvider {
        LedgerProvider::default()
    }
}

/// The dead-letter queue of [`FlakyService::handle_job`].
pub const FLAKY_DEAD_LETTER_QUEUE: &str = "evt-jobs-job_submitted--flaky_service.handle_job.dead";

/// `flaky_service`: handles `jobs`' `job_submitted` events `{"id": "<text>",
/// "fail_times": <n>}`, failing with `ValueError` while its attempt number is at most
/// `fail_times`. Retried 3 times (4 attempts in all) after 1 s, 2 s and 4 s, held by
/// the broker; then dead-lettered to `evt-jobs-job_submitted--flaky_service.handle_job.dead`
/// (`nameko dead-letters list|replay|purge evt-jobs-job_submitted--flaky_service.handle_job`).
#[derive(Debug, Dependencies)]
pub struct FlakyService {
    ledger: Ledger,
    worker: Arc<WorkerContext>,
}

#[service(name = "flaky_service")]
impl FlakyService {
    /// Handles a job, failing while its attempt is at most `fail_times`.
    #[event_handler("jobs", "job_submitted", retry = Backoff { limit: 3, schedule: [1, 2, 4] })]
    pub async fn handle_job(&self, job: Value) -> Result<(), ValueError> {
        let id = job["id"].as_str().unwrap_or_default().to_owned();
        let attempt = self.worker.attempt();
        let fail_times = job["fail_times"].as_u64().unwrap_or(0);
        if u64::from(attempt) <= fail_times {
            tracing::info!(%id, attempt, fail_times, "job fails");
            return Err(ValueError(format!(
                "job {id} fails on attempt {attempt} of {}",
                fail_times + 1
            )));
        }
        tracing::info!(%id, attempt, "job handled");
        self.ledger.record(&id, attempt);
        Ok(())
    }

    /// `{"id", "attempts"}` of every job handled successfully so far.
    #[rpc]
    pub async fn handled(&self) -> Vec<Value> {
        self.ledger.all()
    }
}
