//! The database stops in the middle of a load: calls fail with `DatabaseUnavailable`
//! within the acquire timeout, the service stays up, and serves again within 5 s of the
//! database's return.
//!
//! The database here is a private PostgreSQL server (initdb into a temporary directory,
//! on a port of its own), stopped and started with `pg_ctl`: the shared server on 5432
//! is never touched.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nameko::container::ContainerState;
use nameko_sqlx::DatabaseUnavailable;
use nameko_testing::TestCluster;
use parking_lot::Mutex;
use serde_json::json;
use support::Writer;
use support::private_postgres::PrivatePostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_stopped_mid_load_fails_calls_clearly_and_recovers() {
    let Some(server) = tokio::task::block_in_place(PrivatePostgres::start) else {
        return;
    };
    let mut cluster = TestCluster::memory()
        .with_config("DB_URIS", json!({"writer:main": server.uri()}))
        .with_config("DB_POOL", json!({"size": 4, "acquire_timeout": 1}));
    let container = cluster.start::<Writer>().await;
    let proxy = cluster.proxy().await;
    let writer = proxy.service("writer");

    // Load: 4 callers in a loop, recording every outcome.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(Mutex::new(Vec::<String>::new()));
    let slowest_failure = Arc::new(Mutex::new(Duration::ZERO));
    let last_ok = Arc::new(Mutex::new(tokio::time::Instant::now()));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (writer, stop, ok, unavailable, other, slowest_failure, last_ok) = (
            writer.clone(),
            stop.clone(),
            ok.clone(),
            unavailable.clone(),
            other.clone(),
            slowest_failure.clone(),
            last_ok.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let started = tokio::time::Instant::now();
                match writer
                    .call::<i64>("create", (format!("{worker}-{i}"),))
                    .await
                {
                    Ok(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        *last_ok.lock() = tokio::time::Instant::now();
                    }
                    Err(e) if e.decode::<DatabaseUnavailable>().is_some() => {
                        unavailable.fetch_add(1, Ordering::Relaxed);
                        let took = started.elapsed();
                        {
                            let mut slowest = slowest_failure.lock();
                            *slowest = (*slowest).max(took);
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => other.lock().push(e.to_string()),
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = ok.load(Ordering::Relaxed);
    assert!(before > 0, "no call succeeded before the outage");

    tokio::task::block_in_place(|| server.stop());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = unavailable.load(Ordering::Relaxed);
    assert!(
        during > 0,
        "calls during the outage must fail with DatabaseUnavailable"
    );
    assert_eq!(
        container.state(),
        ContainerState::Running,
        "the service stays up"
    );

    let ok_at_return = ok.load(Ordering::Relaxed);
    let restarting = tokio::time::Instant::now();
    // `pg_ctl start -w` returns once the server accepts connections: its return.
    tokio::task::block_in_place(|| server.start_again());
    let returned = tokio::time::Instant::now();
    let deadline = returned + Duration::from_secs(5);
    while ok.load(Ordering::Relaxed) == ok_at_return {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no call succeeded within 5 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered_in = last_ok.lock().saturating_duration_since(restarting);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let slowest = *slowest_failure.lock();
    eprintln!(
        "ok {} / unavailable {} / slowest failure {slowest:?} / served again {recovered_in:?} after the restart began",
        ok.load(Ordering::Relaxed),
        unavailable.load(Ordering::Relaxed)
    );
    // Failures come within the acquire timeout (1 s), plus the call's own overhead.
    assert!(
        slowest < Duration::from_secs(3),
        "slowest failure took {slowest:?}"
    );
    let other = other.lock().clone();
    // A call in flight when the server stops may fail on its way (the connection is
    // cut mid-statement): that too must say the database is unavailable.
    assert!(
        other.is_empty(),
        "failures other than DatabaseUnavailable: {other:?}"
    );
    cluster.shutdown().await;
}
