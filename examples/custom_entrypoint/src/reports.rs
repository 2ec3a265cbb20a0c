//! An example service with cron jobs.

use std::sync::{Arc, Mutex, PoisonError};

use nameko::dependency::{Dependency, ValueProvider};
use nameko::prelude::*;
use serde::Serialize;

use crate::cron;

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Run {
    /// The method that ran.
    pub job: String,
    /// When it was scheduled for (RFC 3339), if the method takes it.
    pub scheduled: Option<String>,
}

/// The runs a `Reports` container has seen.
#[derive(Debug, Clone, Default)]
pub struct ReportLog {
    runs: Arc<Mutex<Vec<Run>>>,
}

impl ReportLog {
    fn record(&self, job: &str, scheduled: Option<String>) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Run {
                job: job.to_owned(),
                scheduled,
            });
    }

    /// The runs so far.
    #[must_use]
    pub fn runs(&self) -> Vec<Run> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Dependency for ReportLog {
    type Provider = ValueProvider<ReportLog>;

    /// A new log for each container.
    fn provider(_field: &'static str) -> Self::Provider {
        ValueProvider::new(ReportLog::default())
    }
}

/// Writes a heartbeat every second and an hourly summary, and tells over RPC what ran.
#[derive(Debug, Dependencies)]
pub struct Reports {
    log: ReportLog,
}

#[service(name = "reports")]
impl Reports {
    /// Every second.
    #[cron("* * * * * *")]
    pub async fn heartbeat(&self, scheduled: String) {
        tracing::info!(%scheduled, "heartbeat");
        self.log.record("heartbeat", Some(scheduled));
    }

    /// At the start of every hour.
    #[cron("0 0 * * * *")]
    pub async fn hourly_summary(&self) {
        self.log.record("hourly_summary", None);
    }

    /// The runs so far.
    #[rpc]
    pub async fn runs(&self) -> Vec<Run> {
        self.log.runs()
    }
}
