//! Errors of handlers: expected ones and `BadRequest` are 400, others 500, with nameko's
//! body; a custom `response_from_exception`; a panic is a 500 and the server goes on.

mod common;

use nameko::errors::RemoteError;
use nameko::prelude::*;
use nameko::web::{BadRequest, json_dumps};

#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "ZeroDivisionError",
    exc_path = "builtins.ZeroDivisionError",
    display = "division by zero"
)]
struct ZeroDivisionError;

#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "InvalidArgumentsError",
    exc_path = "http_service.InvalidArgumentsError",
    display = "{0}"
)]
struct InvalidArgumentsError(String);

/// The documentation's `HttpEntrypoint.response_from_exception`.
fn http_errors(error: &RemoteError, expected: bool) -> Response {
    if error.exc_type == "InvalidArgumentsError" {
        return Response::new(json_dumps(
            &json!({"error": "INVALID_ARGUMENTS", "message": error.value}),
        ))
        .with_status(400)
        .with_content_type("application/json");
    }
    Response::from_error(error, expected)
}

#[derive(Dependencies)]
struct Failing;

#[service(name = "failing")]
impl Failing {
    #[http("GET", "/divide/<int:a>/<int:b>", expected_exceptions = [ZeroDivisionError])]
    async fn divide(&self, a: i64, b: i64) -> Result<String, ZeroDivisionError> {
        if b == 0 {
            return Err(ZeroDivisionError);
        }
        Ok(json_dumps(&json!({"result": a as f64 / b as f64})))
    }

    #[http("GET", "/unexpected")]
    async fn unexpected(&self) -> Result<String, ZeroDivisionError> {
        Err(ZeroDivisionError)
    }

    #[http("POST", "/json")]
    async fn json(&self, request: Request) -> Result<String, BadRequest> {
        let body: Value = request.json()?;
        Ok(body["name"].to_string())
    }

    #[http("GET", "/custom_exception", response_from_exception = http_errors)]
    async fn custom_exception(&self) -> Result<String, InvalidArgumentsError> {
        Err(InvalidArgumentsError(
            "Argument `foo` is required.".to_owned(),
        ))
    }

    #[http("GET", "/custom_other", response_from_exception = http_errors)]
    async fn custom_other(&self) -> Result<String, ZeroDivisionError> {
        Err(ZeroDivisionError)
    }

    #[http("GET", "/panic")]
    async fn panics(&self) -> String {
        panic!("the handler broke")
    }
}

async fn answer(response: reqwest::Response) -> (u16, String, String) {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (
        response.status().as_u16(),
        content_type,
        response.text().await.unwrap(),
    )
}

#[tokio::test]
async fn expected_errors_are_400_and_others_500_with_nameko_s_body() {
    let (cluster, web) = common::serve::<Failing>().await;
    let text = "text/plain; charset=utf-8".to_owned();
    assert_eq!(
        answer(web.get("/divide/7/2").send().await.unwrap()).await,
        (200, text.clone(), r#"{"result": 3.5}"#.to_owned())
    );
    assert_eq!(
        answer(web.get("/divide/1/0").send().await.unwrap()).await,
        (
            400,
            text.clone(),
            "Error: ZeroDivisionError: division by zero\n".to_owned()
        )
    );
    assert_eq!(
        answer(web.get("/unexpected").send().await.unwrap()).await,
        (
            500,
            text.clone(),
            "Error: ZeroDivisionError: division by zero\n".to_owned()
        )
    );
    let (status, _, body) = answer(web.post("/json").body("{not json").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Error: BadRequest: the request body is not valid JSON"),
        "{body}"
    );
    let (status, _, body) = answer(
        web.post("/json")
            .body(r#"{"name": "ada"}"#)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "\"ada\""));
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_custom_hook_answers_errors() {
    let (cluster, web) = common::serve::<Failing>().await;
    assert_eq!(
        answer(web.get("/custom_exception").send().await.unwrap()).await,
        (
            400,
            "application/json".to_owned(),
            r#"{"error": "INVALID_ARGUMENTS", "message": "Argument `foo` is required."}"#
                .to_owned()
        )
    );
    assert_eq!(
        answer(web.get("/custom_other").send().await.unwrap())
            .await
            .0,
        500
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_panic_is_a_500_and_the_server_goes_on() {
    let (cluster, web) = common::serve::<Failing>().await;
    for _ in 0..3 {
        let (status, _, body) = answer(web.get("/panic").send().await.unwrap()).await;
        assert_eq!(status, 500);
        assert!(body.starts_with("Error: "), "{body}");
        assert!(body.contains("the handler broke"), "{body}");
    }
    let (status, _, _) = answer(web.get("/divide/4/2").send().await.unwrap()).await;
    assert_eq!(status, 200);
    cluster.shutdown().await;
}
