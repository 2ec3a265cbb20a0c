//! What the database tests share: a service that writes to a table, per-backend test
//! databases, and a private PostgreSQL server a test may stop.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nameko::prelude::*;
use nameko_sqlx::{Backend, Database, DatabaseError, DatabaseProvider, Migrations};
use nameko_testing::{TestCluster, TestDatabase};

pub mod private_postgres;

/// The migrations of the `authors` table, per backend.
pub fn migrations() -> Migrations {
    Migrations::new()
        .with_for(Backend::Sqlite, sqlx::migrate!("tests/migrations/sqlite"))
        .with_for(
            Backend::Postgres,
            sqlx::migrate!("tests/migrations/postgres"),
        )
        .with_for(Backend::MySql, sqlx::migrate!("tests/migrations/mysql"))
}

#[derive(Debug, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
pub struct ValueError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl From<sqlx::Error> for WriterError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
    }
}

impl nameko::__private::IntoRemoteError for WriterError {
    fn into_remote_error(self) -> RemoteError {
        match self {
            Self::Value(e) => e.into_remote_error(),
            Self::Database(e) => e.into_remote_error(),
        }
    }
}

/// Writes authors through its worker session.
#[derive(Dependencies)]
pub struct Writer {
    #[dependency(DatabaseProvider::new("main").migrations(migrations()))]
    pub db: Database,
}

impl Writer {
    async fn insert(&self, name: &str) -> Result<i64, WriterError> {
        let sql = format!(
            "INSERT INTO authors (name) VALUES ({}) RETURNING id",
            self.db.backend().placeholder(1)
        );
        let mut session = self.db.session().await?;
        let id: i64 = sqlx::query_scalar(&sql)
            .bind(name.to_owned())
            .fetch_one(&mut *session)
            .await?;
        Ok(id)
    }
}

#[service(name = "writer")]
impl Writer {
    #[rpc]
    pub async fn create(&self, name: String) -> Result<i64, WriterError> {
        self.insert(&name).await
    }

    #[rpc(expected_exceptions = [ValueError])]
    pub async fn create_then_fail(&self, name: String) -> Result<i64, WriterError> {
        self.insert(&name).await?;
        Err(ValueError(format!("refusing {name}")).into())
    }

    #[rpc]
    pub async fn create_then_panic(&self, name: String) -> Result<i64, WriterError> {
        self.insert(&name).await?;
        panic!("panicking after inserting {name}");
    }

    /// Inserts, then waits `seconds` holding the transaction open.
    #[rpc]
    pub async fn create_then_sleep(&self, name: String, seconds: f64) -> Result<i64, WriterError> {
        let id = self.insert(&name).await?;
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        Ok(id)
    }

    /// Counts the authors in the session, then waits `seconds` holding its connection.
    #[rpc]
    pub async fn count_then_sleep(&self, seconds: f64) -> Result<i64, WriterError> {
        let mut session = self.db.session().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM authors")
            .fetch_one(&mut *session)
            .await?;
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        Ok(n)
    }

    /// Counts the authors through the pool.
    #[rpc]
    pub async fn count(&self) -> Result<i64, WriterError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM authors")
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| self.db.error(e))?;
        Ok(n)
    }
}

/// A fresh database of `backend`, or `None` when its server is unreachable (skipped).
pub async fn test_database(backend: Backend) -> Option<TestDatabase> {
    match backend {
        Backend::Sqlite => Some(TestDatabase::sqlite().await),
        Backend::Postgres => TestDatabase::postgres().await,
        Backend::MySql => TestDatabase::mariadb().await,
        _ => None,
    }
}

/// The authors named `name`, read from outside the service.
pub async fn rows_named(db: &TestDatabase, name: &str) -> i64 {
    let pool = db.pool().await;
    let sql = format!(
        "SELECT COUNT(*) FROM authors WHERE name = {}",
        db.backend().placeholder(1)
    );
    let n: i64 = sqlx::query_scalar(&sql)
        .bind(name.to_owned())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

/// A memory-broker cluster with `db` as the writer's `main` database.
pub fn cluster_with(db: TestDatabase) -> TestCluster {
    TestCluster::memory().with_database("writer:main", db)
}

/// A temporary directory, deleted on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
