//! `transaction_retry`: a transaction that fails with a serialization failure runs
//! again, in a new transaction, up to the policy's attempts.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use nameko_sqlx::{Database, DatabaseError, RetryPolicy};
use nameko_testing::TestDatabase;

/// Runs, in attempt 1 only, a concurrent SERIALIZABLE transaction that reads and writes
/// what `tx` read, so that `tx`'s commit fails with a serialization failure (40001).
async fn conflicting_transfer(db: &Database, attempts: &AtomicU32) -> Result<i64, DatabaseError> {
    db.transaction_retry(|tx| {
        let db = db.clone();
        let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .execute(&mut **tx)
                .await?;
            let total: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(n), 0)::BIGINT FROM ledger")
                .fetch_one(&mut **tx)
                .await?;
            if attempt == 1 {
                let mut other = db.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                    .execute(&mut *other)
                    .await?;
                let _: i64 = sqlx::query_scalar("SELECT COALESCE(SUM(n), 0)::BIGINT FROM ledger")
                    .fetch_one(&mut *other)
                    .await?;
                sqlx::query("INSERT INTO ledger (n) VALUES (1)")
                    .execute(&mut *other)
                    .await?;
                other.commit().await.map_err(|e| db.error(e))?;
            }
            sqlx::query("INSERT INTO ledger (n) VALUES ($1)")
                .bind(total + 10)
                .execute(&mut **tx)
                .await?;
            Ok(total)
        })
    })
    .await
}

async fn ledger() -> Option<(TestDatabase, Database)> {
    let db = TestDatabase::postgres().await?;
    let pool = db.pool().await;
    sqlx::query("CREATE TABLE ledger (n BIGINT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let database = db.database("bank:main").await;
    Some((db, database))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serialization_failure_runs_the_transaction_again() {
    let Some((db, database)) = ledger().await else {
        return;
    };
    let attempts = AtomicU32::new(0);
    let total = conflicting_transfer(&database, &attempts).await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(total, 1, "the second run saw the other transaction's row");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger")
        .fetch_one(database.pool())
        .await
        .unwrap();
    assert_eq!(
        rows, 2,
        "one row of the other transaction, one of the retried one"
    );
    drop(database);
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_attempts_left_the_serialization_failure_is_returned() {
    let Some((db, database)) = ledger().await else {
        return;
    };
    let pool = database.pool().clone();
    let once = Database::standalone("bank:main", nameko_sqlx::Backend::Postgres, pool.clone())
        .with_retry(RetryPolicy::default().max_attempts(1));
    let attempts = AtomicU32::new(0);
    let error = conflicting_transfer(&once, &attempts).await.unwrap_err();
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    assert!(error.is_retryable(), "{error}");
    let code = error
        .sqlx()
        .and_then(|e| e.as_database_error())
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("40001"), "{error}");
    drop((once, database));
    pool.close().await;
    db.drop_now().await.unwrap();
}
