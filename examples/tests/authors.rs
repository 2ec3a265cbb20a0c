//! `authors_service` on SQLite, PostgreSQL and MariaDB, under `worker_factory`, and
//! served by the `cluster` example with no database server at all.

use std::process::Command;

use nameko::db::Backend;
use nameko::prelude::*;
use nameko::testing::{TestCluster, TestDatabase, worker_factory};
use nameko_examples::AuthorsService;
use nameko_examples::authors::{Author, NotFound, ValueError};

async fn database(backend: Backend) -> Option<TestDatabase> {
    match backend {
        Backend::Postgres => TestDatabase::postgres().await,
        Backend::MySql => TestDatabase::mariadb().await,
        _ => Some(TestDatabase::sqlite().await),
    }
}

async fn authors_named(db: &TestDatabase, name: &str) -> i64 {
    let pool = db.pool().await;
    let sql = format!(
        "SELECT COUNT(*) FROM authors WHERE name = {}",
        db.backend().placeholder(1)
    );
    let n = sqlx::query_scalar(&sql)
        .bind(name.to_owned())
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

async fn every_method(backend: Backend) {
    let Some(db) = database(backend).await else {
        return;
    };
    let mut cluster = TestCluster::memory().with_database("authors_service:main", db);
    cluster.start::<AuthorsService>().await;
    let proxy = cluster.proxy().await;
    let authors = proxy.service("authors_service");

    let created: Value = authors.call("create_author", ("Ursula",)).await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created, json!({"id": id, "name": "Ursula"}));
    let fetched: Author = authors.call("get_author", (id,)).await.unwrap();
    assert_eq!(
        fetched,
        Author {
            id,
            name: "Ursula".to_owned()
        }
    );

    let missing = authors
        .call::<Value>("get_author", (id + 1000,))
        .await
        .unwrap_err();
    assert_eq!(
        missing.decode::<NotFound>().unwrap().0,
        format!("no author with id {}", id + 1000)
    );

    let refused = authors
        .call::<Value>("create_author_then_fail", ("Ghost",))
        .await
        .unwrap_err();
    assert!(refused.decode::<ValueError>().is_some(), "{refused:?}");
    let db = cluster.database("authors_service:main").unwrap();
    assert_eq!(authors_named(db, "Ghost").await, 0, "rolled back");
    assert_eq!(authors_named(db, "Ursula").await, 1, "committed");

    let renamed: Author = authors
        .call("rename_author", (id, "Ursula K."))
        .await
        .unwrap();
    assert_eq!(renamed.name, "Ursula K.");
    let listed: Value = authors.call("list_authors", ()).await.unwrap();
    assert_eq!(listed, json!([{"id": id, "name": "Ursula K."}]));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_on_sqlite() {
    every_method(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_on_postgres() {
    every_method(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authors_on_mariadb() {
    every_method(Backend::MySql).await;
}

#[tokio::test]
async fn authors_under_worker_factory_with_sqlite() {
    let db = TestDatabase::sqlite().await;
    let pool = db.pool().await;
    sqlx::migrate!("migrations/authors/sqlite")
        .run(&pool)
        .await
        .unwrap();
    let database = db.database("authors_service:main").await;
    let service = worker_factory::<AuthorsService>()
        .with_value("db", database.clone())
        .build()
        .unwrap();
    let author = service.create_author("Octavia".to_owned()).await.unwrap();
    database.commit().await.unwrap();
    assert_eq!(service.get_author(author.id).await.unwrap(), author);
    assert!(matches!(
        service.get_author(author.id + 1).await,
        Err(nameko_examples::authors::AuthorsError::NotFound(_))
    ));
}

fn cluster_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(format!("cluster{}", std::env::consts::EXE_SUFFIX))
}

/// README's run command serves `authors_service` with no database server: a SQLite
/// file (here in the test's own directory, through the example YAML's variable).
#[test]
fn the_cluster_example_serves_authors_on_sqlite_without_a_server() {
    let dir =
        std::env::temp_dir().join(format!("nameko-authors-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let uri = format!("sqlite://{}?mode=rwc", dir.join("authors.db").display());
    let script = "a = n.rpc.authors_service.create_author('Le Guin'); print(a['name'])\n\
                  print(n.rpc.authors_service.list_authors())\n";
    let output = Command::new(cluster_binary())
        .args([
            "shell",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/service_x_y.yaml"),
            "-d",
            "WEB_SERVER_ADDRESS=127.0.0.1:0",
        ])
        .env_remove("AMQP_URI")
        .env("AUTHORS_DB_URI", &uri)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Le Guin"), "{stdout}");
    assert!(
        stdout.contains("[{'id': 1, 'name': 'Le Guin'}]"),
        "{stdout}"
    );
}
