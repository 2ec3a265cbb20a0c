//! Errors, and the form they take on nameko's wire.

use nameko_core::config::ConfigError;
use nameko_core::config::redact::redact_uri;
use nameko_core::errors::{FromRemoteError, IntoRemoteError, NamekoError, RemoteError, RpcError};
use nameko_core::rpc::ExpectedError;
use sqlx::migrate::MigrateError;

/// `exc_path` of [`DatabaseUnavailable`].
pub const DATABASE_UNAVAILABLE: &str = "nameko_sqlx.exceptions.DatabaseUnavailable";
/// `exc_path` of every other database error callers see.
pub const DATABASE_ERROR: &str = "nameko_sqlx.exceptions.DatabaseError";

/// What went wrong with a database.
///
/// A worker that fails with it sends callers `DatabaseUnavailable` when the database
/// could not be reached (connection refused or lost, no connection free within the
/// pool's acquire timeout, the server shutting down), and `DatabaseError` otherwise; the
/// message never holds a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// No URI is configured for the database.
    #[error("no URI for database `{key}`: set DB_URIS[\"{key}\"]")]
    NotConfigured {
        /// `"<service>:<database>"`.
        key: String,
    },
    /// The URI cannot be used.
    #[error("the URI of database `{key}` ({}) cannot be used: {source}", redact_uri(.uri))]
    InvalidUri {
        /// `"<service>:<database>"`.
        key: String,
        /// The URI (printed without its password).
        uri: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database cannot be reached.
    #[error("database{} is unavailable: {source}", name(.database))]
    Unavailable {
        /// The database (`"<service>:<database>"`), when known.
        database: String,
        /// What sqlx said.
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed.
    #[error("database{} error: {source}", name(.database))]
    Query {
        /// The database (`"<service>:<database>"`), when known.
        database: String,
        /// What sqlx said.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("migrations of database{} failed: {source}", name(.database))]
    Migrate {
        /// The database.
        database: String,
        /// What sqlx said.
        #[source]
        source: MigrateError,
    },
    /// The worker's session is already borrowed (a [`Session`](crate::Session) is still
    /// alive): use one session at a time.
    #[error("the session of database{} is already in use by this worker", name(.database))]
    SessionInUse {
        /// The database.
        database: String,
    },
    /// The worker's session was committed or rolled back with the worker: it cannot be
    /// used any more (a clone of the dependency kept past its worker).
    #[error("the session of database{} ended with its worker", name(.database))]
    SessionFinished {
        /// The database.
        database: String,
    },
    /// The database's pool is not open (its container has not started, or stopped).
    #[error("database{} is not open", name(.database))]
    NotOpen {
        /// The database.
        database: String,
    },
}

/// ` `name`` when the database is known, nothing otherwise.
fn name(database: &str) -> String {
    if database.is_empty() {
        String::new()
    } else {
        format!(" `{database}`")
    }
}

impl DatabaseError {
    /// A sqlx error on `database`, classified: [`DatabaseError::Unavailable`] when the
    /// database could not be reached, [`DatabaseError::Query`] otherwise.
    #[must_use]
    pub fn from_sqlx(database: impl Into<String>, source: sqlx::Error) -> Self {
        let database = database.into();
        if is_unavailable(&source) {
            Self::Unavailable { database, source }
        } else {
            Self::Query { database, source }
        }
    }

    /// Whether the database could not be reached.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether running the transaction again may succeed: a serialization failure, a
    /// deadlock, a lock timeout, a busy SQLite file, or a lost connection.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable { .. } => true,
            Self::Query { source, .. } => is_retryable(source),
            _ => false,
        }
    }

    /// The sqlx error, if there is one.
    #[must_use]
    pub fn sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            Self::InvalidUri { source, .. }
            | Self::Unavailable { source, .. }
            | Self::Query { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for DatabaseError {
    fn from(source: sqlx::Error) -> Self {
        Self::from_sqlx(String::new(), source)
    }
}

impl IntoRemoteError for DatabaseError {
    /// `DatabaseUnavailable` for a database that cannot be reached, `DatabaseError` for
    /// anything else; passwords are redacted from the message.
    fn into_remote_error(self) -> RemoteError {
        remote_error(&self)
    }
}

fn remote_error(error: &DatabaseError) -> RemoteError {
    let message = redact_uri(&error.to_string());
    let (exc_type, exc_path) = if error.is_unavailable() {
        ("DatabaseUnavailable", DATABASE_UNAVAILABLE)
    } else {
        ("DatabaseError", DATABASE_ERROR)
    };
    RemoteError::new(exc_type, exc_path, [message.clone()], message)
}

impl ExpectedError for DatabaseError {
    /// Not rebuilt (it holds the driver's error): a typed client's caller gets the
    /// remote `DatabaseError`/`DatabaseUnavailable` as [`CallError::Rpc`](nameko_core::rpc::CallError::Rpc),
    /// to decode with `RpcError::decode::<DatabaseUnavailable>()`.
    fn from_rpc_error(error: RpcError) -> Result<Self, RpcError> {
        Err(error)
    }

    fn to_remote_error(&self) -> RemoteError {
        remote_error(self)
    }
}

/// A database could not be reached: the error a caller gets, to decode with
/// [`RpcError::decode`](nameko_core::errors::RpcError::decode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DatabaseUnavailable {
    /// What the service said.
    pub message: String,
}

impl NamekoError for DatabaseUnavailable {
    fn exc_type() -> &'static str {
        "DatabaseUnavailable"
    }

    fn exc_path() -> &'static str {
        DATABASE_UNAVAILABLE
    }
}

impl FromRemoteError for DatabaseUnavailable {
    fn from_remote(error: &RemoteError) -> Option<Self> {
        Some(Self {
            message: error.message().to_owned(),
        })
    }
}

/// Errors a [`transaction_retry`](crate::Database::transaction_retry) may run again for.
///
/// Implement it for the error type of your transactions (usually by asking the
/// [`DatabaseError`] it holds).
pub trait RetryableError {
    /// Whether running the transaction again may succeed.
    fn is_retryable(&self) -> bool;
}

impl RetryableError for DatabaseError {
    fn is_retryable(&self) -> bool {
        DatabaseError::is_retryable(self)
    }
}

impl RetryableError for sqlx::Error {
    fn is_retryable(&self) -> bool {
        is_retryable(self)
    }
}

/// SQLSTATE classes and codes that mean the connection or the server went away.
fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => match db.code() {
            // connection exceptions; admin/crash shutdown, cannot connect now; too many
            // connections
            Some(code) => {
                code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
            }
            None => false,
        },
        _ => false,
    }
}

fn is_retryable(error: &sqlx::Error) -> bool {
    if is_unavailable(error) {
        return true;
    }
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // deadlock, lock wait timeout
        return matches!(mysql.number(), 1213 | 1205);
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes
        return db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6));
    }
    // serialization failure, deadlock detected
    db.code().is_some_and(|c| matches!(&*c, "40001" | "40P01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_databases_are_database_unavailable_on_the_wire() {
        let error = DatabaseError::from_sqlx("svc:main", sqlx::Error::PoolTimedOut);
        assert!(error.is_unavailable() && error.is_retryable());
        let remote = error.into_remote_error();
        assert_eq!(remote.exc_type, "DatabaseUnavailable");
        assert_eq!(remote.exc_path, DATABASE_UNAVAILABLE);
        assert!(remote.value.contains("`svc:main`"), "{}", remote.value);
        let back: DatabaseUnavailable = remote.decode().unwrap();
        assert_eq!(back.message, remote.value);
    }

    #[test]
    fn other_errors_are_database_error_and_not_retried() {
        let error = DatabaseError::from_sqlx("svc:main", sqlx::Error::RowNotFound);
        assert!(!error.is_unavailable() && !error.is_retryable());
        assert_eq!(error.into_remote_error().exc_type, "DatabaseError");
    }

    #[test]
    fn uris_in_messages_lose_their_password() {
        let error = DatabaseError::InvalidUri {
            key: "svc:main".to_owned(),
            uri: "postgres://app:s3cret@db/app".to_owned(),
            source: sqlx::Error::Configuration("bad".into()),
        };
        let text = error.to_string();
        assert!(
            !text.contains("s3cret") && text.contains("app:***@db"),
            "{text}"
        );
        assert!(!error.into_remote_error().value.contains("s3cret"));
    }
}
