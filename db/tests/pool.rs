//! A pool smaller than the load: callers wait for a connection, for a bounded time,
//! and nothing deadlocks.

mod support;

use std::time::Duration;

use futures_util::future::join_all;
use nameko_sqlx::{Backend, DatabaseUnavailable};
use serde_json::json;
use support::{Writer, cluster_with, test_database};

/// 200 concurrent calls, 50 workers, 5 connections: every call is answered. Half
/// write, half hold their connection 10 ms (a write transaction held open would
/// serialize SQLite's one writer instead of testing the pool).
async fn two_hundred_calls_on_five_connections(backend: Backend) {
    let Some(db) = test_database(backend).await else {
        return;
    };
    let mut cluster = cluster_with(db)
        .with_config("max_workers", 50)
        .with_config("DB_POOL", json!({"size": 5, "acquire_timeout": 30}));
    cluster.start::<Writer>().await;
    let proxy = cluster.proxy().await;
    let writer = proxy.service("writer");
    let started = tokio::time::Instant::now();
    let calls = (0..200).map(|i| {
        let writer = writer.clone();
        async move {
            if i % 2 == 0 {
                writer.call::<i64>("create", (format!("author {i}"),)).await
            } else {
                writer.call::<i64>("count_then_sleep", (0.01,)).await
            }
        }
    });
    let results = tokio::time::timeout(Duration::from_secs(60), join_all(calls))
        .await
        .expect("200 calls on a pool of 5 must all be answered, not deadlock");
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        failed.first()
    );
    let count: i64 = writer.call("count", ()).await.unwrap();
    assert_eq!(count, 100);
    eprintln!(
        "{backend}: 200 calls on 5 connections in {:?}",
        started.elapsed()
    );
    cluster.shutdown().await;
}

/// Connections all held by slow workers: another caller waits `acquire_timeout`, then
/// fails with `DatabaseUnavailable`, instead of hanging; once they finish, calls
/// succeed again.
async fn an_exhausted_pool_fails_callers_after_the_acquire_timeout(backend: Backend) {
    let Some(db) = test_database(backend).await else {
        return;
    };
    let mut cluster = cluster_with(db)
        .with_config("max_workers", 10)
        .with_config("DB_POOL", json!({"size": 2, "acquire_timeout": 0.5}));
    cluster.start::<Writer>().await;
    let proxy = cluster.proxy().await;
    let writer = proxy.service("writer");
    let slow: Vec<_> = (0..2)
        .map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .call::<i64>("create_then_sleep", (format!("slow {i}"), 2.0))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = tokio::time::Instant::now();
    let err = writer
        .call::<i64>("create", ("starved",))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        err.decode::<DatabaseUnavailable>().is_some(),
        "expected DatabaseUnavailable, got {err:?}"
    );
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(2),
        "waited {waited:?}"
    );
    for task in slow {
        task.await.unwrap().unwrap();
    }
    let id: i64 = writer.call("create", ("after",)).await.unwrap();
    assert!(id > 0);
    cluster.shutdown().await;
}

macro_rules! on_every_backend {
    ($($backend:ident => $name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn two_hundred_concurrent_calls_on_a_pool_of_five() {
                two_hundred_calls_on_five_connections(Backend::$backend).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn an_exhausted_pool_makes_callers_wait_a_bounded_time() {
                an_exhausted_pool_fails_callers_after_the_acquire_timeout(Backend::$backend).await;
            }
        }
    )*};
}

on_every_backend! {
    Sqlite => sqlite,
    Postgres => postgres,
    MySql => mariadb,
}
