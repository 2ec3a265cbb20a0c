//! Every AMQP property and every field-table type through a real broker and back.

mod common;

use common::next;
use nameko_amqp::test_support::test_broker;
use nameko_transport::{
    ConsumeOptions, DeliveryMode, FieldTable, FieldValue, Message, Properties, PublishOptions,
    QueueOptions, Transport,
};

fn every_header_type() -> FieldTable {
    FieldTable::new()
        .with("bool", FieldValue::Bool(true))
        .with("i8", FieldValue::I8(-8))
        .with("u8", FieldValue::U8(200))
        .with("i16", FieldValue::I16(-1600))
        .with("u16", FieldValue::U16(60_000))
        .with("i32", FieldValue::I32(-42))
        .with("u32", FieldValue::U32(4_000_000_000))
        .with("i64", FieldValue::I64(1 << 40))
        .with("f32", FieldValue::F32(1.5))
        .with("f64", FieldValue::F64(-2.25))
        .with(
            "decimal",
            FieldValue::Decimal {
                scale: 2,
                value: 12_345,
            },
        )
        .with("string", FieldValue::String("en-gb ünïcode".to_owned()))
        .with("bytes", FieldValue::Bytes(vec![0xff, 0x00, 0xfe]))
        .with("timestamp", FieldValue::Timestamp(1_700_000_000))
        .with(
            "array",
            FieldValue::Array(vec![
                FieldValue::String("standalone_rpc_proxy.call.1".to_owned()),
                FieldValue::I32(2),
                FieldValue::Array(vec![FieldValue::Bool(false)]),
            ]),
        )
        .with(
            "table",
            FieldValue::Table(
                FieldTable::new()
                    .with("nested", FieldValue::I64(-(1 << 35)))
                    .with("deeper", FieldValue::Table(FieldTable::new().with("x", 1))),
            ),
        )
        .with("void", FieldValue::Void)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_property_and_header_type_round_trips() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("properties", |scope| async move {
            let transport = scope.connect().await;
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            let user = transport.uri().username().to_owned();
            let mut props = Properties::json()
                .with_headers(every_header_type())
                .with_correlation_id("6f1c-corr")
                .with_reply_to("0b5e-reply")
                .with_expiration("60000")
                .with_message_id("msg-1")
                .with_timestamp(1_700_000_123)
                .with_kind("nameko.event")
                .with_user_id(user)
                .with_app_id("nameko-rs-tests")
                .with_priority(3)
                .with_delivery_mode(DeliveryMode::Transient);
            props.cluster_id = Some("cluster-7".to_owned());
            let body = b"\x00\xff binary body \xfe".to_vec();
            transport
                .publish(
                    "",
                    &q,
                    Message::new(body.clone(), props.clone()),
                    PublishOptions::default(),
                )
                .await
                .expect("publish");

            let mut consumer = transport
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let delivery = next(&mut consumer, 5).await;
            assert_eq!(delivery.body().as_ref(), body.as_slice());
            assert_eq!(delivery.properties(), &props);
            assert_eq!(delivery.info().exchange, "");
            assert_eq!(delivery.routing_key(), q);
            assert_eq!(delivery.info().consumer_tag, consumer.tag());
            assert!(!delivery.redelivered());
            delivery.ack().await.expect("ack");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nameko_context_headers_keep_their_python_types() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("python-headers", |scope| async move {
            let transport = scope.connect().await;
            let q = scope.queue("q");
            transport
                .declare_queue(&q, QueueOptions::default())
                .await
                .expect("declare");
            // As py-amqp encodes nameko context data: str -> S, small int -> I, big int -> l.
            let headers = FieldTable::new()
                .with("nameko.language", "en-gb")
                .with("nameko.user_id", 42_i64)
                .with("nameko.big", 1_099_511_627_776_i64)
                .with(
                    "nameko.call_id_stack",
                    FieldValue::Array(vec!["standalone_rpc_proxy.call.e6bd7405".into()]),
                );
            assert_eq!(headers.get("nameko.user_id"), Some(&FieldValue::I32(42)));
            let message = Message::new(
                r#"{"args": [], "kwargs": {}}"#,
                Properties::json().with_headers(headers.clone()),
            );
            transport
                .publish("", &q, message, PublishOptions::default())
                .await
                .expect("publish");
            let mut consumer = transport
                .consume(&q, ConsumeOptions::default())
                .await
                .expect("consume");
            let delivery = next(&mut consumer, 5).await;
            assert_eq!(delivery.properties().headers, headers);
            assert_eq!(
                delivery.properties().headers.get("nameko.big"),
                Some(&FieldValue::I64(1_099_511_627_776))
            );
            delivery.ack().await.expect("ack");
        })
        .await;
}
