//! A cron entrypoint for nameko-rs services, written as any user's crate would write one:
//! on the public extension API of the `nameko` crate and nothing else.
//!
//! ```no_run
//! use nameko::prelude::*;
//! use nameko_cron::cron;
//!
//! #[derive(Dependencies)]
//! struct Housekeeping;
//!
//! #[service(name = "housekeeping")]
//! impl Housekeeping {
//!     /// Every five minutes, on the minute.
//!     #[cron("0 */5 * * * *")]
//!     async fn sweep(&self) {}
//!
//!     /// Every day at 03:00 UTC; the method receives the time it was scheduled for.
//!     #[cron("0 0 3 * * *")]
//!     async fn nightly(&self, scheduled: String) {
//!         tracing::info!(%scheduled, "nightly run");
//!     }
//! }
//! ```
//!
//! What it shows:
//!
//! - [`Cron`] is an [`Entrypoint`](nameko::extension::Entrypoint): it checks its method
//!   and its expression when the container is built, registers with the scheduler at
//!   setup, and unregisters when its container stops;
//! - [`Scheduler`] is a process-wide [`SharedExtension`](nameko::extension::SharedExtension):
//!   one task sleeps until the next due schedule of every cron entrypoint of every
//!   service of the process, and runs each job's worker through the container's
//!   [`Workers`](nameko::extension::Workers) (bounded by `max_workers`, traced, waited for
//!   by a graceful stop);
//! - the [`cron!`] macro is what `#[service]` expands `#[cron("...")]` into.
//! - [`Cron`] describes itself for the services' AsyncAPI document
//!   ([`Entrypoint::describe`](nameko::extension::Entrypoint::describe)): it takes no
//!   broker messages, so the document lists it with its schedule and no channel.
//!
//! Schedules use the six or seven fields of the `cron` crate (seconds first, year last
//! and optional), in UTC. A job still running when its next time comes is not started
//! twice: that time is skipped. Times missed while the process was down are not run.

mod entrypoint;
mod reports;
mod scheduler;

pub use entrypoint::Cron;
pub use reports::{ReportLog, Reports, ReportsClient, Run};
pub use scheduler::Scheduler;

/// The entrypoint of `#[cron("<expression>")]`: see [`Cron`].
#[macro_export]
macro_rules! cron {
    ($expression:expr $(,)?) => {
        $crate::Cron::new($expression)
    };
}
