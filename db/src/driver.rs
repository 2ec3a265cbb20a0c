//! The sqlx databases a [`Database`](crate::Database) can be over.

use sqlx::migrate::Migrate;

/// A sqlx database nameko-sqlx can open: [`sqlx::Any`] (the backend chosen by the URI at
/// run time), [`sqlx::Postgres`], [`sqlx::MySql`] or [`sqlx::Sqlite`].
///
/// `Database<Any>` (the default) runs the same service on any of the three; a typed
/// `Database<Postgres>` decodes every column type sqlx knows for that server (dates,
/// decimals, JSON, arrays), which `Any` does not.
pub trait Driver: sqlx::Database<Connection: Migrate> {
    /// Prepares sqlx before the first connection (the `Any` driver installs its backends).
    fn prepare() {}
}

impl Driver for sqlx::Any {
    fn prepare() {
        sqlx::any::install_default_drivers();
    }
}

impl Driver for sqlx::Postgres {}

impl Driver for sqlx::MySql {}

impl Driver for sqlx::Sqlite {}
