//! Every example service in one process, until Ctrl-C or SIGTERM.
//!
//! ```text
//! cargo run --example cluster -- run                                             # in-process broker
//! AMQP_URI=amqp://guest:guest@localhost:5672/ cargo run --example cluster -- run # RabbitMQ
//! cargo run --example cluster -- call calculator.divide '[1, 0]'                 # ask a running cluster
//! cargo run --example cluster -- run -d WEB_SERVER_ADDRESS=127.0.0.1:8000         # HTTP on port 8000
//! cargo run --example cluster -- dispatch jobs job_submitted '{"id": "a", "fail_times": 2}'
//! cargo run --example cluster -- call flaky_service.handled                      # [{"id": "a", "attempts": 3}] 3 s later
//! cargo run --example cluster -- --help
//! ```
//!
//! On RabbitMQ, any nameko client can call the services, Python's `ClusterRpcProxy`
//! included. `AMQP_URI` (or `--broker`, `--config`, `-d AMQP_URI=...`) chooses the broker;
//! without one the services run on the in-process broker. `authors_service` keeps its
//! table in a SQLite file of the temporary directory unless `DB_URIS` says otherwise
//! (`--config examples/service_x_y.yaml` reads the URIs from the environment).
//! `http_service` answers HTTP at `WEB_SERVER_ADDRESS` (default `0.0.0.0:8000`):
//! `curl http://127.0.0.1:8000/get/42`. `websocket_service` answers WebSockets at `/ws`
//! on the same address, and serves a page at `/` that lists orders as they are placed.
//! Every service is measured (nameko-prometheus's
//! metrics), and the same server answers `/metrics`, `/health/live` and
//! `/health/ready`: `curl http://127.0.0.1:8000/metrics`.
//!
//! Traces: with an OTLP endpoint in the environment (`OTEL_EXPORTER_OTLP_ENDPOINT=
//! http://localhost:4318`, or the other standard `OTEL_*` variables), every worker, call
//! and event is exported as OpenTelemetry spans (service name `nameko-cluster` unless
//! `OTEL_SERVICE_NAME` says otherwise); see README's "Traces" section for Jaeger.

use nameko::cli::Cli;
use nameko::extension::ContainerHooks;
use nameko_examples::{
    AuditService, AuthorsService, Calculator, EmailService, FlakyService, HttpService,
    InventoryService, NotificationService, OrderService, PaymentService, ServiceX, ServiceY,
    UserService, WebsocketService,
};

fn main() -> std::process::ExitCode {
    let telemetry = match nameko_opentelemetry::init_from_env(
        "nameko-cluster",
        &log_filter(),
        nameko::logging::RedactingStderr,
    ) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: tracing: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let code = Cli::new()
        .service::<ServiceX>()
        .service::<ServiceY>()
        .service::<Calculator>()
        .service::<UserService>()
        .service::<PaymentService>()
        .service::<InventoryService>()
        .service::<EmailService>()
        .service::<OrderService>()
        .service::<AuditService>()
        .service::<NotificationService>()
        .service::<AuthorsService>()
        .service::<HttpService>()
        .service::<FlakyService>()
        .service::<WebsocketService>()
        .with_state(ContainerHooks::new().with(nameko_prometheus::instrument))
        .default_broker("memory://")
        .main();
    if let Some(telemetry) = telemetry
        && let Err(error) = telemetry.shutdown()
    {
        eprintln!("error: tracing: {error}");
    }
    code
}

/// The log filter while tracing is on (it then installs the logging subscriber): a
/// service's (`RUST_LOG`, or `INFO`) for `run`, a client command's (quiet) otherwise.
fn log_filter() -> String {
    let rust_log = std::env::var("RUST_LOG").ok();
    if std::env::args().skip(1).any(|arg| arg == "run") {
        nameko::logging::directive(&nameko::config::Config::new(), rust_log.as_deref())
            .unwrap_or_else(|_| "info".to_owned())
    } else {
        nameko::logging::client_directive(0, rust_log.as_deref())
    }
}
