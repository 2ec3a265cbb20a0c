//! `websocket_service`'s page in a real browser: headless Chromium, driven over
//! WebDriver (chromedriver) with fantoccini. An order placed through RPC appears on the
//! page; the echo form is answered over the WebSocket. A screenshot is kept at
//! `target/browser/websocket.png`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`CHROMIUM` and `CHROMEDRIVER` name
//! other binaries); without them the test says so and passes, unless
//! `NAMEKO_REQUIRE_BROWSER=1`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_examples::{
    EmailService, InventoryService, OrderService, PaymentService, WebsocketService,
};

/// How long the page may take to show what is expected of it.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);

fn required() -> bool {
    std::env::var("NAMEKO_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

/// The first of `candidates` that is an executable on the PATH (or a path that exists).
fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Ok(path) = std::env::var(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let paths = std::env::var_os("PATH").unwrap_or_default();
    candidates.iter().find_map(|name| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(chromedriver: &PathBuf) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver does not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

async fn browser(driver: &Driver, chromium: &PathBuf) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,700"],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut builder = ClientBuilder::new(connector);
    builder.capabilities(capabilities);
    builder
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

/// Waits for the element at `xpath`, and returns its text.
async fn shown(client: &Client, xpath: &str) -> String {
    let element = client
        .wait()
        .at_most(PAGE_TIMEOUT)
        .for_element(Locator::XPath(xpath))
        .await
        .unwrap_or_else(|e| panic!("the page does not show {xpath} within {PAGE_TIMEOUT:?}: {e}"));
    element.text().await.unwrap()
}

fn screenshot_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    target.join("browser").join("websocket.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_lists_orders_as_they_are_placed_and_echoes_the_form() {
    let (Some(chromium), Some(chromedriver)) = (
        find(
            "CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        ),
        find("CHROMEDRIVER", &["chromedriver"]),
    ) else {
        assert!(
            !required(),
            "NAMEKO_REQUIRE_BROWSER=1 but Chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipping the browser test: no Chromium and chromedriver (apt-get install chromium chromium-driver)"
        );
        return;
    };
    let mut cluster = TestCluster::memory();
    cluster.start::<PaymentService>().await;
    cluster.start::<InventoryService>().await;
    cluster.start::<EmailService>().await;
    cluster.start::<OrderService>().await;
    cluster.start::<WebsocketService>().await;
    let addr = cluster.web_session().addr();

    let driver = Driver::start(&chromedriver);
    let client = browser(&driver, &chromium).await;
    client.goto(&format!("http://{addr}/")).await.unwrap();
    shown(&client, "//span[@id='status' and text()='subscribed']").await;

    // An order placed through RPC appears on the page.
    let order = json!({
        "order_id": "A-17",
        "customer_email": "ada@example.com",
        "payment_info": {"amount": 12.5},
        "items": [{"sku": "book", "quantity": 1}],
    });
    let placed: Value = cluster
        .proxy()
        .await
        .service("order_service")
        .call("process_order_parallel", (order,))
        .await
        .unwrap();
    assert_eq!(placed["status"], "success", "{placed}");
    let line = shown(&client, "//ul[@id='orders']/li[contains(., 'A-17')]").await;
    assert_eq!(line, "order A-17 for ada@example.com");

    // The echo form is answered over the WebSocket.
    let input = client.find(Locator::Id("echo-value")).await.unwrap();
    input.send_keys("hello from Chromium").await.unwrap();
    client
        .find(Locator::Id("echo-send"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let echoed = shown(&client, "//span[@id='echo-result' and text()!='']").await;
    assert_eq!(echoed, "hello from Chromium");

    let png = client.screenshot().await.unwrap();
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());

    client.close().await.unwrap();
    drop(driver);
    cluster.shutdown().await;
}
