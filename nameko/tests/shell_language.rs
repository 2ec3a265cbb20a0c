//! The shell's language against services on the in-memory broker: what a Python nameko
//! user types works as typed, results print as Python 3 prints them, errors print on one
//! line as Python names them, and the shell goes on after each of them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nameko::prelude::*;
use nameko::shell::{MemoryDirectory, Shell};
use nameko::testing::TestCluster;

#[derive(Debug, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
struct ValueError(String);

static ORDERS: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[derive(Dependencies)]
struct Calculator {
    worker: Arc<WorkerContext>,
}

#[service(name = "calculator")]
impl Calculator {
    #[rpc]
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }

    #[rpc(expected_exceptions = [ValueError])]
    async fn divide(&self, a: f64, b: f64) -> Result<f64, ValueError> {
        if b == 0.0 {
            return Err(ValueError("Division by zero".to_owned()));
        }
        Ok(a / b)
    }

    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }

    #[rpc]
    async fn signature(&self, a: Value, b: Option<Value>, c: Option<Value>) -> Value {
        json!({"a": a, "b": b, "c": c})
    }

    #[rpc]
    async fn context(&self) -> Value {
        let context = self.worker.context();
        json!({"user_id": context.get("user_id"), "language": context.get("language")})
    }

    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }

    #[event_handler("order_service", "order_placed")]
    async fn on_order(&self, payload: Value) {
        ORDERS.lock().unwrap().push(payload);
    }
}

#[derive(Dependencies)]
struct UserService {
    calculator: RpcProxy,
}

#[service(name = "user_service")]
impl UserService {
    #[rpc]
    async fn calculate_user_score(
        &self,
        user_id: Value,
        base_score: f64,
        multiplier: f64,
    ) -> Result<Value, RpcError> {
        let score: f64 = self
            .calculator
            .call("divide", (base_score * multiplier, 1.0))
            .await?;
        Ok(json!({"user_id": user_id, "score": score}))
    }
}

/// A cluster of both services and a shell on it.
async fn shell() -> (TestCluster, Shell) {
    let mut cluster = TestCluster::memory();
    cluster.start::<Calculator>().await;
    cluster.start::<UserService>().await;
    let config = cluster.config().clone().with("AMQP_URI", "memory://");
    let shell = Shell::start(cluster.connect().await, config)
        .await
        .unwrap()
        .with_directory(Arc::new(MemoryDirectory::new(
            cluster.broker().unwrap().clone(),
        )));
    (cluster, shell)
}

/// What the line prints, or its error.
async fn run(shell: &mut Shell, line: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let result = shell.eval(line, &mut out).await;
    let out = String::from_utf8(out).unwrap();
    result.map(|_| out).map_err(|e| e.to_string())
}

/// Asserts that `line` prints `expected` (one line).
async fn prints(shell: &mut Shell, line: &str, expected: &str) {
    assert_eq!(
        run(shell, line).await,
        Ok(format!("{expected}\n")),
        "{line}"
    );
}

/// Asserts that `line` fails with `expected`.
async fn fails(shell: &mut Shell, line: &str, expected: &str) {
    assert_eq!(run(shell, line).await, Err(expected.to_owned()), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_print_as_python_repr() {
    let (_cluster, mut shell) = shell().await;
    // Each expected text is Python 3's repr of the literal after a JSON round trip.
    let cases = [
        (r"'text'", r"'text'"),
        (r#""it's""#, r#""it's""#),
        (r#"'say "hi"'"#, r#"'say "hi"'"#),
        (r#"'both \' and "'"#, r#"'both \' and "'"#),
        (r"'tab\there'", r"'tab\there'"),
        ("'é漢😀'", "'é漢😀'"),
        (r"'\u00a0 \x00'", r"'\xa0 \x00'"),
        (r#""\ud83d\ude00""#, "'😀'"),
        ("1e16", "1e+16"),
        ("0.1", "0.1"),
        ("-0.0", "-0.0"),
        ("1.0", "1.0"),
        ("1.5e-7", "1.5e-07"),
        ("(1, 'a')", "[1, 'a']"),
        ("[(), (1,)]", "[[], [1]]"),
        (
            "{'a': {'b': [None, True, False]}, 'c': {}}",
            "{'a': {'b': [None, True, False]}, 'c': {}}",
        ),
        (
            "{1: 'x', 2.5: 'y', None: 'z', True: 't'}",
            "{'1': 't', '2.5': 'y', 'null': 'z'}",
        ),
        ("[]", "[]"),
        ("''", "''"),
        ("18446744073709551615", "18446744073709551615"),
        ("-5", "-5"),
        ("0x1F", "31"),
        ("1_000", "1000"),
        (
            r#"{"a": true, "b": null, "c": [1.5e-7]}"#,
            "{'a': True, 'b': None, 'c': [1.5e-07]}",
        ),
    ];
    for (literal, expected) in cases {
        prints(
            &mut shell,
            &format!("n.rpc.calculator.echo({literal})"),
            expected,
        )
        .await;
    }
    // Values that stay in the shell keep their Python type.
    prints(&mut shell, "(1, 'a', (2,), ())", "(1, 'a', (2,), ())").await;
    prints(&mut shell, "1, 2", "(1, 2)").await;
    prints(&mut shell, "1e400, -1e400", "(inf, -inf)").await;
    prints(&mut shell, "{(1, 2): 'pair'}", "{(1, 2): 'pair'}").await;
    prints(&mut shell, "'a' 'b'", "'ab'").await;
    prints(&mut shell, "r'\\d+'", r"'\\d+'").await;
    assert_eq!(run(&mut shell, "None").await, Ok(String::new()));
    shell.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_take_positional_keyword_and_unpacked_arguments() {
    let (_cluster, mut shell) = shell().await;
    prints(&mut shell, "n.rpc.calculator.add(1, 2)", "3").await;
    prints(&mut shell, "n.rpc['calculator'].add(1, b=2)", "3").await;
    prints(&mut shell, "n.rpc[\"calculator\"].add(b=5, a=-1)", "4").await;
    prints(
        &mut shell,
        "n.rpc.user_service.calculate_user_score(1, base_score=10, multiplier=1.5)",
        "{'user_id': 1, 'score': 15.0}",
    )
    .await;
    prints(
        &mut shell,
        "n.rpc.calculator.signature(*[1, 2], **{'c': (3,)})",
        "{'a': 1, 'b': 2, 'c': [3]}",
    )
    .await;
    prints(
        &mut shell,
        "n.rpc.calculator.signature(\n  'x',\n  c=None,\n)",
        "{'a': 'x', 'b': None, 'c': None}",
    )
    .await;
    prints(&mut shell, "n.rpc.calculator.divide(1, 4)", "0.25").await;
    shell.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_hold_results_and_call_async_handles() {
    let (_cluster, mut shell) = shell().await;
    prints(&mut shell, "x = n.rpc.calculator.add(2, 3); x", "5").await;
    prints(&mut shell, "n.rpc.calculator.add(x, x)", "10").await;
    prints(&mut shell, "_", "10").await;
    prints(
        &mut shell,
        "s = n.rpc.user_service.calculate_user_score(7, 2, 3); s['score']",
        "6.0",
    )
    .await;
    prints(&mut shell, "n.rpc.calculator.echo(s)['user_id']", "7").await;
    prints(&mut shell, "len(s), len('é漢'), len((1,))", "(2, 2, 1)").await;
    assert_eq!(
        run(&mut shell, "r = n.rpc.calculator.sleep.call_async(50)").await,
        Ok(String::new())
    );
    let pending = run(&mut shell, "r").await.unwrap();
    assert!(
        pending.starts_with("<RpcReply calculator.sleep ("),
        "{pending}"
    );
    prints(&mut shell, "r.result()", "50").await;
    prints(&mut shell, "r.result()", "50").await;
    prints(&mut shell, "r", "<RpcReply calculator.sleep (done)>").await;
    prints(
        &mut shell,
        "a = n.rpc.calculator.add.call_async(1, 1); b = n.rpc.calculator.add.call_async(2, 2); [a.result(), b.result()]",
        "[2, 4]",
    )
    .await;
    prints(
        &mut shell,
        "print('x', 1.5, None, [1]); len([1, 2])",
        "x 1.5 None [1]\n2",
    )
    .await;
    prints(&mut shell, "repr('é')", "\"'é'\"").await;
    shell.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_timeout_config_and_events() {
    let (_cluster, mut shell) = shell().await;
    prints(
        &mut shell,
        "n.rpc.calculator.context()",
        "{'user_id': None, 'language': None}",
    )
    .await;
    assert_eq!(
        run(&mut shell, "n.context(user_id=7, language='en')").await,
        Ok(String::new())
    );
    prints(
        &mut shell,
        "n.rpc.calculator.context()",
        "{'user_id': 7, 'language': 'en'}",
    )
    .await;
    prints(
        &mut shell,
        "n.context()",
        "{'user_id': 7, 'language': 'en'}",
    )
    .await;
    run(&mut shell, "n.context(language=None)").await.unwrap();
    prints(&mut shell, "n.context()", "{'user_id': 7}").await;
    run(&mut shell, "n.context({})").await.unwrap();
    prints(
        &mut shell,
        "n.rpc.calculator.context()",
        "{'user_id': None, 'language': None}",
    )
    .await;

    prints(&mut shell, "n.timeout()", "30.0").await;
    run(&mut shell, "n.timeout(0.2)").await.unwrap();
    fails(
        &mut shell,
        "n.rpc.calculator.sleep(2000)",
        "RpcTimeout: no reply from calculator.sleep within 0.2 s",
    )
    .await;
    prints(&mut shell, "n.timeout()", "0.2").await;
    run(&mut shell, "n.timeout(None)").await.unwrap();
    prints(&mut shell, "n.timeout()", "30.0").await;
    fails(
        &mut shell,
        "n.timeout(0)",
        "ValueError: the timeout must be a positive number of seconds, not 0",
    )
    .await;

    prints(&mut shell, "n.config['AMQP_URI']", "'memory://'").await;

    assert_eq!(
        run(
            &mut shell,
            "n.dispatch_event('order_service', 'order_placed', {'order_id': 1})"
        )
        .await,
        Ok(String::new())
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ORDERS.lock().unwrap().contains(&json!({"order_id": 1})) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the event never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fails(
        &mut shell,
        "n.dispatch_event('order_service', 'order_placed')",
        "TypeError: dispatch_event() missing 1 required argument: 'event_data'",
    )
    .await;
    shell.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_print_on_one_line_and_the_shell_goes_on() {
    let (_cluster, mut shell) = shell().await;
    let cases = [
        (
            "n.rpc.calculator.divide(1, 0)",
            "RemoteError: ValueError Division by zero",
        ),
        ("n.rpc.calculator.nope()", "MethodNotFound: nope"),
        (
            "n.rpc.nobody_home.ping()",
            "UnknownService: Unknown service `nobody_home`: no service of that name is listening",
        ),
        (
            "nn.rpc",
            "NameError: name 'nn' is not defined. Did you mean: 'n'?",
        ),
        ("n.rcp", "AttributeError: module 'n' has no attribute 'rcp'"),
        ("{'a': 1}['b']", "KeyError: 'b'"),
        ("[1][3]", "IndexError: list index out of range"),
        (
            "{'value': 1}.value",
            "AttributeError: 'dict' object has no attribute 'value'. Did you mean: ['value']?",
        ),
        (
            "n.rpc.calculator(1)",
            "TypeError: 'ServiceProxy' object is not callable",
        ),
        (
            "n.rpc.calculator.echo(n.rpc)",
            "TypeError: Object of type ClusterRpcProxy is not JSON serializable",
        ),
        (
            "n.rpc.calculator.echo(1e400)",
            "ValueError: Out of range float values are not JSON compliant: inf",
        ),
        ("{[1]: 2}", "TypeError: unhashable type: 'list'"),
        ("-'a'", "TypeError: bad operand type for unary -: 'str'"),
        ("5()", "TypeError: 'int' object is not callable"),
    ];
    for (line, expected) in cases {
        fails(&mut shell, line, expected).await;
        prints(&mut shell, "n.rpc.calculator.add(1, 1)", "2").await;
    }
    let signature = run(&mut shell, "n.rpc.calculator.add(1)")
        .await
        .unwrap_err();
    assert!(signature.starts_with("IncorrectSignature: "), "{signature}");
    fails(
        &mut shell,
        "n.rpc.calculator.add(1 2)",
        "    n.rpc.calculator.add(1 2)\n                           ^\n\
         SyntaxError: invalid syntax at column 24. Perhaps you forgot a comma?",
    )
    .await;
    fails(
        &mut shell,
        "n.rpc.calculator.add(1, 2",
        "    n.rpc.calculator.add(1, 2\n                        ^\n\
         SyntaxError: '(' was never closed at column 21. Add ')' at the end.",
    )
    .await;
    let set = run(&mut shell, "n.rpc.calculator.echo({1, 2})")
        .await
        .unwrap_err();
    assert!(
        set.ends_with(
            "SyntaxError: sets are not supported: JSON has no sets at column 25. \
             Use a list [a, b] or a dict {key: value}."
        ),
        "{set}"
    );
    // Statements before a failing one ran.
    assert_eq!(
        run(&mut shell, "y = 1; y.nope; y = 2").await,
        Err("AttributeError: 'int' object has no attribute 'nope'".to_owned())
    );
    prints(&mut shell, "y", "1").await;
    shell.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_call_leaves_the_shell_usable() {
    let (_cluster, mut shell) = shell().await;
    let mut out = Vec::new();
    let interrupted = tokio::time::timeout(
        Duration::from_millis(100),
        shell.eval("n.rpc.calculator.sleep(5000)", &mut out),
    )
    .await;
    assert!(interrupted.is_err(), "the call was still running");
    prints(&mut shell, "n.rpc.calculator.add(2, 2)", "4").await;
    // Waiting for a handle can be interrupted without losing its reply.
    run(&mut shell, "r = n.rpc.calculator.sleep.call_async(300)")
        .await
        .unwrap();
    let interrupted = tokio::time::timeout(
        Duration::from_millis(50),
        shell.eval("r.result()", &mut out),
    )
    .await;
    assert!(interrupted.is_err());
    prints(&mut shell, "r.result()", "300").await;
    shell.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_offers_members_services_and_methods_seen() {
    let (_cluster, mut shell) = shell().await;
    shell.refresh_services().await;
    assert_eq!(
        shell.completions("n.", 2),
        (
            2,
            vec![
                "config".to_owned(),
                "context".to_owned(),
                "dispatch_event".to_owned(),
                "rpc".to_owned(),
                "timeout".to_owned()
            ]
        )
    );
    assert_eq!(
        shell.completions("n.rpc.", 6),
        (6, vec!["calculator".to_owned(), "user_service".to_owned()])
    );
    assert_eq!(
        shell.completions("n.rpc.us", 8),
        (6, vec!["user_service".to_owned()])
    );
    assert_eq!(shell.completions("n.rpc.calculator.", 17), (17, vec![]));
    run(&mut shell, "n.rpc.calculator.add(1, 2)").await.unwrap();
    run(&mut shell, "n.rpc.calculator.divide(1, 0)")
        .await
        .unwrap_err();
    run(&mut shell, "n.rpc.calculator.nope()")
        .await
        .unwrap_err();
    assert_eq!(
        shell.completions("n.rpc.calculator.", 17),
        (17, vec!["add".to_owned(), "divide".to_owned()])
    );
    assert_eq!(
        shell.completions("n.rpc['calculator'].d", 21),
        (20, vec!["divide".to_owned()])
    );
    run(&mut shell, "handle = n.rpc.calculator.add.call_async(1, 2)")
        .await
        .unwrap();
    assert_eq!(shell.completions("hand", 4), (0, vec!["handle".to_owned()]));
    assert_eq!(
        shell.completions("handle.", 7),
        (7, vec!["result".to_owned()])
    );
    shell.close().await;
}

/// On RabbitMQ, the service names to complete come from the management API's `rpc-*`
/// queues of the broker's virtual host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_to_complete_are_listed_by_rabbitmqs_management_api() {
    use nameko::shell::{ManagementDirectory, ServiceDirectory};
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<Calculator>().await;
    let uri: nameko::amqp::AmqpUri = cluster.amqp_uri().unwrap().parse().unwrap();
    let directory = ManagementDirectory::for_broker(&uri).unwrap();
    match directory.services().await {
        Ok(services) => assert_eq!(services, ["calculator"]),
        Err(error) if std::env::var("NAMEKO_REQUIRE_AMQP").as_deref() == Ok("1") => {
            panic!("the management API is not usable ({error}) and NAMEKO_REQUIRE_AMQP=1")
        }
        Err(error) => eprintln!(
            "skipping: the management API is not usable ({error}); \
             `rabbitmq-plugins enable rabbitmq_management` to run this test"
        ),
    }
    cluster.shutdown().await;
}
