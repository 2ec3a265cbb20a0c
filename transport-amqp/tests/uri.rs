//! URI parsing and password redaction (no broker needed).

use std::time::Duration;

use nameko_amqp::{AmqpOptions, AmqpTransport, AmqpUri, ClientIdentity, Failover, Scheme};
use nameko_transport::TransportError;

fn parse(uri: &str) -> AmqpUri {
    uri.parse()
        .unwrap_or_else(|e| panic!("parsing {uri:?}: {e}"))
}

#[test]
fn full_uri() {
    let uri =
        parse("amqp://user:pass@rabbit.example:5673/prod?heartbeat=15&connection_timeout=2500");
    assert_eq!(uri.scheme(), Scheme::Amqp);
    assert!(!uri.is_tls());
    assert_eq!(uri.host(), "rabbit.example");
    assert_eq!(uri.port(), 5673);
    assert_eq!(uri.username(), "user");
    assert_eq!(uri.vhost(), "prod");
    assert_eq!(uri.heartbeat(), Some(15));
    assert_eq!(uri.connection_timeout(), Some(Duration::from_millis(2500)));
}

#[test]
fn vhost_follows_nameko() {
    // kombu (and so nameko) reads an empty path as the default vhost `/`.
    for (text, vhost) in [
        ("amqp://guest:guest@localhost", "/"),
        ("amqp://guest:guest@localhost/", "/"),
        ("amqp://guest:guest@localhost/%2f", "/"),
        ("amqp://guest:guest@localhost/%2F", "/"),
        ("amqp://guest:guest@localhost//", "/"),
        ("amqp://guest:guest@localhost/staging", "staging"),
        ("amqp://guest:guest@localhost/a%2fb", "a/b"),
    ] {
        assert_eq!(parse(text).vhost(), vhost, "{text}");
    }
}

#[test]
fn defaults() {
    let uri = parse("amqp://localhost");
    assert_eq!(uri.port(), 5672);
    assert_eq!(uri.username(), "guest");
    assert_eq!(uri.heartbeat(), None);
    let tls = parse("amqps://broker");
    assert!(tls.is_tls());
    assert_eq!(tls.port(), 5671);
    assert_eq!(
        parse("pyamqp://guest:guest@localhost").scheme(),
        Scheme::Amqp
    );
}

#[test]
fn ip_hosts_are_kept() {
    assert_eq!(
        parse("amqp://guest:guest@10.1.2.3:5672/").host(),
        "10.1.2.3"
    );
    let v6 = parse("amqp://guest:guest@[::1]:5672/");
    assert_eq!(v6.host(), "::1");
    assert_eq!(v6.to_string(), "amqp://guest:***@[::1]:5672/%2f");
}

#[test]
fn credentials_are_percent_decoded() {
    let uri = parse("amqp://us%40er:p%3Ass%2Fword@host/");
    assert_eq!(uri.username(), "us@er");
    assert_eq!(uri.to_string(), "amqp://us%40er:***@host:5672/%2f");
}

#[test]
fn display_and_debug_redact_the_password() {
    let uri = parse("amqp://guest:hunter2secret@localhost:5672/%2f?heartbeat=30");
    assert_eq!(uri.to_string(), "amqp://guest:***@localhost:5672/%2f");
    assert_eq!(uri.redacted(), uri.to_string());
    let debug = format!("{uri:?}");
    assert!(!debug.contains("hunter2secret"), "{debug}");
    assert!(debug.contains("***"), "{debug}");
}

#[test]
fn options_debug_hides_secrets() {
    let options = AmqpOptions::new()
        .ca_certificate_pem("-----BEGIN CERTIFICATE-----\nMIIBcaSecret\n")
        .client_identity(ClientIdentity::pem("CERTDATA", "PRIVATEKEYDATA"))
        .client_identity(ClientIdentity::pkcs12(vec![1, 2, 3], "p12password"));
    let debug = format!("{options:?}");
    for secret in ["MIIBcaSecret", "PRIVATEKEYDATA", "p12password"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[test]
fn malformed_uris_are_refused_without_echoing_them() {
    for text in [
        "http://guest:topsecret@localhost/",
        "amqp://guest:topsecret@localhost/?heartbeat=soon",
        "not a uri topsecret",
        "amqp://guest:topsecret@localhost:99999/",
    ] {
        let err = text.parse::<AmqpUri>().expect_err(text);
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }
}

#[tokio::test]
async fn connection_errors_do_not_leak_the_password() {
    // A port nothing listens on: the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let uri = format!("amqp://guest:leaky-password@127.0.0.1:{port}/%2f");
    let err = AmqpTransport::connect_with(
        &uri,
        AmqpOptions::new().connect_timeout(Duration::from_secs(2)),
    )
    .await
    .expect_err("nothing listens there");
    assert!(matches!(err, TransportError::Connect(_)), "{err:?}");
    assert!(
        !format!("{err} {err:?}").contains("leaky-password"),
        "{err:?}"
    );

    let err = AmqpTransport::connect("amqp://guest:leaky-password@[::1:bad/")
        .await
        .expect_err("malformed");
    assert!(matches!(err, TransportError::InvalidArgument(_)), "{err:?}");
    assert!(!err.to_string().contains("leaky-password"), "{err}");
}

#[test]
fn several_brokers_in_the_host_part() {
    let uri = parse("amqp://app:s3cret@r1:5681,r2,[::1]:5683,10.0.0.4/prod?heartbeat=5");
    let brokers: Vec<(String, u16)> = uri
        .brokers()
        .iter()
        .map(|b| (b.host().to_owned(), b.port()))
        .collect();
    assert_eq!(
        brokers,
        [
            ("r1".to_owned(), 5681),
            ("r2".to_owned(), 5672),
            ("::1".to_owned(), 5683),
            ("10.0.0.4".to_owned(), 5672)
        ]
    );
    assert_eq!((uri.host(), uri.port()), ("r1", 5681));
    assert_eq!(uri.vhost(), "prod");
    assert_eq!(uri.heartbeat(), Some(5));
    assert_eq!(uri.failover(), Failover::InOrder);
    assert_eq!(
        uri.to_string(),
        "amqp://app:***@r1:5681,r2:5672,[::1]:5683,10.0.0.4:5672/prod"
    );
    assert!(!format!("{uri:?}").contains("s3cret"));
    assert_eq!(parse("amqps://r1,r2/").brokers()[1].port(), 5671);
    assert_eq!(parse("amqp://r1,r2").vhost(), "/");
}

#[test]
fn kombu_failover_lists_are_read() {
    let uri =
        parse("amqp://app:s3cret@r1:5672//;amqp://app:s3cret@r2:5673//; amqp://app:s3cret@r3,r4//");
    assert_eq!(
        uri.to_string(),
        "amqp://app:***@r1:5672,r2:5673,r3:5672,r4:5672/%2f"
    );
    for mismatch in [
        "amqp://app:s3cret@r1//;amqp://other:s3cret@r2//",
        "amqp://app:s3cret@r1//;amqp://app:other@r2//",
        "amqp://app:s3cret@r1//;amqps://app:s3cret@r2//",
        "amqp://app:s3cret@r1/a;amqp://app:s3cret@r2/b",
    ] {
        let error = mismatch.parse::<AmqpUri>().expect_err(mismatch);
        assert!(error.to_string().contains("must agree"), "{error}");
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
}

#[test]
fn the_failover_order_is_read_from_the_query() {
    assert_eq!(
        parse("amqp://r1,r2/?failover=shuffle").failover(),
        Failover::Shuffle
    );
    assert_eq!(
        parse("amqp://r1,r2/?failover=round-robin").failover(),
        Failover::InOrder
    );
    assert_eq!(
        parse("amqp://r1,r2/?failover=in_order").failover(),
        Failover::InOrder
    );
    let error = "amqp://app:s3cret@r1,r2/?failover=random"
        .parse::<AmqpUri>()
        .expect_err("unknown order");
    assert!(error.to_string().contains("failover"), "{error}");
}

#[test]
fn malformed_host_lists_are_refused_without_echoing_them() {
    for text in [
        "amqp://guest:topsecret@r1,,r3/",
        "amqp://guest:topsecret@r1,/",
        "amqp://guest:topsecret@r1,r2:99999/",
        "amqp://guest:topsecret@r1,[::1/",
    ] {
        let error = text.parse::<AmqpUri>().expect_err(text);
        assert!(!error.to_string().contains("topsecret"), "{error}");
    }
}
