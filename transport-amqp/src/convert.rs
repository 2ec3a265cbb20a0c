//! Conversions between nameko-transport's message types and lapin's.
//!
//! Every AMQP property and every field-table type maps both ways without loss: integer
//! widths are kept (Python sends int32 `I` for small ints and `l` for large ones), long
//! strings that are UTF-8 become [`FieldValue::String`] and the others
//! [`FieldValue::Bytes`] (sent back as a byte array `x`).

use lapin::BasicProperties;
use lapin::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable as AmqpTable, LongString,
    ShortString,
};
use nameko_transport::{DeliveryMode, FieldTable, FieldValue, Properties, TransportError};

/// A short string (at most 255 bytes), refused with `InvalidArgument` when longer.
pub(crate) fn short(value: &str, what: &str) -> Result<ShortString, TransportError> {
    ShortString::try_new(value).map_err(|_| {
        TransportError::InvalidArgument(format!(
            "{what} is {} bytes long; AMQP allows at most 255",
            value.len()
        ))
    })
}

/// The properties of a message to publish. Headers are always sent, empty or not, as
/// Python nameko does.
pub(crate) fn properties_to_amqp(props: &Properties) -> Result<BasicProperties, TransportError> {
    let mut out = BasicProperties::default().with_headers(table_to_amqp(&props.headers)?);
    if let Some(v) = &props.content_type {
        out = out.with_content_type(short(v, "content_type")?);
    }
    if let Some(v) = &props.content_encoding {
        out = out.with_content_encoding(short(v, "content_encoding")?);
    }
    if let Some(mode) = props.delivery_mode {
        out = out.with_delivery_mode(mode.as_u8());
    }
    if let Some(v) = props.priority {
        out = out.with_priority(v);
    }
    if let Some(v) = &props.correlation_id {
        out = out.with_correlation_id(short(v, "correlation_id")?);
    }
    if let Some(v) = &props.reply_to {
        out = out.with_reply_to(short(v, "reply_to")?);
    }
    if let Some(v) = &props.expiration {
        out = out.with_expiration(short(v, "expiration")?);
    }
    if let Some(v) = &props.message_id {
        out = out.with_message_id(short(v, "message_id")?);
    }
    if let Some(v) = props.timestamp {
        out = out.with_timestamp(v);
    }
    if let Some(v) = &props.kind {
        out = out.with_type(short(v, "type")?);
    }
    if let Some(v) = &props.user_id {
        out = out.with_user_id(short(v, "user_id")?);
    }
    if let Some(v) = &props.app_id {
        out = out.with_app_id(short(v, "app_id")?);
    }
    if let Some(v) = &props.cluster_id {
        out = out.with_cluster_id(short(v, "cluster_id")?);
    }
    Ok(out)
}

/// The properties of a received message. A missing headers table reads as an empty one.
pub(crate) fn properties_from_amqp(props: &BasicProperties) -> Properties {
    let text = |v: &Option<ShortString>| v.as_ref().map(|s| s.as_str().to_owned());
    let mut out = Properties::default();
    out.content_type = text(props.content_type());
    out.content_encoding = text(props.content_encoding());
    out.headers = props
        .headers()
        .as_ref()
        .map(table_from_amqp)
        .unwrap_or_default();
    out.delivery_mode = props.delivery_mode().map(DeliveryMode::from_u8);
    out.priority = *props.priority();
    out.correlation_id = text(props.correlation_id());
    out.reply_to = text(props.reply_to());
    out.expiration = text(props.expiration());
    out.message_id = text(props.message_id());
    out.timestamp = *props.timestamp();
    out.kind = text(props.kind());
    out.user_id = text(props.user_id());
    out.app_id = text(props.app_id());
    out.cluster_id = text(props.cluster_id());
    out
}

/// A field table to send (headers or declaration arguments).
pub(crate) fn table_to_amqp(table: &FieldTable) -> Result<AmqpTable, TransportError> {
    let mut out = AmqpTable::default();
    for (key, value) in table {
        out.insert(short(key, "a field-table key")?, value_to_amqp(value)?);
    }
    Ok(out)
}

/// A received field table.
pub(crate) fn table_from_amqp(table: &AmqpTable) -> FieldTable {
    table
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), value_from_amqp(v)))
        .collect()
}

/// One field value to send.
pub(crate) fn value_to_amqp(value: &FieldValue) -> Result<AMQPValue, TransportError> {
    Ok(match value {
        FieldValue::Bool(v) => AMQPValue::Boolean(*v),
        FieldValue::I8(v) => AMQPValue::ShortShortInt(*v),
        FieldValue::U8(v) => AMQPValue::ShortShortUInt(*v),
        FieldValue::I16(v) => AMQPValue::ShortInt(*v),
        FieldValue::U16(v) => AMQPValue::ShortUInt(*v),
        FieldValue::I32(v) => AMQPValue::LongInt(*v),
        FieldValue::U32(v) => AMQPValue::LongUInt(*v),
        FieldValue::I64(v) => AMQPValue::LongLongInt(*v),
        FieldValue::F32(v) => AMQPValue::Float(*v),
        FieldValue::F64(v) => AMQPValue::Double(*v),
        FieldValue::Decimal { scale, value } => AMQPValue::DecimalValue(DecimalValue {
            scale: *scale,
            value: *value,
        }),
        FieldValue::String(v) => AMQPValue::LongString(LongString::from(v.as_bytes())),
        FieldValue::Bytes(v) => AMQPValue::ByteArray(ByteArray::from(v.as_slice())),
        FieldValue::Timestamp(v) => AMQPValue::Timestamp(*v),
        FieldValue::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items
                .iter()
                .map(value_to_amqp)
                .collect::<Result<Vec<_>, _>>()?,
        )),
        FieldValue::Table(t) => AMQPValue::FieldTable(table_to_amqp(t)?),
        FieldValue::Void => AMQPValue::Void,
        other => {
            return Err(TransportError::InvalidArgument(format!(
                "field value {other:?} has no AMQP encoding"
            )));
        }
    })
}

/// One received field value.
pub(crate) fn value_from_amqp(value: &AMQPValue) -> FieldValue {
    match value {
        AMQPValue::Boolean(v) => FieldValue::Bool(*v),
        AMQPValue::ShortShortInt(v) => FieldValue::I8(*v),
        AMQPValue::ShortShortUInt(v) => FieldValue::U8(*v),
        AMQPValue::ShortInt(v) => FieldValue::I16(*v),
        AMQPValue::ShortUInt(v) => FieldValue::U16(*v),
        AMQPValue::LongInt(v) => FieldValue::I32(*v),
        AMQPValue::LongUInt(v) => FieldValue::U32(*v),
        AMQPValue::LongLongInt(v) => FieldValue::I64(*v),
        AMQPValue::Float(v) => FieldValue::F32(*v),
        AMQPValue::Double(v) => FieldValue::F64(*v),
        AMQPValue::DecimalValue(d) => FieldValue::Decimal {
            scale: d.scale,
            value: d.value,
        },
        AMQPValue::ShortString(s) => FieldValue::String(s.as_str().to_owned()),
        AMQPValue::LongString(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(text) => FieldValue::String(text.to_owned()),
            Err(_) => FieldValue::Bytes(s.as_bytes().to_vec()),
        },
        AMQPValue::FieldArray(items) => {
            FieldValue::Array(items.as_slice().iter().map(value_from_amqp).collect())
        }
        AMQPValue::Timestamp(v) => FieldValue::Timestamp(*v),
        AMQPValue::FieldTable(t) => FieldValue::Table(table_from_amqp(t)),
        AMQPValue::ByteArray(b) => FieldValue::Bytes(b.as_slice().to_vec()),
        AMQPValue::Void => FieldValue::Void,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_value() -> Vec<FieldValue> {
        vec![
            FieldValue::Bool(true),
            FieldValue::I8(-8),
            FieldValue::U8(200),
            FieldValue::I16(-1600),
            FieldValue::U16(60_000),
            FieldValue::I32(-42),
            FieldValue::U32(4_000_000_000),
            FieldValue::I64(1 << 40),
            FieldValue::F32(1.5),
            FieldValue::F64(-2.25),
            FieldValue::Decimal {
                scale: 2,
                value: 12_345,
            },
            FieldValue::String("en-gb".to_owned()),
            FieldValue::Bytes(vec![0xff, 0x00, 0xfe]),
            FieldValue::Timestamp(1_700_000_000),
            FieldValue::Array(vec![FieldValue::I32(1), FieldValue::String("two".into())]),
            FieldValue::Table(FieldTable::new().with("nested", FieldValue::Bool(false))),
            FieldValue::Void,
        ]
    }

    #[test]
    fn every_field_value_round_trips_with_its_width() {
        for value in every_value() {
            let amqp = value_to_amqp(&value).expect("encodable");
            assert_eq!(value_from_amqp(&amqp), value, "via {amqp:?}");
        }
    }

    #[test]
    fn integers_keep_their_amqp_types() {
        assert_eq!(
            value_to_amqp(&FieldValue::I32(42)).ok(),
            Some(AMQPValue::LongInt(42))
        );
        assert_eq!(
            value_to_amqp(&FieldValue::I64(1 << 40)).ok(),
            Some(AMQPValue::LongLongInt(1 << 40))
        );
        assert_eq!(
            value_to_amqp(&FieldValue::from("x")).ok(),
            Some(AMQPValue::LongString("x".into()))
        );
    }

    #[test]
    fn long_strings_that_are_not_utf8_become_bytes() {
        let raw = AMQPValue::LongString(LongString::from(vec![0x66, 0xff, 0x6f]));
        assert_eq!(
            value_from_amqp(&raw),
            FieldValue::Bytes(vec![0x66, 0xff, 0x6f])
        );
        let short = AMQPValue::ShortString("legacy".into());
        assert_eq!(value_from_amqp(&short), FieldValue::String("legacy".into()));
    }

    #[test]
    fn every_property_round_trips() {
        let headers = every_value()
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("h{i}"), v))
            .collect();
        let props = Properties::json()
            .with_headers(headers)
            .with_correlation_id("c-1")
            .with_reply_to("r-1")
            .with_expiration("1500")
            .with_message_id("m-1")
            .with_timestamp(1_700_000_000)
            .with_kind("t")
            .with_user_id("guest")
            .with_app_id("a");
        let mut props = props;
        props.cluster_id = Some("cluster".into());
        let amqp = properties_to_amqp(&props).expect("valid properties");
        assert_eq!(properties_from_amqp(&amqp), props);
    }

    #[test]
    fn headers_are_always_sent() {
        let amqp = properties_to_amqp(&Properties::default()).expect("valid properties");
        assert_eq!(amqp.headers(), &Some(AmqpTable::default()));
        assert_eq!(
            properties_from_amqp(&BasicProperties::default()),
            Properties::default()
        );
    }

    #[test]
    fn over_long_short_strings_are_refused() {
        let props = Properties::default().with_correlation_id("x".repeat(256));
        let err = properties_to_amqp(&props).expect_err("too long");
        assert!(matches!(err, TransportError::InvalidArgument(_)), "{err}");
        let headers = FieldTable::new().with("k".repeat(300), 1);
        let err = table_to_amqp(&headers).expect_err("too long");
        assert!(matches!(err, TransportError::InvalidArgument(_)), "{err}");
    }
}
