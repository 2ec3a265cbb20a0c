//! Other extensions mount tower services on the process's web server (`/metrics`,
//! `/ws`), and configuration code wraps the server in tower layers (CORS).

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use nameko::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko::extension::ContainerContext;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::web::{Body, WebConfig, WebServer};
use parking_lot::Mutex;

/// A dependency whose provider mounts `/metrics` (one path) and `/ws` (a prefix) on the
/// web server, as a metrics or WebSocket extension would.
struct Endpoints;

#[derive(Default)]
struct EndpointsProvider {
    mounted: Mutex<Option<(Arc<WebServer>, Vec<u64>)>>,
}

impl DependencyProvider for EndpointsProvider {
    type Output = Endpoints;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let server = WebServer::of(container).map_err(|e| ProviderError::new(e.to_string()))?;
        let metrics = tower::service_fn(|_request: http::Request<Body>| async {
            Ok::<_, Infallible>(http::Response::new(Body::from("requests_total 1\n")))
        });
        let ws = tower::service_fn(|request: http::Request<Body>| async move {
            let text = format!("{} {}", request.method(), request.uri().path());
            Ok::<_, Infallible>(http::Response::new(Body::from(text)))
        });
        let ids = vec![
            server
                .route("/metrics", "metrics", metrics)
                .map_err(|e| ProviderError::new(e.to_string()))?,
            server
                .nest("/ws", "websocket", ws)
                .map_err(|e| ProviderError::new(e.to_string()))?,
        ];
        *self.mounted.lock() = Some((server, ids));
        Ok(())
    }

    async fn stop(&self) {
        if let Some((server, ids)) = self.mounted.lock().take() {
            for id in ids {
                server.unmount(id);
            }
        }
    }

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<Endpoints, ProviderError> {
        Ok(Endpoints)
    }
}

impl Dependency for Endpoints {
    type Provider = EndpointsProvider;

    fn provider(_field: &'static str) -> EndpointsProvider {
        EndpointsProvider::default()
    }
}

#[derive(Dependencies)]
struct Mounted {
    #[allow(dead_code)]
    endpoints: Endpoints,
}

#[service(name = "mounted")]
impl Mounted {
    #[http("GET", "/<name>")]
    async fn hello(&self, name: String) -> String {
        format!("hello {name}")
    }
}

#[tokio::test]
async fn mounted_services_answer_their_paths_next_to_the_routes() {
    let (cluster, web) = common::serve::<Mounted>().await;
    let text = |path: &'static str| {
        let web = web.clone();
        async move { web.get(path).send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(text("/metrics").await, "requests_total 1\n");
    assert_eq!(text("/ws").await, "GET /ws");
    assert_eq!(text("/ws/room/1").await, "GET /ws/room/1");
    // `/metricsx` and `/wsx` are not theirs.
    assert_eq!(text("/metricsx").await, "hello metricsx");
    assert_eq!(text("/wsx").await, "hello wsx");
    let response = web.post("/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200, "a mount answers every method");
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_second_mount_on_a_path_is_refused_naming_the_first() {
    let server = WebServer::new();
    let service = tower::service_fn(|_request: http::Request<Body>| async {
        Ok::<_, Infallible>(http::Response::new(Body::empty()))
    });
    server.route("/metrics", "metrics", service).unwrap();
    let error = server
        .route("/metrics", "other_metrics", service)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("other_metrics") && error.contains("metrics (`/metrics`)"),
        "{error}"
    );
    let error = server
        .route("metrics/", "bad", service)
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid mount path"), "{error}");
}

#[tokio::test]
async fn cors_from_tower_http_wraps_every_route() {
    use tower_http::cors::CorsLayer;

    let cors = CorsLayer::new()
        .allow_origin(
            "https://app.example.com"
                .parse::<http::HeaderValue>()
                .unwrap(),
        )
        .allow_methods([http::Method::GET, http::Method::POST]);
    let cluster = TestCluster::memory().with_state(WebConfig::new().layer(cors));
    let (cluster, web) = common::serve_with::<Mounted>(cluster).await;

    let response = web
        .get("/ada")
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(response.text().await.unwrap(), "hello ada");

    // The preflight is the layer's answer.
    let response = web
        .request("OPTIONS", "/ada")
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let methods = response.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(methods, "GET,POST");

    // Mounts are wrapped too.
    let response = web
        .get("/metrics")
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    cluster.shutdown().await;
}
