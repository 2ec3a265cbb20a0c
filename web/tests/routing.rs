//! werkzeug's rules over HTTP: converters, percent-decoding, trailing slashes, 404, 405
//! with `Allow`, HEAD for GET, and rules that clash or do not fit their method.

mod common;

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::json_dumps;

#[derive(Dependencies)]
struct Routes;

#[service(name = "routes")]
impl Routes {
    #[http("GET", "/get/<int:value>")]
    async fn get_int(&self, value: i64) -> String {
        json_dumps(&json!({"value": value}))
    }

    #[http("GET", "/float/<float:value>")]
    async fn get_float(&self, value: f64) -> String {
        json_dumps(&json!({"value": value}))
    }

    #[http("GET", "/files/<path:name>")]
    async fn files(&self, name: String) -> String {
        name
    }

    #[http("GET", "/items/<uuid:id>")]
    async fn item(&self, id: uuid::Uuid) -> String {
        id.to_string()
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

    #[http("GET,PUT,POST,DELETE", "/multi")]
    async fn multi(&self, request: Request) -> String {
        request.method().to_owned()
    }

    #[http("POST", "/post")]
    async fn post(&self, request: Request) -> String {
        format!("received: {}", request.text_lossy())
    }

    #[http("GET", "/small/<int:value>")]
    async fn small(&self, value: u8) -> String {
        value.to_string()
    }
}

async fn get(web: &nameko::testing::WebSession, path: &str) -> (u16, String) {
    let response = web.get(path).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn converters_match_as_werkzeug_does() {
    let (cluster, web) = common::serve::<Routes>().await;
    assert_eq!(
        get(&web, "/get/42").await,
        (200, r#"{"value": 42}"#.to_owned())
    );
    assert_eq!(
        get(&web, "/get/007").await,
        (200, r#"{"value": 7}"#.to_owned())
    );
    assert_eq!(get(&web, "/get/-1").await.0, 404);
    assert_eq!(get(&web, "/get/+5").await.0, 404);
    assert_eq!(
        get(&web, "/get/4%32").await,
        (200, r#"{"value": 42}"#.to_owned())
    );
    assert_eq!(
        get(&web, "/float/1.5").await,
        (200, r#"{"value": 1.5}"#.to_owned())
    );
    assert_eq!(get(&web, "/float/1").await.0, 404);
    assert_eq!(
        get(&web, "/files/a/b/c.txt").await,
        (200, "a/b/c.txt".to_owned())
    );
    assert_eq!(
        get(&web, "/items/8F14E45F-CEEA-467F-A0C6-BB4B1E2E6C1B").await,
        (200, "8f14e45f-ceea-467f-a0c6-bb4b1e2e6c1b".to_owned())
    );
    assert_eq!(get(&web, "/items/8f14e45f").await.0, 404);
    assert_eq!(get(&web, "/pages/help").await, (200, "help".to_owned()));
    assert_eq!(get(&web, "/pages/other").await.0, 404);
    assert_eq!(
        get(&web, "/say/caf%C3%A9").await,
        (200, "café /say/café".to_owned())
    );
    // A static rule wins over a variable one, whatever the order of the methods.
    assert_eq!(
        get(&web, "/say/hello").await,
        (200, "static first".to_owned())
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_value_the_parameter_type_cannot_hold_is_a_type_error() {
    let (cluster, web) = common::serve::<Routes>().await;
    assert_eq!(get(&web, "/small/255").await, (200, "255".to_owned()));
    let (status, body) = get(&web, "/small/256").await;
    assert_eq!(status, 500);
    assert!(
        body.starts_with("Error: TypeError: small() argument 'value'"),
        "{body}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn trailing_slashes_follow_werkzeug() {
    let (cluster, web) = common::serve::<Routes>().await;
    // Without a trailing slash in the rule, a path with one does not match.
    assert_eq!(get(&web, "/get/42/").await.0, 404);
    // With one, the path without it is redirected there.
    let response = web.get("/folder?x=1").send().await.unwrap();
    assert_eq!(response.status(), 308);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("http://{}/folder/?x=1", web.addr()));
    assert_eq!(get(&web, "/folder/").await, (200, "folder".to_owned()));
    cluster.shutdown().await;
}

#[tokio::test]
async fn no_match_is_werkzeugs_404() {
    let (cluster, web) = common::serve::<Routes>().await;
    let response = web.get("/nope").send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(
        response.text().await.unwrap(),
        "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_method_the_rule_does_not_take_is_405_with_allow() {
    let (cluster, web) = common::serve::<Routes>().await;
    let response = web.get("/post").send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("<title>405 Method Not Allowed</title>")
    );

    let response = web.request("PATCH", "/multi").send().await.unwrap();
    assert_eq!(response.status(), 405);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    let mut allowed: Vec<&str> = allow.split(", ").collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["DELETE", "GET", "HEAD", "POST", "PUT"]);
    for method in ["GET", "PUT", "POST", "DELETE"] {
        let response = web.request(method, "/multi").send().await.unwrap();
        assert_eq!(response.text().await.unwrap(), method);
    }
    let response = web.post("/post").body("hello").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "received: hello");
    cluster.shutdown().await;
}

#[tokio::test]
async fn head_is_answered_for_get_without_a_body() {
    let (cluster, web) = common::serve::<Routes>().await;
    let answer = common::raw(
        web.addr(),
        "HEAD /get/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-length: 12\r\n"),
        "{answer}"
    );
    assert!(
        answer.ends_with("\r\n\r\n"),
        "a HEAD answer has no body: {answer:?}"
    );
    cluster.shutdown().await;
}

#[derive(Dependencies)]
struct Clashing;

#[service(name = "clashing")]
impl Clashing {
    #[http("GET,POST", "/get/<int:other>")]
    async fn also_get(&self, other: i64) -> String {
        other.to_string()
    }
}

#[derive(Dependencies)]
struct NotClashing;

#[service(name = "not_clashing")]
impl NotClashing {
    #[http("DELETE", "/get/<int:value>")]
    async fn delete(&self, value: i64) -> String {
        format!("deleted {value}")
    }
}

fn runner() -> ServiceRunner {
    let broker = nameko::memory::MemoryBroker::new();
    let config = Config::new()
        .with("AMQP_URI", "memory://")
        .with("WEB_SERVER_ADDRESS", "127.0.0.1:0");
    ServiceRunner::new(config, std::sync::Arc::new(broker.connect()))
}

#[tokio::test]
async fn rules_that_clash_are_refused_at_start_naming_both() {
    let runner = runner();
    runner.add::<Routes>().unwrap();
    runner.add::<Clashing>().unwrap();
    let error = runner.start().await.unwrap_err().to_string();
    assert!(
        error.contains("clashing.also_get (`/get/<int:other>`)"),
        "{error}"
    );
    assert!(
        error.contains("routes.get_int (`/get/<int:value>`)"),
        "{error}"
    );
    runner.kill().await;

    // Another method on the same rule is another route.
    let mut cluster = TestCluster::memory();
    cluster.start::<Routes>().await;
    cluster.start::<NotClashing>().await;
    let web = cluster.web_session();
    let response = web.delete("/get/5").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "deleted 5");
    assert_eq!(get(&web, "/get/5").await.1, r#"{"value": 5}"#);
    cluster.shutdown().await;
}

#[derive(Dependencies)]
struct MissingVariable;

#[service(name = "missing_variable")]
impl MissingVariable {
    #[http("GET", "/get/<int:value>")]
    async fn get(&self, request: Request, number: i64) -> String {
        format!("{} {number}", request.path())
    }
}

#[derive(Dependencies)]
struct BadRule;

#[service(name = "bad_rule")]
impl BadRule {
    #[http("GET", "/get/<integer:value>")]
    async fn get(&self, value: i64) -> String {
        value.to_string()
    }
}

fn build_error<S: nameko::service::Service>(
    cluster: &TestCluster,
    transport: std::sync::Arc<dyn nameko::transport::Transport>,
) -> String {
    ServiceContainer::<S>::builder(transport, cluster.config().clone())
        .build()
        .map(|_| ())
        .unwrap_err()
        .to_string()
}

#[tokio::test]
async fn a_rule_that_does_not_fit_its_method_is_refused() {
    let cluster = TestCluster::memory();
    let transport = cluster.connect().await;
    let error = build_error::<MissingVariable>(&cluster, transport.clone());
    assert!(error.contains("no parameter `value`"), "{error}");
    let error = build_error::<BadRule>(&cluster, transport);
    assert!(error.contains("unknown converter `integer`"), "{error}");
    cluster.shutdown().await;
}
