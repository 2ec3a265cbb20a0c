//! `http_service`: the handlers of nameko's HTTP documentation, answering byte for byte
//! what the Python versions answer (`interop/python/http_service.py`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /get/<int:value>` | `{"value": <value>}` |
//! | `POST /post` | `received: <body as text>` |
//! | `GET,PUT,POST,DELETE /multi` | the request method |
//! | `GET /privileged` | `403`, `Forbidden` |
//! | `GET /headers` | `201`, `Location: https://www.example.com/widget/1`, empty body |
//! | `GET /custom` | a full response with body `payload` |
//! | `GET /custom_exception` | 400, `application/json`, `{"error": "INVALID_ARGUMENTS", "message": "Argument `foo` is required."}` |
//! | `GET /divide/<int:a>/<int:b>` | `{"result": <a / b>}`; 400 `Error: ZeroDivisionError: division by zero\n` when `b` is 0 |

use std::collections::BTreeMap;

use nameko::errors::RemoteError;
use nameko::prelude::*;
use nameko::web::json_dumps;

/// Python's `ZeroDivisionError`, expected by `divide`.
#[derive(Debug, Clone, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_type = "ZeroDivisionError",
    exc_path = "builtins.ZeroDivisionError",
    display = "division by zero"
)]
pub struct ZeroDivisionError;

/// The documentation's `InvalidArgumentsError`, an `HttpError` with its own code and
/// status.
#[derive(Debug, Clone, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_type = "InvalidArgumentsError",
    exc_path = "http_service.InvalidArgumentsError",
    display = "{0}"
)]
pub struct InvalidArgumentsError(pub String);

impl InvalidArgumentsError {
    /// `error_code` of the documentation's `HttpError` subclass.
    pub const ERROR_CODE: &'static str = "INVALID_ARGUMENTS";
    /// `status_code` of the documentation's `HttpError`.
    pub const STATUS_CODE: u16 = 400;
}

/// The documentation's `HttpEntrypoint.response_from_exception`: an `HttpError` answers
/// JSON with its code and status, anything else as nameko does.
#[must_use]
pub fn http_error_response(error: &RemoteError, expected: bool) -> Response {
    if error.exc_path == <InvalidArgumentsError as nameko::errors::NamekoError>::exc_path() {
        return Response::new(json_dumps(&json!({
            "error": InvalidArgumentsError::ERROR_CODE,
            "message": error.value,
        })))
        .with_status(InvalidArgumentsError::STATUS_CODE)
        .with_content_type("application/json");
    }
    Response::from_error(error, expected)
}

/// `http_service`: nameko's HTTP documentation, in Rust.
#[derive(Debug, Dependencies)]
pub struct HttpService;

#[service(name = "http_service")]
impl HttpService {
    /// `GET /get/42` → `{"value": 42}`.
    #[http("GET", "/get/<int:value>")]
    pub async fn get_method(&self, value: i64) -> String {
        json_dumps(&json!({"value": value}))
    }

    /// `POST /post` → `received: <body>`.
    #[http("POST", "/post")]
    pub async fn do_post(&self, request: Request) -> String {
        format!("received: {}", request.text_lossy())
    }

    /// Any of GET, PUT, POST, DELETE on `/multi` → the method.
    #[http("GET,PUT,POST,DELETE", "/multi")]
    pub async fn do_multi(&self, request: Request) -> String {
        request.method().to_owned()
    }

    /// `(403, "Forbidden")`.
    #[http("GET", "/privileged")]
    pub async fn forbidden(&self) -> (u16, String) {
        (403, "Forbidden".to_owned())
    }

    /// `(201, {"Location": ...}, "")`.
    #[http("GET", "/headers")]
    pub async fn redirect(&self) -> (u16, BTreeMap<String, String>, String) {
        let headers = BTreeMap::from([(
            "Location".to_owned(),
            "https://www.example.com/widget/1".to_owned(),
        )]);
        (201, headers, String::new())
    }

    /// A full response.
    #[http("GET", "/custom")]
    pub async fn custom(&self) -> Response {
        Response::new("payload")
    }

    /// The documentation's custom error, through [`http_error_response`].
    #[http("GET", "/custom_exception", response_from_exception = http_error_response)]
    pub async fn custom_exception(&self) -> Result<String, InvalidArgumentsError> {
        Err(InvalidArgumentsError(
            "Argument `foo` is required.".to_owned(),
        ))
    }

    /// `a / b` as a float; an expected `ZeroDivisionError` when `b` is 0.
    #[http("GET", "/divide/<int:a>/<int:b>", expected_exceptions = [ZeroDivisionError])]
    pub async fn divide(&self, a: i64, b: i64) -> Result<String, ZeroDivisionError> {
        if b == 0 {
            return Err(ZeroDivisionError);
        }
        Ok(json_dumps(&json!({"result": a as f64 / b as f64})))
    }
}
