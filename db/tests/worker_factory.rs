//! A service under `worker_factory` with a real SQLite database: the test supplies a
//! standalone `Database` and ends its session itself.

mod support;

use nameko_testing::{TestDatabase, worker_factory};
use support::{Writer, rows_named};

#[tokio::test]
async fn a_worker_factory_instance_writes_to_a_real_sqlite_database() {
    let db = TestDatabase::sqlite().await;
    db.migrate(&sqlx::migrate!("tests/migrations/sqlite")).await;
    let database = db.database("writer:main").await;
    let writer = worker_factory::<Writer>()
        .with_value("db", database.clone())
        .build()
        .unwrap();

    writer.create("rolled back".to_owned()).await.unwrap();
    assert_eq!(
        writer.count_then_sleep(0.0).await.unwrap(),
        1,
        "seen in the session"
    );
    database.rollback().await.unwrap();
    assert_eq!(rows_named(&db, "rolled back").await, 0);

    let id = writer.create("committed".to_owned()).await.unwrap();
    assert!(id > 0);
    database.commit().await.unwrap();
    assert_eq!(rows_named(&db, "committed").await, 1);
    assert_eq!(writer.count().await.unwrap(), 1);
}
