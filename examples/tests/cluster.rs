//! The whole example set as one cluster on the in-memory broker, and a stress run of it
//! that must never flake.

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_examples::{
    AuditService, Calculator, EmailService, InventoryService, NotificationService, OrderService,
    PaymentService, ServiceX, ServiceY, UserService,
};

async fn start_all(cluster: &mut TestCluster) {
    cluster.start::<ServiceY>().await;
    cluster.start::<ServiceX>().await;
    cluster.start::<Calculator>().await;
    cluster.start::<UserService>().await;
    cluster.start::<PaymentService>().await;
    cluster.start::<InventoryService>().await;
    cluster.start::<EmailService>().await;
    cluster.start::<OrderService>().await;
    cluster.start::<AuditService>().await;
    cluster.start::<NotificationService>().await;
}

/// One pass over every service of the example set, checking every reply.
async fn exercise(cluster: TestCluster) {
    let mut cluster = cluster;
    start_all(&mut cluster).await;
    let proxy = cluster
        .proxy_with_context(
            ContextData::new()
                .with("user_id", 5)
                .with("correlation_id", "run-1"),
        )
        .await;
    let greeting: String = proxy
        .service("service_x")
        .call("remote_method", ("hello",))
        .await
        .unwrap();
    assert_eq!(greeting, "hello-x-y");
    let quotient: f64 = proxy
        .service("calculator")
        .call("divide", (9, 3))
        .await
        .unwrap();
    assert_eq!(quotient, 3.0);
    let error = proxy
        .service("calculator")
        .call::<f64>("divide", (1, 0))
        .await
        .unwrap_err();
    assert_eq!(error.remote().unwrap().exc_type, "ValueError");
    let score: Value = proxy
        .service("user_service")
        .call("calculate_user_score", (1, 4.0, 2.5))
        .await
        .unwrap();
    assert_eq!(score, json!({"user_id": 1, "score": 10.0}));
    let audit: Value = proxy
        .service("audit_service")
        .call("log_action", ("check", json!({})))
        .await
        .unwrap();
    assert_eq!(
        (audit["user_id"].clone(), audit["correlation_id"].clone()),
        (json!(5), json!("run-1"))
    );

    let orders = proxy.service("order_service");
    let mut pending = Vec::new();
    for i in 0..5 {
        let order = json!({
            "order_id": i,
            "customer_email": "ada@example.com",
            "items": [{"sku": "tea", "quantity": 1}],
            "payment_info": {"amount": 10.0 + f64::from(i)},
        });
        pending.push(
            orders
                .call_async::<Value>("process_order_parallel", (order,))
                .await
                .unwrap(),
        );
    }
    for reply in pending {
        assert_eq!(reply.result().await.unwrap()["status"], "success");
    }
    cluster.run_until_idle().await.unwrap();
    let sent: Vec<Value> = proxy
        .service("notification_service")
        .call("sent", ())
        .await
        .unwrap();
    let mut ids: Vec<i64> = sent
        .iter()
        .map(|o| o["order_id"].as_i64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3, 4], "one notification per order");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_set_works_as_one_cluster() {
    exercise(TestCluster::memory()).await;
}

/// Runs the whole cluster test many times in a row (200 by default; CI sets
/// `NAMEKO_STRESS_RUNS` lower): a flaky test toolkit or broker would show here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stress run; `cargo test -p nameko-examples --test cluster -- --ignored`"]
async fn the_example_cluster_never_flakes() {
    let runs: usize = std::env::var("NAMEKO_STRESS_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for run in 0..runs {
        let started = std::time::Instant::now();
        exercise(TestCluster::memory()).await;
        if run % 20 == 0 {
            eprintln!("run {run}: {:?}", started.elapsed());
        }
    }
}
