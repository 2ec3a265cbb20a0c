//! The `cluster` example: every example service in one process, serving until SIGTERM,
//! on the in-process broker and on RabbitMQ, where clients call it from outside.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nameko::prelude::*;
use nameko::testing::TestCluster;

fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "`cargo test` builds the examples: {} is missing",
        path.display()
    );
    path
}

/// Starts `cluster run` (HTTP on a free port) and waits until it says it serves;
/// returns the child and where its web server listens.
fn start_cluster(amqp_uri: Option<&str>) -> (Child, String) {
    let mut command = Command::new(example("cluster"));
    command
        .args(["run", "-d", "WEB_SERVER_ADDRESS=127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match amqp_uri {
        Some(uri) => command.env("AMQP_URI", uri),
        None => command.env_remove("AMQP_URI"),
    };
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("web server listening")
                && let Some(addr) = line.split("address=").nth(1)
            {
                let _ = addr_tx.send(addr.split_whitespace().next().unwrap_or("").to_owned());
            }
            if line.contains("serving until SIGTERM") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        panic!("the cluster did not start serving");
    }
    let Ok(addr) = addr_rx.recv_timeout(Duration::from_secs(5)) else {
        let _ = child.kill();
        panic!("the cluster did not say where its web server listens");
    };
    (child, addr)
}

/// Sends SIGTERM and returns the exit code.
fn terminate(mut child: Child) -> Option<i32> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("the cluster did not stop within 30 s of SIGTERM");
}

#[test]
fn the_cluster_serves_on_the_in_process_broker_and_stops_on_sigterm() {
    let (child, _) = start_cluster(None);
    assert_eq!(terminate(child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_answers_clients_on_rabbitmq() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let (child, web) = tokio::task::spawn_blocking(move || start_cluster(Some(&uri)))
        .await
        .unwrap();
    let body = reqwest::get(format!("http://{web}/get/42"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, r#"{"value": 42}"#);
    let proxy = cluster
        .proxy_with_context(
            ContextData::new()
                .with("user_id", 3)
                .with("correlation_id", "c"),
        )
        .await;
    let greeting: String = proxy
        .service("service_x")
        .call("remote_method", ("hello",))
        .await
        .unwrap();
    assert_eq!(greeting, "hello-x-y");
    let err = proxy
        .service("calculator")
        .call::<f64>("divide", (1, 0))
        .await
        .unwrap_err();
    assert_eq!(err.remote().unwrap().exc_type, "ValueError");
    let order = json!({"order_id": 1, "customer_email": "a@b.c", "items": [{"sku": "x", "quantity": 1}], "payment_info": {"amount": 5.0}});
    let placed: Value = proxy
        .service("order_service")
        .call("process_order_parallel", (order,))
        .await
        .unwrap();
    assert_eq!(placed["status"], "success");
    let audit: Value = proxy
        .service("audit_service")
        .call("log_action", ("check", json!({})))
        .await
        .unwrap();
    assert_eq!(audit["user_id"], 3);
    let code = tokio::task::spawn_blocking(move || terminate(child))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_serves_http_service_and_stops_on_sigterm() {
    let (child, web) = tokio::task::spawn_blocking(|| start_cluster(None))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let response = client
        .get(format!("http://{web}/divide/7/2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"result": 3.5}"#);
    let response = client
        .post(format!("http://{web}/post"))
        .body("hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "received: hi");
    // Requests in flight when SIGTERM arrives are answered.
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let client = reqwest::Client::new();
            let url = format!("http://{web}/get/{i}");
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    let code = tokio::task::spawn_blocking(move || terminate(child))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    for request in requests {
        // A request the server took is answered in full: 200, or 503 when it was still
        // waiting for a free worker as `http_service` began to stop (while the server,
        // shared with `websocket_service`, still accepts); one that came after the
        // server stopped accepting finds the port closed.
        if let Ok(status) = request.await.unwrap() {
            assert!(status == 200 || status == 503, "{status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_serves_metrics_and_health_probes() {
    let (child, web) = tokio::task::spawn_blocking(|| start_cluster(None))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("http://{web}{path}")).send();
    assert_eq!(get("/health/live").await.unwrap().status(), 200);
    let ready = get("/health/ready").await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = serde_json::from_str(&ready.text().await.unwrap()).unwrap();
    assert_eq!(ready["services"]["calculator"]["state"], "running");
    assert_eq!(ready["services"]["http_service"]["broker"], "connected");
    assert_eq!(get("/get/7").await.unwrap().status(), 200);
    // The worker's metrics are recorded just after its response went out.
    let series = r#"http_service_http_requests_total{http_method="GET",endpoint="/get/<int:value>",status_code="200"} 1"#;
    let mut text = String::new();
    for _ in 0..100 {
        text = get("/metrics").await.unwrap().text().await.unwrap();
        if text.lines().any(|l| l == series) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.lines().any(|l| l == series), "{text}");
    assert!(
        text.lines()
            .any(|l| l == "calculator_service_max_workers 10"),
        "{text}"
    );
    let code = tokio::task::spawn_blocking(move || terminate(child))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_serves_the_websocket_page_and_closes_sockets_on_sigterm() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let (child, web) = tokio::task::spawn_blocking(|| start_cluster(None))
        .await
        .unwrap();
    let page = reqwest::get(format!("http://{web}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("websocket_service"));

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{web}/ws"))
        .await
        .unwrap();
    let connected = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .expect("a frame within 10 s")
        .unwrap()
        .unwrap();
    assert!(
        connected
            .to_text()
            .unwrap()
            .contains(r#""event": "connected""#)
    );
    socket
        .send(Message::text(
            r#"{"method": "echo", "data": {"value": "hi"}, "correlation_id": 1}"#,
        ))
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        answer.to_text().unwrap(),
        r#"{"type": "result", "success": true, "data": "hi", "correlation_id": 1}"#
    );

    // SIGTERM closes the socket with a close frame, and the cluster exits cleanly.
    let code = tokio::task::spawn_blocking(move || terminate(child));
    let closed = tokio::time::timeout(Duration::from_secs(30), socket.next())
        .await
        .expect("the socket is closed on SIGTERM");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("a close frame, not {other:?}"),
    }
    assert_eq!(code.await.unwrap(), Some(0));
}
