//! The HTTP benchmark in miniature: every server it compares starts, answers the load
//! generator with the right bytes, and is reported; no speed is asserted.
//! Python nameko takes part when its environment exists (`scripts/python-env`).

use std::process::Command;

#[test]
fn the_http_benchmark_runs_and_reports_every_server() {
    let output = Command::new(env!("CARGO_BIN_EXE_nameko-bench-http"))
        .args(["--smoke", "--connections", "1,4"])
        .output()
        .expect("the benchmark runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for row in [
        "| nameko-rs `#[http]` | 1 |",
        "| bare hyper (ceiling) | 1 |",
        "| nameko-rs `#[http]` | 4 |",
        "| bare hyper (ceiling) | 4 |",
    ] {
        assert!(stdout.contains(row), "no row `{row}`:\n{stdout}");
    }
    assert!(
        stdout.contains("Idle RSS of the nameko-rs http_service process"),
        "{stdout}"
    );
}
