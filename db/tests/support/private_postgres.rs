//! A PostgreSQL server of the test's own (Debian's binaries under
//! /usr/lib/postgresql/15/bin, a cluster made with initdb in a temporary directory, on
//! a free port), so that a test can stop and start it without touching the shared
//! server on 5432.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{TempDir, run};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private PostgreSQL server; stopped and deleted on drop.
pub struct PrivatePostgres {
    dir: TempDir,
    port: u16,
    as_postgres: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PrivatePostgres {
    /// Makes and starts one, or `None` (after saying why) when PostgreSQL's binaries are
    /// not installed, unless `NAMEKO_REQUIRE_POSTGRES=1`.
    pub fn start() -> Option<Self> {
        if !Path::new(BIN).join("initdb").exists() {
            assert!(
                std::env::var("NAMEKO_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "no PostgreSQL binaries in {BIN} and NAMEKO_REQUIRE_POSTGRES=1"
            );
            eprintln!("skipping: no PostgreSQL binaries in {BIN} for a private server");
            return None;
        }
        let dir = TempDir::new("nameko-private-pg");
        // initdb refuses to run as root: the cluster belongs to `postgres` then.
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir.0));
        }
        let port = free_port();
        let server = Self {
            dir,
            port,
            as_postgres,
        };
        server.pg(&[
            "initdb",
            "-D",
            &server.data().display().to_string(),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.0.join("data")
    }

    fn pg(&self, args: &[&str]) -> String {
        let program = Path::new(BIN).join(args[0]);
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.args(&args[1..]);
        run(&mut cmd)
    }

    /// The server's URI (its `postgres` database).
    pub fn uri(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.0.display()
        );
        self.pg(&[
            "pg_ctl",
            "-D",
            &self.data().display().to_string(),
            "-o",
            &options,
            "-l",
            &self.dir.0.join("log").display().to_string(),
            "-w",
            "-t",
            "30",
            "start",
        ]);
    }

    /// Stops the server now (`pg_ctl stop -m fast`: sessions are ended, transactions
    /// rolled back).
    pub fn stop(&self) {
        self.pg(&[
            "pg_ctl",
            "-D",
            &self.data().display().to_string(),
            "-m",
            "fast",
            "-w",
            "stop",
        ]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let program = Path::new(BIN).join("pg_ctl");
        let data = self.data();
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        let _ = cmd
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}
