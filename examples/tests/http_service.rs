//! `http_service`: every row of its table over HTTP, its handlers with `worker_factory`.

use nameko::testing::{TestCluster, worker_factory};
use nameko::web::{Request, Response};
use nameko_examples::HttpService;

#[tokio::test]
async fn every_route_answers_as_documented() {
    let mut cluster = TestCluster::memory();
    cluster.start::<HttpService>().await;
    let web = cluster.web_session();
    let text = "text/plain; charset=utf-8";
    let cases: [(&str, &str, &str, u16, &str, &str); 11] = [
        ("GET", "/get/42", "", 200, text, r#"{"value": 42}"#),
        ("POST", "/post", "hello", 200, text, "received: hello"),
        ("GET", "/multi", "", 200, text, "GET"),
        ("PUT", "/multi", "", 200, text, "PUT"),
        ("POST", "/multi", "", 200, text, "POST"),
        ("DELETE", "/multi", "", 200, text, "DELETE"),
        ("GET", "/privileged", "", 403, text, "Forbidden"),
        ("GET", "/custom", "", 200, text, "payload"),
        (
            "GET",
            "/custom_exception",
            "",
            400,
            "application/json",
            r#"{"error": "INVALID_ARGUMENTS", "message": "Argument `foo` is required."}"#,
        ),
        ("GET", "/divide/7/2", "", 200, text, r#"{"result": 3.5}"#),
        (
            "GET",
            "/divide/1/0",
            "",
            400,
            text,
            "Error: ZeroDivisionError: division by zero\n",
        ),
    ];
    for (method, path, body, status, content_type, expected) in cases {
        let response = web.request(method, path).body(body).send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            content_type,
            "{method} {path}"
        );
        assert_eq!(response.text().await.unwrap(), expected, "{method} {path}");
    }
    let response = web.get("/headers").send().await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        "https://www.example.com/widget/1"
    );
    assert_eq!(response.text().await.unwrap(), "");
    cluster.shutdown().await;
}

#[tokio::test]
async fn handlers_called_directly() {
    let service = worker_factory::<HttpService>().build().unwrap();
    assert_eq!(service.get_method(7).await, r#"{"value": 7}"#);
    let request = Request::builder().method("POST").body("x").build();
    assert_eq!(service.do_post(request).await, "received: x");
    let response = Response::from_return(service.redirect().await).unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.header("location"),
        Some("https://www.example.com/widget/1")
    );
    assert_eq!(service.divide(4, 2).await.unwrap(), r#"{"result": 2.0}"#);
    assert!(service.divide(1, 0).await.is_err());
}
