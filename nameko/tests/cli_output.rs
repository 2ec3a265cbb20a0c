//! What the `nameko` tool prints: at default verbosity, only its own one-line message for
//! each failure (no line of the AMQP library, which used to dump the returned message of
//! a call to an unknown service, and log errors on timeouts and refused logins); more
//! with `-v` or `RUST_LOG`.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use nameko::cli::exit;
use nameko::prelude::*;
use nameko::testing::TestCluster;

const NAMEKO: &str = env!("CARGO_BIN_EXE_nameko");

/// Runs the tool with `args`, `AMQP_URI` and `RUST_LOG` only as `env` says.
async fn nameko(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(NAMEKO);
    command
        .args(args)
        .env_remove("AMQP_URI")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::task::spawn_blocking(move || command.output().expect("the nameko tool runs"))
        .await
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the exit code, and that standard error is exactly one line starting with
/// `start` (the tool's own message) and names no library.
fn assert_one_line(output: &Output, code: u8, start: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(i32::from(code)), "{err}");
    assert!(err.starts_with(start), "expected `{start}...`, got:\n{err}");
    assert_eq!(err.lines().count(), 1, "one line only:\n{err}");
    for noise in ["lapin", "WARN", "ERROR", "BasicReturnMessage"] {
        assert!(!err.contains(noise), "`{noise}` in:\n{err}");
    }
}

#[derive(Dependencies)]
struct Slow;

#[service(name = "slow")]
impl Slow {
    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

#[tokio::test]
async fn an_unreachable_broker_is_one_line() {
    let output = nameko(
        &[
            "call",
            "svc.m",
            "--broker",
            "amqp://app:hunter2@127.0.0.1:1/",
        ],
        &[],
    )
    .await;
    assert_one_line(&output, exit::CONNECTION, "error: cannot connect to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_on_rabbitmq_print_only_the_tools_own_line() {
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<Slow>().await;
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let env = [("AMQP_URI", uri.as_str())];

    let unknown = nameko(&["call", "nobody_home.anything", r#"{"a": 1}"#], &env).await;
    assert_one_line(
        &unknown,
        exit::UNKNOWN_SERVICE,
        "error: UnknownService: Unknown service `nobody_home`",
    );

    let timeout = nameko(&["call", "slow.sleep", "2000", "--timeout", "0.2"], &env).await;
    assert_one_line(
        &timeout,
        exit::TIMEOUT,
        "error: RpcTimeout: no reply from slow.sleep",
    );

    let dispatched = nameko(&["dispatch", "somewhere", "happened", "{}"], &env).await;
    assert_eq!(dispatched.status.code(), Some(0), "{}", stderr(&dispatched));
    assert!(stderr(&dispatched).is_empty(), "{}", stderr(&dispatched));

    let wrong_password = uri.replacen("guest:guest@", "guest:not-the-password@", 1);
    assert_ne!(
        wrong_password, uri,
        "the test broker's URI has guest's password"
    );
    let refused = nameko(
        &["call", "slow.sleep", "1", "--broker", &wrong_password],
        &[],
    )
    .await;
    assert_one_line(&refused, exit::CONNECTION, "error: ");
    assert!(!stderr(&refused).contains("not-the-password"));

    // Asked for, the library's view is there: the returned message of the unknown call.
    let verbose = nameko(
        &["call", "nobody_home.anything", "1"],
        &[("AMQP_URI", &uri), ("RUST_LOG", "lapin=warn")],
    )
    .await;
    assert_eq!(
        verbose.status.code(),
        Some(i32::from(exit::UNKNOWN_SERVICE))
    );
    assert!(
        stderr(&verbose).lines().count() > 1 && stderr(&verbose).contains("lapin"),
        "RUST_LOG opens the library's logs:\n{}",
        stderr(&verbose)
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_v_shows_more() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let env = [("AMQP_URI", uri.as_str())];
    let mut lines = Vec::new();
    for flags in [&[][..], &["-vv"][..], &["-vvvv"][..]] {
        let mut args = vec!["call", "nobody_home.anything"];
        args.extend_from_slice(flags);
        let output = nameko(&args, &env).await;
        assert_eq!(
            output.status.code(),
            Some(i32::from(exit::UNKNOWN_SERVICE)),
            "{}",
            stderr(&output)
        );
        lines.push(stderr(&output).lines().count());
    }
    assert_eq!(lines[0], 1, "default: the tool's own line");
    assert!(
        lines[1] <= lines[2] && lines[2] > 1,
        "-vv and -vvvv log more: {lines:?}"
    );
    cluster.shutdown().await;
}
