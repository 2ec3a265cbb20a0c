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

use nameko::cli::Cli;
use nameko_examples::{
    AuditService, AuthorsService, Calculator, EmailService, FlakyService, HttpService,
    InventoryService, NotificationService, OrderService, PaymentService, ServiceX, ServiceY,
    UserService, WebsocketService,
};

fn main() -> std::process::ExitCode {
    Cli::new()
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
        .default_broker("memory://")
        .main()
}
