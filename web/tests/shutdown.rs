//! A graceful stop: requests in flight are answered, new connections refused; past
//! `SHUTDOWN_TIMEOUT` the workers still running are killed, their clients answered 500,
//! and the connections closed.

mod common;

use std::time::{Duration, Instant};

use nameko::prelude::*;
use nameko::testing::TestCluster;

#[derive(Dependencies)]
struct Slow;

#[service(name = "slow")]
impl Slow {
    #[http("GET", "/sleep/<int:ms>")]
    async fn sleep(&self, ms: u64) -> String {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        format!("slept {ms}")
    }
}

#[tokio::test]
async fn a_graceful_stop_answers_every_request_in_flight() {
    let cluster = TestCluster::memory().with_config("max_workers", 100);
    let (cluster, web) = common::serve_with::<Slow>(cluster).await;
    let requests: Vec<_> = (0..100)
        .map(|_| {
            let client = nameko::testing::WebSession::new(web.addr());
            tokio::spawn(async move {
                let response = client.get("/sleep/700").send().await?;
                Ok::<_, reqwest::Error>((response.status().as_u16(), response.text().await?))
            })
        })
        .collect();
    // Every request is in flight (its worker sleeping) when the stop begins.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = web.addr();
    cluster.shutdown().await;
    for request in requests {
        let (status, body) = request.await.unwrap().expect("answered");
        assert_eq!((status, body.as_str()), (200, "slept 700"));
    }
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the server still accepts connections after it stopped"
    );
}

#[tokio::test]
async fn past_shutdown_timeout_the_workers_are_killed_and_the_connections_closed() {
    let cluster = TestCluster::memory().with_config("SHUTDOWN_TIMEOUT", 1);
    let (cluster, web) = common::serve_with::<Slow>(cluster).await;
    let request = tokio::spawn({
        let web = web.clone();
        async move { web.get("/sleep/20000").send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (outcome, ()) = tokio::join!(
        async {
            tokio::time::timeout(Duration::from_secs(10), request)
                .await
                .expect("the connection was closed within 10 s")
                .unwrap()
        },
        cluster.shutdown()
    );
    // The container kills the worker it waited for: its client is told, and the
    // connection closed.
    let response = outcome.expect("an answer");
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["connection"], "close");
    let body = response.text().await.unwrap();
    assert!(body.starts_with("Error: ContainerBeingKilled"), "{body}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "closed after {waited:?}");
}

#[tokio::test]
async fn a_request_still_waiting_for_a_worker_when_the_stop_begins_is_503() {
    let cluster = TestCluster::memory().with_config("max_workers", 1);
    let (cluster, web) = common::serve_with::<Slow>(cluster).await;
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let client = nameko::testing::WebSession::new(web.addr());
            tokio::spawn(async move {
                let response = client.get("/sleep/700").send().await?;
                Ok::<_, reqwest::Error>(response.status().as_u16())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.shutdown().await;
    let mut statuses = Vec::new();
    for request in requests {
        statuses.push(request.await.unwrap().expect("answered"));
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503, 503]);
}

#[derive(Dependencies)]
struct Other;

#[service(name = "other")]
impl Other {
    #[http("GET", "/other")]
    async fn other(&self) -> String {
        "other".to_owned()
    }
}

#[tokio::test]
async fn the_routes_of_a_service_that_stopped_while_the_server_goes_on_are_503() {
    let mut cluster = TestCluster::memory();
    let slow = cluster.start::<Slow>().await;
    cluster.start::<Other>().await;
    let web = cluster.web_session();
    slow.stop().await.unwrap();
    let response = web.get("/sleep/1").send().await.unwrap();
    assert_eq!(
        response.status(),
        503,
        "not 404: the service is stopped, not unknown"
    );
    assert_eq!(
        web.get("/other")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "other"
    );
    // The service starting again takes its route back.
    cluster.start::<Slow>().await;
    let response = web.get("/sleep/1").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "slept 1");
    cluster.shutdown().await;
}
