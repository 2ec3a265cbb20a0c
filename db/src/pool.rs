//! One connection pool per database per process: a shared extension whose life the
//! containers that use it drive.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use nameko_core::config::AmqpStartup;
use nameko_core::config::redact::redact_uri;
use nameko_core::extension::SharedExtension;
use sqlx::pool::{Pool, PoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::config::PoolSettings;
use crate::migrate::fingerprint;
use crate::{Backend, DatabaseError, Driver, Migrations};

/// How a database that does not answer at start-up is treated (`AMQP_STARTUP`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Startup {
    pub(crate) mode: AmqpStartup,
    pub(crate) timeout: Duration,
}

/// The pool of one database URI, shared by every container of the process that uses it.
pub(crate) struct SharedPool<DB: Driver> {
    uri: String,
    backend: Backend,
    settings: PoolSettings,
    size: u32,
    state: tokio::sync::Mutex<State<DB>>,
}

struct State<DB: Driver> {
    pool: Option<Pool<DB>>,
    migrated: Vec<Vec<(i64, Vec<u8>)>>,
}

impl<DB: Driver> fmt::Debug for SharedPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPool")
            .field("uri", &redact_uri(&self.uri))
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl<DB: Driver> SharedPool<DB> {
    pub(crate) fn new(uri: String, backend: Backend, settings: PoolSettings, size: u32) -> Self {
        Self {
            uri,
            backend,
            settings,
            size,
            state: tokio::sync::Mutex::new(State {
                pool: None,
                migrated: Vec::new(),
            }),
        }
    }

    fn options(&self, key: &str) -> Result<<DB::Connection as Connection>::Options, DatabaseError> {
        <DB::Connection as Connection>::Options::from_str(&self.uri)
            .map(|o| o.log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1)))
            .map_err(|source| DatabaseError::InvalidUri {
                key: key.to_owned(),
                uri: self.uri.clone(),
                source,
            })
    }

    /// The open pool, opening it first if it is not: one connection is made to check the
    /// database answers (waiting for it with `AMQP_STARTUP: wait`), then the migrations
    /// not run yet in this process run.
    pub(crate) async fn open(
        &self,
        key: &str,
        startup: Startup,
        migrations: &Migrations,
    ) -> Result<Pool<DB>, DatabaseError> {
        let mut state = self.state.lock().await;
        let pool = match &state.pool {
            Some(pool) if !pool.is_closed() => pool.clone(),
            _ => {
                let options = self.options(key)?;
                self.check(key, &options, startup).await?;
                if self.backend == Backend::Sqlite {
                    sqlite_wal(key, &self.uri).await;
                }
                let pool = PoolOptions::<DB>::new()
                    .max_connections(self.size)
                    .min_connections(self.settings.min_idle.min(self.size))
                    .acquire_timeout(self.settings.acquire_timeout)
                    .idle_timeout(self.settings.idle_timeout)
                    .max_lifetime(self.settings.max_lifetime)
                    .test_before_acquire(true)
                    .connect_lazy_with(options);
                tracing::info!(database = key, uri = %redact_uri(&self.uri), size = self.size, "database pool open");
                state.pool = Some(pool.clone());
                pool
            }
        };
        for migrator in migrations.for_backend(self.backend) {
            let print = fingerprint(migrator);
            if state.migrated.contains(&print) {
                continue;
            }
            run_migrations(key, &pool, migrator).await?;
            state.migrated.push(print);
        }
        Ok(pool)
    }

    /// One connection, to tell a database that is down from one that is up.
    async fn check(
        &self,
        key: &str,
        options: &<DB::Connection as Connection>::Options,
        startup: Startup,
    ) -> Result<(), DatabaseError> {
        let deadline = tokio::time::Instant::now() + startup.timeout;
        let mut wait = Duration::from_millis(200);
        loop {
            let attempt = tokio::time::timeout(
                self.settings.acquire_timeout,
                DB::Connection::connect_with(options),
            )
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
            let error = match attempt {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(error) => DatabaseError::from_sqlx(key, error),
            };
            let waiting = matches!(startup.mode, AmqpStartup::Wait)
                && error.is_unavailable()
                && tokio::time::Instant::now() + wait < deadline;
            if !waiting {
                tracing::error!(database = key, uri = %redact_uri(&self.uri), %error, "database not reachable at start-up");
                return Err(error);
            }
            tracing::warn!(database = key, uri = %redact_uri(&self.uri), %error, retry_in = ?wait, "database not reachable yet; waiting (AMQP_STARTUP: wait)");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
        }
    }

    async fn close(&self) {
        let pool = self.state.lock().await.pool.take();
        if let Some(pool) = pool {
            // Connections still out (a killed worker's) are not waited for long.
            let _ = tokio::time::timeout(Duration::from_secs(5), pool.close()).await;
            tracing::debug!(uri = %redact_uri(&self.uri), "database pool closed");
        }
    }
}

/// Puts a SQLite file in write-ahead-log mode (kept in the file), so that readers and
/// the one writer do not block each other, as on a server. In-memory and read-only
/// databases keep their mode.
async fn sqlite_wal(key: &str, uri: &str) {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
    let result = async {
        let options = SqliteConnectOptions::from_str(uri)?;
        let mut conn = SqliteConnection::connect_with(&options).await?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL")
            .fetch_one(&mut conn)
            .await?;
        let _ = conn.close().await;
        Ok::<_, sqlx::Error>(mode)
    }
    .await;
    match result {
        Ok(mode) => tracing::debug!(database = key, %mode, "SQLite journal mode"),
        Err(error) => tracing::debug!(database = key, %error, "SQLite journal mode unchanged"),
    }
}

async fn run_migrations<DB: Driver>(
    key: &str,
    pool: &Pool<DB>,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), DatabaseError> {
    let mut attempt: u32 = 1;
    loop {
        let result = async {
            let mut conn = pool.acquire().await?;
            migrator.run_direct(&mut *conn).await
        }
        .await;
        match result {
            Ok(()) => {
                tracing::info!(
                    database = key,
                    migrations = migrator.iter().count(),
                    "migrations up to date"
                );
                return Ok(());
            }
            // An instance starting at the same time may have applied it first (SQLite
            // has no migration lock): the next run sees it applied.
            Err(error) if attempt < 3 => {
                tracing::warn!(database = key, %error, "migrations failed; trying again");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(source) => {
                return Err(DatabaseError::Migrate {
                    database: key.to_owned(),
                    source,
                });
            }
        }
    }
}

#[async_trait]
impl<DB: Driver> SharedExtension for SharedPool<DB> {
    async fn close(&self) {
        SharedPool::close(self).await;
    }

    async fn kill(&self) {
        SharedPool::close(self).await;
    }
}

/// The key a pool is shared under: the database URI, without its password.
pub(crate) fn share_key(uri: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    uri.hash(&mut hasher);
    format!("{} #{:016x}", redact_uri(uri), hasher.finish())
}
