//! Connecting, the connection's identity on the broker, timeouts and closing.

mod common;

use std::time::{Duration, Instant};

use common::msg;
use nameko_amqp::test_support::test_broker;
use nameko_amqp::{AmqpOptions, AmqpTransport, AmqpUri};
use nameko_transport::{PublishOptions, QueueOptions, Transport, TransportError, TransportStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_status_and_debug_never_show_the_password() {
    let Some(broker) = test_broker().await else {
        return;
    };
    let transport = broker.connect().await;
    let uri: AmqpUri = broker.uri().parse().expect("test URI");
    assert_eq!(transport.endpoint(), uri.redacted());
    assert!(transport.endpoint().contains(":***@"));
    assert_eq!(*transport.status().borrow(), TransportStatus::Connected);
    let debug = format!("{transport:?}");
    assert!(debug.contains(":***@"), "{debug}");
    assert!(!debug.contains(":guest@"), "{debug}");
    let caps = transport.capabilities();
    assert!(caps.publisher_confirms && caps.mandatory_returns && caps.exclusive_queues);
    assert!(caps.queue_expiry && !caps.follows_tokio_clock && !caps.idle_detection);
    transport.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_access_refused_without_the_password() {
    let Some(broker) = test_broker().await else {
        return;
    };
    let uri: AmqpUri = broker.uri().parse().expect("test URI");
    let wrong = format!(
        "amqp://{}:not-the-password-{}@{}:{}/%2f",
        uri.username(),
        uuid::Uuid::new_v4().simple(),
        uri.host(),
        uri.port()
    );
    let err = AmqpTransport::connect(&wrong)
        .await
        .expect_err("the broker refuses the login");
    assert!(matches!(err, TransportError::AccessRefused(_)), "{err:?}");
    assert!(!format!("{err:?}").contains("not-the-password"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_bounds_a_silent_server() {
    // Accepts TCP connections and never answers the AMQP handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let err = AmqpTransport::connect_with(
        &format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        AmqpOptions::new().connect_timeout(Duration::from_millis(300)),
    )
    .await
    .expect_err("the server never answers");
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_a_plain_port_fails_cleanly() {
    let Some(broker) = test_broker().await else {
        return;
    };
    let uri: AmqpUri = broker.uri().parse().expect("test URI");
    let tls = format!("amqps://guest:guest@{}:{}/%2f", uri.host(), uri.port());
    let err = AmqpTransport::connect_with(
        &tls,
        AmqpOptions::new().connect_timeout(Duration::from_secs(3)),
    )
    .await
    .expect_err("no TLS there");
    assert!(
        matches!(err, TransportError::Connect(_) | TransportError::Timeout(_)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_name_is_shown_by_the_broker() {
    let Some(broker) = test_broker().await else {
        return;
    };
    let list = || {
        nameko_amqp::test_support::rabbitmqctl(
            &["list_connections", "client_properties", "-q"],
            Duration::from_secs(60),
        )
    };
    if let Err(error) = list() {
        eprintln!("skipping: rabbitmqctl is not usable here ({error})");
        return;
    }
    let name = format!("nameko-rs-name-test-{}", uuid::Uuid::new_v4().simple());
    let transport = broker
        .connect_with(AmqpOptions::new().connection_name(name.clone()))
        .await;
    let shown = tokio::task::spawn_blocking(list)
        .await
        .expect("rabbitmqctl")
        .unwrap_or_default();
    assert!(shown.contains(&name), "{name} not in {shown}");
    assert!(shown.contains("nameko-rs"), "product not in {shown}");
    transport.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_final_and_clones_share_it() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("close", |scope| async move {
            let transport = scope.connect().await;
            let clone = transport.clone();
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            transport.close().await.expect("close");
            transport.close().await.expect("closing twice is fine");
            assert_eq!(*clone.status().borrow(), TransportStatus::Closed);
            let err = clone
                .publish("", &q, msg("late"), PublishOptions::default())
                .await
                .expect_err("closed");
            assert_eq!(err, TransportError::Closed);
        })
        .await;
}
