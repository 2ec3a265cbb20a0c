//! Nothing typed crashes the shell: arbitrary text, text made of the language's own
//! tokens (which reaches the evaluator and the cluster), arbitrary bytes piped as a
//! script, and completion at any position of any line.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use nameko::prelude::*;
use nameko::shell::{MemoryDirectory, Shell};
use nameko::testing::TestCluster;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Dependencies)]
struct Echo;

#[service(name = "echo")]
impl Echo {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }

    #[rpc]
    async fn add(&self, a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }
}

/// Pieces of the language, so that generated lines get past the parser.
const TOKENS: &[&str] = &[
    "n",
    ".",
    "rpc",
    "echo",
    "add",
    "nope",
    "call_async",
    "result",
    "config",
    "context",
    "timeout",
    "dispatch_event",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "=",
    ";",
    "*",
    "**",
    "-",
    "+",
    "x",
    "y",
    "_",
    "1",
    "0",
    "-1",
    "2.5",
    "1e400",
    "0x1F",
    "1_0",
    "'a'",
    "\"b\"",
    "'''",
    "r'\\d'",
    "'\\u00e9'",
    "None",
    "True",
    "False",
    "null",
    "true",
    "print",
    "len",
    "repr",
    "help",
    "é",
    "\n",
    "#",
    "\\",
    "'",
    "\"",
    " ",
    "import",
    "lambda",
    "for",
    "1j",
    "b'x'",
    "f'x'",
];

fn token_line() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..24).prop_map(|t| t.concat())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn shell() -> (TestCluster, Shell) {
    let mut cluster = TestCluster::memory();
    cluster.start::<Echo>().await;
    let shell = Shell::start(cluster.connect().await, cluster.config().clone())
        .await
        .unwrap()
        .with_directory(Arc::new(MemoryDirectory::new(
            cluster.broker().unwrap().clone(),
        )));
    (cluster, shell)
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Evaluates every generated line on one shell (so that names assigned by one line are
/// used by later ones), and completes it at every position.
fn check_lines(strategy: impl Strategy<Value = String>, cases: u32) {
    let runtime = runtime();
    let (_cluster, shell) = runtime.block_on(shell());
    let shell = RefCell::new(shell);
    runner(cases)
        .run(&strategy, |line| {
            let mut shell = shell.borrow_mut();
            for pos in 0..=line.len() + 1 {
                let (start, _) = shell.completions(&line, pos);
                prop_assert!(start <= line.len());
            }
            let mut out = Vec::new();
            let evaluated = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), shell.eval(&line, &mut out)).await
            });
            prop_assert!(evaluated.is_ok(), "no answer in 10 s to {line:?}");
            if let Ok(Err(error)) = evaluated {
                let text = error.to_string();
                prop_assert!(!text.is_empty());
                prop_assert!(!text.contains("panicked"), "{text}");
            }
            Ok(())
        })
        .unwrap();
    let shell = shell.into_inner();
    runtime.block_on(shell.close());
}

#[test]
fn arbitrary_text_never_panics() {
    check_lines(any::<String>(), 512);
}

#[test]
fn lines_of_the_languages_tokens_never_panic() {
    check_lines(token_line(), 1024);
}

#[test]
fn arbitrary_bytes_piped_as_a_script_never_panic() {
    let runtime = runtime();
    let (_cluster, shell) = runtime.block_on(shell());
    let shell = RefCell::new(shell);
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        proptest::collection::vec(token_line(), 0..8)
            .prop_map(|lines| lines.join("\n").into_bytes()),
    ];
    runner(256)
        .run(&bytes, |bytes| {
            let mut shell = shell.borrow_mut();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(10),
                    shell.run_script(&bytes[..], &mut out, &mut err),
                )
                .await
            });
            prop_assert!(code.is_ok(), "no answer in 10 s to {bytes:?}");
            if code != Ok(0) {
                prop_assert!(!err.is_empty(), "a failed script says why");
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let runtime = runtime();
    let (_cluster, mut shell) = runtime.block_on(shell());
    runtime.block_on(async {
        let mut out = Vec::new();
        for line in [
            "[".repeat(100_000),
            format!("{}1{}", "[".repeat(5000), "]".repeat(5000)),
            format!("{}1", "-".repeat(100_000)),
            format!("x{}", ".a".repeat(100_000)),
            format!("n{}", "(1)".repeat(100_000)),
            "'".repeat(100_001),
        ] {
            let error = shell.eval(&line, &mut out).await.unwrap_err();
            assert!(error.to_string().contains("SyntaxError"), "{error}");
        }
        // A value nested deeper than the shell prints, built one level a line.
        shell.eval("x = []", &mut out).await.unwrap();
        let mut refused = None;
        for _ in 0..300 {
            if let Err(error) = shell.eval("x = [x]", &mut out).await {
                refused = Some(error.to_string());
                break;
            }
        }
        assert_eq!(
            refused.as_deref(),
            Some("RecursionError: values nested more than 200 deep are not supported")
        );
        shell.eval("x", &mut out).await.unwrap();
    });
    runtime.block_on(shell.close());
}
