//! service_x and service_y, and the quickstart that runs them.

use std::collections::HashMap;

use nameko::config::Config;
use nameko::prelude::*;
use nameko::testing::{TestCluster, TestDatabase, worker_factory};
use nameko_examples::{ServiceX, ServiceY, ServiceYClient};

#[tokio::test]
async fn service_y_appends_its_identifier() {
    let other = TestDatabase::sqlite().await;
    let y = worker_factory::<ServiceY>()
        .with_value("other_base", other.database("service_y:other_base").await)
        .build()
        .unwrap();
    assert_eq!(y.append_identifier("hello".to_owned()).await, "hello-y");
}

#[tokio::test]
async fn service_x_asks_service_y() {
    let service_y = ServiceYClient::mock().append_identifier(|value| format!("{value}-y"));
    let (first, second) = (TestDatabase::sqlite().await, TestDatabase::sqlite().await);
    let x = worker_factory::<ServiceX>()
        .with("service_y", service_y.clone())
        .with_value("first_base", first.database("service_x:first_base").await)
        .with_value(
            "second_base",
            second.database("service_x:second_base").await,
        )
        .build()
        .unwrap();
    assert_eq!(
        x.remote_method("hello".to_owned()).await.unwrap(),
        "hello-x-y"
    );
    service_y.assert_called_once_with("append_identifier", ("hello-x",));
}

#[test]
fn the_quickstart_prints_hello_x_y() {
    let exe = std::env::current_exe().unwrap();
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let quickstart = examples.join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        quickstart.exists(),
        "`cargo test` builds the examples: {} is missing",
        quickstart.display()
    );
    let output = std::process::Command::new(quickstart)
        .env_remove("AMQP_URI")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello-x-y\nfirst-x-y second-y\n"
    );
}

/// `examples/service_x_y.yaml`: each base's URI from its variable, in-memory SQLite
/// without it. `first_base` goes to a fresh PostgreSQL database when one is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yaml_configuration_gives_each_service_its_databases() {
    let yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/service_x_y.yaml")).unwrap();
    let first = match TestDatabase::postgres().await {
        Some(db) => db,
        None => TestDatabase::sqlite().await,
    };
    let other = TestDatabase::sqlite().await;
    let env = HashMap::from([
        ("FIRST_BASE_URI", first.uri()),
        ("OTHER_BASE_URI", other.uri()),
    ]);
    let config = Config::from_yaml_str(&yaml, &env).unwrap();
    let uris = config.get("DB_URIS").unwrap().clone();
    assert_eq!(uris["service_x:first_base"], first.uri());
    assert_eq!(uris["service_x:second_base"], "sqlite::memory:");
    assert_eq!(uris["service_y:other_base"], other.uri());

    let mut cluster = TestCluster::memory().with_config("DB_URIS", uris);
    cluster.start::<ServiceY>().await;
    cluster.start::<ServiceX>().await;
    let proxy = cluster.proxy().await;
    let x: Value = proxy
        .service("service_x")
        .call("databases", ())
        .await
        .unwrap();
    assert_eq!(
        x,
        json!({
            "service_x:first_base": first.backend().to_string(),
            "service_x:second_base": "sqlite",
        })
    );
    let y: Value = proxy
        .service("service_y")
        .call("databases", ())
        .await
        .unwrap();
    assert_eq!(y, json!({"service_y:other_base": "sqlite"}));
    let greeting: String = proxy
        .service("service_x")
        .call("remote_method", ("hello",))
        .await
        .unwrap();
    assert_eq!(greeting, "hello-x-y");
    cluster.shutdown().await;
}
