//! The server's limits, with clear answers: an oversized body is 413, a client that sends
//! its headers too slowly is cut, connections beyond the bound wait; the server goes on
//! answering after each.

mod common;

use std::time::{Duration, Instant};

use nameko::prelude::*;
use nameko::testing::TestCluster;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Dependencies)]
struct Upload;

#[service(name = "upload")]
impl Upload {
    #[http("POST", "/upload")]
    async fn upload(&self, request: Request) -> String {
        request.body().len().to_string()
    }

    #[http("GET", "/ping")]
    async fn ping(&self) -> String {
        "pong".to_owned()
    }
}

async fn ping(web: &nameko::testing::WebSession) {
    let response = web.get("/ping").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "pong");
}

#[tokio::test]
async fn a_body_over_max_http_body_is_413() {
    let cluster = TestCluster::memory().with_config("MAX_HTTP_BODY", 1024);
    let (cluster, web) = common::serve_with::<Upload>(cluster).await;
    let response = web
        .post("/upload")
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "1024");

    let response = web
        .post("/upload")
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Request Entity Too Large")
    );

    // Without a length announced: counted while read.
    let chunked = format!(
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        2000,
        "y".repeat(2000)
    );
    let answer = common::raw(web.addr(), &chunked).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    ping(&web).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_client_that_sends_headers_too_slowly_is_cut() {
    let cluster = TestCluster::memory().with_config("HTTP_HEADER_TIMEOUT", 0.5);
    let (cluster, web) = common::serve_with::<Upload>(cluster).await;
    let mut slow = TcpStream::connect(web.addr()).await.unwrap();
    slow.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the slow client was not cut within 5 s");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "cut after {waited:?}");
    assert!(!String::from_utf8_lossy(&out).contains("pong"));
    ping(&web).await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_for_a_free_one() {
    let cluster = TestCluster::memory().with_config("MAX_HTTP_CONNECTIONS", 2);
    let (cluster, web) = common::serve_with::<Upload>(cluster).await;
    // Two clients hold their connections without sending anything.
    let first = TcpStream::connect(web.addr()).await.unwrap();
    let _second = TcpStream::connect(web.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let third = tokio::spawn({
        let web = web.clone();
        async move { ping(&web).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !third.is_finished(),
        "a third connection was served beyond MAX_HTTP_CONNECTIONS=2"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("served once a connection closed")
        .unwrap();
    cluster.shutdown().await;
}

#[tokio::test]
async fn many_connections_at_once_are_all_answered() {
    let cluster = TestCluster::memory().with_config("MAX_HTTP_CONNECTIONS", 16);
    let (cluster, web) = common::serve_with::<Upload>(cluster).await;
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let web = web.clone();
            tokio::spawn(async move {
                // A client of its own each: a connection each.
                let client = nameko::testing::WebSession::new(web.addr());
                ping(&client).await;
            })
        })
        .collect();
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("answered")
            .unwrap();
    }
    cluster.shutdown().await;
}
