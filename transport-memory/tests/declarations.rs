//! Declarations: RabbitMQ's wording for refusals, reserved names, the default exchange,
//! auto-delete exchanges.

use nameko_memory::MemoryBroker;
use nameko_transport::{ExchangeKind, ExchangeOptions, QueueOptions, Transport, TransportError};

#[tokio::test]
async fn conflicting_redeclarations_name_what_differs() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("x", QueueOptions::durable())
        .await
        .unwrap();
    let err = conn
        .declare_queue("x", QueueOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TransportError::PreconditionFailed(
            "inequivalent arg 'durable' for queue 'x' in vhost '/': received 'false' but \
             current is 'true'"
                .to_owned()
        )
    );
    let err = conn
        .declare_queue("x", QueueOptions::durable().with_expires(1000))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("inequivalent arg 'x-expires'"),
        "{err}"
    );

    conn.declare_exchange("e", ExchangeKind::Topic, ExchangeOptions::durable())
        .await
        .unwrap();
    let err = conn
        .declare_exchange("e", ExchangeKind::Direct, ExchangeOptions::durable())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("inequivalent arg 'type' for exchange 'e' in vhost '/': received 'direct' but current is 'topic'"),
        "{err}"
    );
}

#[tokio::test]
async fn integer_arguments_of_other_widths_are_equivalent() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue(
        "q",
        QueueOptions::default().with_argument("x-expires", 60_000_i32),
    )
    .await
    .unwrap();
    conn.declare_queue(
        "q",
        QueueOptions::default()
            .with_argument("x-expires", nameko_transport::FieldValue::I64(60_000)),
    )
    .await
    .unwrap();
    // Arguments RabbitMQ does not compare may differ.
    conn.declare_queue(
        "q",
        QueueOptions::default()
            .with_expires(60_000)
            .with_argument("x-custom", 1),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn server_named_queues_and_reserved_names() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    let named = conn
        .declare_queue("", QueueOptions::default())
        .await
        .unwrap();
    assert!(named.name.starts_with("amq.gen-"), "{}", named.name);
    assert!(matches!(
        conn.declare_queue("amq.mine", QueueOptions::default())
            .await,
        Err(TransportError::AccessRefused(_))
    ));
    assert!(matches!(
        conn.declare_exchange("amq.mine", ExchangeKind::Topic, ExchangeOptions::default())
            .await,
        Err(TransportError::AccessRefused(_))
    ));
    assert!(matches!(
        conn.delete_exchange("amq.topic").await,
        Err(TransportError::AccessRefused(_))
    ));
    conn.declare_exchange("amq.topic", ExchangeKind::Topic, ExchangeOptions::passive())
        .await
        .unwrap();
    assert!(matches!(
        conn.declare_queue(&"q".repeat(256), QueueOptions::default())
            .await,
        Err(TransportError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn the_default_exchange_cannot_be_declared_bound_or_deleted() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    for result in [
        conn.declare_exchange("", ExchangeKind::Direct, ExchangeOptions::default())
            .await,
        conn.bind_queue("q", "", "q").await,
        conn.delete_exchange("").await,
    ] {
        assert!(
            matches!(result, Err(TransportError::AccessRefused(_))),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn an_auto_delete_exchange_goes_with_its_last_binding() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_exchange(
        "e",
        ExchangeKind::Fanout,
        ExchangeOptions::default().with_auto_delete(true),
    )
    .await
    .unwrap();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    conn.bind_queue("q", "e", "").await.unwrap();
    conn.delete_queue("q").await.unwrap();
    assert!(!broker.exchanges().iter().any(|x| x.name == "e"));
}

#[tokio::test]
async fn binding_needs_both_ends() {
    let broker = MemoryBroker::new();
    let conn = broker.connect();
    conn.declare_queue("q", QueueOptions::default())
        .await
        .unwrap();
    let err = conn.bind_queue("q", "missing", "k").await.unwrap_err();
    assert_eq!(
        err,
        TransportError::NotFound("no exchange 'missing' in vhost '/'".to_owned())
    );
    conn.declare_exchange("e", ExchangeKind::Direct, ExchangeOptions::default())
        .await
        .unwrap();
    let err = conn.bind_queue("nope", "e", "k").await.unwrap_err();
    assert_eq!(
        err,
        TransportError::NotFound("no queue 'nope' in vhost '/'".to_owned())
    );
}
