//! The testing toolkit for HTTP: `web_session` on the memory broker and on RabbitMQ,
//! `worker_factory` and `entrypoint_hook` with built requests.

mod common;

use nameko::prelude::*;
use nameko::testing::{HookError, TestCluster, entrypoint_hook, worker_factory};
use nameko::web::json_dumps;

#[derive(Dependencies)]
struct Greeter {
    names: RpcProxy,
}

#[service(name = "greeter")]
impl Greeter {
    #[http("GET", "/greet/<int:id>")]
    async fn greet(&self, request: Request, id: i64) -> Result<(u16, String), RpcError> {
        let name: String = self.names.call("lookup", (id,)).await?;
        let greeting = request
            .arg("greeting")
            .unwrap_or_else(|| "hello".to_owned());
        Ok((
            200,
            json_dumps(&json!({"message": format!("{greeting} {name}")})),
        ))
    }
}

#[derive(Dependencies)]
struct Names;

#[service(name = "names")]
impl Names {
    #[rpc]
    async fn lookup(&self, id: i64) -> String {
        format!("user{id}")
    }
}

async fn greet_over_http(mut cluster: TestCluster) {
    cluster.start::<Names>().await;
    cluster.start::<Greeter>().await;
    let web = cluster.web_session();
    let response = web.get("/greet/7?greeting=hi").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"message": "hi user7"}"#);
    cluster.shutdown().await;
}

#[tokio::test]
async fn web_session_on_the_memory_broker() {
    greet_over_http(TestCluster::memory()).await;
}

#[tokio::test]
async fn web_session_on_rabbitmq() {
    if let Some(cluster) = TestCluster::rabbitmq().await {
        greet_over_http(cluster).await;
    }
}

#[tokio::test]
async fn worker_factory_calls_an_http_method_with_a_built_request() {
    let names = nameko::testing::RpcProxyMock::new().reply("lookup", "ada");
    let (service, mocks) = worker_factory::<Greeter>()
        .with("names", names)
        .build_with_mocks()
        .unwrap();
    let request = Request::builder().uri("/greet/1?greeting=hey").build();
    let returned = service.greet(request, 1).await.unwrap();
    let response = Response::from_return(returned).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text(), r#"{"message": "hey ada"}"#);
    mocks.rpc("names").assert_called_once_with("lookup", (1,));
}

#[tokio::test]
async fn entrypoint_hook_runs_the_whole_http_path() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Names>().await;
    let greeter = cluster.start::<Greeter>().await;
    let request = Request::builder().uri("/greet/3").build();
    let response = entrypoint_hook(&greeter, "greet")
        .http(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text(), r#"{"message": "hello user3"}"#);

    let request = Request::builder().uri("/other/3").build();
    let error = entrypoint_hook(&greeter, "greet")
        .http(request)
        .await
        .unwrap_err();
    assert!(
        matches!(error, HookError::UnknownEntrypoint { .. }),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("does not match the rule `/greet/<int:id>`"),
        "{error}"
    );
    cluster.shutdown().await;
}
