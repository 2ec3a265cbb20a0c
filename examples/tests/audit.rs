//! The audit service reads the caller's context data.

use nameko::prelude::*;
use nameko::testing::{TestCluster, worker_factory};
use nameko_examples::AuditService;

#[tokio::test]
async fn ids_come_from_the_context() {
    let context = ContextData::new()
        .with("user_id", 7)
        .with("correlation_id", "c-1");
    let audit = worker_factory::<AuditService>()
        .context(context)
        .build()
        .unwrap();
    let entry = audit
        .log_action("login".to_owned(), json!({"ip": "10.0.0.1"}))
        .await;
    assert_eq!(entry["action"], "login");
    assert_eq!(entry["user_id"], 7);
    assert_eq!(entry["correlation_id"], "c-1");
    assert!(entry["timestamp"].as_f64().unwrap() > 1_600_000_000.0);
}

#[tokio::test]
async fn missing_ids_are_null() {
    let audit = worker_factory::<AuditService>().build().unwrap();
    let entry = audit.log_action("logout".to_owned(), Value::Null).await;
    assert_eq!(
        (entry["user_id"].clone(), entry["correlation_id"].clone()),
        (Value::Null, Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_context_reaches_the_service() {
    let mut cluster = TestCluster::memory();
    cluster.start::<AuditService>().await;
    let proxy = cluster
        .proxy_with_context(
            ContextData::new()
                .with("user_id", "u-9")
                .with("correlation_id", "req-77"),
        )
        .await;
    let entry: Value = proxy
        .service("audit_service")
        .call("log_action", ("update", json!({"field": "email"})))
        .await
        .unwrap();
    assert_eq!(entry["user_id"], "u-9");
    assert_eq!(entry["correlation_id"], "req-77");
    cluster.shutdown().await;
}
