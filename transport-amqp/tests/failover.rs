//! Several brokers in one URI: the transport connects to the first that answers and, when
//! it loses that connection, reconnects to another, restoring topology and consumers.
//! The "brokers" are TCP proxies in front of the test broker, one refusing or cut at will;
//! the real three-node cluster is exercised by `nameko/tests/cluster_failover.rs`.

mod common;

use std::time::Duration;

use common::{Proxy, id_of, msg, next, wait_status};
use nameko_amqp::test_support::test_broker;
use nameko_amqp::{AmqpOptions, AmqpTransport, AmqpUri, ReconnectPolicy};
use nameko_transport::{
    ConsumeOptions, PublishOptions, QueueOptions, Transport, TransportError, TransportStatus,
};

/// A local port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The test broker's URI with its `host:port` replaced by `hosts` (a comma-separated list).
fn with_hosts(uri: &str, hosts: &str) -> String {
    let parsed: AmqpUri = uri.parse().expect("test broker URI");
    let written = format!("@{}:{}", parsed.host(), parsed.port());
    assert!(
        uri.contains(&written),
        "the test URI must name host and port explicitly"
    );
    uri.replacen(&written, &format!("@{hosts}"), 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_to_the_first_broker_that_answers() {
    let Some(broker) = test_broker().await else {
        return;
    };
    let (proxy, via) = Proxy::in_front_of(broker.uri()).await;
    let proxy_host = via
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("the proxy's address")
        .to_owned();
    let dead = format!("127.0.0.1:{}", closed_port());
    let uri = with_hosts(broker.uri(), &format!("{dead},{proxy_host}"));
    let transport = AmqpTransport::connect_with(
        &uri,
        AmqpOptions::new().connect_timeout(Duration::from_secs(2)),
    )
    .await
    .expect("the second broker answers");
    let connected = transport.connected_broker().expect("connected").to_string();
    assert_eq!(connected, proxy_host);
    assert!(
        transport.endpoint().contains(&dead),
        "{}",
        transport.endpoint()
    );
    assert!(!transport.endpoint().contains(":guest@"));
    transport.close().await.expect("close");
    drop(proxy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_no_broker_answers_the_error_names_each_without_the_password() {
    let (a, b) = (closed_port(), closed_port());
    let uri = format!("amqp://guest:leaky-secret@127.0.0.1:{a},127.0.0.1:{b}/%2f");
    let error = AmqpTransport::connect_with(
        &uri,
        AmqpOptions::new().connect_timeout(Duration::from_secs(2)),
    )
    .await
    .expect_err("nothing listens");
    let text = error.to_string();
    assert!(matches!(error, TransportError::Connect(_)), "{error:?}");
    assert!(text.contains(&format!("127.0.0.1:{a}")), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{b}")), "{text}");
    assert!(
        !format!("{text} {error:?}").contains("leaky-secret"),
        "{text}"
    );
}

/// The broker in use goes away (cut, and refusing new connections, as a stopped node
/// does): the transport reconnects to the other one, declares the queue again and the
/// same consumer stream goes on; messages published meanwhile are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_broker_is_replaced_by_another_of_the_list() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("failover-switch", |scope| async move {
            let (first, via_first) = Proxy::in_front_of(scope.broker().uri()).await;
            let (second, via_second) = Proxy::in_front_of(scope.broker().uri()).await;
            let host = |via: &str| {
                via.split('@')
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .expect("address")
                    .to_owned()
            };
            let (first_host, second_host) = (host(&via_first), host(&via_second));
            let uri = with_hosts(scope.broker().uri(), &format!("{first_host},{second_host}"));
            let transport = AmqpTransport::connect_with(
                &uri,
                AmqpOptions::new().reconnect(ReconnectPolicy::exponential(
                    Duration::from_millis(20),
                    Duration::from_millis(200),
                )),
            )
            .await
            .expect("connecting");
            assert_eq!(
                transport.connected_broker().map(ToString::to_string),
                Some(first_host.clone())
            );
            let queue = scope.queue("q");
            transport
                .declare_queue(&queue, QueueOptions::default().with_auto_delete(true))
                .await
                .expect("queue");
            let mut consumer = transport
                .consume(&queue, ConsumeOptions::with_prefetch(5))
                .await
                .expect("consume");
            let direct = scope.connect().await;
            direct
                .publish("", &queue, msg("before"), PublishOptions::default())
                .await
                .expect("publish");
            next(&mut consumer, 5).await.ack().await.expect("ack");

            let mut status = transport.status();
            first.refuse(true);
            first.sever();
            wait_status(&mut status, 5, "the loss", |s| {
                matches!(s, TransportStatus::Reconnecting { .. })
            })
            .await;
            wait_status(&mut status, 10, "reconnection", |s| {
                *s == TransportStatus::Connected
            })
            .await;
            assert_eq!(
                transport.connected_broker().map(ToString::to_string),
                Some(second_host.clone()),
                "reconnected through the other broker"
            );
            // The auto-delete queue died with its consumer and was declared again.
            direct
                .publish("", &queue, msg("after"), PublishOptions::default())
                .await
                .expect("publish after");
            let after = next(&mut consumer, 10).await;
            assert_eq!(id_of(&after), "after");
            after.ack().await.expect("ack after");

            // The first broker back and the second lost: back to the first.
            first.refuse(false);
            second.refuse(true);
            second.sever();
            wait_status(&mut status, 5, "the second loss", |s| {
                matches!(s, TransportStatus::Reconnecting { .. })
            })
            .await;
            wait_status(&mut status, 10, "reconnection", |s| {
                *s == TransportStatus::Connected
            })
            .await;
            assert_eq!(
                transport.connected_broker().map(ToString::to_string),
                Some(first_host)
            );
            direct
                .publish("", &queue, msg("again"), PublishOptions::default())
                .await
                .expect("publish again");
            assert_eq!(id_of(&next(&mut consumer, 10).await), "again");
            transport.close().await.expect("close");
        })
        .await;
}
