//! What a handler returns, and the response it makes: nameko's string and tuples, a full
//! response, and what nameko refuses.

mod common;

use std::collections::BTreeMap;

use nameko::prelude::*;

#[derive(Dependencies)]
struct Answers;

#[service(name = "answers")]
impl Answers {
    #[http("GET", "/string")]
    async fn string(&self) -> String {
        "plain".to_owned()
    }

    #[http("GET", "/status")]
    async fn status(&self) -> (u16, String) {
        (403, "Forbidden".to_owned())
    }

    #[http("GET", "/headers")]
    async fn headers(&self) -> (u16, BTreeMap<String, String>, String) {
        let headers = BTreeMap::from([
            (
                "Location".to_owned(),
                "https://www.example.com/widget/1".to_owned(),
            ),
            ("Content-Type".to_owned(), "application/json".to_owned()),
        ]);
        (201, headers, String::new())
    }

    #[http("GET", "/full")]
    async fn full(&self) -> Response {
        Response::new(vec![0_u8, 159, 146, 150])
            .with_status(202)
            .with_content_type("application/octet-stream")
            .with_header("X-Custom", "yes")
    }

    #[http("GET", "/result")]
    async fn result(&self) -> Result<Response, ServiceError> {
        Ok(Response::json(&json!({"value": "é"})))
    }

    #[http("GET", "/number")]
    async fn number(&self) -> i64 {
        42
    }

    #[http("GET", "/nothing")]
    async fn nothing(&self) {}
}

#[tokio::test]
async fn nameko_return_values_make_their_responses() {
    let (cluster, web) = common::serve::<Answers>().await;

    let response = web.get("/string").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "plain");

    let response = web.get("/status").send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.text().await.unwrap(), "Forbidden");

    let response = web.get("/headers").send().await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.headers()["location"],
        "https://www.example.com/widget/1"
    );
    // A content type among the headers replaces the default.
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["content-length"], "0");
    assert_eq!(response.text().await.unwrap(), "");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_full_response_goes_out_as_built() {
    let (cluster, web) = common::serve::<Answers>().await;
    let response = web.get("/full").send().await.unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(response.headers()["x-custom"], "yes");
    assert_eq!(response.bytes().await.unwrap().as_ref(), [0, 159, 146, 150]);

    let response = web.get("/result").send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), r#"{"value": "\u00e9"}"#);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_payload_that_is_not_a_string_is_nameko_s_type_error() {
    let (cluster, web) = common::serve::<Answers>().await;
    let response = web.get("/number").send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.text().await.unwrap(),
        "Error: TypeError: Payload must be a string. Got `42`\n"
    );
    let response = web.get("/nothing").send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.text().await.unwrap(),
        "Error: TypeError: Payload must be a string. Got `None`\n"
    );
    cluster.shutdown().await;
}
