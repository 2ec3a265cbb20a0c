//! The order pipeline: three calls in flight at once, an event on success, the failure
//! path, with mocks and on a real cluster.

use nameko::prelude::*;
use nameko::testing::{EventDispatcherMock, TestCluster, entrypoint_waiter, worker_factory};
use nameko_examples::calculator::ValueError;
use nameko_examples::{
    EmailService, EmailServiceClient, InventoryService, InventoryServiceClient,
    NotificationService, OrderService, OrderServiceClient, PaymentService, PaymentServiceClient,
};

fn order(amount: f64, email: &str) -> Value {
    json!({
        "order_id": "o-1",
        "customer_email": email,
        "items": [{"sku": "tea", "quantity": 2}],
        "payment_info": {"amount": amount, "card": "4242"},
    })
}

#[tokio::test]
async fn a_successful_order_calls_all_three_and_dispatches_order_placed() {
    let payment = PaymentServiceClient::mock().process_payment(|_| Ok(json!({"status": "paid"})));
    let inventory = InventoryServiceClient::mock().reserve_items(|_| Ok(json!({"reserved": 1})));
    let email = EmailServiceClient::mock().send_confirmation(|_, _| Ok(true));
    let events = EventDispatcherMock::new();
    let orders = worker_factory::<OrderService>()
        .with("payment_service", payment.clone())
        .with("inventory_service", inventory.clone())
        .with("email_service", email.clone())
        .with("events", events.clone())
        .build()
        .unwrap();
    let result = orders
        .process_order_parallel(order(10.0, "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(
        result,
        json!({"status": "success", "payment": {"status": "paid"}, "inventory": {"reserved": 1}, "email_sent": true})
    );
    payment.assert_called_once_with(
        "process_payment",
        (json!({"amount": 10.0, "card": "4242"}),),
    );
    inventory.assert_called_once_with("reserve_items", (json!([{"sku": "tea", "quantity": 2}]),));
    email.assert_called_once_with("send_confirmation", ("ada@example.com", "o-1"));
    events.assert_dispatched_once(
        "order_placed",
        json!({"order_id": "o-1", "customer_email": "ada@example.com", "payment": {"status": "paid"}}),
    );
}

#[tokio::test]
async fn a_failed_step_fails_the_order_without_an_event() {
    let payment = PaymentServiceClient::mock()
        .process_payment(|_| Err(ValueError("Invalid payment amount".to_owned())));
    let events = EventDispatcherMock::new();
    let (orders, mocks) = worker_factory::<OrderService>()
        .with("payment_service", payment)
        .with("events", events.clone())
        .build_with_mocks()
        .unwrap();
    let result = orders
        .process_order_parallel(order(-1.0, "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(
        result,
        json!({"status": "failed", "error": "ValueError Invalid payment amount"})
    );
    events.assert_nothing_dispatched();
    // The other two steps were sent in parallel, before any result was awaited.
    assert_eq!(mocks.client_calls("inventory_service").len(), 1);
    assert_eq!(mocks.client_calls("email_service").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_flow_through_the_real_services_to_notifications() {
    let mut cluster = TestCluster::memory();
    cluster.start::<PaymentService>().await;
    cluster.start::<InventoryService>().await;
    cluster.start::<EmailService>().await;
    cluster.start::<OrderService>().await;
    let notifications = cluster.start::<NotificationService>().await;
    let proxy = cluster.proxy().await;
    let orders: OrderServiceClient = proxy.client();

    let handled = entrypoint_waiter(&notifications, "on_order_placed");
    let ok = orders
        .process_order_parallel(order(25.0, "ada@example.com"))
        .await
        .unwrap();
    assert_eq!(ok["status"], "success");
    assert_eq!(ok["payment"]["amount"], 25.0);
    assert_eq!(ok["email_sent"], true);
    let event = handled.wait().await.unwrap();
    assert_eq!(event.context.args().args[0]["order_id"], "o-1");

    let failed = orders
        .process_order_parallel(order(25.0, "not-an-email"))
        .await
        .unwrap();
    assert_eq!(
        failed,
        json!({"status": "failed", "error": "ValueError Invalid email address"})
    );
    cluster.run_until_idle().await.unwrap();
    let sent: Vec<Value> = proxy
        .service("notification_service")
        .call("sent", ())
        .await
        .unwrap();
    assert_eq!(
        sent.len(),
        1,
        "only the successful order was notified: {sent:?}"
    );
    cluster.shutdown().await;
}
