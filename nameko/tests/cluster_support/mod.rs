//! The three-node RabbitMQ cluster of `scripts/rabbitmq-cluster`, as the cluster tests
//! use it: started when it is not running (and stopped again afterwards), nodes killed
//! with `kill -9` and started again, `rabbitmqctl` against a node.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tokio::time::Instant;

/// Whether `NAMEKO_REQUIRE_<X>`-style `var` is set to 1.
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

// ---------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------

/// `scripts/rabbitmq-cluster`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/rabbitmq-cluster")
}

/// Runs the cluster script (blocking), bounded; its standard output, or why it failed.
pub fn run_script(args: &[&str], within: Duration) -> Result<String, String> {
    let output = Command::new("timeout")
        .arg(within.as_secs().to_string())
        .arg(script())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "`scripts/rabbitmq-cluster {}` failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// [`run_script`] off the runtime's threads.
pub async fn cluster_script(args: &[&str], within: Duration) -> Result<String, String> {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_script(&args, within)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Whether something listens on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// The three-node cluster, started by the test if it was not running (and then stopped
/// when dropped), every node running again when dropped otherwise.
pub struct RabbitCluster {
    started_here: bool,
}

impl RabbitCluster {
    /// The AMQP port of node `n` (1 to 3).
    pub fn port(n: usize) -> u16 {
        5680 + u16::try_from(n).expect("a node number")
    }

    /// A URI listing these nodes, in this order.
    pub fn uri(nodes: &[usize]) -> String {
        let hosts: Vec<String> = nodes
            .iter()
            .map(|&n| format!("127.0.0.1:{}", Self::port(n)))
            .collect();
        format!("amqp://guest:guest@{}/", hosts.join(","))
    }

    pub async fn ensure() -> Option<Self> {
        let running = (1..=3).all(|n| port_open(Self::port(n)));
        let started_here = !running;
        if !running {
            println!("starting the RabbitMQ cluster (scripts/rabbitmq-cluster up)");
        }
        // `up` also starts a node left stopped and checks that all three are clustered.
        match cluster_script(&["up"], Duration::from_secs(240)).await {
            Ok(_) => Some(Self { started_here }),
            Err(error) => {
                assert!(
                    !required("NAMEKO_REQUIRE_CLUSTER"),
                    "the RabbitMQ cluster cannot be started and NAMEKO_REQUIRE_CLUSTER=1: {error}"
                );
                eprintln!(
                    "skipping: the three-node RabbitMQ cluster cannot be started ({error}); \
                     it needs rabbitmq-server 3.10 on this machine (see scripts/rabbitmq-cluster)"
                );
                None
            }
        }
    }

    /// Kills node `node` with `kill -9` of its Erlang VM; the instant of the kill, and
    /// when the node's AMQP port was seen closed.
    pub async fn kill(&self, node: usize) -> (Instant, Duration) {
        let pid = cluster_script(&["pid", &node.to_string()], Duration::from_secs(30))
            .await
            .expect("the node's pid");
        let killed_at = Instant::now();
        let status = Command::new("kill")
            .args(["-9", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -9 {pid} failed");
        while port_open(Self::port(node)) {
            assert!(
                killed_at.elapsed() < Duration::from_secs(10),
                "node {node} still listens 10 s after kill -9"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (killed_at, killed_at.elapsed())
    }

    /// `rabbitmqctl ARGS...` against node `node`; its output.
    pub async fn ctl(&self, node: usize, args: &[&str]) -> Result<String, String> {
        let node = node.to_string();
        let mut all = vec!["ctl", node.as_str()];
        all.extend_from_slice(args);
        cluster_script(&all, Duration::from_secs(60)).await
    }

    /// Starts node `node` again (it rejoins the cluster); how long that took.
    pub async fn start(&self, node: usize) -> Duration {
        let began = Instant::now();
        cluster_script(&["start", &node.to_string()], Duration::from_secs(240))
            .await
            .expect("starting a node again");
        began.elapsed()
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        let args = if self.started_here { "down" } else { "up" };
        if let Err(error) = run_script(&[args], Duration::from_secs(240)) {
            eprintln!("after the test, `scripts/rabbitmq-cluster {args}` failed: {error}");
        }
    }
}
