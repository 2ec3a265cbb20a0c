//! Messages arrive exactly as they were sent: body, every property, every header type.

use bytes::Bytes;
use nameko_transport::{
    ConsumeOptions, DeliveryMode, FieldTable, FieldValue, Message, Properties, QueueOptions,
};

use crate::runner::{CaseResult, Cx, ensure};
use crate::support::{ack_all, consume, id_of, recv_ids};

/// A header of every [`FieldValue`] type, nested ones included.
fn every_header_type() -> FieldTable {
    let nested = FieldTable::new()
        .with("inner_string", "deep")
        .with("inner_int", FieldValue::I32(-7))
        .with(
            "inner_table",
            FieldTable::new().with("deepest", FieldValue::Bool(false)),
        );
    FieldTable::new()
        .with("string", "héllo wörld ✓")
        .with("empty_string", "")
        .with("bool_true", true)
        .with("bool_false", false)
        .with("i8", FieldValue::I8(-8))
        .with("u8", FieldValue::U8(200))
        .with("i16", FieldValue::I16(-1600))
        .with("u16", FieldValue::U16(60_000))
        .with("i32", FieldValue::I32(-2_000_000_000))
        .with("u32", FieldValue::U32(4_000_000_000))
        .with("i64", FieldValue::I64(-9_000_000_000_000))
        .with("i64_max", FieldValue::I64(i64::MAX))
        .with("f32", FieldValue::F32(1.5))
        .with("f64", FieldValue::F64(-2.25e300))
        .with(
            "decimal",
            FieldValue::Decimal {
                scale: 2,
                value: 12_345,
            },
        )
        .with("bytes", FieldValue::Bytes(vec![0x00, 0xff, 0x80, 0x01]))
        .with("timestamp", FieldValue::Timestamp(1_700_000_000))
        .with(
            "array",
            FieldValue::Array(vec![
                FieldValue::I32(1),
                FieldValue::from("two"),
                FieldValue::Bool(true),
                FieldValue::F64(4.5),
                FieldValue::Array(Vec::new()),
                FieldValue::Table(FieldTable::new().with("in_array", "yes")),
            ]),
        )
        .with("empty_array", FieldValue::Array(Vec::new()))
        .with("table", nested)
        .with("empty_table", FieldTable::new())
        .with("void", FieldValue::Void)
        .with(
            "nameko.call_id_stack",
            FieldValue::Array(vec![
                FieldValue::from("standalone_rpc_proxy.call.1"),
                FieldValue::from("calc.add.2"),
            ]),
        )
}

/// A message with every property set.
fn full_message(id: &str, user: Option<String>) -> Message {
    let mut props = Properties::default()
        .with_content_type("application/json")
        .with_content_encoding("utf-8")
        .with_headers(every_header_type())
        .with_delivery_mode(DeliveryMode::Persistent)
        .with_priority(7)
        .with_correlation_id("c0ffee-correlation")
        .with_reply_to("conformance-reply-to")
        .with_expiration("600000")
        .with_message_id(id)
        .with_timestamp(1_700_000_123)
        .with_kind("conformance.kind")
        .with_app_id("nameko-conformance");
    props.user_id = user;
    props.cluster_id = Some("conformance-cluster".to_owned());
    Message::new(r#"{"args": [1, 2], "kwargs": {"x": "ü"}}"#, props)
}

/// Describes how `got` differs from `sent`, field by field and header by header.
fn diff_messages(sent: &Message, got: &Message) -> Vec<String> {
    let mut diffs = Vec::new();
    if sent.body != got.body {
        diffs.push(format!(
            "body: sent {} bytes, received {} bytes{}",
            sent.body.len(),
            got.body.len(),
            if sent.body.len() == got.body.len() {
                " (contents differ)"
            } else {
                ""
            }
        ));
    }
    let (s, g) = (&sent.properties, &got.properties);
    macro_rules! field {
        ($($f:ident),*) => {$(
            if s.$f != g.$f {
                diffs.push(format!(
                    "{}: sent {:?}, received {:?}", stringify!($f), s.$f, g.$f
                ));
            }
        )*};
    }
    field!(
        content_type,
        content_encoding,
        delivery_mode,
        priority,
        correlation_id,
        reply_to,
        expiration,
        message_id,
        timestamp,
        kind,
        user_id,
        app_id,
        cluster_id
    );
    for (key, value) in s.headers.iter() {
        match g.headers.get(key) {
            None => diffs.push(format!(
                "header {key:?}: sent {value:?}, missing on arrival"
            )),
            Some(got) if got != value => {
                diffs.push(format!("header {key:?}: sent {value:?}, received {got:?}"));
            }
            Some(_) => {}
        }
    }
    for (key, value) in g.headers.iter() {
        if !s.headers.contains_key(key) {
            diffs.push(format!(
                "header {key:?} was not sent but arrived as {value:?}"
            ));
        }
    }
    diffs
}

/// Body, every property and every header type survive the trip; a message with no
/// properties arrives with none; large and empty bodies arrive whole.
pub(crate) async fn roundtrip_body_and_properties(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let queue = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let mut consumer = consume(&conn, &queue, ConsumeOptions::default()).await?;

    let large_body: Bytes = (0..256 * 1024u32)
        .map(|n| u8::try_from(n % 251).unwrap_or(0))
        .collect::<Vec<u8>>()
        .into();
    let sent = vec![
        full_message("full", cx.harness.broker_user()),
        Message::new(Bytes::new(), Properties::default().with_message_id("bare")),
        Message::new(
            large_body,
            Properties::default()
                .with_message_id("large")
                .with_delivery_mode(DeliveryMode::Transient),
        ),
    ];
    let ids: Vec<String> = sent
        .iter()
        .filter_map(|m| m.properties.message_id.clone())
        .collect();
    for message in &sent {
        let outcome = conn
            .publish("", &queue, message.clone(), Default::default())
            .await
            .map_err(|e| format!("publishing {:?}: {e}", message.properties.message_id))?;
        ensure!(
            !outcome.is_returned(),
            "publishing {:?}: {outcome:?}",
            message.properties.message_id
        );
    }
    let deliveries = recv_ids(cx, &mut consumer, &ids, "receiving the sent messages").await?;
    let mut problems = Vec::new();
    for delivery in &deliveries {
        let id = id_of(delivery);
        let Some(original) = sent
            .iter()
            .find(|m| m.properties.message_id.as_deref() == Some(id.as_str()))
        else {
            continue;
        };
        for diff in diff_messages(original, delivery.message()) {
            problems.push(format!("message {id}: {diff}"));
        }
        let info = delivery.info();
        if !info.exchange.is_empty() || info.routing_key != queue || info.redelivered {
            problems.push(format!(
                "message {id}: delivery info exchange={:?} routing_key={:?} redelivered={}, \
                 expected \"\", {queue:?}, false",
                info.exchange, info.routing_key, info.redelivered
            ));
        }
    }
    ack_all(deliveries).await?;
    ensure!(problems.is_empty(), "{}", problems.join("\n    "));
    Ok(())
}
