//! Databases for nameko-rs services, on sqlx: nameko-sqlalchemy's `Database` and
//! `DatabaseSession` for PostgreSQL, MySQL/MariaDB and SQLite.
//!
//! A service declares a [`Database`] field; each worker gets a session (a transaction
//! begun on first use) that is committed when the method returns `Ok`, before the reply
//! is sent, and rolled back when it returns an error, panics or is cancelled:
//!
//! ```
//! use nameko::prelude::*;
//! use nameko_sqlx::{Database, DatabaseError};
//! use serde::Serialize;
//!
//! #[derive(Debug, Serialize, sqlx::FromRow)]
//! pub struct Author {
//!     id: i64,
//!     name: String,
//! }
//!
//! #[derive(Dependencies)]
//! pub struct Authors {
//!     #[dependency(Database::named("main").migrate(sqlx::migrate!("tests/migrations/sqlite")))]
//!     db: Database,
//! }
//!
//! #[service(name = "authors_service")]
//! impl Authors {
//!     #[rpc]
//!     pub async fn create_author(&self, name: String) -> Result<Author, DatabaseError> {
//!         let mut session = self.db.session().await?;
//!         let author = sqlx::query_as("INSERT INTO authors (name) VALUES ($1) RETURNING id, name")
//!             .bind(name)
//!             .fetch_one(&mut *session)
//!             .await?;
//!         Ok(author) // a Python caller gets {"id": 1, "name": "..."}
//!     }
//! }
//! ```
//!
//! # Configuration
//!
//! ```yaml
//! DB_URIS:                                   # nameko-sqlalchemy's key (DB_URI also works)
//!   "authors_service:main": ${AUTHORS_DB:sqlite:///tmp/authors.db?mode=rwc}
//!   "orders:main": postgresql://app:${DB_PASSWORD}@db/orders
//! DB_POOL:                                   # every key optional
//!   size: 10                                 # per database; default max_workers
//!   acquire_timeout: 5                       # seconds; then DatabaseUnavailable
//!   idle_timeout: 600
//!   max_lifetime: 1800
//! ```
//!
//! One pool per database URI per process, shared by every service of a runner that
//! uses it, opened at container start. A database down at start fails the start with a
//! clear error, or is waited for with `AMQP_STARTUP: wait` (up to
//! `AMQP_STARTUP_TIMEOUT`). URIs use sqlx's forms (`postgres://`, `mysql://`,
//! `mariadb://`, `sqlite://path?mode=rwc`, `sqlite::memory:`); SQLAlchemy's `+driver`
//! suffixes are ignored. A SQLite file is put in write-ahead-log mode when it opens (the
//! mode is kept in the file), so that readers and the one writer do not block each other.
//!
//! # Failures
//!
//! A database that goes away fails the calls that need it with a `DatabaseUnavailable`
//! remote error within the pool's acquire timeout; the service stays up and serves
//! again as soon as the database answers (connections are checked before each use).
//! Workers wait for a connection for at most the acquire timeout when the pool is
//! exhausted.
//!
//! # Rows to the wire
//!
//! See [`json`] for what each column type looks like to a Python caller.

mod backend;
mod config;
mod database;
mod driver;
mod error;
pub mod json;
mod migrate;
mod pool;
mod provider;
mod retry;
mod session;

pub use backend::Backend;
pub use config::PoolSettings;
pub use database::{Database, TransactionFuture};
pub use driver::Driver;
pub use error::{
    DATABASE_ERROR, DATABASE_UNAVAILABLE, DatabaseError, DatabaseUnavailable, RetryableError,
};
pub use migrate::Migrations;
pub use provider::DatabaseProvider;
pub use retry::RetryPolicy;
pub use session::Session;

#[doc(no_inline)]
pub use sqlx;
