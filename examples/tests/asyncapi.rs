//! The example cluster's AsyncAPI document (`cluster asyncapi`), read by the official
//! AsyncAPI parser (`@asyncapi/parser` of `interop/asyncapi`, run with Node.js): no
//! errors, in JSON and in YAML, and every example service's RPC methods are there with
//! their argument schemas.
//!
//! Node.js and `npm ci` in `interop/asyncapi` are needed; without them the tests skip,
//! unless `NAMEKO_REQUIRE_NODE=1`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nameko::serde_json::{self, Value, json};
use nameko::service::Service;
use nameko_examples::{
    AuditService, AuthorsService, Calculator, EmailService, FlakyService, HttpService,
    InventoryService, NotificationService, OrderService, PaymentService, ServiceX, ServiceY,
    UserService,
};

const REQUIRE_NODE: &str = "NAMEKO_REQUIRE_NODE";

/// The validating script, when Node.js and the parser are installed.
fn validator() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/asyncapi");
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let parser = dir
        .join("node_modules/@asyncapi/parser/package.json")
        .exists();
    if node && parser {
        return Some(dir.join("validate.mjs"));
    }
    let why = if node {
        "the AsyncAPI parser is not installed (run `npm ci` in interop/asyncapi)"
    } else {
        "Node.js is not installed (apt-get install nodejs npm)"
    };
    let required =
        std::env::var(REQUIRE_NODE).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    assert!(!required, "{why} and {REQUIRE_NODE}=1");
    eprintln!("skipping: {why}; set {REQUIRE_NODE}=1 to fail instead");
    None
}

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "`cargo test` builds the examples: {} is missing",
        path.display()
    );
    path
}

/// Runs `command` with `input` on its standard input, for at most `limit`; returns its
/// exit success, standard output and standard error.
fn run(mut command: Command, input: &[u8], limit: Duration) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    writer.join().unwrap();
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

/// `cluster asyncapi --format <format>` on the in-process broker.
fn document(format: &str) -> String {
    let mut command = Command::new(example("cluster"));
    command
        .args(["asyncapi", "--format", format])
        .env_remove("AMQP_URI");
    let (ok, out, err) = run(command, b"", Duration::from_secs(60));
    assert!(ok, "`cluster asyncapi --format {format}` failed: {err}");
    out
}

/// What the parser read from `document`, after checking it reported no error.
fn parsed(script: &Path, document: &str) -> Value {
    let mut command = Command::new("node");
    command.arg(script).arg("-");
    let (ok, out, err) = run(command, document.as_bytes(), Duration::from_secs(120));
    assert!(ok, "@asyncapi/parser found errors:\n{err}\n{out}");
    assert!(
        !err.lines().any(|l| l.starts_with("error")),
        "@asyncapi/parser found errors:\n{err}"
    );
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["errors"], 0);
    summary
}

/// `service.method` and the parameter names of every RPC method of `S`.
fn rpc_methods<S: Service>() -> Vec<(String, Vec<&'static str>)> {
    S::entrypoints()
        .into_iter()
        .filter(|def| def.entrypoint.kind() == "rpc")
        .map(|def| {
            (
                format!("{}.{}", S::name(), def.method.name),
                def.method.param_names().collect(),
            )
        })
        .collect()
}

fn every_rpc_method() -> Vec<(String, Vec<&'static str>)> {
    [
        rpc_methods::<ServiceX>(),
        rpc_methods::<ServiceY>(),
        rpc_methods::<Calculator>(),
        rpc_methods::<UserService>(),
        rpc_methods::<PaymentService>(),
        rpc_methods::<InventoryService>(),
        rpc_methods::<EmailService>(),
        rpc_methods::<OrderService>(),
        rpc_methods::<AuditService>(),
        rpc_methods::<NotificationService>(),
        rpc_methods::<AuthorsService>(),
        rpc_methods::<HttpService>(),
        rpc_methods::<FlakyService>(),
    ]
    .concat()
}

fn operation<'a>(summary: &'a Value, id: &str) -> &'a Value {
    summary["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["id"] == id)
        .unwrap_or_else(|| panic!("no operation `{id}` in the parsed document"))
}

/// The schema of `param` in the request of operation `id`.
fn argument<'a>(summary: &'a Value, id: &str, param: &str) -> &'a Value {
    &operation(summary, id)["messages"][0]["payload"]["properties"]["kwargs"]["properties"][param]
}

#[test]
fn the_parser_reads_every_rpc_method_with_its_argument_schemas() {
    let Some(script) = validator() else { return };
    let summary = parsed(&script, &document("json"));
    assert_eq!(summary["asyncapi"], "3.0.0");

    let methods = every_rpc_method();
    assert!(methods.len() >= 20, "{methods:?}");
    for (id, params) in &methods {
        let op = operation(&summary, id);
        let service = id.split('.').next().unwrap();
        assert_eq!(op["action"], "receive", "{id}");
        assert_eq!(op["channels"], json!([format!("rpc-{service}")]), "{id}");
        assert_eq!(op["tags"], json!([service]), "{id}");
        let request = &op["messages"][0];
        assert_eq!(
            request["correlationId"], "$message.header#/correlation_id",
            "{id}"
        );
        assert!(
            request["headers"]["properties"]["nameko.call_id_stack"].is_object(),
            "{id}: {request}"
        );
        let payload = &request["payload"];
        assert_eq!(payload["required"], json!(["args", "kwargs"]), "{id}");
        let kwargs = payload["properties"]["kwargs"]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{id}: {payload}"));
        let names: Vec<&str> = kwargs.keys().map(String::as_str).collect();
        assert_eq!(names, *params, "{id}");
        assert_eq!(
            payload["properties"]["args"]["maxItems"],
            params.len(),
            "{id}"
        );
        for param in params {
            assert!(kwargs[*param].is_object(), "{id}({param}): {payload}");
        }
        let reply = &op["reply"];
        assert_eq!(reply["address"], "$message.header#/reply_to", "{id}");
        let result = &reply["messages"][0]["payload"];
        assert_eq!(result["required"], json!(["result", "error"]), "{id}");
        assert_eq!(
            result["properties"]["error"]["oneOf"][1]["required"],
            json!(["exc_type", "exc_path", "exc_args", "value"]),
            "{id}"
        );
    }

    // The schemas are the Rust types'.
    let number = json!({"type": "number", "format": "double"});
    assert_eq!(argument(&summary, "calculator.add", "a"), &number);
    assert_eq!(argument(&summary, "calculator.divide", "b"), &number);
    assert_eq!(
        argument(&summary, "service_y.append_identifier", "value")["type"],
        "string"
    );
    assert_eq!(
        argument(&summary, "authors_service.get_author", "id")["type"],
        "integer"
    );
    let author = &operation(&summary, "authors_service.get_author")["reply"]["messages"][0]["payload"]
        ["properties"]["result"]["anyOf"][0];
    assert_eq!(author["type"], "object", "{author}");
    assert_eq!(author["required"], json!(["id", "name"]), "{author}");
    assert_eq!(author["properties"]["id"]["type"], "integer", "{author}");
    let authors = &operation(&summary, "authors_service.list_authors")["reply"]["messages"][0]["payload"]
        ["properties"]["result"]["anyOf"][0];
    assert_eq!(authors["type"], "array", "{authors}");
    assert_eq!(
        authors["items"]["required"],
        json!(["id", "name"]),
        "{authors}"
    );
    // `Value` parameters accept anything.
    assert_eq!(
        argument(&summary, "payment_service.process_payment", "payment_info"),
        &json!({})
    );

    // Events handled, and dispatched as order_service declares.
    let handler = operation(&summary, "notification_service.on_order_placed");
    assert_eq!(handler["action"], "receive");
    assert_eq!(
        handler["channels"],
        json!(["evt-order_service-order_placed--notification_service.on_order_placed"])
    );
    let flaky = operation(&summary, "flaky_service.handle_job");
    assert_eq!(
        flaky["channels"],
        json!(["evt-jobs-job_submitted--flaky_service.handle_job"])
    );
    let dispatch = operation(&summary, "order_service.dispatch.order_placed");
    assert_eq!(dispatch["action"], "send");
    assert_eq!(dispatch["channels"], json!(["order_placed"]));
    let event = &dispatch["messages"][0]["payload"];
    assert_eq!(
        event["required"],
        json!(["order_id", "customer_email", "payment"]),
        "{event}"
    );

    // The in-process broker is the one server.
    assert_eq!(summary["servers"].as_array().unwrap().len(), 1);
    assert_eq!(summary["servers"][0]["host"], "in-process");
}

#[test]
fn the_yaml_document_reads_as_the_json_one() {
    let Some(script) = validator() else { return };
    let json = parsed(&script, &document("json"));
    let yaml = parsed(&script, &document("yaml"));
    assert_eq!(yaml["operations"], json["operations"]);
    assert_eq!(yaml["channels"], json["channels"]);
    assert_eq!(yaml["servers"], json["servers"]);
}

#[test]
fn http_routes_are_listed_without_channels() {
    let document: Value = serde_json::from_str(&document("json")).unwrap();
    let entrypoints = document["x-nameko-entrypoints"].as_array().unwrap();
    let get = entrypoints
        .iter()
        .find(|e| e["service"] == "http_service" && e["method"] == "get_method")
        .unwrap();
    assert_eq!(get["kind"], "http");
    assert_eq!(get["described"], "not messaging");
    assert_eq!(get["summary"], "HTTP `GET /get/<int:value>`");
    assert!(
        document["operations"]
            .as_object()
            .unwrap()
            .keys()
            .all(|id| !id.starts_with("http_service.")),
        "HTTP routes have no operations"
    );
    let description = document["info"]["description"].as_str().unwrap();
    assert!(
        description.contains("`get_method` (http: HTTP `GET /get/<int:value>`)"),
        "{description}"
    );
}
