//! The `Database` a worker gets: its session, explicit transactions, the pool, retries.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::pool::Pool;
use sqlx::{Any, Transaction};

use crate::session::{SessionSlot, SlotState};
use crate::{
    Backend, DatabaseError, DatabaseProvider, Driver, RetryPolicy, RetryableError, Session,
};

/// What the body of a [`Database::transaction_retry`] returns.
pub type TransactionFuture<'t, T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 't>>;

/// A database, as one worker sees it (nameko-sqlalchemy's `Database` and
/// `DatabaseSession`).
///
/// - [`session`](Database::session): the worker's transaction, begun on first use,
///   committed when the method returns `Ok` (before the reply is sent), rolled back when
///   it returns an error, panics, or the worker is cancelled. Nothing half-written
///   survives a failed worker.
/// - [`begin`](Database::begin): a transaction of your own, committed when you say so
///   (dropped uncommitted, it rolls back).
/// - [`pool`](Database::pool): the pool itself, for reads outside any transaction.
/// - [`transaction_retry`](Database::transaction_retry): a transaction run again on
///   serialization failures, deadlocks and lost connections.
///
/// Declare it as a field of a service; the database name is the field's, or the one
/// given with [`Database::named`]; its URI is `DB_URIS["<service>:<name>"]`. `DB` is
/// [`sqlx::Any`] by default (the URI chooses the backend) or a typed sqlx database.
///
/// ```
/// use nameko::prelude::*;
/// use nameko_sqlx::{Database, DatabaseError};
///
/// #[derive(Dependencies)]
/// struct Counter {
///     #[dependency(Database::named("main"))]
///     db: Database,
/// }
///
/// #[service(name = "counter")]
/// impl Counter {
///     #[rpc]
///     async fn bump(&self) -> Result<i64, DatabaseError> {
///         let mut session = self.db.session().await?;
///         sqlx::query("UPDATE counter SET n = n + 1").execute(&mut *session).await?;
///         let n: i64 = sqlx::query_scalar("SELECT n FROM counter").fetch_one(&mut *session).await?;
///         Ok(n) // committed before the caller gets `n`
///     }
/// }
/// ```
pub struct Database<DB: Driver = Any> {
    shared: Arc<Shared<DB>>,
    slot: Arc<SessionSlot<DB>>,
}

/// What every worker's `Database` of one provider shares.
pub(crate) struct Shared<DB: Driver> {
    pub(crate) key: String,
    pub(crate) backend: Backend,
    pub(crate) pool: Pool<DB>,
    pub(crate) retry: RetryPolicy,
}

impl<DB: Driver> Clone for Database<DB> {
    /// A handle on the same database and the same session.
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            slot: self.slot.clone(),
        }
    }
}

impl<DB: Driver> fmt::Debug for Database<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("database", &self.shared.key)
            .field("backend", &self.shared.backend)
            .finish_non_exhaustive()
    }
}

impl Database<Any> {
    /// The provider of a database called `name` (its URI is
    /// `DB_URIS["<service>:<name>"]`): `#[dependency(Database::named("main"))]`.
    #[must_use]
    pub fn named(name: impl Into<String>) -> DatabaseProvider<Any> {
        DatabaseProvider::new(name)
    }
}

impl<DB: Driver> Database<DB> {
    pub(crate) fn new(shared: Arc<Shared<DB>>, slot: Arc<SessionSlot<DB>>) -> Self {
        Self { shared, slot }
    }

    /// A database outside any container, over `pool`: for scripts and for
    /// `worker_factory` tests. Its session is never ended by a worker: end it with
    /// [`commit`](Database::commit) or [`rollback`](Database::rollback) (dropped, it
    /// rolls back). `backend` is the pool's (for [`Database::backend`]).
    #[must_use]
    pub fn standalone(name: impl Into<String>, backend: Backend, pool: Pool<DB>) -> Self {
        Self::new(
            Arc::new(Shared {
                key: name.into(),
                backend,
                pool,
                retry: RetryPolicy::default(),
            }),
            Arc::new(SessionSlot::new()),
        )
    }

    /// The same database with another [`RetryPolicy`] for
    /// [`transaction_retry`](Database::transaction_retry).
    #[must_use]
    pub fn with_retry(self, policy: RetryPolicy) -> Self {
        Self {
            shared: Arc::new(Shared {
                key: self.shared.key.clone(),
                backend: self.shared.backend,
                pool: self.shared.pool.clone(),
                retry: policy,
            }),
            slot: self.slot,
        }
    }

    /// The database: `"<service>:<name>"`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.shared.key
    }

    /// The backend the URI names (for SQL that differs between them).
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.shared.backend
    }

    /// The pool, for reads that need no transaction: `query.fetch_all(db.pool())`.
    #[must_use]
    pub fn pool(&self) -> &Pool<DB> {
        &self.shared.pool
    }

    /// The worker's session: its transaction, begun now if this is its first use.
    ///
    /// # Errors
    ///
    /// [`DatabaseError::Unavailable`] if no connection could be had within the pool's
    /// acquire timeout; [`DatabaseError::SessionInUse`] while another [`Session`] of
    /// this worker is alive; [`DatabaseError::SessionFinished`] after the worker ended.
    pub async fn session(&self) -> Result<Session<'_, DB>, DatabaseError> {
        self.slot.session(&self.shared.key, &self.shared.pool).await
    }

    /// Commits the session's transaction now; the next [`session`](Database::session)
    /// begins another.
    ///
    /// # Errors
    ///
    /// If the commit fails; the transaction is then rolled back.
    pub async fn commit(&self) -> Result<(), DatabaseError> {
        self.slot.end(&self.shared.key, true, SlotState::Idle).await
    }

    /// Rolls the session's transaction back now; the next
    /// [`session`](Database::session) begins another.
    ///
    /// # Errors
    ///
    /// If the rollback fails (the connection is lost: the server rolls back).
    pub async fn rollback(&self) -> Result<(), DatabaseError> {
        self.slot
            .end(&self.shared.key, false, SlotState::Idle)
            .await
    }

    /// A transaction of its own, apart from the session: commit it with
    /// `tx.commit().await`; dropped uncommitted, it rolls back.
    ///
    /// # Errors
    ///
    /// [`DatabaseError::Unavailable`] if no connection could be had.
    pub async fn begin(&self) -> Result<Transaction<'static, DB>, DatabaseError> {
        self.shared.pool.begin().await.map_err(|e| self.error(e))
    }

    /// A sqlx error of this database, classified (see [`DatabaseError::from_sqlx`]).
    #[must_use]
    pub fn error(&self, error: sqlx::Error) -> DatabaseError {
        DatabaseError::from_sqlx(&*self.shared.key, error)
    }

    /// Runs `body` in a transaction of its own and commits it, running it again (in a
    /// new transaction, after a backoff) when it or the commit fails with an error that
    /// may pass: a serialization failure, a deadlock, a lock timeout, a busy SQLite
    /// file, a lost connection (nameko-sqlalchemy's `transaction_retry`). The policy is
    /// the provider's ([`DatabaseProvider::retry`]); the last error is returned.
    ///
    /// `body` is called once per run with the transaction and returns a boxed future
    /// (as sqlx's own `Connection::transaction`): move what it needs into it, cloned per
    /// run.
    ///
    /// ```no_run
    /// # async fn f(db: nameko_sqlx::Database) -> Result<(), nameko_sqlx::DatabaseError> {
    /// use nameko_sqlx::DatabaseError;
    ///
    /// let amount = 10_i64;
    /// let moved = db
    ///     .transaction_retry(move |tx| {
    ///         Box::pin(async move {
    ///             sqlx::query("UPDATE accounts SET balance = balance - $1 WHERE id = 1")
    ///                 .bind(amount)
    ///                 .execute(&mut **tx)
    ///                 .await?;
    ///             sqlx::query("UPDATE accounts SET balance = balance + $1 WHERE id = 2")
    ///                 .bind(amount)
    ///                 .execute(&mut **tx)
    ///                 .await?;
    ///             Ok::<_, DatabaseError>(amount)
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The error of the last run, or of beginning a transaction.
    pub async fn transaction_retry<T, E, F>(&self, mut body: F) -> Result<T, E>
    where
        F: for<'t> FnMut(&'t mut Transaction<'static, DB>) -> TransactionFuture<'t, T, E> + Send,
        T: Send,
        E: From<DatabaseError> + RetryableError + fmt::Display + Send,
    {
        let policy = self.shared.retry;
        let mut attempt: u32 = 1;
        loop {
            let result = match self.begin().await {
                Ok(mut tx) => match body(&mut tx).await {
                    Ok(value) => match tx.commit().await {
                        Ok(()) => Ok(value),
                        Err(error) => Err(E::from(self.error(error))),
                    },
                    Err(error) => {
                        let _ = tx.rollback().await;
                        Err(error)
                    }
                },
                Err(error) => Err(E::from(error)),
            };
            match result {
                Err(error) if error.is_retryable() && attempt < policy.get_max_attempts() => {
                    let wait = policy.backoff(attempt);
                    tracing::warn!(database = %self.shared.key, attempt, %error, retry_in = ?wait, "transaction failed; running it again");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}
