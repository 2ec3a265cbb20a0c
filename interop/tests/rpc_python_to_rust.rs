//! Python nameko's standalone proxies (`ClusterRpcProxy`, `ServiceRpcProxy`) calling a
//! Rust service: arguments, payloads, calls in flight, context data, and every kind of
//! error arriving as the Python type a Python caller expects.

use std::sync::Arc;

use nameko::prelude::*;
use nameko_interop::{InsufficientFunds, PythonError, ValueError, describe, run};

#[derive(Dependencies)]
struct Api {
    worker: Arc<WorkerContext>,
}

#[service(name = "rs_api")]
impl Api {
    #[rpc]
    async fn echo(&self, value: Value) -> Value {
        value
    }

    #[rpc]
    async fn mixed(&self, a: i64, b: String, c: Option<Value>) -> Value {
        json!({"a": a, "b": b, "c": c})
    }

    #[rpc]
    async fn nothing(&self) {}

    #[rpc]
    async fn three(&self, a: Value, b: Value, c: Value) -> Value {
        json!([a, b, c])
    }

    /// Parameters named like Rust keywords take Python's keyword arguments by their
    /// plain names.
    #[rpc]
    async fn label(&self, r#type: String, r#match: Option<bool>) -> Value {
        json!({"type": r#type, "match": r#match})
    }

    #[rpc]
    async fn reverse(&self, text: String) -> String {
        text.chars().rev().collect()
    }

    #[rpc]
    async fn length(&self, text: String) -> usize {
        text.chars().count()
    }

    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        millis
    }

    #[rpc(expected_exceptions = [ValueError])]
    async fn divide(&self, a: f64, b: f64) -> Result<f64, ValueError> {
        if b == 0.0 {
            return Err(ValueError("Division by zero".to_owned()));
        }
        Ok(a / b)
    }

    #[rpc(expected_exceptions = [InsufficientFunds])]
    async fn withdraw(&self, balance: i64, amount: i64) -> Result<i64, InsufficientFunds> {
        if amount > balance {
            return Err(InsufficientFunds { balance, amount });
        }
        Ok(balance - amount)
    }

    #[rpc]
    async fn boom(&self) -> Result<(), ServiceError> {
        Err(ServiceError::new(
            "KeyError",
            "builtins.KeyError",
            "missing",
        ))
    }

    #[rpc]
    async fn parse(&self, text: String) -> Result<i64, ServiceError> {
        Ok(text.parse::<i64>()?)
    }

    #[rpc]
    async fn context(&self) -> Value {
        describe(&self.worker)
    }
}

fn is_uuid_suffixed(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.parse::<uuid::Uuid>().ok())
        .is_some_and(|u| u.hyphenated().to_string() == id[prefix.len()..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_proxies_pass_positional_keyword_and_mixed_arguments_to_rust() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let positional = env
            .python_call("rs_api", "mixed", json!([1, "two", [3]]))
            .await
            .unwrap();
        assert_eq!(positional, json!({"a": 1, "b": "two", "c": [3]}));
        let keywords = env
            .python(
                "call",
                json!({"service": "rs_api", "method": "mixed",
                       "kwargs": {"b": "x", "a": 5, "c": {"k": null}}}),
            )
            .await
            .unwrap();
        assert_eq!(keywords, json!({"a": 5, "b": "x", "c": {"k": null}}));
        let mixed = env
            .python(
                "call",
                json!({"service": "rs_api", "method": "mixed", "args": [7], "kwargs": {"b": "y"}}),
            )
            .await
            .unwrap();
        assert_eq!(mixed, json!({"a": 7, "b": "y", "c": null}));
        let through_service_proxy = env
            .python(
                "call",
                json!({"service": "rs_api", "method": "mixed", "args": [1],
                       "kwargs": {"b": "s", "c": [true, 2.5]}, "proxy": "service"}),
            )
            .await
            .unwrap();
        assert_eq!(
            through_service_proxy,
            json!({"a": 1, "b": "s", "c": [true, 2.5]})
        );
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_unicode_and_nested_json_survive_a_rust_service() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let nested = json!({
            "text": "héllo wörld ✓ 😀 𝄞 \u{0} \"quoted\" \\ \n",
            "ключ": [{"深い": [1, -2.5, 1e100, true, null, {"": []}]}],
            "big": 9_007_199_254_740_993_i64,
        });
        let echoed = env
            .python_call("rs_api", "echo", json!([nested]))
            .await
            .unwrap();
        assert_eq!(echoed, nested);
        // Rust sees the code points Python sends, astral ones included, not UTF-16 units.
        let reversed = env
            .python_call("rs_api", "reverse", json!(["aé✓😀𝄞"]))
            .await
            .unwrap();
        assert_eq!(reversed, json!("𝄞😀✓éa"));
        let length = env
            .python_call("rs_api", "length", json!(["😀𝄞é"]))
            .await
            .unwrap();
        assert_eq!(length, json!(3), "len() in Python");
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sends_one_megabyte_through_a_rust_service() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        // One non-ASCII character in ten: Python escapes each as \u00e9, so the request
        // body is well over a megabyte.
        let text: String = (0..1 << 20)
            .map(|i| if i % 10 == 0 { 'é' } else { 'x' })
            .collect();
        let echoed = env
            .python_call("rs_api", "echo", json!([text]))
            .await
            .unwrap();
        assert!(echoed == json!(text), "the megabyte came back changed");
        let length = env
            .python_call("rs_api", "length", json!([text]))
            .await
            .unwrap();
        assert_eq!(length, json!(1 << 20));
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_call_async_keeps_fifty_calls_to_rust_in_flight() {
    run(async |env| {
        let mut env = env
            .with_config("max_workers", 50)
            .with_config("PREFETCH_COUNT", 50);
        env.start_rust::<Api>().await;
        let millis: Vec<u64> = (0..50).map(|i| 300 - 5 * i).collect();
        let calls: Vec<Value> = millis.iter().map(|m| json!([[m], {}])).collect();
        let out = env
            .python(
                "call_async",
                json!({"service": "rs_api", "method": "sleep", "calls": calls}),
            )
            .await
            .unwrap();
        assert_eq!(out["results"], json!(millis), "results in call order");
        let elapsed = out["elapsed"].as_f64().unwrap();
        let sequential: u64 = millis.iter().sum();
        assert!(
            elapsed < 2.5,
            "50 calls ({sequential} ms one after another) took {elapsed:.2} s"
        );
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_context_data_reaches_the_rust_worker() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let context = json!({
            "user_id": 42,
            "language": "en-gb",
            "auth_token": "s3cret",
            "user_agent": "python-client/1.0",
            "custom_key": {"nested": [1, "two", 2.5, true]},
            "big": 1_099_511_627_776_i64,
        });
        let seen = env
            .python(
                "call",
                json!({"service": "rs_api", "method": "context", "context_data": context}),
            )
            .await
            .unwrap();
        assert_eq!(seen["data"], context);
        let stack = seen["stack"].as_array().unwrap();
        assert_eq!(stack.len(), 2, "{stack:?}");
        let root = stack[0].as_str().unwrap();
        assert!(
            is_uuid_suffixed(root, "standalone_rpc_proxy.call."),
            "{root}"
        );
        let own = stack[1].as_str().unwrap();
        assert!(is_uuid_suffixed(own, "rs_api.context."), "{own}");
        assert_eq!(seen["call_id"], json!(own));
        assert_eq!(
            (&seen["origin"], &seen["parent"]),
            (&json!(root), &json!(root))
        );
        env.shutdown().await;
    })
    .await;
}

/// The same bad call to a Python and to a Rust service with the same signature:
/// `nothing()`, `mixed(a, b, c=None)`, `three(a, b, c)`.
async fn both(
    env: &nameko_interop::Interop,
    method: &str,
    args: &Value,
    kwargs: &Value,
) -> [PythonError; 2] {
    let mut errors = Vec::new();
    for service in ["py_api", "rs_api"] {
        let call = json!({"service": service, "method": method, "args": args, "kwargs": kwargs});
        let error = env.python("call", call).await.unwrap_err();
        errors.push(error);
    }
    errors.try_into().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gets_method_not_found_incorrect_signature_and_malformed_request_from_rust() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        env.start_python(&["services:Api"]).await;

        let missing = env
            .python_call("rs_api", "no_such_method", json!([]))
            .await
            .unwrap_err();
        assert_eq!(missing.class, "nameko.exceptions.MethodNotFound");
        assert!(missing.is_instance("MethodNotFound"), "{missing:?}");
        assert_eq!(missing.message, "no_such_method");

        // Rust words IncorrectSignature as Python does, for the same signature.
        for (method, args, kwargs) in [
            ("mixed", json!([1, "two", 3, 4]), json!({})),
            ("mixed", json!([]), json!({"b": "x"})),
            ("mixed", json!([1, "two"]), json!({"d": 1})),
            ("mixed", json!([1]), json!({"a": 1, "b": "x"})),
            ("nothing", json!([1]), json!({})),
            ("nothing", json!([]), json!({"x": 1})),
            ("three", json!([]), json!({})),
            ("three", json!([1]), json!({})),
            ("three", json!([1, 2, 3, 4, 5]), json!({})),
        ] {
            let [python, rust] = both(&env, method, &args, &kwargs).await;
            assert_eq!(rust.class, "nameko.exceptions.IncorrectSignature");
            assert!(rust.is_instance("IncorrectSignature"), "{rust:?}");
            assert_eq!(
                rust.message, python.message,
                "IncorrectSignature of {method} for args {args} kwargs {kwargs}"
            );
        }

        for service in ["rs_api", "py_api"] {
            let malformed = env
                .python(
                    "call_raw",
                    json!({"routing_key": format!("{service}.echo"), "body": r#"{"args": []}"#}),
                )
                .await
                .unwrap_err();
            assert_eq!(
                malformed.class, "nameko.exceptions.MalformedRequest",
                "{service}"
            );
            assert!(malformed.is_instance("MalformedRequest"));
            assert_eq!(malformed.message, "Message missing `args` or `kwargs`");
        }
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gets_remote_errors_with_the_rust_errors_exc_type_and_value() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let cases = [
            ("divide", json!([1, 0]), "ValueError", "Division by zero"),
            ("boom", json!([]), "KeyError", "missing"),
            (
                "parse",
                json!(["x1"]),
                "ParseIntError",
                "invalid digit found in string",
            ),
        ];
        for (method, args, exc_type, value) in cases {
            let error = env.python_call("rs_api", method, args).await.unwrap_err();
            assert_eq!(error.class, "nameko.exceptions.RemoteError", "{method}");
            assert!(error.is_instance("RemoteError"));
            assert_eq!(error.exc_type.as_deref(), Some(exc_type), "{method}");
            assert_eq!(error.value.as_deref(), Some(value), "{method}");
            assert_eq!(error.message, format!("{exc_type} {value}"));
        }
        let quotient = env
            .python_call("rs_api", "divide", json!([1, 4]))
            .await
            .unwrap();
        assert_eq!(quotient, json!(0.25));

        // The Rust ValueError is the very error dict Python makes for
        // `raise ValueError("Division by zero")`.
        env.start_python(&["services:Api"]).await;
        let proxy = env.cluster().proxy().await;
        let mut dicts = Vec::new();
        for service in ["py_api", "rs_api"] {
            let error = proxy
                .service(service)
                .call::<Value>("divide", (1, 0))
                .await
                .unwrap_err();
            dicts.push(json!(error.remote().expect("a remote error")));
        }
        assert_eq!(dicts[0], dicts[1]);
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_rebuilds_a_registered_exception_type_from_a_rust_error() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let error = env
            .python_call("rs_api", "withdraw", json!([100, 150]))
            .await
            .unwrap_err();
        // `interop_errors.InsufficientFunds` is registered with deserialize_to_instance,
        // so Python raises it with the error's exc_args, stringified as nameko does.
        assert_eq!(error.class, "interop_errors.InsufficientFunds");
        assert!(error.is_instance("InsufficientFunds"));
        assert!(!error.is_instance("RemoteError"));
        assert_eq!(error.args, vec![json!("100"), json!("150")]);
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_gets_unknown_service_for_a_service_that_never_ran() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        let error = env
            .python_call("rs_never_ran", "anything", json!([]))
            .await
            .unwrap_err();
        assert_eq!(error.class, "nameko.exceptions.UnknownService");
        assert_eq!(error.message, "Unknown service `rs_never_ran`");
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dates_decimals_uuids_and_non_finite_floats_reach_rust_readably() {
    run(async |mut env| {
        env.start_rust::<Api>().await;
        // kombu sends these as NaN/Infinity tokens and tagged objects; Rust reads the
        // tokens as null and the tagged objects as the strings older kombu sent.
        let echoed = env
            .python(
                "call_python_types",
                json!({"service": "rs_api", "method": "echo"}),
            )
            .await
            .unwrap();
        assert_eq!(
            echoed,
            json!({
                "nan": null,
                "inf": null,
                "-inf": null,
                "datetime": "2024-01-02T03:04:05",
                "date": "2024-01-02",
                "decimal": "1.50",
                "uuid": "12345678-1234-5678-1234-567812345678",
            })
        );
        env.shutdown().await;
    })
    .await;
}
