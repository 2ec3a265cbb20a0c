//! A broker outage during a shell session (on the in-memory broker, which can be taken
//! down): calls made while it is down fail with a line that says so, and the shell
//! answers again once the broker is back, without being restarted.

use std::time::Duration;

use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::shell::Shell;
use nameko::testing::TestCluster;
use tokio::time::Instant;

#[derive(Dependencies)]
struct Calculator;

#[service(name = "calculator")]
impl Calculator {
    #[rpc]
    async fn add(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

async fn run(shell: &mut Shell, line: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let result = shell.eval(line, &mut out).await;
    result
        .map(|_| String::from_utf8(out).unwrap())
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_reports_an_outage_and_answers_again_when_the_broker_is_back() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone());
    cluster.start::<Calculator>().await;
    let mut shell = Shell::start(cluster.connect().await, cluster.config().clone())
        .await
        .unwrap();
    assert_eq!(
        run(&mut shell, "n.rpc.calculator.add(1, 2)").await,
        Ok("3\n".to_owned())
    );

    broker.set_available(false);
    broker.drop_all_connections();
    run(&mut shell, "n.timeout(1)").await.unwrap();
    let error = run(&mut shell, "n.rpc.calculator.add(1, 2)")
        .await
        .unwrap_err();
    assert!(
        error.starts_with("ConnectionError: the broker is unreachable"),
        "{error}"
    );
    // The shell itself still works while the broker is down.
    assert_eq!(run(&mut shell, "x = 1; x").await, Ok("1\n".to_owned()));

    broker.set_available(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match run(&mut shell, "n.rpc.calculator.add(2, 2)").await {
            Ok(out) => {
                assert_eq!(out, "4\n");
                break;
            }
            Err(error) => assert!(
                Instant::now() < deadline,
                "no answer after the broker came back: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shell.close().await;
    cluster.shutdown().await;
}
