//! Migrations run when a database opens: `sqlx::migrate!` directories, for every backend
//! or for one.

use std::fmt;
use std::sync::Arc;

use sqlx::migrate::Migrator;

use crate::Backend;

/// The migrations of one database: [`Migrator`]s (made with `sqlx::migrate!`), each for
/// every backend or for one, run in order when the database opens, once per process.
///
/// Several instances starting together are safe: sqlx takes an advisory lock on
/// PostgreSQL and MySQL/MariaDB while it migrates, and on SQLite a run that lost the
/// race is tried again.
#[derive(Clone, Default)]
pub struct Migrations {
    pub(crate) sets: Vec<(Option<Backend>, Arc<Migrator>)>,
}

impl fmt::Debug for Migrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.sets.iter().map(|(backend, migrator)| {
                (
                    backend.map_or("any", Backend::name),
                    migrator.iter().map(|m| m.version).collect::<Vec<_>>(),
                )
            }))
            .finish()
    }
}

impl Migrations {
    /// No migrations.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds migrations for every backend.
    #[must_use]
    pub fn with(mut self, migrator: Migrator) -> Self {
        self.sets.push((None, Arc::new(migrator)));
        self
    }

    /// Adds migrations for one backend only (schemas differ: `SERIAL`, `AUTO_INCREMENT`,
    /// `INTEGER PRIMARY KEY`).
    #[must_use]
    pub fn with_for(mut self, backend: Backend, migrator: Migrator) -> Self {
        self.sets.push((Some(backend), Arc::new(migrator)));
        self
    }

    /// The migrators for `backend`, in order.
    pub(crate) fn for_backend(&self, backend: Backend) -> impl Iterator<Item = &Arc<Migrator>> {
        self.sets
            .iter()
            .filter(move |(b, _)| b.is_none_or(|b| b == backend))
            .map(|(_, m)| m)
    }
}

/// What identifies a migrator's contents: its versions and checksums.
pub(crate) fn fingerprint(migrator: &Migrator) -> Vec<(i64, Vec<u8>)> {
    migrator
        .iter()
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect()
}
