//! A Python nameko client calling a database-backed Rust service (`authors_service` of
//! the examples, on PostgreSQL when one is reachable, else SQLite): rows arrive as
//! plain dicts of ints and strings, and its errors as the Python exceptions of its
//! contract.

use nameko::prelude::*;
use nameko::testing::TestDatabase;
use nameko_examples::AuthorsService;
use nameko_interop::run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_client_gets_authors_as_plain_dicts() {
    let db = match TestDatabase::postgres().await {
        Some(db) => db,
        None => TestDatabase::sqlite().await,
    };
    let uri = db.uri().to_owned();
    run(async |env| {
        let mut env = env.with_config("DB_URIS", json!({"authors_service:main": uri}));
        env.start_rust::<AuthorsService>().await;

        let created = env
            .python(
                "call_types",
                json!({"service": "authors_service", "method": "create_author", "args": ["Ursula"]}),
            )
            .await
            .unwrap();
        let id = created["result"]["id"].as_i64().unwrap();
        assert_eq!(created["result"], json!({"id": id, "name": "Ursula"}));
        assert_eq!(created["types"], json!({"dict": {"id": "int", "name": "str"}}));

        let fetched = env
            .python(
                "call_types",
                json!({"service": "authors_service", "method": "get_author", "kwargs": {"id": id}}),
            )
            .await
            .unwrap();
        assert_eq!(fetched["result"], json!({"id": id, "name": "Ursula"}));
        assert_eq!(fetched["types"], json!({"dict": {"id": "int", "name": "str"}}));

        let listed = env
            .python(
                "call_types",
                json!({"service": "authors_service", "method": "list_authors"}),
            )
            .await
            .unwrap();
        assert_eq!(listed["result"], json!([{"id": id, "name": "Ursula"}]));
        assert_eq!(
            listed["types"],
            json!({"list": [{"dict": {"id": "int", "name": "str"}}]})
        );

        let missing = env
            .python_call("authors_service", "get_author", json!([id + 1000]))
            .await
            .unwrap_err();
        assert_eq!(missing.class, "nameko.exceptions.RemoteError", "{missing:?}");
        assert_eq!(missing.exc_type.as_deref(), Some("NotFound"), "{missing:?}");
        assert_eq!(missing.value.as_deref(), Some(format!("no author with id {}", id + 1000).as_str()));

        let refused = env
            .python_call("authors_service", "create_author_then_fail", json!(["Ghost"]))
            .await
            .unwrap_err();
        assert_eq!(refused.exc_type.as_deref(), Some("ValueError"), "{refused:?}");
        let names = env
            .python_call("authors_service", "list_authors", json!([]))
            .await
            .unwrap();
        assert_eq!(names, json!([{"id": id, "name": "Ursula"}]), "Ghost was rolled back");
        env.shutdown().await;
    })
    .await;
    db.drop_now().await.unwrap();
}
