//! Rust callers of a Python nameko service: the standalone `ClusterRpcProxy`, and the
//! `RpcProxy` of a Rust service. Arguments, payloads, calls in flight, context data, and
//! Python's errors arriving with their `exc_type`, `exc_path`, `exc_args` and `value`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nameko::errors::{IntoRemoteError, register_error};
use nameko::prelude::*;
use nameko_interop::{InsufficientFunds, RawRpc, ValueError, describe, run};
use serde_json::Map;

#[derive(Dependencies)]
struct Gateway {
    py_api: RpcProxy,
    worker: Arc<WorkerContext>,
}

#[service(name = "rs_gateway")]
impl Gateway {
    /// Calls `py_api` and reports the outcome as this service's proxy saw it.
    #[rpc]
    async fn forward(&self, method: String, args: Vec<Value>, kwargs: Map<String, Value>) -> Value {
        summarize(self.py_api.call(&method, CallArgs { args, kwargs }).await)
    }

    /// Calls `py_api` and lets a failure propagate, as a Python service would.
    #[rpc]
    async fn relay(&self, method: String, args: Vec<Value>) -> Result<Value, RpcError> {
        self.py_api.call(&method, CallArgs::positional(args)).await
    }

    /// Sends every call of `py_api.method` before waiting for any; the results in call
    /// order.
    #[rpc]
    async fn fan_out(
        &self,
        method: String,
        calls: Vec<Vec<Value>>,
    ) -> Result<Vec<Value>, RpcError> {
        let mut pending = Vec::new();
        for args in calls {
            pending.push(
                self.py_api
                    .call_async::<Value>(&method, CallArgs::positional(args))
                    .await?,
            );
        }
        let mut results = Vec::new();
        for reply in pending {
            results.push(reply.result().await?);
        }
        Ok(results)
    }

    #[rpc]
    async fn context(&self) -> Result<Value, RpcError> {
        let down: Value = self.py_api.call("context", ()).await?;
        Ok(json!({"me": describe(&self.worker), "down": down}))
    }
}

/// The outcome of a call as data: the result, or the kind of error with its error dict
/// and what it rebuilds into.
fn summarize(outcome: Result<Value, RpcError>) -> Value {
    let error = match outcome {
        Ok(value) => return json!({"ok": value}),
        Err(error) => error,
    };
    let kind = match &error {
        RpcError::MethodNotFound(_) => "MethodNotFound",
        RpcError::IncorrectSignature(_) => "IncorrectSignature",
        RpcError::MalformedRequest(_) => "MalformedRequest",
        RpcError::UnknownService(_) => "UnknownService",
        RpcError::Registered(_) => "Registered",
        RpcError::Remote(_) => "Remote",
        RpcError::Timeout(_) => "Timeout",
        _ => "Other",
    };
    json!({
        "error": kind,
        "message": error.to_string(),
        "remote": error.remote(),
        "value_error": error.decode::<ValueError>().map(|e| e.0),
        "funds": error.downcast_ref::<InsufficientFunds>().map(|f| [f.balance, f.amount]),
    })
}

/// Calls `py_api.method(*args, **kwargs)` directly from a Rust `ClusterRpcProxy` and
/// through `rs_gateway`'s `RpcProxy`; both must see the same outcome, which is returned.
async fn both_ways(proxy: &ClusterRpcProxy, method: &str, args: Value, kwargs: Value) -> Value {
    let call = CallArgs {
        args: serde_json::from_value(args.clone()).unwrap(),
        kwargs: serde_json::from_value(kwargs.clone()).unwrap(),
    };
    let direct = summarize(proxy.service("py_api").call(method, call).await);
    let through_service: Value = proxy
        .service("rs_gateway")
        .call("forward", (method, args, kwargs))
        .await
        .unwrap();
    assert_eq!(
        direct, through_service,
        "{method}: a service proxy sees what a standalone one does"
    );
    direct
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_proxies_pass_positional_keyword_and_mixed_arguments_to_python() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        env.start_rust::<Gateway>().await;
        let proxy = env.cluster().proxy().await;
        let seen = both_ways(
            &proxy,
            "signature",
            json!([1, "two", [3]]),
            json!({"three": {"a": 1}}),
        )
        .await;
        assert_eq!(
            seen["ok"],
            json!({"args": [1, "two", [3]], "kwargs": {"three": {"a": 1}}})
        );
        let seen = both_ways(&proxy, "mixed", json!([]), json!({"b": "x", "a": 5})).await;
        assert_eq!(seen["ok"], json!({"a": 5, "b": "x", "c": null}));
        let seen = both_ways(
            &proxy,
            "mixed",
            json!([7]),
            json!({"b": "y", "c": [true, 2.5]}),
        )
        .await;
        assert_eq!(seen["ok"], json!({"a": 7, "b": "y", "c": [true, 2.5]}));
        let seen = both_ways(&proxy, "signature", json!([]), json!({})).await;
        assert_eq!(seen["ok"], json!({"args": [], "kwargs": {}}));
        // Typed arguments and results through the tuple API.
        let quotient: f64 = proxy
            .service("py_api")
            .call("divide", (1, 4))
            .await
            .unwrap();
        assert!((quotient - 0.25).abs() < f64::EPSILON);
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_unicode_nested_and_one_megabyte_payloads_survive_a_python_service() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        env.start_rust::<Gateway>().await;
        let proxy = env.cluster().proxy().await;
        let nested = json!({
            "text": "héllo wörld ✓ 😀 𝄞 \u{0} \"quoted\" \\ \n",
            "ключ": [{"深い": [1, -2.5, 1e100, true, null, {"": []}]}],
            "big": 9_007_199_254_740_993_i64,
        });
        let text: String = (0..1 << 20)
            .map(|i| if i % 10 == 0 { 'é' } else { 'x' })
            .collect();
        for (method, arg, expected) in [
            ("echo", nested.clone(), nested),
            // Python reverses and counts the code points Rust sent, astral ones too.
            ("reverse", json!("aé✓😀𝄞"), json!("𝄞😀✓éa")),
            ("length", json!("😀𝄞é"), json!(3)),
            ("echo", json!(text), json!(text)),
            ("length", json!(text), json!(1 << 20)),
        ] {
            let seen = both_ways(&proxy, method, json!([arg]), json!({})).await;
            assert!(seen["ok"] == expected, "{method} changed the value");
        }
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_call_async_keeps_fifty_calls_to_python_in_flight() {
    run(async |mut env| {
        env.start_python_with(&["services:Api"], json!({"max_workers": 50}))
            .await;
        env.start_rust::<Gateway>().await;
        let proxy = env.cluster().proxy().await;
        let api = proxy.service("py_api");
        let seconds: Vec<f64> = (0..50).map(|i| f64::from(300 - 5 * i) / 1000.0).collect();
        let started = Instant::now();
        let mut pending = Vec::new();
        for s in &seconds {
            pending.push(api.call_async::<f64>("sleep", (s,)).await.unwrap());
        }
        let mut results = Vec::new();
        for reply in pending {
            results.push(reply.result().await.unwrap());
        }
        let elapsed = started.elapsed();
        assert_eq!(results, seconds, "results in call order");
        let sequential: f64 = seconds.iter().sum();
        assert!(
            elapsed < Duration::from_millis(2500),
            "50 calls ({sequential:.1} s one after another) took {elapsed:?}"
        );

        // The same from inside a Rust service, through its RpcProxy.
        let calls: Vec<Value> = seconds.iter().map(|s| json!([s])).collect();
        let started = Instant::now();
        let results: Vec<f64> = proxy
            .service("rs_gateway")
            .call("fan_out", ("sleep", calls))
            .await
            .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(results, seconds, "results in call order");
        assert!(
            elapsed < Duration::from_millis(2500),
            "50 calls from a service took {elapsed:?}"
        );
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_context_data_reaches_the_python_worker() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        env.start_rust::<Gateway>().await;
        let context = json!({
            "user_id": 42,
            "language": "en-gb",
            "auth_token": "s3cret",
            "user_agent": "rust-client/1.0",
            "custom_key": {"nested": [1, "two", 2.5, true]},
            "big": 1_099_511_627_776_i64,
        });
        let proxy = env
            .cluster()
            .proxy_with_context(ContextData::from_map(context.as_object().unwrap().clone()))
            .await;
        let root = proxy.root_call_id().to_owned();

        let seen: Value = proxy.service("py_api").call("context", ()).await.unwrap();
        assert_eq!(seen["data"], context);
        let own = seen["call_id"].as_str().unwrap();
        assert!(own.starts_with("py_api.context."), "{own}");
        assert_eq!(seen["stack"], json!([root, own]));
        assert_eq!(
            (&seen["origin"], &seen["parent"]),
            (&json!(root), &json!(root))
        );

        // Through a Rust service: its proxy carries the context and its own call id on.
        let seen: Value = proxy
            .service("rs_gateway")
            .call("context", ())
            .await
            .unwrap();
        let gateway = seen["me"]["call_id"].as_str().unwrap();
        assert!(gateway.starts_with("rs_gateway.context."), "{gateway}");
        let python = &seen["down"];
        assert_eq!(python["data"], context);
        assert_eq!(python["stack"], json!([root, gateway, python["call_id"]]));
        assert_eq!(python["parent"], json!(gateway));
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_standard_errors_arrive_in_rust_as_typed_errors() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        env.start_rust::<Gateway>().await;
        let proxy = env.cluster().proxy().await;

        let missing = both_ways(&proxy, "no_such_method", json!([]), json!({})).await;
        assert_eq!(missing["error"], "MethodNotFound");
        assert_eq!(missing["message"], "MethodNotFound: no_such_method");
        assert_eq!(missing["remote"], Value::Null);

        let signature = both_ways(&proxy, "mixed", json!([1, "two", 3, 4]), json!({})).await;
        assert_eq!(signature["error"], "IncorrectSignature");
        assert_eq!(
            signature["message"],
            "IncorrectSignature: mixed() takes from 3 to 4 positional arguments but 5 were given"
        );

        let mut raw = RawRpc::connect(env.cluster()).await;
        let malformed = raw.call("py_api.echo", r#"{"args": []}"#).await.unwrap_err();
        assert!(
            matches!(&malformed, RpcError::MalformedRequest(m) if m == "Message missing `args` or `kwargs`"),
            "{malformed:?}"
        );

        let unknown = proxy.service("py_never_ran").call::<Value>("anything", ()).await.unwrap_err();
        assert!(matches!(&unknown, RpcError::UnknownService(name) if name == "py_never_ran"), "{unknown:?}");
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exceptions_reach_rust_with_exc_type_exc_path_exc_args_and_value() {
    run(async |mut env| {
        register_error::<InsufficientFunds>();
        env.start_python(&["services:Api"]).await;
        env.start_rust::<Gateway>().await;
        let proxy = env.cluster().proxy().await;

        let custom = both_ways(&proxy, "fail", json!([]), json!({})).await;
        assert_eq!(custom["error"], "Remote");
        assert_eq!(
            custom["remote"],
            json!({
                "exc_type": "CustomError",
                "exc_path": "services.CustomError",
                "exc_args": ["boom", "1", {"k": ["1", "2"]}],
                "value": "('boom', 1, {'k': [1, 2]})",
            })
        );

        let value_error = both_ways(&proxy, "divide", json!([1, 0]), json!({})).await;
        assert_eq!(value_error["remote"]["exc_path"], "builtins.ValueError");
        assert_eq!(
            value_error["value_error"], "Division by zero",
            "decodes into the Rust type"
        );

        let funds = both_ways(&proxy, "withdraw", json!([100, 150]), json!({})).await;
        assert_eq!(funds["error"], "Registered");
        assert_eq!(
            funds["funds"],
            json!([100, 150]),
            "rebuilt as the registered Rust type"
        );
        assert_eq!(funds["remote"]["exc_args"], json!(["100", "150"]));
        assert_eq!(funds["remote"]["value"], "(100, 150)");

        // (Called one way only: the value names a fresh object's address.)
        let unserializable = proxy
            .service("py_api")
            .call::<Value>("unserializable", ())
            .await;
        let unserializable = summarize(unserializable);
        let remote = &unserializable["remote"];
        assert_eq!(
            remote["exc_path"],
            "nameko.exceptions.UnserializableValueError"
        );
        assert_eq!(remote["exc_args"], json!([]));
        let value = remote["value"].as_str().unwrap();
        assert!(
            value.starts_with("Unserializable value: `<object object at 0x"),
            "{value}"
        );
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_reads_python_dates_decimals_uuids_and_non_finite_floats_in_replies() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        let proxy = env.cluster().proxy().await;
        let values: Value = proxy
            .service("py_api")
            .call("python_types", ())
            .await
            .unwrap();
        assert_eq!(
            values,
            json!({
                "nan": null,
                "inf": null,
                "datetime": "2024-01-02T03:04:05",
                "date": "2024-01-02",
                "decimal": "1.50",
                "uuid": "12345678-1234-5678-1234-567812345678",
                "tuple": [1, "two"],
                // Beyond 64 bits, an integer is read as the nearest float.
                "big": 2_f64.powi(70),
            })
        );
        env.shutdown().await;
    })
    .await;
}

/// The error dict a caller received: the remote one, or the one a typed error stands for.
fn error_dict(error: &RpcError) -> Value {
    json!(
        error
            .remote()
            .cloned()
            .unwrap_or_else(|| error.clone().into_remote_error())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_service_reraises_python_errors_as_a_python_service_would() {
    run(async |mut env| {
        env.start_python(&["services:Api", "services:Relay"]).await;
        env.start_rust::<Gateway>().await;
        let proxy = env.cluster().proxy().await;
        for method in ["fail", "no_such_method"] {
            let args = json!([]);
            let through_rust = proxy
                .service("rs_gateway")
                .call::<Value>("relay", (method, &args))
                .await
                .unwrap_err();
            let through_python = proxy
                .service("py_relay")
                .call::<Value>("relay_call", ("py_api", method, &args))
                .await
                .unwrap_err();
            assert_eq!(
                error_dict(&through_rust),
                error_dict(&through_python),
                "{method}: re-raised by a Rust and by a Python service"
            );
        }
        // A RemoteError is wrapped in a RemoteError; typed errors keep their type.
        let error = proxy
            .service("rs_gateway")
            .call::<Value>("relay", ("fail", json!([])))
            .await
            .unwrap_err();
        assert_eq!(
            error_dict(&error),
            json!({
                "exc_type": "RemoteError",
                "exc_path": "nameko.exceptions.RemoteError",
                "exc_args": ["CustomError ('boom', 1, {'k': [1, 2]})"],
                "value": "CustomError ('boom', 1, {'k': [1, 2]})",
            })
        );
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_call_to_a_stopped_python_service_times_out() {
    run(async |mut env| {
        env.start_python(&["services:Api"]).await;
        env.stop_python("py_api").await;
        // `rpc-py_api` outlives the service (durable), so the request is queued: no
        // UnknownService, and the call ends at its timeout rather than hanging.
        let proxy = env.cluster().proxy().await;
        let started = Instant::now();
        let error = proxy
            .service("py_api")
            .with_timeout(Duration::from_millis(500))
            .call::<Value>("echo", (1,))
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_rpc_exchange_carries_calls_from_python_through_rust_to_python() {
    run(async |env| {
        let exchange = json!({"rpc_exchange": "interop-rpc"});
        let mut env = env.with_config("rpc_exchange", "interop-rpc");
        env.start_python_with(&["services:Api"], exchange.clone())
            .await;
        env.start_rust::<Gateway>().await;
        let call = json!({"service": "rs_gateway", "method": "forward", "config": exchange,
                          "args": ["echo", ["over interop-rpc"], {}]});
        let seen = env.python("call", call).await.unwrap();
        assert_eq!(seen, json!({"ok": "over interop-rpc"}));
        // Nothing went through the default exchange.
        let transport = env.cluster().connect().await;
        let default = transport
            .declare_exchange(
                "nameko-rpc",
                nameko::transport::ExchangeKind::Topic,
                nameko::transport::ExchangeOptions::passive(),
            )
            .await;
        assert!(default.is_err(), "nameko-rpc was never declared");
        env.shutdown().await;
    })
    .await;
}
