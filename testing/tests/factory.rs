//! `worker_factory` and the built-in mocks: defaults, replacements, errors that name what
//! exists, and assertion messages that show the difference.

use std::panic::{AssertUnwindSafe, catch_unwind};

use nameko::prelude::*;
use nameko_testing::{EventDispatcherMock, FactoryError, RpcProxyMock, worker_factory};

#[derive(Debug, Clone, PartialEq)]
struct Clock(u64);

#[derive(Dependencies)]
struct Shop {
    prices: RpcProxy,
    events: EventDispatcher,
    context: ContextData,
    #[dependency(nameko::dependency::ValueProvider::new(Clock(0)))]
    clock: Clock,
}

#[service(name = "shop")]
impl Shop {
    #[rpc]
    async fn buy(&self, item: String) -> Result<Value, ServiceError> {
        let price: Value = self.prices.call("price_of", (item.clone(),)).await?;
        self.events
            .dispatch("bought", json!({"item": item, "price": price}))
            .await?;
        Ok(
            json!({"item": item, "price": price, "user": self.context.user_id(), "at": self.clock.0}),
        )
    }
}

#[tokio::test]
async fn every_dependency_gets_a_mock_or_the_given_value() {
    let prices = RpcProxyMock::new().reply("price_of", 3.5);
    let events = EventDispatcherMock::new();
    let shop = worker_factory::<Shop>()
        .with("prices", prices.clone())
        .with("events", events.clone())
        .with_value("clock", Clock(99))
        .context(ContextData::new().with("user_id", 7))
        .build()
        .unwrap();
    let bought = shop.buy("tea".to_owned()).await.unwrap();
    assert_eq!(
        bought,
        json!({"item": "tea", "price": 3.5, "user": 7, "at": 99})
    );
    prices.assert_called_once_with("price_of", ("tea",));
    assert_eq!(
        prices.calls()[0].context.user_id(),
        Some(&json!(7)),
        "calls carry the worker's context"
    );
    events.assert_dispatched_once("bought", json!({"item": "tea", "price": 3.5}));
}

#[tokio::test]
async fn unscripted_mocks_answer_null_and_can_be_inspected() {
    let (shop, mocks) = worker_factory::<Shop>()
        .with_value("clock", Clock(1))
        .build_with_mocks()
        .unwrap();
    let bought = shop.buy("jam".to_owned()).await.unwrap();
    assert_eq!(bought["price"], Value::Null);
    mocks.rpc("prices").assert_called_with("price_of", ("jam",));
    mocks
        .events("events")
        .assert_dispatched("bought", json!({"item": "jam", "price": null}));
}

#[tokio::test]
async fn an_unscripted_method_says_so_when_null_does_not_fit() {
    let prices = RpcProxyMock::new();
    let proxy = prices.proxy("prices");
    let error = proxy.call::<f64>("get", ("tea",)).await.unwrap_err();
    assert!(
        matches!(&error, RpcError::InvalidReply(m) if m.starts_with("no reply scripted for `get` of `prices`")),
        "{error:?}"
    );
    assert!(error.to_string().contains("reply(\"get\", ...)"), "{error}");
    // A type that `null` fits still gets it.
    let nothing: Option<f64> = proxy.call("get", ()).await.unwrap();
    assert_eq!(nothing, None);
}

#[derive(Debug, Clone, PartialEq)]
struct Greeting(String);

#[derive(Dependencies)]
struct Greeter {
    greeting: State<Greeting>,
}

#[service(name = "greeter")]
impl Greeter {
    #[rpc]
    async fn greet(&self, name: String) -> String {
        format!("{} {name}", self.greeting.0)
    }
}

#[tokio::test]
async fn state_is_given_by_type_and_its_absence_is_named() {
    let greeter = worker_factory::<Greeter>()
        .with_state(Greeting("hi".to_owned()))
        .with_state(Greeting("hello".to_owned()))
        .build()
        .unwrap();
    assert_eq!(greeter.greet("ada".to_owned()).await, "hello ada");
    let missing = worker_factory::<Greeter>().build().err().unwrap();
    assert!(
        matches!(missing, FactoryError::NoState { .. }),
        "{missing:?}"
    );
    assert!(
        missing.to_string().contains(".with_state(value)"),
        "{missing}"
    );
}

#[test]
fn naming_a_missing_dependency_lists_the_real_ones() {
    let err = worker_factory::<Shop>()
        .with("pricez", RpcProxyMock::new())
        .build()
        .err()
        .unwrap();
    assert_eq!(
        err,
        FactoryError::UnknownDependency {
            name: "pricez".into(),
            known: "prices, events, context, clock".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "the service has no dependency `pricez`; its dependencies are: prices, events, context, clock"
    );
}

#[test]
fn a_replacement_of_the_wrong_type_is_refused() {
    let err = worker_factory::<Shop>()
        .with("events", RpcProxyMock::new())
        .build()
        .err()
        .unwrap();
    assert!(
        matches!(&err, FactoryError::WrongType { name, .. } if name == "events"),
        "{err}"
    );
    let err = worker_factory::<Shop>()
        .with_value("clock", 5_u64)
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("dependency `clock` is a"), "{err}");
}

#[test]
fn a_dependency_without_a_built_in_mock_must_be_supplied() {
    let err = worker_factory::<Shop>().build().err().unwrap();
    assert!(
        matches!(&err, FactoryError::NoMock { name, .. } if name == "clock"),
        "{err}"
    );
    assert!(
        err.to_string().contains(".with_value(\"clock\", ...)"),
        "{err}"
    );
}

fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion must fail");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[tokio::test]
async fn failed_assertions_show_what_happened() {
    let prices = RpcProxyMock::new();
    let proxy = prices.proxy("prices");
    proxy.call::<Value>("price_of", ("tea",)).await.unwrap();
    proxy.call::<Value>("price_of", ("jam",)).await.unwrap();
    let message = panic_message(|| prices.assert_called_once_with("price_of", ("tea",)));
    assert!(
        message.contains("expected one call price_of(\"tea\"), got 2 call(s)"),
        "{message}"
    );
    assert!(
        message.contains("prices.price_of(\"jam\")"),
        "lists the calls: {message}"
    );
    let message = panic_message(|| prices.assert_not_called("price_of"));
    assert!(
        message.contains("expected no call of `price_of`"),
        "{message}"
    );

    let events = EventDispatcherMock::new();
    events
        .dispatcher("shop")
        .dispatch("bought", json!({"item": "tea"}))
        .await
        .unwrap();
    let message = panic_message(|| events.assert_dispatched("bought", json!({"item": "jam"})));
    assert!(
        message.contains(r#"expected event bought {"item":"jam"}"#),
        "{message}"
    );
    assert!(
        message.contains(r#"shop bought {"item":"tea"}"#),
        "{message}"
    );
}

#[tokio::test]
async fn scripted_errors_reach_the_service() {
    let prices = RpcProxyMock::new().fail(
        "price_of",
        RemoteError::new("KeyError", "builtins.KeyError", ["tea"], "'tea'"),
    );
    let shop = worker_factory::<Shop>()
        .with("prices", prices)
        .with_value("clock", Clock(0))
        .build()
        .unwrap();
    let err = shop.buy("tea".to_owned()).await.unwrap_err();
    assert_eq!(
        err.remote().exc_type,
        "RemoteError",
        "re-raised as Python re-raises a RemoteError"
    );
    assert_eq!(err.remote().value, "KeyError 'tea'");
}
