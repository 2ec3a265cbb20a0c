//! Runs the cases one at a time, each bounded and cleaned up, and builds the report.

use std::fmt::{self, Write as _};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt as _;
use nameko_transport::{Capabilities, ExchangeKind, ExchangeOptions, QueueOptions, Transport};

use crate::Harness;

/// What a case returns: `Err` carries the reason it failed.
pub(crate) type CaseResult = Result<(), String>;

/// Adds what was being done to an error, turning it into a case failure.
pub(crate) trait Context<T> {
    /// Maps the error to `"{what}: {error}"`.
    fn ctx(self, what: &str) -> Result<T, String>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Fails the case with a formatted reason unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}
pub(crate) use ensure;

/// The context of one case: the harness, unique names, and what to clean up.
pub(crate) struct Cx<'h> {
    pub(crate) harness: &'h dyn Harness,
    pub(crate) caps: Capabilities,
    pub(crate) short: bool,
    prefix: String,
    connections: Mutex<Vec<Arc<dyn Transport>>>,
    queues: Mutex<Vec<String>>,
    exchanges: Mutex<Vec<String>>,
}

impl<'h> Cx<'h> {
    fn new(harness: &'h dyn Harness, caps: Capabilities, short: bool, case: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            harness,
            caps,
            short,
            prefix: format!("conformance.{case}.{}", &id[..12]),
            connections: Mutex::new(Vec::new()),
            queues: Mutex::new(Vec::new()),
            exchanges: Mutex::new(Vec::new()),
        }
    }

    /// A name unique to this case run.
    pub(crate) fn name(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// Opens a connection, closed when the case ends.
    pub(crate) async fn connect(&self) -> Arc<dyn Transport> {
        let conn = self.harness.connect().await;
        lock(&self.connections).push(Arc::clone(&conn));
        conn
    }

    /// Records a queue to delete when the case ends.
    pub(crate) fn track_queue(&self, name: &str) {
        lock(&self.queues).push(name.to_owned());
    }

    /// Records an exchange to delete when the case ends.
    pub(crate) fn track_exchange(&self, name: &str) {
        lock(&self.exchanges).push(name.to_owned());
    }

    /// Declares the queue `<prefix>.<suffix>` and returns its name.
    pub(crate) async fn queue(
        &self,
        conn: &Arc<dyn Transport>,
        suffix: &str,
        options: QueueOptions,
    ) -> Result<String, String> {
        let name = self.name(suffix);
        self.track_queue(&name);
        conn.declare_queue(&name, options)
            .await
            .ctx(&format!("declaring queue {name}"))?;
        Ok(name)
    }

    /// Declares the non-durable exchange `<prefix>.<suffix>` and returns its name.
    pub(crate) async fn exchange(
        &self,
        conn: &Arc<dyn Transport>,
        suffix: &str,
        kind: ExchangeKind,
    ) -> Result<String, String> {
        let name = self.name(suffix);
        self.track_exchange(&name);
        conn.declare_exchange(&name, kind, ExchangeOptions::default())
            .await
            .ctx(&format!("declaring {kind} exchange {name}"))?;
        Ok(name)
    }

    /// Closes the case's connections, then deletes what it declared.
    async fn cleanup(&self) -> Result<(), String> {
        let connections = std::mem::take(&mut *lock(&self.connections));
        for conn in connections {
            // Closing twice, or a connection the case already closed, is fine.
            let _ = conn.close().await;
        }
        let queues = std::mem::take(&mut *lock(&self.queues));
        let exchanges = std::mem::take(&mut *lock(&self.exchanges));
        if queues.is_empty() && exchanges.is_empty() {
            return Ok(());
        }
        let admin = self.harness.connect().await;
        let mut errors = Vec::new();
        for queue in &queues {
            if let Err(e) = admin.delete_queue(queue).await {
                errors.push(format!("deleting queue {queue}: {e}"));
            }
        }
        for exchange in &exchanges {
            if let Err(e) = admin.delete_exchange(exchange).await {
                errors.push(format!("deleting exchange {exchange}: {e}"));
            }
        }
        let _ = admin.close().await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A requirement a case has on the backend, read from its [`Capabilities`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Requires {
    Nothing,
    MandatoryReturns,
    ExclusiveQueues,
    QueueExpiry,
    OrderedPerQueue,
    DeliveryPolicies,
}

impl Requires {
    fn missing(self, caps: &Capabilities) -> Option<&'static str> {
        match self {
            Self::Nothing => None,
            Self::MandatoryReturns => (!caps.mandatory_returns).then_some("no mandatory returns"),
            Self::ExclusiveQueues => (!caps.exclusive_queues).then_some("no exclusive queues"),
            Self::QueueExpiry => (!caps.queue_expiry).then_some("no queue expiry"),
            Self::OrderedPerQueue => (!caps.ordered_per_queue).then_some("no ordering per queue"),
            Self::DeliveryPolicies => (!caps.delivery_policies).then_some("no delivery policies"),
        }
    }
}

enum Outcome {
    Passed(Duration),
    Failed(String),
    Skipped(&'static str),
}

struct CaseReport {
    name: &'static str,
    outcome: Outcome,
}

/// Runs cases and remembers how each went.
pub(crate) struct Runner<'h> {
    harness: &'h dyn Harness,
    caps: Capabilities,
    short: bool,
    filter: Option<String>,
    reports: Vec<CaseReport>,
}

impl<'h> Runner<'h> {
    pub(crate) fn new(harness: &'h dyn Harness) -> Self {
        Self {
            caps: harness.capabilities(),
            short: harness.short(),
            filter: std::env::var("NAMEKO_CONFORMANCE_FILTER")
                .ok()
                .filter(|f| !f.is_empty()),
            harness,
            reports: Vec::new(),
        }
    }

    /// Whether the case should run under the `NAMEKO_CONFORMANCE_FILTER` filter.
    pub(crate) fn selected(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }

    /// The capability gate, or a context to run the case in.
    pub(crate) fn begin(&mut self, name: &'static str, requires: Requires) -> Option<Cx<'h>> {
        if let Some(why) = requires.missing(&self.caps) {
            self.reports.push(CaseReport {
                name,
                outcome: Outcome::Skipped(why),
            });
            return None;
        }
        Some(Cx::new(self.harness, self.caps, self.short, name))
    }

    /// Runs one case future under the harness's bound, then cleans up after it.
    pub(crate) async fn finish<F>(&mut self, name: &'static str, cx: &Cx<'h>, case: F)
    where
        F: Future<Output = CaseResult>,
    {
        let bound = self.harness.case_timeout();
        let started = tokio::time::Instant::now();
        tracing::debug!(case = name, "conformance case starting");
        let result = match tokio::time::timeout(bound, AssertUnwindSafe(case).catch_unwind()).await
        {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(format!("panicked: {}", panic_message(&*panic))),
            Err(_) => Err(format!("did not finish within {bound:?} (hung)")),
        };
        let elapsed = started.elapsed();
        let cleanup = match tokio::time::timeout(bound, cx.cleanup()).await {
            Ok(result) => result,
            Err(_) => Err(format!("cleanup did not finish within {bound:?}")),
        };
        let outcome = match (result, cleanup) {
            (Ok(()), Ok(())) => Outcome::Passed(elapsed),
            (Err(why), Ok(())) => Outcome::Failed(why),
            (Ok(()), Err(cleanup)) => Outcome::Failed(format!("cleanup failed: {cleanup}")),
            (Err(why), Err(cleanup)) => {
                Outcome::Failed(format!("{why}\n    (and cleanup failed: {cleanup})"))
            }
        };
        match &outcome {
            Outcome::Failed(why) => tracing::debug!(case = name, %why, "conformance case failed"),
            _ => tracing::debug!(case = name, ?elapsed, "conformance case passed"),
        }
        self.reports.push(CaseReport { name, outcome });
    }

    /// Prints the summary, and panics with every failure if any case failed.
    pub(crate) fn conclude(self) {
        let failed = self
            .reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count();
        let skipped = self
            .reports
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Skipped(_)))
            .count();
        let passed = self.reports.len() - failed - skipped;
        let mut report = format!(
            "transport conformance ({}): {} cases, {passed} passed, {failed} failed, {skipped} skipped\n",
            self.caps.name,
            self.reports.len(),
        );
        for r in &self.reports {
            let _ = match &r.outcome {
                Outcome::Passed(took) => writeln!(report, "  ok      {} ({took:.2?})", r.name),
                Outcome::Skipped(why) => {
                    writeln!(report, "  SKIPPED {}: backend has {why}", r.name)
                }
                Outcome::Failed(why) => writeln!(report, "  FAILED  {}: {why}", r.name),
            };
        }
        println!("{report}");
        assert!(failed == 0, "{report}");
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
