//! The process-wide scheduler every `#[cron]` entrypoint registers with.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use cron::Schedule;
use nameko::context::ContextData;
use nameko::extension::{Collector, ExtensionError, SharedExtension, Workers};
use nameko::wire::CallArgs;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The id of a registered job.
pub(crate) type JobId = u64;

#[derive(Clone)]
struct Job {
    id: JobId,
    schedule: Arc<Schedule>,
    workers: Workers,
    method: &'static str,
    passes_time: bool,
    next: Arc<Mutex<Option<DateTime<Utc>>>>,
    running: Arc<AtomicBool>,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("method", &self.method)
            .field("schedule", &self.schedule.to_string())
            .finish_non_exhaustive()
    }
}

impl Job {
    fn next(&self) -> Option<DateTime<Utc>> {
        *self.next.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_next_after(&self, time: DateTime<Utc>) {
        *self.next.lock().unwrap_or_else(PoisonError::into_inner) =
            self.schedule.after(&time).next();
    }
}

/// Wall-clock time that follows tokio's clock, so that schedules run under a paused
/// clock in tests.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall: DateTime<Utc>,
    instant: Instant,
}

impl Clock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.instant.elapsed()).unwrap_or_default();
        self.wall + elapsed
    }

    fn instant_of(&self, time: DateTime<Utc>) -> Instant {
        let since = (time - self.wall).to_std().unwrap_or_default();
        self.instant + since
    }
}

/// Runs the cron jobs of every container of a process from one task.
pub struct Scheduler {
    state: Arc<State>,
    task: Mutex<Option<(JoinHandle<()>, CancellationToken)>>,
}

/// What the scheduler's task shares with the entrypoints.
struct State {
    jobs: Collector<Job>,
    next_id: AtomicU64,
    changed: Notify,
    clock: Clock,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("jobs", &self.state.jobs)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::new(State {
                jobs: Collector::new(),
                next_id: AtomicU64::new(0),
                changed: Notify::new(),
                clock: Clock {
                    wall: Utc::now(),
                    instant: Instant::now(),
                },
            }),
            task: Mutex::new(None),
        }
    }

    /// Adds a job: `method` of the container of `workers`, run on `schedule`.
    pub(crate) fn register(
        &self,
        schedule: Arc<Schedule>,
        workers: Workers,
        method: &'static str,
        passes_time: bool,
    ) -> JobId {
        let state = &self.state;
        let id = state.next_id.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            id,
            schedule,
            workers,
            method,
            passes_time,
            next: Arc::default(),
            running: Arc::default(),
        };
        job.set_next_after(state.clock.now());
        state.jobs.register(job);
        state.changed.notify_one();
        id
    }

    /// Removes a job; a run in progress finishes.
    pub(crate) fn unregister(&self, id: JobId) {
        self.state.jobs.unregister(|job| job.id == id);
        self.state.changed.notify_one();
    }

    /// The number of registered jobs.
    #[must_use]
    pub fn jobs(&self) -> usize {
        self.state.jobs.len()
    }
}

impl State {
    /// Sleeps until the earliest due job (or a change of the jobs), runs every job that
    /// is due, and schedules its next run after now: runs missed meanwhile are skipped.
    async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let due = self.jobs.items().iter().filter_map(Job::next).min();
            let wake = async {
                match due {
                    Some(due) => tokio::time::sleep_until(self.clock.instant_of(due)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = self.changed.notified() => continue,
                () = wake => {}
            }
            let now = self.clock.now();
            for job in self.jobs.items() {
                if let Some(scheduled) = job.next()
                    && scheduled <= now
                {
                    job.set_next_after(now);
                    fire(job, scheduled);
                }
            }
        }
    }
}

/// Runs one job's worker, unless its previous run is still going.
fn fire(job: Job, scheduled: DateTime<Utc>) {
    if job.running.swap(true, Ordering::AcqRel) {
        tracing::warn!(method = job.method, %scheduled, "cron job still running; this run is skipped");
        return;
    }
    tokio::spawn(async move {
        let args = if job.passes_time {
            CallArgs::new().arg(scheduled.to_rfc3339())
        } else {
            CallArgs::new()
        };
        match job.workers.bind(job.method, args) {
            Ok(call) => {
                if let Ok(slot) = job.workers.slot().await {
                    let worker = job.workers.start(slot, call, ContextData::new(), &[]);
                    worker.run().await.finish().await;
                }
            }
            Err(error) => tracing::error!(method = job.method, %error, "cron job cannot run"),
        }
        job.running.store(false, Ordering::Release);
    });
}

#[nameko::async_trait]
impl SharedExtension for Scheduler {
    async fn start(&self) -> Result<(), ExtensionError> {
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.state.clone().run(stop.clone()));
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some((task, stop));
        Ok(())
    }

    async fn stop(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((task, stop)) = task {
            stop.cancel();
            let _ = task.await;
        }
    }

    async fn kill(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((task, _)) = task {
            task.abort();
        }
    }
}
