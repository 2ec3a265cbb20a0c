//! What the tests of the metrics and health routes share: reading them.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

/// How long a condition may take to hold.
pub const WITHIN: Duration = Duration::from_secs(10);

/// `GET http://<addr><path>`: the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");
    let response = client
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The value of the sample `series` (a name and its labels, as written) in a scrape;
/// `None` when absent.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

/// Polls `GET path` until `check` accepts the answer, for at most [`WITHIN`]; returns
/// that answer, or panics with the last one.
pub async fn until(
    addr: SocketAddr,
    path: &str,
    what: &str,
    check: impl Fn(u16, &str) -> bool,
) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (status, body) = get(addr, path).await;
        if check(status, &body) {
            return (status, body);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still {status} {body} after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
