//! A worker's session commits when its method returns `Ok` (before the reply) and rolls
//! back when it returns an error, panics, or is cancelled (a shutdown deadline, a kill),
//! on SQLite, PostgreSQL and MariaDB; checked by reading the table from outside.

mod support;

use std::time::Duration;

use nameko_sqlx::Backend;
use support::{Writer, cluster_with, rows_named, test_database};

async fn commit_and_rollback(backend: Backend) {
    let Some(db) = test_database(backend).await else {
        return;
    };
    let mut cluster = cluster_with(db);
    cluster.start::<Writer>().await;
    let proxy = cluster.proxy().await;
    let writer = proxy.service("writer");
    let db = cluster.database("writer:main").unwrap();

    // Ok: committed before the reply, so it is there as soon as the caller knows.
    let id: i64 = writer.call("create", ("kept",)).await.unwrap();
    assert!(id > 0);
    assert_eq!(rows_named(db, "kept").await, 1);

    // An error after the insert: rolled back, and the caller gets the error.
    let err = writer
        .call::<i64>("create_then_fail", ("failed",))
        .await
        .unwrap_err();
    assert_eq!(err.remote().unwrap().exc_type, "ValueError");
    assert_eq!(rows_named(db, "failed").await, 0);

    // A panic after the insert: rolled back.
    let err = writer
        .call::<i64>("create_then_panic", ("panicked",))
        .await
        .unwrap_err();
    assert_eq!(err.remote().unwrap().exc_type, "WorkerPanic");
    assert_eq!(rows_named(db, "panicked").await, 0);

    // The connections went back to the pool clean: more work goes through.
    let count: i64 = writer.call("count", ()).await.unwrap();
    assert_eq!(count, 1);
    cluster.shutdown().await;
}

/// A worker still running when its container is stopped past `SHUTDOWN_TIMEOUT`, or
/// killed, is cancelled: its transaction rolls back.
async fn rollback_when_cancelled(backend: Backend, kill: bool) {
    let Some(db) = test_database(backend).await else {
        return;
    };
    let mut cluster = cluster_with(db).with_config("SHUTDOWN_TIMEOUT", 1);
    let container = cluster.start::<Writer>().await;
    let proxy = cluster.proxy().await;
    let _pending = proxy
        .service("writer")
        .call_async::<i64>("create_then_sleep", ("cancelled", 60.0))
        .await
        .unwrap();
    // Wait until the worker has written its row (not committed: invisible outside).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while container.running_workers() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let db = cluster.database("writer:main").unwrap();
    assert_eq!(rows_named(db, "cancelled").await, 0, "not committed yet");

    let started = tokio::time::Instant::now();
    if kill {
        container.kill().await;
    } else {
        let _ = container.stop().await;
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        rows_named(db, "cancelled").await,
        0,
        "a cancelled worker's insert must roll back"
    );
    // Also after the dropped transaction's connection went back to the pool or closed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rows_named(db, "cancelled").await, 0);
    cluster.shutdown().await;
}

macro_rules! on_every_backend {
    ($($backend:ident => $name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn commit_on_ok_rollback_on_error_and_panic() {
                commit_and_rollback(Backend::$backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rollback_when_the_worker_is_cancelled_at_the_shutdown_deadline() {
                rollback_when_cancelled(Backend::$backend, false).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rollback_when_the_container_is_killed() {
                rollback_when_cancelled(Backend::$backend, true).await;
            }
        }
    )*};
}

on_every_backend! {
    Sqlite => sqlite,
    Postgres => postgres,
    MySql => mariadb,
}
