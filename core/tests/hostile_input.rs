//! Hostile input: whatever bytes and headers arrive, decoding never panics, and what it
//! accepts is what nameko would accept. Case counts follow `PROPTEST_CASES` (CI runs the
//! default; `PROPTEST_CASES=100000 cargo test -p nameko-core --test hostile_input` is the
//! long run).

use nameko_core::context::ContextData;
use nameko_core::errors::RemoteError;
use nameko_core::service::{Binder, Param};
use nameko_core::transport::{FieldTable, FieldValue};
use nameko_core::wire::{self, CallArgs, decode_reply, json};
use proptest::prelude::*;
use serde_json::Value;

fn json_value() -> impl Strategy<Value = Value> {
    json_value_with(any::<u64>().prop_map(Value::from).boxed())
}

/// JSON values whose integers all fit an AMQP field (int64: headers have no unsigned
/// 64-bit type, so larger integers travel as doubles).
fn header_json_value() -> impl Strategy<Value = Value> {
    json_value_with(any::<u32>().prop_map(Value::from).boxed())
}

fn json_value_with(unsigned: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        unsigned,
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z_]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(FieldValue::Bool),
        any::<i8>().prop_map(FieldValue::I8),
        any::<u8>().prop_map(FieldValue::U8),
        any::<i16>().prop_map(FieldValue::I16),
        any::<u16>().prop_map(FieldValue::U16),
        any::<i32>().prop_map(FieldValue::I32),
        any::<u32>().prop_map(FieldValue::U32),
        any::<i64>().prop_map(FieldValue::I64),
        any::<f32>().prop_map(FieldValue::F32),
        any::<f64>().prop_map(FieldValue::F64),
        (any::<u8>(), any::<u32>()).prop_map(|(scale, value)| FieldValue::Decimal { scale, value }),
        any::<String>().prop_map(FieldValue::String),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(FieldValue::Bytes),
        any::<u64>().prop_map(FieldValue::Timestamp),
        Just(FieldValue::Void),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(FieldValue::Array),
            prop::collection::vec(("[a-z.]{0,12}", inner), 0..5)
                .prop_map(|kv| FieldValue::Table(kv.into_iter().collect())),
        ]
    })
}

fn headers() -> impl Strategy<Value = FieldTable> {
    prop::collection::vec(
        (
            prop_oneof![
                "nameko\\.[a-z_]{0,10}",
                "[a-z.-]{0,12}",
                Just("nameko.call_id_stack".to_owned())
            ],
            field_value(),
        ),
        0..8,
    )
    .prop_map(|kv| kv.into_iter().collect())
}

/// Bytes that are often almost JSON: the interesting part of the input space.
fn almost_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (json_value(), any::<usize>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] = byte;
            }
            bytes
        }),
        (json_value(), json_value()).prop_map(|(args, kwargs)| {
            serde_json::to_vec(&serde_json::json!({"args": args, "kwargs": kwargs})).unwrap()
        }),
        "[\\[\\]{}\",:0-9a-zNIa -]{0,40}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #[test]
    fn request_bodies_never_panic(body in almost_json()) {
        if let Ok(call) = CallArgs::from_body(&body) {
            // Whatever is accepted has nameko's shape and writes back as JSON.
            let again = CallArgs::from_body(&call.to_body().unwrap()).unwrap();
            prop_assert_eq!(again, call);
        }
    }

    #[test]
    fn reply_bodies_never_panic(body in almost_json()) {
        let _ = decode_reply(&body);
    }

    #[test]
    fn replies_round_trip(result in json_value(), message in any::<String>(), args in prop::collection::vec(json_value(), 0..3)) {
        let ok = wire::encode_reply(&Ok(result.clone()));
        prop_assert_eq!(decode_reply(&ok).unwrap(), Ok(result));
        let error = RemoteError::new("ValueError", "builtins.ValueError", args, message);
        let failed = wire::encode_reply(&Err(error.clone()));
        prop_assert_eq!(decode_reply(&failed).unwrap(), Err(error));
    }

    #[test]
    fn event_payloads_never_panic(body in almost_json()) {
        let _ = json::parse_value(&body);
    }

    #[test]
    fn python_json_is_json_and_round_trips(value in json_value()) {
        let bytes = json::to_vec(&value).unwrap();
        prop_assert!(bytes.is_ascii(), "ensure_ascii: {:?}", String::from_utf8_lossy(&bytes));
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(parsed, value);
    }

    #[test]
    fn float_repr_round_trips(f in any::<f64>().prop_filter("finite", |f| f.is_finite())) {
        let repr = json::python_float_repr(f);
        prop_assert_eq!(repr.parse::<f64>().unwrap(), f, "{}", repr);
    }

    #[test]
    fn headers_of_every_type_never_panic(headers in headers()) {
        let (context, stack) = ContextData::from_headers(&headers);
        // Re-encoding keeps every context key under its prefix.
        let out = context.to_headers(&stack);
        for (key, _) in context.iter() {
            let header = format!("nameko.{key}");
            prop_assert!(out.contains_key(&header));
        }
    }

    #[test]
    fn json_context_values_round_trip_through_headers(values in prop::collection::vec(("[a-z_]{1,8}", header_json_value()), 0..6)) {
        let context: ContextData = values.into_iter().filter(|(k, _)| k != "call_id_stack").collect();
        let (back, _) = ContextData::from_headers(&context.to_headers(&[]));
        prop_assert_eq!(back.to_map(), without_nulls(context.to_map()));
    }

    #[test]
    fn binding_arbitrary_arguments_never_panics(args in prop::collection::vec(json_value(), 0..4), kwargs in prop::collection::vec(("[a-d]", json_value()), 0..4)) {
        const PARAMS: &[Param] = &[Param::required("a"), Param::required("b"), Param::optional("c")];
        let call = CallArgs { args, kwargs: kwargs.into_iter().collect() };
        if let Ok(mut bound) = Binder::bind("m", PARAMS, &call) {
            let _ = bound.take::<i64>(0);
            let _ = bound.take::<String>(1);
            let _ = bound.take::<Option<Vec<f64>>>(2);
        }
    }
}

/// Null values inside nested context values survive; a null at the top is dropped.
fn without_nulls(map: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    map.into_iter().filter(|(_, v)| !v.is_null()).collect()
}
