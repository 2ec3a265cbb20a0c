//! `nameko shell` in a real terminal (tmux: send-keys, capture-pane) against the example
//! cluster on RabbitMQ and a Python nameko service: calls, an error, a timeout, Ctrl-C
//! on a call in flight, Tab completion of a service name, Ctrl-D, the history file; and
//! the same lines piped on standard input print the same outputs.

mod shell_support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nameko::testing::TestCluster;
use shell_support::{
    ClusterProcess, NAMEKO, PythonService, Slow, TempDir, pipe, stderr, stdout, wait_for_service,
};

/// The variable that turns a missing tmux from a skip into a failure.
const REQUIRE_TMUX: &str = "NAMEKO_REQUIRE_TMUX";

/// Lines a nameko user types into the shell, in groups that end at most with one failing
/// line (so that each group, piped alone, runs to its end).
const EXAMPLE_LINES: &[&str] = &[
    "n.rpc.calculator.add(1, 2)",
    "n.rpc[\"service_x\"].remote_method(\"hello\")",
    "n.rpc.user_service.calculate_user_score(1, base_score=10, multiplier=1.5)",
    "r = n.rpc.calculator.multiply.call_async(6, 7)",
    "r",
    "r.result()",
    "x = n.rpc.calculator.add(2, 3)",
    "n.rpc.calculator.multiply(x, 10)",
    "n.context(user_id=7, correlation_id='c-1')",
    "a = n.rpc.audit_service.log_action('check', {'k': (1, 2)})",
    "a['user_id'], a['correlation_id'], a['action']",
    "n.dispatch_event('order_service', 'order_placed', {'order_id': 1})",
    "{'nested': [{'a': (1, 2.5, 'é', None, True)}], 'quote': \"it's\"}",
    "n.rpc.calculator.divide(1, 0)",
];
const UNKNOWN_LINES: &[&str] = &["n.rpc.nobody_home.ping()"];
const SYNTAX_LINES: &[&str] = &["n.rpc.calculator.add(1 2)"];
const PYTHON_LINES: &[&str] = &[
    "n.rpc.py_api.echo({'a': (1, 2.5, 'é', None, True), 'b': \"it's\"})",
    "n.rpc['py_api'].mixed(1, c=(2,), b='x')",
    "n.rpc.py_api.divide(1, 0)",
];
const TIMEOUT_LINES: &[&str] = &["n.timeout(0.5)", "n.rpc.slow.sleep(5000)"];

fn tmux_available() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required =
            std::env::var(REQUIRE_TMUX).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
        assert!(!required, "tmux is not installed and {REQUIRE_TMUX}=1");
        eprintln!(
            "skipping: tmux is not installed (apt-get install tmux; set {REQUIRE_TMUX}=1 to fail instead)"
        );
    }
    found
}

/// A tmux server of its own running one window, killed at the end.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn start(command: &str) -> Self {
        let terminal = Self {
            socket: format!("nameko-shell-test-{}", std::process::id()),
        };
        terminal.tmux(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "shell",
            "-x",
            "200",
            "-y",
            "50",
            command,
        ]);
        terminal.tmux(&["set-option", "-t", "shell", "remain-on-exit", "on"]);
        terminal.tmux(&["set-option", "-t", "shell", "history-limit", "10000"]);
        terminal
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The whole screen and scroll-back, wrapped lines joined, trailing spaces removed.
    fn screen(&self) -> Vec<String> {
        let output = self.tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", "shell"]);
        let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        while lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        lines
    }

    fn prompts(&self) -> usize {
        self.screen()
            .iter()
            .filter(|l| l.starts_with(">>>"))
            .count()
    }

    /// Waits (bounded) until the screen satisfies `done`.
    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        self.wait_for_within(what, Duration::from_secs(30), done);
    }

    /// Waits until the screen satisfies `done`, for at most `within`.
    fn wait_for_within(&self, what: &str, within: Duration, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {what}; the screen:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "shell", "-l", "--", text]);
    }

    fn key(&self, key: &str) {
        self.keys(&[key]);
    }

    /// Presses keys in one go: tmux writes them to the terminal together.
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "shell"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types a line, presses Enter, and waits for the next prompt.
    fn enter(&self, line: &str) {
        let before = self.prompts();
        self.type_text(line);
        self.key("Enter");
        self.wait_for(&format!("the prompt after `{line}`"), |screen| {
            screen.iter().filter(|l| l.starts_with(">>>")).count() > before
                && screen.last().is_some_and(|l| l == ">>>")
        });
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// What the terminal showed for each line typed: the line and the lines printed after it.
fn transcript(screen: &[String]) -> Vec<(String, Vec<String>)> {
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    for line in screen {
        if let Some(input) = line.strip_prefix(">>>") {
            entries.push((input.trim_start().to_owned(), Vec::new()));
        } else if let Some((_, out)) = entries.last_mut() {
            out.push(line.clone());
        }
    }
    entries
}

/// The outputs the terminal showed for `lines`, in order.
fn shown(transcript: &[(String, Vec<String>)], lines: &[&str]) -> String {
    let mut text = String::new();
    for line in lines {
        let (_, out) = transcript
            .iter()
            .find(|(input, _)| input == line)
            .unwrap_or_else(|| panic!("`{line}` is not on the screen"));
        for o in out {
            text.push_str(o);
            text.push('\n');
        }
    }
    text
}

/// A call handle prints whether its reply came yet, which depends on timing.
fn normalize(text: &str) -> String {
    text.replace(" (pending)>", ">").replace(" (done)>", ">")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_in_a_terminal_prints_what_the_same_lines_piped_print() {
    if !tmux_available() {
        return;
    }
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
    if python.is_some() {
        let probe = uri.clone();
        tokio::task::spawn_blocking(move || {
            wait_for_service(&probe, "n.rpc.py_api.echo(1)", "the Python service");
        })
        .await
        .unwrap();
    }
    let mut groups = vec![EXAMPLE_LINES, UNKNOWN_LINES, SYNTAX_LINES];
    if python.is_some() {
        groups.push(PYTHON_LINES);
    }
    groups.push(TIMEOUT_LINES);

    let data = TempDir::new("terminal-data");
    let uri_for_terminal = uri.clone();
    let data_dir = data.0.clone();
    let (transcript, history) = tokio::task::spawn_blocking(move || {
        // The shell's exit code goes to a file: tmux does not always keep the status of a
        // pane's process. The sh in between catches Ctrl-C (which reaches it too), so
        // that it stays to write the code; the shell itself starts with SIGINT's default.
        let exit_file = data_dir.join("exit-code");
        let terminal = Terminal::start(&format!(
            "trap : INT; env -u RUST_LOG XDG_DATA_HOME='{}' AMQP_URI='{uri_for_terminal}' \
             {NAMEKO} shell; echo $? > '{}'",
            data_dir.display(),
            exit_file.display()
        ));
        terminal.wait_for("the banner and prompt", |screen| {
            screen
                .first()
                .is_some_and(|l| l.starts_with("Nameko shell"))
                && screen.last().is_some_and(|l| l == ">>>")
        });
        let screen = terminal.screen();
        assert!(
            screen
                .iter()
                .any(|l| l.starts_with("Broker: amqp://guest:***@")),
            "{screen:?}"
        );
        for group in &groups {
            for line in *group {
                terminal.enter(line);
            }
        }

        // Ctrl-C cancels a call in flight; the shell goes on.
        terminal.enter("n.timeout(60)");
        let before = terminal.prompts();
        terminal.type_text("n.rpc.slow.sleep(30000)");
        terminal.key("Enter");
        std::thread::sleep(Duration::from_millis(500));
        let interrupted = Instant::now();
        terminal.key("C-c");
        terminal.wait_for("the prompt after Ctrl-C", |screen| {
            screen.iter().filter(|l| l.starts_with(">>>")).count() > before
                && screen.last().is_some_and(|l| l == ">>>")
        });
        assert!(interrupted.elapsed() < Duration::from_secs(10));
        terminal.enter("n.rpc.calculator.add(1, 1)");

        // Tab completes the name of a service the session called.
        terminal.type_text("n.rpc.calc");
        terminal.key("Tab");
        terminal.wait_for("the completed service name", |screen| {
            screen.last().is_some_and(|l| l == ">>> n.rpc.calculator")
        });
        terminal.type_text(".m");
        terminal.key("Tab");
        terminal.wait_for("the completed method name", |screen| {
            screen
                .last()
                .is_some_and(|l| l == ">>> n.rpc.calculator.multiply")
        });
        let before = terminal.prompts();
        terminal.type_text("(5, 5)");
        terminal.key("Enter");
        terminal.wait_for("the completed call's result", |screen| {
            screen.iter().filter(|l| l.starts_with(">>>")).count() > before
                && screen.last().is_some_and(|l| l == ">>>")
        });
        let transcript = transcript(&terminal.screen());

        // Ctrl-C on another slow call and Ctrl-D right after it, typed while the call
        // still runs (the terminal driver hands that Ctrl-D over as a NUL): the shell
        // leaves at once, with exit code 0, its worker still sleeping. Both keys go in one
        // write, so that the Ctrl-D reaches the terminal while the call still runs: one
        // typed as the next prompt appears may be taken by the line editor's query of the
        // cursor position, whose answer it reads then.
        let before = terminal.prompts();
        terminal.type_text("n.rpc.slow.sleep(30000)");
        terminal.key("Enter");
        terminal.wait_for("the call to be under way", |screen| {
            screen
                .last()
                .is_some_and(|l| l.ends_with("n.rpc.slow.sleep(30000)"))
                && screen.iter().filter(|l| l.starts_with(">>>")).count() == before
        });
        std::thread::sleep(Duration::from_millis(300));
        let left = Instant::now();
        terminal.keys(&["C-c", "C-d"]);
        let exit_code = || {
            std::fs::read_to_string(&exit_file)
                .ok()
                .filter(|c| c.ends_with('\n'))
        };
        terminal.wait_for_within("the shell to exit", Duration::from_secs(5), |_| {
            exit_code().is_some()
        });
        println!("the shell exited {:.2?} after Ctrl-D", left.elapsed());
        assert_eq!(exit_code().as_deref(), Some("0\n"), "the shell's exit code");
        let history =
            std::fs::read_to_string(data_dir.join("nameko/shell_history")).unwrap_or_default();
        (transcript, history)
    })
    .await
    .unwrap();

    let after_interrupt = transcript
        .iter()
        .find(|(input, _)| input == "n.rpc.slow.sleep(30000)")
        .unwrap();
    assert!(
        after_interrupt
            .1
            .iter()
            .any(|l| l.contains("KeyboardInterrupt")),
        "{after_interrupt:?}"
    );
    assert_eq!(shown(&transcript, &["n.rpc.calculator.add(1, 1)"]), "2.0\n");
    assert_eq!(
        shown(&transcript, &["n.rpc.calculator.multiply(5, 5)"]),
        "25.0\n"
    );
    assert_eq!(
        shown(&transcript, &["n.rpc.calculator.divide(1, 0)"]),
        "RemoteError: ValueError Division by zero\n"
    );
    assert_eq!(
        shown(&transcript, &["n.rpc.slow.sleep(5000)"]),
        "RpcTimeout: no reply from slow.sleep within 0.5 s\n"
    );
    for line in [
        "n.rpc.calculator.add(1, 2)",
        "n.rpc.calculator.multiply(5, 5)",
    ] {
        assert!(
            history.lines().any(|l| l == line),
            "`{line}` is not in the history:\n{history}"
        );
    }

    // Each group piped alone prints what the terminal showed for it.
    for group in [
        EXAMPLE_LINES,
        UNKNOWN_LINES,
        SYNTAX_LINES,
        PYTHON_LINES,
        TIMEOUT_LINES,
    ] {
        if group == PYTHON_LINES && python.is_none() {
            continue;
        }
        let input: String = group.iter().map(|l| format!("{l}\n")).collect();
        let args = ["--broker".to_owned(), uri.clone()];
        let output = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            pipe(Path::new(NAMEKO), &args, &[], &input)
        })
        .await
        .unwrap();
        let piped = format!("{}{}", stdout(&output), stderr(&output));
        let piped: String = piped
            .lines()
            .map(|l| format!("{}\n", l.trim_end()))
            .collect();
        let on_screen = shown(&transcript, group);
        assert_eq!(normalize(&on_screen), normalize(&piped), "{group:?}");
        assert!(!output.status.success(), "each group ends with an error");
    }
    drop(python);
    drop(examples);
    cluster.shutdown().await;
}
