//! The `nameko` tool: call services and dispatch events on any nameko cluster, Python or
//! Rust. `nameko --help` lists the commands, examples and exit codes.

fn main() -> std::process::ExitCode {
    nameko::cli::tool_main()
}
