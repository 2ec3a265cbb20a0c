//! The process's registry: every service's metrics, and the routes that serve them.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use nameko_core::extension::{ContainerContext, ExtensionError, SharedExtension, SharedExtensions};
use nameko_web::{Body, WebServer};
use parking_lot::Mutex;
use prometheus_client::registry::Registry;

use crate::families::ServiceMetrics;
use crate::health::readiness;
use crate::{METRICS_ADDRESS, paths};

/// The key of the registry among the process's shared extensions.
const KEY: &str = "prometheus";
/// The key of the listener of [`METRICS_ADDRESS`].
const SERVER_KEY: &str = "metrics";

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The metrics of every service of a process, and the routes serving them and the
/// health probes (`/metrics`, `/health/live`, `/health/ready`): one per process, made
/// by the first [`Metrics`](crate::Metrics) field's provider.
pub struct MetricsRegistry {
    registry: Mutex<Registry>,
    services: Mutex<HashMap<String, Arc<ServiceMetrics>>>,
    /// Which prefix each service records under, for the gauges read at scrape time.
    prefixes: Mutex<HashMap<&'static str, String>>,
    scope: Mutex<Option<SharedExtensions>>,
    mounted: Mutex<Option<(Arc<WebServer>, Vec<u64>)>>,
    started: Instant,
}

impl fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsRegistry")
            .field("prefixes", &*self.prefixes.lock())
            .finish_non_exhaustive()
    }
}

impl MetricsRegistry {
    fn new() -> Self {
        Self {
            registry: Mutex::new(Registry::default()),
            services: Mutex::default(),
            prefixes: Mutex::default(),
            scope: Mutex::new(None),
            mounted: Mutex::new(None),
            started: Instant::now(),
        }
    }

    /// The process's registry, as a provider uses it during its container's `setup`:
    /// made by the first that asks, which also mounts the routes on the web server
    /// (every container that asks uses the server, so it lives as long as they do).
    pub(crate) fn of(ctx: &ContainerContext) -> Result<Arc<Self>, ExtensionError> {
        let registry = ctx.process_shared(KEY, Self::new);
        let dedicated = ctx
            .config()
            .get_str(METRICS_ADDRESS)
            .map_err(|e| ExtensionError::msg(e.to_string()))?
            .is_some();
        let server = if dedicated {
            WebServer::dedicated(ctx, SERVER_KEY, METRICS_ADDRESS)?
        } else {
            WebServer::of(ctx)?
        };
        registry
            .scope
            .lock()
            .get_or_insert_with(|| ctx.process_scope().clone());
        let mut mounted = registry.mounted.lock();
        if mounted.is_none() {
            let ids = registry
                .mount(&server)
                .map_err(|e| ExtensionError::msg(e.to_string()))?;
            *mounted = Some((server, ids));
        }
        drop(mounted);
        Ok(registry)
    }

    /// The registry of a scope of shared extensions (a runner's, a test cluster's), if a
    /// service there has metrics.
    #[must_use]
    pub fn in_scope(scope: &SharedExtensions) -> Option<Arc<Self>> {
        scope.get::<Self>(KEY)
    }

    /// Where the routes answer, once the server started: the listener of
    /// [`METRICS_ADDRESS`] or the process's web server.
    #[must_use]
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.mounted
            .lock()
            .as_ref()
            .and_then(|(server, _)| server.local_addr())
    }

    fn mount(self: &Arc<Self>, server: &WebServer) -> Result<Vec<u64>, nameko_web::WebError> {
        let weak = Arc::downgrade(self);
        let metrics = tower::service_fn(move |_request: http::Request<Body>| {
            let registry = weak.upgrade();
            async move {
                let response = match registry {
                    Some(registry) => text_response(200, CONTENT_TYPE, registry.encode()),
                    None => text_response(503, "text/plain", "metrics stopped\n".to_owned()),
                };
                Ok::<_, Infallible>(response)
            }
        });
        let live = tower::service_fn(|_request: http::Request<Body>| async {
            Ok::<_, Infallible>(text_response(
                200,
                "application/json",
                "{\"status\":\"live\"}".to_owned(),
            ))
        });
        let weak = Arc::downgrade(self);
        let ready = tower::service_fn(move |_request: http::Request<Body>| {
            let scope = weak.upgrade().and_then(|r| r.scope.lock().clone());
            async move {
                let readiness = readiness(&scope.unwrap_or_default());
                let status = if readiness.ready { 200 } else { 503 };
                Ok::<_, Infallible>(text_response(
                    status,
                    "application/json",
                    readiness.to_json().to_string(),
                ))
            }
        });
        let mut ids = Vec::with_capacity(3);
        for (path, name, result) in [
            (
                paths::METRICS,
                "metrics",
                server.route(paths::METRICS, "metrics", metrics),
            ),
            (
                paths::LIVE,
                "liveness",
                server.route(paths::LIVE, "liveness", live),
            ),
            (
                paths::READY,
                "readiness",
                server.route(paths::READY, "readiness", ready),
            ),
        ] {
            match result {
                Ok(id) => ids.push(id),
                Err(error) => {
                    for id in ids {
                        server.unmount(id);
                    }
                    tracing::error!(path, name, %error, "cannot mount a metrics route");
                    return Err(error);
                }
            }
        }
        Ok(ids)
    }

    /// The metrics of `service` under `prefix`, registered on first use.
    pub(crate) fn service(
        &self,
        service: &'static str,
        prefix: &str,
        service_version: &str,
    ) -> Arc<ServiceMetrics> {
        self.prefixes.lock().insert(service, prefix.to_owned());
        let mut services = self.services.lock();
        if let Some(metrics) = services.get(prefix) {
            return metrics.clone();
        }
        let metrics = Arc::new(ServiceMetrics::new(
            prefix,
            service_version,
            &mut self.registry.lock(),
        ));
        services.insert(prefix.to_owned(), metrics.clone());
        metrics
    }

    /// The text Prometheus scrapes, with the gauges read now.
    #[must_use]
    pub fn encode(&self) -> String {
        self.refresh();
        let mut text = String::new();
        if let Err(error) =
            prometheus_client::encoding::text::encode(&mut text, &self.registry.lock())
        {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }

    /// Reads the uptime and the worker pools of the services of the process.
    fn refresh(&self) {
        let uptime = self.started.elapsed().as_secs_f64();
        let services = self.services.lock().clone();
        let prefixes = self.prefixes.lock().clone();
        let mut running: HashMap<&str, (i64, i64)> = HashMap::new();
        let containers = self
            .scope
            .lock()
            .as_ref()
            .map(SharedExtensions::containers)
            .unwrap_or_default();
        for ctx in &containers {
            if let Some(prefix) = prefixes.get(ctx.service_name()) {
                let entry = running.entry(prefix.as_str()).or_default();
                entry.0 += i64::try_from(ctx.workers_in_use()).unwrap_or(i64::MAX);
                entry.1 += i64::try_from(ctx.settings().max_workers).unwrap_or(i64::MAX);
            }
        }
        for (prefix, metrics) in &services {
            metrics.uptime.set(uptime);
            let (in_use, max) = running.get(prefix.as_str()).copied().unwrap_or_default();
            metrics.running_workers.set(in_use);
            metrics.max_workers.set(max);
        }
    }
}

fn text_response(status: u16, content_type: &str, body: String) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(value) = http::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, value);
    }
    response
}

#[async_trait::async_trait]
impl SharedExtension for MetricsRegistry {
    async fn close(&self) {
        if let Some((server, ids)) = self.mounted.lock().take() {
            for id in ids {
                server.unmount(id);
            }
        }
    }

    async fn kill(&self) {
        self.close().await;
    }
}
