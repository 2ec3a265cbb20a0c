//! `authors_service`: a database-backed service (nameko-sqlalchemy's example), on SQLite
//! by default and on PostgreSQL or MariaDB when `DB_URIS["authors_service:main"]` says
//! so.

use nameko::db::{Backend, Database, DatabaseError, DatabaseProvider, Migrations};
use nameko::prelude::*;
use nameko::schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An author: a row of `authors`, and what callers get (`{"id": 1, "name": "..."}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, sqlx::FromRow)]
#[schemars(crate = "nameko::schemars")]
pub struct Author {
    /// The row id.
    pub id: i64,
    /// The name.
    pub name: String,
}

/// No author has that id: part of `get_author`'s contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "NotFound", exc_path = "authors_service.NotFound")]
pub struct NotFound(pub String);

/// Bad input: Python callers see a `ValueError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
pub struct ValueError(pub String);

/// What the methods of `authors_service` fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthorsError {
    /// `NotFound`.
    #[error(transparent)]
    NotFound(#[from] NotFound),
    /// `ValueError`.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// `DatabaseUnavailable` or `DatabaseError`.
    #[error(transparent)]
    Database(#[from] DatabaseError),
}

impl From<sqlx::Error> for AuthorsError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.into())
    }
}

impl nameko::errors::IntoRemoteError for AuthorsError {
    fn into_remote_error(self) -> RemoteError {
        match self {
            Self::NotFound(e) => e.into_remote_error(),
            Self::Value(e) => e.into_remote_error(),
            Self::Database(e) => e.into_remote_error(),
        }
    }
}

/// The `authors` table's migrations, per backend.
#[must_use]
pub fn migrations() -> Migrations {
    Migrations::new()
        .with_for(Backend::Sqlite, sqlx::migrate!("migrations/authors/sqlite"))
        .with_for(
            Backend::Postgres,
            sqlx::migrate!("migrations/authors/postgres"),
        )
        .with_for(Backend::MySql, sqlx::migrate!("migrations/authors/mysql"))
}

/// The database when none is configured: a SQLite file in the temporary directory.
#[must_use]
pub fn default_uri() -> String {
    format!(
        "sqlite://{}?mode=rwc",
        std::env::temp_dir()
            .join("nameko-examples-authors.db")
            .display()
    )
}

/// `authors_service`: authors in a table, one transaction per call.
#[derive(Debug, Dependencies)]
pub struct AuthorsService {
    #[dependency(DatabaseProvider::new("main").migrations(migrations()).default_uri(default_uri()))]
    db: Database,
}

#[service(name = "authors_service")]
impl AuthorsService {
    /// Inserts an author; committed before the caller gets `{"id", "name"}`.
    #[rpc(expected_exceptions = [ValueError])]
    pub async fn create_author(&self, name: String) -> Result<Author, AuthorsError> {
        if name.trim().is_empty() {
            return Err(ValueError("an author needs a name".to_owned()).into());
        }
        let sql = format!(
            "INSERT INTO authors (name) VALUES ({}) RETURNING id, name",
            self.db.backend().placeholder(1)
        );
        let mut session = self.db.session().await?;
        // By position: MariaDB names no columns of an INSERT's RETURNING.
        let (id, name): (i64, String) = sqlx::query_as(&sql)
            .bind(name)
            .fetch_one(&mut *session)
            .await?;
        Ok(Author { id, name })
    }

    /// The author `id`, or `NotFound`.
    #[rpc(expected_exceptions = [NotFound])]
    pub async fn get_author(&self, id: i64) -> Result<Author, AuthorsError> {
        let sql = format!(
            "SELECT id, name FROM authors WHERE id = {}",
            self.db.backend().placeholder(1)
        );
        sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| self.db.error(e))?
            .ok_or_else(|| NotFound(format!("no author with id {id}")).into())
    }

    /// Every author, by id.
    #[rpc]
    pub async fn list_authors(&self) -> Result<Vec<Author>, AuthorsError> {
        Ok(sqlx::query_as("SELECT id, name FROM authors ORDER BY id")
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| self.db.error(e))?)
    }

    /// Inserts an author, then fails with `ValueError`: the insert is rolled back.
    #[rpc(expected_exceptions = [ValueError])]
    pub async fn create_author_then_fail(&self, name: String) -> Result<Author, AuthorsError> {
        let author = self.create_author(name).await?;
        Err(ValueError(format!("refusing to keep author {}", author.id)).into())
    }

    /// Renames an author in a transaction of its own, run again on serialization
    /// failures, deadlocks and lost connections (nameko-sqlalchemy's
    /// `transaction_retry`); `NotFound` when there is no such author.
    #[rpc(expected_exceptions = [NotFound])]
    pub async fn rename_author(&self, id: i64, name: String) -> Result<Author, AuthorsError> {
        let backend = self.db.backend();
        let sql = format!(
            "UPDATE authors SET name = {} WHERE id = {}",
            backend.placeholder(1),
            backend.placeholder(2)
        );
        let renamed = self
            .db
            .transaction_retry(|tx| {
                let (sql, name) = (sql.clone(), name.clone());
                Box::pin(async move {
                    sqlx::query(&sql)
                        .bind(name)
                        .bind(id)
                        .execute(&mut **tx)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(DatabaseError::from)
                })
            })
            .await?;
        if renamed == 0 {
            return Err(NotFound(format!("no author with id {id}")).into());
        }
        Ok(Author { id, name })
    }
}
