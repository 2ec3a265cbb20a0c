//! service_x and service_y, and the quickstart that runs them.

use nameko::testing::{RpcProxyMock, worker_factory};
use nameko_examples::{ServiceX, ServiceY};

#[tokio::test]
async fn service_y_appends_its_identifier() {
    let y = worker_factory::<ServiceY>().build().unwrap();
    assert_eq!(y.append_identifier("hello".to_owned()).await, "hello-y");
}

#[tokio::test]
async fn service_x_asks_service_y() {
    let service_y = RpcProxyMock::new().reply("append_identifier", "hello-x-y");
    let x = worker_factory::<ServiceX>()
        .with("service_y", service_y.clone())
        .build()
        .unwrap();
    assert_eq!(
        x.remote_method("hello".to_owned()).await.unwrap(),
        "hello-x-y"
    );
    service_y.assert_called_once_with("append_identifier", ("hello-x",));
}

#[test]
fn the_quickstart_prints_hello_x_y() {
    let exe = std::env::current_exe().unwrap();
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples");
    let quickstart = examples.join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(
        quickstart.exists(),
        "`cargo test` builds the examples: {} is missing",
        quickstart.display()
    );
    let output = std::process::Command::new(quickstart)
        .env_remove("AMQP_URI")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello-x-y\nfirst-x-y second-y\n"
    );
}
