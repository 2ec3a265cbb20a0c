//! The worker's session: one transaction, begun on first use, ended with the worker.

use std::fmt;
use std::ops::{Deref, DerefMut};

use sqlx::Transaction;
use sqlx::pool::Pool;

use crate::{DatabaseError, Driver};

pub(crate) enum SlotState<DB: Driver> {
    /// No transaction yet.
    Idle,
    /// A transaction is open.
    Open(Transaction<'static, DB>),
    /// The worker finished: no more transactions.
    Finished,
}

/// The per-worker slot of a session.
pub(crate) struct SessionSlot<DB: Driver> {
    state: tokio::sync::Mutex<SlotState<DB>>,
}

impl<DB: Driver> SessionSlot<DB> {
    pub(crate) fn new() -> Self {
        Self {
            state: tokio::sync::Mutex::new(SlotState::Idle),
        }
    }

    /// The open transaction, begun now if there is none.
    pub(crate) async fn session<'a>(
        &'a self,
        database: &str,
        pool: &Pool<DB>,
    ) -> Result<Session<'a, DB>, DatabaseError> {
        let mut guard = self
            .state
            .try_lock()
            .map_err(|_| DatabaseError::SessionInUse {
                database: database.to_owned(),
            })?;
        match &*guard {
            SlotState::Open(_) => {}
            SlotState::Idle => {
                let tx = pool
                    .begin()
                    .await
                    .map_err(|e| DatabaseError::from_sqlx(database, e))?;
                *guard = SlotState::Open(tx);
            }
            SlotState::Finished => {
                return Err(DatabaseError::SessionFinished {
                    database: database.to_owned(),
                });
            }
        }
        Ok(Session { guard })
    }

    /// Commits (or rolls back) the open transaction, if any; `then` is the state after.
    pub(crate) async fn end(
        &self,
        database: &str,
        commit: bool,
        then: SlotState<DB>,
    ) -> Result<(), DatabaseError> {
        let mut guard = self.state.lock().await;
        let state = std::mem::replace(&mut *guard, then);
        drop(guard);
        let SlotState::Open(tx) = state else {
            return Ok(());
        };
        let result = if commit {
            tx.commit().await
        } else {
            tx.rollback().await
        };
        result.map_err(|e| DatabaseError::from_sqlx(database, e))
    }
}

/// The worker's transaction, borrowed: use it as a connection
/// (`query.execute(&mut *session)`). It is committed when the worker's method returns
/// `Ok`, rolled back when it fails, panics or is cancelled.
///
/// One `Session` of a worker exists at a time: drop it before asking for it again.
pub struct Session<'a, DB: Driver> {
    guard: tokio::sync::MutexGuard<'a, SlotState<DB>>,
}

impl<DB: Driver> fmt::Debug for Session<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl<DB: Driver> Deref for Session<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        match &*self.guard {
            SlotState::Open(tx) => tx,
            _ => unreachable!("a Session is only made over an open transaction"),
        }
    }
}

impl<DB: Driver> DerefMut for Session<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        match &mut *self.guard {
            SlotState::Open(tx) => tx,
            _ => unreachable!("a Session is only made over an open transaction"),
        }
    }
}
