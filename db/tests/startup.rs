//! Opening databases at container start: a missing URI, a database that is down
//! (`AMQP_STARTUP: fail_fast` fails at once with a clear error, `wait` waits for it), and
//! migrations run safely by several instances starting together.

mod support;

use std::time::Duration;

use futures_util::future::join_all;
use nameko_sqlx::Backend;
use nameko_testing::TestCluster;
use serde_json::json;
use support::private_postgres::PrivatePostgres;
use support::{Writer, test_database};

fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_uri_refuses_to_start_and_names_the_key() {
    let mut cluster = TestCluster::memory();
    let container = cluster.container::<Writer>().await;
    let error = container.start().await.unwrap_err().to_string();
    assert!(error.contains(r#"DB_URIS["writer:main"]"#), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_down_at_start_fails_fast_without_showing_the_password() {
    let uri = format!("postgres://app:s3cret@127.0.0.1:{}/app", unused_port());
    let mut cluster = TestCluster::memory().with_config("DB_URIS", json!({ "writer:main": uri }));
    let container = cluster.container::<Writer>().await;
    let started = tokio::time::Instant::now();
    let error = container.start().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.contains("`writer:main` is unavailable"),
        "the error names the database: {error}"
    );
    assert!(!error.contains("s3cret"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_amqp_startup_wait_the_container_waits_for_the_database() {
    let Some(server) = tokio::task::block_in_place(PrivatePostgres::start) else {
        return;
    };
    tokio::task::block_in_place(|| server.stop());
    let mut cluster = TestCluster::memory()
        .with_config("DB_URIS", json!({"writer:main": server.uri()}))
        .with_config("AMQP_STARTUP", "wait")
        .with_config("AMQP_STARTUP_TIMEOUT", 30);
    let container = cluster.container::<Writer>().await;
    let starting = tokio::spawn({
        let container = container.clone();
        async move { container.start().await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !starting.is_finished(),
        "the container must wait for the database"
    );
    tokio::task::block_in_place(|| server.start_again());
    tokio::time::timeout(Duration::from_secs(15), starting)
        .await
        .expect("the container starts once the database answers")
        .unwrap()
        .unwrap();
    let proxy = cluster.proxy().await;
    let id: i64 = proxy
        .service("writer")
        .call("create", ("late",))
        .await
        .unwrap();
    assert!(id > 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_amqp_startup_wait_a_database_that_never_comes_fails_after_the_timeout() {
    let uri = format!("postgres://postgres@127.0.0.1:{}/app", unused_port());
    let mut cluster = TestCluster::memory()
        .with_config("DB_URIS", json!({ "writer:main": uri }))
        .with_config("AMQP_STARTUP", "wait")
        .with_config("AMQP_STARTUP_TIMEOUT", 2);
    let container = cluster.container::<Writer>().await;
    let started = tokio::time::Instant::now();
    let error = container.start().await.unwrap_err().to_string();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    assert!(error.contains("unavailable"), "{error}");
}

/// Four processes' worth of containers (four clusters, each its own process scope)
/// start at once on one fresh database: all start, and each migration is applied once.
async fn instances_starting_together_migrate_once(backend: Backend) {
    let Some(db) = test_database(backend).await else {
        return;
    };
    let uri = db.uri().to_owned();
    let starts = (0..4).map(|_| {
        let uri = uri.clone();
        async move {
            let mut cluster =
                TestCluster::memory().with_config("DB_URIS", json!({ "writer:main": uri }));
            cluster.start::<Writer>().await;
            cluster
        }
    });
    let clusters = join_all(starts).await;
    let pool = db.pool().await;
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, 1);
    let authors: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM authors")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(authors, 0);
    pool.close().await;
    for cluster in clusters {
        cluster.shutdown().await;
    }
    db.drop_now().await.unwrap();
}

macro_rules! on_every_backend {
    ($($backend:ident => $name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn instances_starting_together_apply_migrations_once() {
                instances_starting_together_migrate_once(Backend::$backend).await;
            }
        }
    )*};
}

on_every_backend! {
    Sqlite => sqlite,
    Postgres => postgres,
    MySql => mariadb,
}
