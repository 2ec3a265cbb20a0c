//! `shell` with lines piped on standard input, as a process: a script against the example
//! cluster on the in-process broker (a service binary's shell starts its own services
//! there) and on RabbitMQ (with a Python nameko service), the first error ending it with
//! the `nameko` tool's exit codes, and usage and connection errors.

mod shell_support;

use std::path::Path;
use std::time::{Duration, Instant};

use nameko::cli::exit;
use nameko::testing::TestCluster;
use shell_support::{
    ClusterProcess, NAMEKO, PythonService, Slow, cluster_binary, pipe, stderr, stdout,
    wait_for_service,
};

/// The example cluster serves HTTP too: on a free port, so that shells started side by
/// side (and whatever else listens on 8000) do not clash.
const EPHEMERAL_WEB_PORT: &[&str] = &["-d", "WEB_SERVER_ADDRESS=127.0.0.1:0"];

fn assert_exit(output: &std::process::Output, code: u8) {
    assert_eq!(
        output.status.code(),
        Some(i32::from(code)),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// The calls of the example cluster a nameko user makes, and what Python prints for them.
pub const EXAMPLE_SCRIPT: &[(&str, &str)] = &[
    ("n.rpc.calculator.add(1, 2)", "3.0"),
    (
        "n.rpc[\"service_x\"].remote_method(\"hello\")",
        "'hello-x-y'",
    ),
    (
        "n.rpc.user_service.calculate_user_score(1, base_score=10, multiplier=1.5)",
        "{'user_id': 1, 'score': 15.0}",
    ),
    ("r = n.rpc.calculator.multiply.call_async(6, 7)", ""),
    ("r.result()", "42.0"),
    ("x = n.rpc.calculator.add(2, 3)", ""),
    ("n.rpc.calculator.multiply(x, 10)", "50.0"),
    ("n.context(user_id=7, correlation_id='c-1')", ""),
    (
        "a = n.rpc.audit_service.log_action('check', {'k': (1, 2)})",
        "",
    ),
    (
        "a['user_id'], a['correlation_id'], a['action']",
        "(7, 'c-1', 'check')",
    ),
    (
        "n.dispatch_event('order_service', 'order_placed', {'order_id': 1})",
        "",
    ),
    ("n.timeout(5)", ""),
];

fn script(lines: &[(&str, &str)]) -> (String, String) {
    let input: String = lines.iter().map(|(line, _)| format!("{line}\n")).collect();
    let output: String = lines
        .iter()
        .filter(|(_, out)| !out.is_empty())
        .map(|(_, out)| format!("{out}\n"))
        .collect();
    (input, output)
}

#[test]
fn a_service_binary_runs_a_script_on_its_own_services_on_the_in_process_broker() {
    let (input, expected) = script(EXAMPLE_SCRIPT);
    let input = format!(
        "{input}n.config['AMQP_URI']\n\
         n.rpc.calculator.divide(1, 0)\n\
         print('not reached')\n"
    );
    let output = pipe(&cluster_binary(), EPHEMERAL_WEB_PORT, &[], &input);
    assert_exit(&output, exit::REMOTE_ERROR);
    assert_eq!(stdout(&output), format!("{expected}'memory://'\n"));
    assert_eq!(
        stderr(&output),
        "RemoteError: ValueError Division by zero\n"
    );
}

#[test]
fn a_script_stops_at_the_first_error_with_its_exit_code() {
    let cluster = cluster_binary();
    let cases: &[(&str, u8, &str, &str)] = &[
        (
            "n.rpc.calculator.add(1, 1)\nn.rpc.nobody_home.ping()\nn.rpc.calculator.add(1, 1)\n",
            exit::UNKNOWN_SERVICE,
            "2.0\n",
            "UnknownService: Unknown service `nobody_home`: no service of that name is listening\n",
        ),
        (
            "n.rpc.calculator.add(1 2)\n",
            exit::USAGE,
            "",
            "    n.rpc.calculator.add(1 2)\n                           ^\n\
             SyntaxError: invalid syntax at column 24. Perhaps you forgot a comma?\n",
        ),
        (
            "n.rpc.calculator.add('a')\n",
            exit::REMOTE_ERROR,
            "",
            "IncorrectSignature: ",
        ),
        (
            "n.rpc.calculator.nope()\n",
            exit::REMOTE_ERROR,
            "",
            "MethodNotFound: nope\n",
        ),
        (
            "undefined\n",
            exit::USAGE,
            "",
            "NameError: name 'undefined' is not defined\n",
        ),
        (
            "x = [1,\n  2]  # continued\n\nx\nexit()\nprint('after exit')\n",
            exit::OK,
            "[1, 2]\n",
            "",
        ),
        (
            "x = {'a':\n",
            exit::USAGE,
            "",
            "SyntaxError: '{' was never closed",
        ),
        ("", exit::OK, "", ""),
    ];
    for (input, code, out, err) in cases {
        let output = pipe(&cluster, EPHEMERAL_WEB_PORT, &[], input);
        assert_exit(&output, *code);
        assert_eq!(stdout(&output), *out, "{input}");
        assert!(
            stderr(&output).starts_with(err) || stderr(&output).contains(err),
            "{input}: `{err}` not in:\n{}",
            stderr(&output)
        );
    }
}

#[test]
fn usage_and_connection_errors_exit_as_the_other_commands_do() {
    let nameko = Path::new(NAMEKO);
    let memory = pipe(nameko, &["--broker", "memory://"], &[], "n\n");
    assert_exit(&memory, exit::USAGE);
    assert!(
        stderr(&memory).contains("in-process broker"),
        "{}",
        stderr(&memory)
    );
    let unreachable = pipe(
        nameko,
        &["--broker", "amqp://app:hunter2@127.0.0.1:1/prod"],
        &[],
        "n.rpc.calculator.add(1, 2)\n",
    );
    assert_exit(&unreachable, exit::CONNECTION);
    let err = stderr(&unreachable);
    assert!(
        err.contains("cannot connect to amqp://app:***@127.0.0.1:1/prod"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    let help = std::process::Command::new(NAMEKO)
        .args(["shell", "--help"])
        .output()
        .unwrap();
    assert_exit(&help, exit::OK);
    for expected in [
        "An interactive shell on the cluster",
        "n.rpc.calculator.add(1, 2)",
        "call_async",
        "first error ends it",
        "--broker <URI>",
    ] {
        assert!(
            stdout(&help).contains(expected),
            "`{expected}`:\n{}",
            stdout(&help)
        );
    }
    for binary in [Path::new(NAMEKO), &cluster_binary()] {
        let help = std::process::Command::new(binary)
            .arg("--help")
            .output()
            .unwrap();
        assert!(stdout(&help).contains("shell"), "{}", stdout(&help));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_cluster_and_a_python_service_answer_a_script_on_rabbitmq() {
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<Slow>().await;
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let examples = tokio::task::spawn_blocking({
        let uri = uri.clone();
        move || ClusterProcess::start(&uri)
    })
    .await
    .unwrap();
    let python = PythonService::start(&uri);
    let run = |input: String, args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            pipe(Path::new(NAMEKO), &args, &[], &input)
        })
    };
    let broker = vec!["--broker".to_owned(), uri.clone()];

    let (input, expected) = script(EXAMPLE_SCRIPT);
    let output = run(input, broker.clone()).await.unwrap();
    assert_exit(&output, exit::OK);
    assert_eq!(stdout(&output), expected);
    assert_eq!(stderr(&output), "");

    // The event reached the example's notification service.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let sent = run(
            "n.rpc.notification_service.sent()\n".to_owned(),
            broker.clone(),
        )
        .await
        .unwrap();
        if stdout(&sent) == "[{'order_id': 1}]\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no notification: {}",
            stdout(&sent)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let divide = run("n.rpc.calculator.divide(1, 0)\n".to_owned(), broker.clone())
        .await
        .unwrap();
    assert_exit(&divide, exit::REMOTE_ERROR);
    assert_eq!(
        stderr(&divide),
        "RemoteError: ValueError Division by zero\n"
    );

    let started = Instant::now();
    let timeout = run(
        "n.timeout(0.5)\nn.rpc.slow.sleep(5000)\n".to_owned(),
        broker.clone(),
    )
    .await
    .unwrap();
    assert_exit(&timeout, exit::TIMEOUT);
    assert_eq!(
        stderr(&timeout),
        "RpcTimeout: no reply from slow.sleep within 0.5 s\n"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the timeout bounds the wait"
    );

    // The broker from a config file, as `call` reads it.
    let dir = shell_support::TempDir::new("config");
    let config = dir.file("config.yaml", &format!("AMQP_URI: '{uri}'\n"));
    let from_file = run(
        "n.rpc.calculator.add(2, 2)\n".to_owned(),
        vec!["--config".to_owned(), config],
    )
    .await
    .unwrap();
    assert_eq!(stdout(&from_file), "4.0\n", "{}", stderr(&from_file));

    if let Some(python) = &python {
        let probe = uri.clone();
        tokio::task::spawn_blocking(move || {
            wait_for_service(&probe, "n.rpc.py_api.echo(1)", "the Python service");
        })
        .await
        .unwrap();
        let (input, expected) = script(PYTHON_SCRIPT);
        let output = run(input, broker.clone()).await.unwrap();
        assert_exit(&output, exit::OK);
        assert_eq!(stdout(&output), expected, "Python's log:\n{}", python.log());
        let divide = run("n.rpc.py_api.divide(1, 0)\n".to_owned(), broker.clone())
            .await
            .unwrap();
        assert_exit(&divide, exit::REMOTE_ERROR);
        assert_eq!(
            stderr(&divide),
            "RemoteError: ValueError Division by zero\n"
        );
    }
    drop(python);
    drop(examples);
    cluster.shutdown().await;
}

/// Calls of the Python interop service, and what Python prints for them.
pub const PYTHON_SCRIPT: &[(&str, &str)] = &[
    (
        "n.rpc.py_api.echo({'a': (1, 2.5, 'é', None, True), 'b': \"it's\"})",
        "{'a': [1, 2.5, 'é', None, True], 'b': \"it's\"}",
    ),
    (
        "n.rpc['py_api'].mixed(1, c=(2,), b='x')",
        "{'a': 1, 'b': 'x', 'c': [2]}",
    ),
    (
        "n.rpc.py_api.echo(1e16), n.rpc.py_api.echo(-0.0)",
        "(1e+16, -0.0)",
    ),
];
