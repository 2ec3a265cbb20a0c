//! Export: the tracer provider, from the standard `OTEL_*` environment variables.

use std::fmt;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// Tracing could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// An `OTEL_*` variable asks for what this crate does not do, or holds a value that
    /// is not one of the spec's.
    #[error("{variable}={value:?}: {reason}")]
    Setting {
        /// The variable.
        variable: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// The tracer provider failed to flush or shut down.
    #[error("cannot shut the tracer provider down: {0}")]
    Shutdown(#[source] opentelemetry_sdk::error::OTelSdkError),
}

/// The export the `OTEL_*` variables ask for.
///
/// Export is **off** unless a variable turns it on: `OTEL_TRACES_EXPORTER=otlp`, or an
/// OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
/// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` keeps it off whatever else
/// is set.
///
/// ```
/// use nameko_opentelemetry::ExportSettings;
///
/// let vars = |name: &str| match name {
///     "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://jaeger:4318".to_owned()),
///     _ => None,
/// };
/// let settings = ExportSettings::from_vars(vars)?.expect("an endpoint turns export on");
/// assert_eq!(settings.protocol(), "http/protobuf");
/// assert!(ExportSettings::from_vars(|_| None)?.is_none(), "off by default");
/// # Ok::<(), nameko_opentelemetry::TelemetryError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSettings {
    protocol: Protocol,
    needs_service_name: bool,
}

const SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
const TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
const PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
const TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";

impl ExportSettings {
    /// The settings of the process's environment; `None` when export is off.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Setting`] for an exporter other than `otlp` or `none`, a protocol
    /// other than `http/protobuf` (`grpc` is not built in), or an `OTEL_SDK_DISABLED` that
    /// is not a boolean.
    pub fn from_env() -> Result<Option<Self>, TelemetryError> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// The settings the variables `var` gives say; see [`ExportSettings::from_env`].
    ///
    /// # Errors
    ///
    /// As [`ExportSettings::from_env`].
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, TelemetryError> {
        let var = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(disabled) = var(SDK_DISABLED) {
            match disabled.to_ascii_lowercase().as_str() {
                "true" => return Ok(None),
                "false" => {}
                _ => {
                    return Err(setting(
                        SDK_DISABLED,
                        disabled,
                        "expected `true` or `false`",
                    ));
                }
            }
        }
        let endpoint = var(TRACES_ENDPOINT).or_else(|| var(ENDPOINT));
        match var(TRACES_EXPORTER) {
            None if endpoint.is_none() => return Ok(None),
            None => {}
            Some(exporter) => match exporter.as_str() {
                "none" => return Ok(None),
                "otlp" => {}
                _ => {
                    return Err(setting(
                        TRACES_EXPORTER,
                        exporter,
                        "nameko-opentelemetry exports over OTLP only: `otlp` or `none`",
                    ));
                }
            },
        }
        let (variable, protocol) = match var(TRACES_PROTOCOL) {
            Some(protocol) => (TRACES_PROTOCOL, Some(protocol)),
            None => (PROTOCOL, var(PROTOCOL)),
        };
        let protocol = match protocol.as_deref() {
            None | Some("http/protobuf") => Protocol::HttpBinary,
            Some(other) => {
                return Err(setting(
                    variable,
                    other.to_owned(),
                    "nameko-opentelemetry exports OTLP over HTTP with protobuf: `http/protobuf` (port 4318)",
                ));
            }
        };
        let named_by_attributes = var(RESOURCE_ATTRIBUTES).is_some_and(|attributes| {
            attributes
                .split(',')
                .any(|pair| pair.trim_start().starts_with("service.name="))
        });
        Ok(Some(Self {
            protocol,
            needs_service_name: var(SERVICE_NAME).is_none() && !named_by_attributes,
        }))
    }

    /// The OTLP protocol: `http/protobuf`.
    #[must_use]
    pub fn protocol(&self) -> &'static str {
        "http/protobuf"
    }

    /// Whether the variables leave the service name to the program
    /// (`OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`' `service.name` unset).
    #[must_use]
    pub fn needs_service_name(&self) -> bool {
        self.needs_service_name
    }

    /// The tracer provider: OTLP over HTTP to the configured endpoint (the exporter reads
    /// `OTEL_EXPORTER_OTLP_*` itself: endpoint, headers, timeout, compression), through
    /// a batch processor (`OTEL_BSP_*`), with the resource of `OTEL_RESOURCE_ATTRIBUTES`
    /// and `OTEL_SERVICE_NAME`, or `default_service_name` when neither names the service.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Exporter`] if the exporter cannot be built.
    pub fn provider(
        &self,
        default_service_name: &str,
    ) -> Result<SdkTracerProvider, TelemetryError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(self.protocol)
            .build()
            .map_err(TelemetryError::Exporter)?;
        let mut resource = Resource::builder();
        if self.needs_service_name() {
            resource = resource.with_service_name(default_service_name.to_owned());
        }
        Ok(SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build())
    }
}

fn setting(variable: &'static str, value: String, reason: &str) -> TelemetryError {
    TelemetryError::Setting {
        variable,
        value,
        reason: reason.to_owned(),
    }
}

/// A tracer provider and what makes `tracing` spans into its spans.
///
/// Keep it for the life of the process: [`Telemetry::shutdown`] (or dropping it) flushes
/// the spans not yet exported.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Spans to `provider` (an in-memory exporter in tests, or any provider built by
    /// hand).
    #[must_use]
    pub fn new(provider: SdkTracerProvider) -> Self {
        Self { provider }
    }

    /// The provider the `OTEL_*` variables ask for (see [`ExportSettings`]), `None` when
    /// they leave export off.
    ///
    /// # Errors
    ///
    /// As [`ExportSettings::from_env`] and [`ExportSettings::provider`].
    pub fn from_env(default_service_name: &str) -> Result<Option<Self>, TelemetryError> {
        let Some(settings) = ExportSettings::from_env()? else {
            return Ok(None);
        };
        Ok(Some(Self::new(settings.provider(default_service_name)?)))
    }

    /// The provider.
    #[must_use]
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// The tracer nameko-rs's spans are made with.
    #[must_use]
    pub fn tracer(&self) -> SdkTracer {
        self.provider
            .tracer(concat!("nameko-opentelemetry/", env!("CARGO_PKG_VERSION")))
    }

    /// The `tracing-subscriber` layer that exports `tracing` spans through the provider,
    /// with their fields as attributes (and no source locations, threads or timings).
    /// Add it with [`span_filter`](crate::span_filter), or a filter of your own that
    /// lets the spans of [`NamekoTracing`](crate::NamekoTracing) (target
    /// `nameko_opentelemetry`, level `INFO`) through; spans of the service's own code
    /// inside a worker become children of the worker's span.
    #[must_use]
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer())
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
    }

    /// Exports what is pending and stops the provider.
    ///
    /// # Errors
    ///
    /// [`TelemetryError::Shutdown`] when the exporter failed.
    pub fn shutdown(self) -> Result<(), TelemetryError> {
        self.provider.shutdown().map_err(TelemetryError::Shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<ExportSettings>, TelemetryError> {
        ExportSettings::from_vars(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn off_unless_an_endpoint_or_the_exporter_says_so() {
        assert!(settings(&[]).unwrap().is_none());
        assert!(settings(&[(ENDPOINT, " ")]).unwrap().is_none());
        assert!(
            settings(&[(ENDPOINT, "http://jaeger:4318")])
                .unwrap()
                .is_some()
        );
        assert!(
            settings(&[(TRACES_ENDPOINT, "http://jaeger:4318/v1/traces")])
                .unwrap()
                .is_some()
        );
        assert!(settings(&[(TRACES_EXPORTER, "otlp")]).unwrap().is_some());
    }

    #[test]
    fn disabled_or_none_wins() {
        let on = (ENDPOINT, "http://jaeger:4318");
        assert!(settings(&[on, (SDK_DISABLED, "TRUE")]).unwrap().is_none());
        assert!(settings(&[on, (SDK_DISABLED, "false")]).unwrap().is_some());
        assert!(
            settings(&[on, (TRACES_EXPORTER, "none")])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn what_it_cannot_do_is_a_clear_error() {
        let on = (ENDPOINT, "http://jaeger:4318");
        let error = settings(&[on, (PROTOCOL, "grpc")]).unwrap_err().to_string();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"grpc\""),
            "{error}"
        );
        assert!(error.contains("http/protobuf"), "{error}");
        let error = settings(&[
            on,
            (TRACES_PROTOCOL, "http/json"),
            (PROTOCOL, "http/protobuf"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains(TRACES_PROTOCOL), "{error}");
        assert!(settings(&[(TRACES_EXPORTER, "zipkin")]).is_err());
        assert!(settings(&[on, (SDK_DISABLED, "yes")]).is_err());
    }

    #[test]
    fn the_service_is_named_by_the_variables_or_the_program() {
        let on = (ENDPOINT, "http://jaeger:4318");
        assert!(settings(&[on]).unwrap().unwrap().needs_service_name());
        assert!(
            !settings(&[on, (SERVICE_NAME, "billing")])
                .unwrap()
                .unwrap()
                .needs_service_name()
        );
        assert!(
            !settings(&[
                on,
                (
                    RESOURCE_ATTRIBUTES,
                    "deployment.environment=prod, service.name=billing"
                )
            ])
            .unwrap()
            .unwrap()
            .needs_service_name()
        );
        assert!(
            settings(&[on, (RESOURCE_ATTRIBUTES, "service.namespace=shop")])
                .unwrap()
                .unwrap()
                .needs_service_name()
        );
    }
}
