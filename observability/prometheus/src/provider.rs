//! Attaching metrics to a container: the `Metrics` field (nameko-prometheus's
//! `PrometheusMetrics`), or [`instrument`] for every container of a process.

use std::fmt;
use std::sync::Arc;

use nameko_core::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko_core::extension::{ContainerContext, ExtensionError, SharedExtension};
use nameko_core::transport::{Transport, TransportStatus};
use nameko_core::worker::WorkerContext;
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::PROMETHEUS;
use crate::families::ServiceMetrics;
use crate::registry::MetricsRegistry;

/// A service field that gives the service metrics (see the [crate documentation](crate)).
/// Its value is a handle on them: the prefix they are recorded under.
#[derive(Clone)]
pub struct Metrics {
    metrics: Arc<ServiceMetrics>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("prefix", &self.metrics.prefix)
            .finish()
    }
}

impl Metrics {
    /// A handle on metrics recorded nowhere, for a unit test's service instance
    /// (`worker_factory::<S>().with_value("metrics", Metrics::unregistered("s"))`).
    ///
    /// ```
    /// let metrics = nameko_prometheus::Metrics::unregistered("calculator");
    /// assert_eq!(metrics.prefix(), "calculator");
    /// ```
    #[must_use]
    pub fn unregistered(prefix: &str) -> Self {
        let mut registry = prometheus_client::registry::Registry::default();
        Self {
            metrics: Arc::new(ServiceMetrics::new(prefix, "unknown", &mut registry)),
        }
    }

    /// The prefix of the service's metrics: its name, or `PROMETHEUS.<service>.prefix`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.metrics.prefix
    }
}

impl Dependency for Metrics {
    type Provider = PrometheusMetrics;

    fn provider(_field: &'static str) -> PrometheusMetrics {
        PrometheusMetrics::new()
    }
}

/// Provides [`Metrics`]: attaches the service's metrics to its container (as
/// [`instrument`] does; a container gets them once however it asks).
#[derive(Debug, Default)]
pub struct PrometheusMetrics {
    metrics: Option<Arc<ServiceMetrics>>,
}

impl PrometheusMetrics {
    /// A provider, set up by its container.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl DependencyProvider for PrometheusMetrics {
    type Output = Metrics;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let metrics = attach(container).map_err(|e| ProviderError::new(format!("metrics: {e}")))?;
        self.metrics = Some(metrics);
        Ok(())
    }

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<Metrics, ProviderError> {
        self.metrics
            .clone()
            .map(|metrics| Metrics { metrics })
            .ok_or_else(|| ProviderError::new("metrics used before their container set up"))
    }
}

/// Gives a container metrics without a [`Metrics`] field: a container hook, so that
/// every service of a process is measured.
///
/// ```no_run
/// use nameko::extension::ContainerHooks;
/// use nameko::prelude::*;
///
/// #[derive(Dependencies)]
/// struct Calculator;
///
/// #[service(name = "calculator")]
/// impl Calculator {
///     #[rpc]
///     async fn add(&self, a: f64, b: f64) -> f64 {
///         a + b
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     nameko::cli::Cli::new()
///         .service::<Calculator>()
///         .with_state(ContainerHooks::new().with(nameko_prometheus::instrument))
///         .main()
/// }
/// ```
///
/// # Errors
///
/// A wrong `PROMETHEUS` or `METRICS_ADDRESS`, or a route that cannot be mounted.
pub fn instrument(ctx: &ContainerContext) -> Result<(), ExtensionError> {
    attach(ctx).map(|_| ())
}

/// The container's metrics, attached on first use: recorded through an observer of the
/// container, with a watch of its broker connection.
fn attach(ctx: &ContainerContext) -> Result<Arc<ServiceMetrics>, ExtensionError> {
    let (prefix, version) = read_config(ctx)?;
    let registry = MetricsRegistry::of(ctx)?;
    let mut fresh = false;
    let attached = ctx.shared("prometheus", || {
        fresh = true;
        Attached {
            metrics: registry.service(ctx.service_name(), &prefix, &version),
            transport: ctx.transport().clone(),
            watch: Mutex::new(None),
        }
    });
    if fresh {
        ctx.observers().add(attached.metrics.clone());
    }
    Ok(attached.metrics.clone())
}

/// A container's metrics, and the watch of its broker connection, living as long as
/// the container (a container-scope shared extension).
struct Attached {
    metrics: Arc<ServiceMetrics>,
    transport: Arc<dyn Transport>,
    watch: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

#[async_trait::async_trait]
impl SharedExtension for Attached {
    async fn start(&self) -> Result<(), ExtensionError> {
        let stop = CancellationToken::new();
        let task = tokio::spawn(watch_broker(
            self.transport.clone(),
            self.metrics.clone(),
            stop.clone(),
        ));
        if let Some((old, task)) = self.watch.lock().replace((stop, task)) {
            old.cancel();
            task.abort();
        }
        Ok(())
    }

    async fn close(&self) {
        let watch = self.watch.lock().take();
        if let Some((stop, task)) = watch {
            stop.cancel();
            let _ = task.await;
        }
    }

    async fn kill(&self) {
        if let Some((stop, task)) = self.watch.lock().take() {
            stop.cancel();
            task.abort();
        }
    }
}

/// `PROMETHEUS.<service>.prefix`, or the service name (with `_` for what a metric name
/// cannot hold); and the service version from
/// the variable `PROMETHEUS.APP_VERSION_KEY` names (`APP_VERSION` by default).
fn read_config(ctx: &ContainerContext) -> Result<(String, String), ExtensionError> {
    let service = ctx.service_name();
    let config = ctx.config().get(PROMETHEUS);
    let prefix = match config
        .and_then(|c| c.get(service))
        .and_then(|s| s.get("prefix"))
    {
        None => metric_name(service),
        Some(serde_json::Value::String(prefix)) if valid_name(prefix) => prefix.clone(),
        Some(other) => {
            return Err(ExtensionError::msg(format!(
                "{PROMETHEUS}.{service}.prefix must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), not {other}"
            )));
        }
    };
    let version_key = config
        .and_then(|c| c.get("APP_VERSION_KEY"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or("APP_VERSION");
    let version = std::env::var(version_key).unwrap_or_else(|_| "unknown".to_owned());
    Ok((prefix, version))
}

fn metric_name(service: &str) -> String {
    let mut name: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !valid_name(&name) {
        name.insert(0, '_');
    }
    name
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Follows a broker connection: `broker_connected`, a disconnect counted when it goes
/// down, a reconnect when it comes back.
async fn watch_broker(
    transport: Arc<dyn Transport>,
    metrics: Arc<ServiceMetrics>,
    stop: CancellationToken,
) {
    let mut status = transport.status();
    let mut up = matches!(*status.borrow_and_update(), TransportStatus::Connected);
    metrics.connected.set(i64::from(up));
    // A first connection is no reconnect.
    let mut lost = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            changed = status.changed() => {
                if changed.is_err() {
                    metrics.connected.set(0);
                    return;
                }
            }
        }
        let now = matches!(*status.borrow_and_update(), TransportStatus::Connected);
        match (up, now) {
            (true, false) => {
                metrics.disconnects.inc();
                lost = true;
            }
            (false, true) if lost => {
                metrics.reconnects.inc();
            }
            _ => {}
        }
        up = now;
        metrics.connected.set(i64::from(up));
    }
}
