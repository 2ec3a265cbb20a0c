//! Database fixtures: a fresh database per test, on SQLite (a file in a temporary
//! directory), PostgreSQL (a new database) or MariaDB/MySQL (a new schema), dropped
//! afterwards, as RabbitMQ tests get a fresh virtual host.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nameko_core::config::redact::redact_uri;
use nameko_sqlx::sqlx::migrate::Migrator;
use nameko_sqlx::sqlx::pool::PoolOptions;
use nameko_sqlx::sqlx::{self, Any, AnyPool, Connection};
use nameko_sqlx::{Backend, Database, DatabaseError};

/// The PostgreSQL server test databases are made on.
pub const POSTGRES_URI_VAR: &str = "NAMEKO_TEST_POSTGRES_URI";
/// The MariaDB/MySQL server test schemas are made on.
pub const MARIADB_URI_VAR: &str = "NAMEKO_TEST_MARIADB_URI";
/// `1`: a test fails, instead of skipping, when PostgreSQL is unreachable.
pub const REQUIRE_POSTGRES_VAR: &str = "NAMEKO_REQUIRE_POSTGRES";
/// `1`: a test fails, instead of skipping, when MariaDB is unreachable.
pub const REQUIRE_MARIADB_VAR: &str = "NAMEKO_REQUIRE_MARIADB";

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const DEFAULT_MARIADB: &str = "mysql://root@127.0.0.1:3306/mysql";

/// A fresh, empty database for one test, dropped when the test ends
/// ([`TestDatabase::drop_now`], or on drop).
///
/// ```
/// use nameko_testing::TestDatabase;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let db = TestDatabase::sqlite().await;
/// let pool = db.pool().await;
/// sqlx::query("CREATE TABLE t (x INTEGER)").execute(&pool).await.unwrap();
/// # });
/// ```
pub struct TestDatabase {
    backend: Backend,
    uri: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(Option<PathBuf>),
    Server {
        admin_uri: String,
        name: String,
        done: bool,
    },
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &self.backend)
            .field("uri", &redact_uri(&self.uri))
            .finish_non_exhaustive()
    }
}

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

fn unique_name() -> String {
    format!("nameko_test_{}", uuid::Uuid::new_v4().simple())
}

impl TestDatabase {
    /// A SQLite database in a file of a fresh temporary directory (deleted afterwards),
    /// in write-ahead-log mode.
    ///
    /// # Panics
    ///
    /// If the directory cannot be made.
    pub async fn sqlite() -> Self {
        let dir = std::env::temp_dir().join(unique_name());
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", dir.display()));
        let uri = format!("sqlite://{}?mode=rwc", dir.join("test.db").display());
        let db = Self {
            backend: Backend::Sqlite,
            uri,
            cleanup: Cleanup::Dir(Some(dir)),
        };
        // Write-ahead logging (kept in the file): readers and the one writer do not
        // block each other, as on a server.
        let pool = db.pool().await;
        sqlx::raw_sql("PRAGMA journal_mode=WAL")
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("cannot set WAL on {db:?}: {e}"));
        pool.close().await;
        db
    }

    /// A fresh database on the test PostgreSQL server (`NAMEKO_TEST_POSTGRES_URI`,
    /// default `postgres://postgres@127.0.0.1:5432/postgres`).
    ///
    /// `None`, after printing why, when the server is unreachable.
    ///
    /// # Panics
    ///
    /// When it is unreachable and `NAMEKO_REQUIRE_POSTGRES=1`, or refuses to make the
    /// database.
    pub async fn postgres() -> Option<Self> {
        Self::on_server(
            Backend::Postgres,
            &std::env::var(POSTGRES_URI_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned()),
            REQUIRE_POSTGRES_VAR,
        )
        .await
    }

    /// A fresh schema on the test MariaDB/MySQL server (`NAMEKO_TEST_MARIADB_URI`,
    /// default `mysql://root@127.0.0.1:3306/mysql`).
    ///
    /// `None`, after printing why, when the server is unreachable.
    ///
    /// # Panics
    ///
    /// When it is unreachable and `NAMEKO_REQUIRE_MARIADB=1`, or refuses to make the
    /// schema.
    pub async fn mariadb() -> Option<Self> {
        Self::on_server(
            Backend::MySql,
            &std::env::var(MARIADB_URI_VAR).unwrap_or_else(|_| DEFAULT_MARIADB.to_owned()),
            REQUIRE_MARIADB_VAR,
        )
        .await
    }

    async fn on_server(backend: Backend, admin_uri: &str, require: &str) -> Option<Self> {
        sqlx::any::install_default_drivers();
        let shown = redact_uri(admin_uri);
        let connect = tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::AnyConnection::connect(admin_uri),
        )
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        let mut admin = match connect {
            Ok(conn) => conn,
            Err(error) => {
                assert!(
                    !required(require),
                    "no {backend} server at {shown} ({error}) and {require}=1"
                );
                eprintln!(
                    "skipping: no {backend} server at {shown} ({error}; set {require}=1 to fail instead)"
                );
                return None;
            }
        };
        let name = unique_name();
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot make test database {name} on {shown}: {e}"));
        let _ = admin.close().await;
        let uri = with_database(admin_uri, &name);
        Some(Self {
            backend,
            uri,
            cleanup: Cleanup::Server {
                admin_uri: admin_uri.to_owned(),
                name,
                done: false,
            },
        })
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database's URI, for `DB_URIS` (it may hold a password: do not print it).
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// A pool on the database, to read and write it from outside the services.
    ///
    /// # Panics
    ///
    /// If the database cannot be reached.
    pub async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        PoolOptions::<Any>::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&self.uri)
            .await
            .unwrap_or_else(|e| panic!("cannot open test database {self:?}: {e}"))
    }

    /// Runs migrations on the database.
    ///
    /// # Panics
    ///
    /// If they fail.
    pub async fn migrate(&self, migrator: &Migrator) {
        let pool = self.pool().await;
        migrator
            .run(&pool)
            .await
            .unwrap_or_else(|e| panic!("migrations failed on {self:?}: {e}"));
        pool.close().await;
    }

    /// A [`Database`] named `name` on it, outside any container: for
    /// `worker_factory(...).with_value("db", database)`. Its session is ended by the test
    /// (`database.commit()`), never by a worker.
    pub async fn database(&self, name: &str) -> Database {
        Database::standalone(name, self.backend, self.pool().await)
    }

    /// Drops the database (or deletes the SQLite directory) now.
    ///
    /// # Errors
    ///
    /// If the server refuses.
    pub async fn drop_now(mut self) -> Result<(), DatabaseError> {
        self.cleanup().await
    }

    async fn cleanup(&mut self) -> Result<(), DatabaseError> {
        match &mut self.cleanup {
            Cleanup::Dir(dir) => {
                if let Some(dir) = dir.take() {
                    let _ = std::fs::remove_dir_all(dir);
                }
                Ok(())
            }
            Cleanup::Server {
                admin_uri,
                name,
                done,
            } => {
                if *done {
                    return Ok(());
                }
                *done = true;
                let mut admin = sqlx::AnyConnection::connect(admin_uri).await?;
                let sql = match self.backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                sqlx::raw_sql(&sql).execute(&mut admin).await?;
                let _ = admin.close().await;
                Ok(())
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let pending = match &self.cleanup {
            Cleanup::Dir(dir) => dir.is_some(),
            Cleanup::Server { done, .. } => !done,
        };
        if !pending {
            return;
        }
        // Dropped without `drop_now` (a test that panicked): clean up on a runtime of
        // its own, from a thread of its own, so that it works inside a runtime too.
        let mut this = Self {
            backend: self.backend,
            uri: std::mem::take(&mut self.uri),
            cleanup: std::mem::replace(&mut self.cleanup, Cleanup::Dir(None)),
        };
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), this.cleanup()).await
                });
            }
        })
        .join();
    }
}

/// `admin_uri` with its database path replaced by `name`.
fn with_database(admin_uri: &str, name: &str) -> String {
    let (base, query) = admin_uri
        .split_once('?')
        .map_or((admin_uri, None), |(b, q)| (b, Some(q)));
    let (scheme, rest) = base.split_once("://").unwrap_or(("", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut uri = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    uri
}

impl crate::TestCluster {
    /// Gives the services `database` as `DB_URIS[key]` (`"<service>:<name>"`); the
    /// cluster drops it at [`shutdown`](crate::TestCluster::shutdown), after its
    /// containers stopped.
    ///
    /// ```no_run
    /// use nameko_testing::{TestCluster, TestDatabase};
    ///
    /// # async fn f() {
    /// let Some(db) = TestDatabase::postgres().await else { return }; // skips without a server
    /// let cluster = TestCluster::memory().with_database("authors_service:main", db);
    /// # }
    /// ```
    #[must_use]
    pub fn with_database(mut self, key: &str, database: TestDatabase) -> Self {
        let mut uris = self
            .config()
            .get("DB_URIS")
            .and_then(serde_json::Value::as_object)
            .cloned()
            .unwrap_or_default();
        uris.insert(key.to_owned(), database.uri().into());
        self = self.with_config("DB_URIS", serde_json::Value::Object(uris));
        self.databases.push((key.to_owned(), database));
        self
    }

    /// The test database given as `key`, to look at it from outside the services.
    #[must_use]
    pub fn database(&self, key: &str) -> Option<&TestDatabase> {
        self.databases
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, d)| d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_path_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("mysql://root:pw@h:3306/mysql?ssl-mode=disabled", "x"),
            "mysql://root:pw@h:3306/x?ssl-mode=disabled"
        );
        assert_eq!(with_database("mysql://root@h", "x"), "mysql://root@h/x");
    }
}
