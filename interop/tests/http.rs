//! HTTP entrypoints against Python nameko 2.14.1 on werkzeug 3: the same handlers
//! (`python/http_service.py`, `nameko_examples::HttpService` and `HttpEdges` below)
//! answer every route and edge case with the same status, content type, `Location`,
//! `Allow`, `Content-Length` and body, byte for byte.
//!
//! Compared with these normalizations, the deliberate differences:
//! - `Allow` lists the same methods in another order: werkzeug lists a Python set, whose
//!   order changes from process to process; the methods are compared as sets.
//! - a server's own address in a redirect (`Location`, and the body that repeats it)
//!   is replaced by `SERVER`, since the two servers listen on different ports;
//! - the reason phrase of the status line (`404 NOT FOUND` from eventlet, `404 Not
//!   Found` from hyper) is not compared; clients read the code.
//!
//! Not compared (documented in the README): integers beyond 64 bits in `<int:...>`
//! (Python matches any size; nameko-rs does not match, 404).

use std::collections::BTreeSet;

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_examples::HttpService;
use nameko_interop::PythonWeb;

/// The edge cases of `python/http_service.py`'s `HttpEdges`, in Rust.
#[derive(Dependencies)]
struct HttpEdges;

#[service(name = "http_edges")]
impl HttpEdges {
    #[http("GET", "/float/<float:value>")]
    async fn get_float(&self, value: f64) -> String {
        nameko::web::json_dumps(&json!({"value": value}))
    }

    #[http("GET", "/files/<path:name>")]
    async fn files(&self, name: String) -> String {
        name
    }

    #[http("GET", "/items/<uuid:item_id>")]
    async fn item(&self, item_id: uuid::Uuid) -> String {
        item_id.to_string()
    }

    #[http("GET", "/pages/<any(about, help):page>")]
    async fn page(&self, page: String) -> String {
        page
    }

    #[http("GET", "/say/<word>")]
    async fn say(&self, request: Request, word: String) -> String {
        format!("{word} {}", request.path())
    }

    #[http("GET", "/say/hello")]
    async fn say_hello(&self) -> String {
        "static first".to_owned()
    }

    #[http("GET", "/folder/")]
    async fn folder(&self) -> String {
        "folder".to_owned()
    }

    #[http("GET", "/query")]
    async fn query(&self, request: Request) -> String {
        nameko::web::json_dumps(&request.args_all("a"))
    }

    #[http("GET", "/small/<int(max=255):value>")]
    async fn small(&self, value: u8) -> String {
        value.to_string()
    }

    #[http("PUT,PATCH", "/body")]
    async fn body(&self, request: Request) -> String {
        format!("{} {}", request.method(), request.text_lossy())
    }
}

/// Every request compared: method, path and query, body.
const CASES: &[(&str, &str, &str)] = &[
    // The documentation's table.
    ("GET", "/get/42", ""),
    ("POST", "/post", "hello"),
    ("POST", "/post", "h\u{e9}llo \u{1f600}"),
    ("GET", "/multi", ""),
    ("PUT", "/multi", ""),
    ("POST", "/multi", ""),
    ("DELETE", "/multi", ""),
    ("GET", "/privileged", ""),
    ("GET", "/headers", ""),
    ("GET", "/custom", ""),
    ("GET", "/custom_exception", ""),
    ("GET", "/divide/7/2", ""),
    ("GET", "/divide/4/2", ""),
    ("GET", "/divide/1/0", ""),
    // int converter.
    ("GET", "/get/007", ""),
    ("GET", "/get/-1", ""),
    ("GET", "/get/+5", ""),
    ("GET", "/get/1.5", ""),
    ("GET", "/get/4%32", ""),
    ("GET", "/small/255", ""),
    ("GET", "/small/256", ""),
    // Trailing slashes.
    ("GET", "/get/42/", ""),
    ("GET", "/folder/", ""),
    ("GET", "/folder", ""),
    ("GET", "/folder?x=1", ""),
    // Other converters.
    ("GET", "/float/1.5", ""),
    ("GET", "/float/1", ""),
    ("GET", "/files/a/b/c.txt", ""),
    ("GET", "/items/8F14E45F-CEEA-467F-A0C6-BB4B1E2E6C1B", ""),
    ("GET", "/items/8f14e45f", ""),
    ("GET", "/pages/help", ""),
    ("GET", "/pages/other", ""),
    ("GET", "/say/abc", ""),
    ("GET", "/say/hello", ""),
    ("GET", "/say/caf%C3%A9", ""),
    ("GET", "/say/a%2Fb", ""),
    ("GET", "/query?a=1&a=2&a=%C3%A9&b=3", ""),
    // 404, 405, HEAD.
    ("GET", "/nope", ""),
    ("GET", "/", ""),
    ("GET", "/post", ""),
    ("PATCH", "/multi", ""),
    ("OPTIONS", "/body", ""),
    ("POST", "/body", ""),
    ("PATCH", "/body", "x"),
    ("HEAD", "/get/3", ""),
    ("HEAD", "/multi", ""),
    ("HEAD", "/post", ""),
    ("HEAD", "/nope", ""),
];

/// What is compared of an answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    allow: Option<BTreeSet<String>>,
    content_length: Option<String>,
    body: Vec<u8>,
}

async fn ask(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    case: (&str, &str, &str),
) -> Answer {
    let (method, path, body) = case;
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = client
        .request(method, format!("http://{addr}{path}"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{case:?} on {addr}: {e}"));
    let own = addr.to_string();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().replace(&own, "SERVER"))
    };
    let content_type = header("content-type");
    let location = header("location");
    let content_length = header("content-length");
    let allow = header("allow").map(|a| a.split(", ").map(str::to_owned).collect());
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap().to_vec();
    let body = String::from_utf8_lossy(&body)
        .replace(&own, "SERVER")
        .into_bytes();
    Answer {
        status,
        content_type,
        location,
        allow,
        content_length,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_edge_case_answers_as_python_nameko() {
    let Some(python) = PythonWeb::start().await else {
        return;
    };
    let mut cluster = TestCluster::memory();
    cluster.start::<HttpService>().await;
    cluster.start::<HttpEdges>().await;
    let rust = cluster.web_session();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut differences = Vec::new();
    for &case in CASES {
        let expected = ask(&client, python.addr(), case).await;
        let got = ask(&client, rust.addr(), case).await;
        if expected != got {
            differences.push(format!(
                "{case:?}\n  python: {expected:?}\n  rust:   {got:?}\n  python body: {:?}\n  rust body:   {:?}",
                String::from_utf8_lossy(&expected.body),
                String::from_utf8_lossy(&got.body)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ:\n{}",
        differences.len(),
        CASES.len(),
        differences.join("\n")
    );
    cluster.shutdown().await;
}
