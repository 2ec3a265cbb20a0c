//! An order pipeline: three services called in parallel, then an event.

use nameko::prelude::*;
use nameko::schemars::JsonSchema;
use serde::Serialize;

use crate::calculator::ValueError;

/// The `order_placed` event `order_service` dispatches once an order went through.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(crate = "nameko::schemars")]
pub struct OrderPlaced {
    /// The order's `order_id`, as given.
    pub order_id: Value,
    /// The customer's address.
    pub customer_email: Value,
    /// What `payment_service.process_payment` answered.
    pub payment: Value,
}

fn invalid(message: &str) -> ValueError {
    ValueError(message.to_owned())
}

/// `payment_service`: takes payments.
#[derive(Debug, Dependencies)]
pub struct PaymentService;

#[service(name = "payment_service")]
impl PaymentService {
    /// Charges `payment_info["amount"]`; a missing or non-positive amount is a
    /// `ValueError`.
    #[rpc(expected_exceptions = [ValueError])]
    pub async fn process_payment(&self, payment_info: Value) -> Result<Value, ValueError> {
        let amount = payment_info
            .get("amount")
            .and_then(Value::as_f64)
            .filter(|a| *a > 0.0)
            .ok_or_else(|| invalid("Invalid payment amount"))?;
        Ok(json!({
            "status": "paid",
            "amount": amount,
            "transaction_id": format!("txn-{}", uuid::Uuid::new_v4().simple()),
        }))
    }
}

/// `inventory_service`: reserves stock.
#[derive(Debug, Dependencies)]
pub struct InventoryService;

#[service(name = "inventory_service")]
impl InventoryService {
    /// Reserves each `{"sku", "quantity"}` item; an empty list or a non-positive quantity
    /// is a `ValueError`.
    #[rpc(expected_exceptions = [ValueError])]
    pub async fn reserve_items(&self, items: Vec<Value>) -> Result<Value, ValueError> {
        if items.is_empty() {
            return Err(invalid("No items to reserve"));
        }
        if items.iter().any(|i| {
            i.get("quantity")
                .and_then(Value::as_i64)
                .is_none_or(|q| q <= 0)
        }) {
            return Err(invalid("Every item needs a positive quantity"));
        }
        Ok(json!({
            "reserved": items,
            "reservation_id": format!("res-{}", uuid::Uuid::new_v4().simple()),
        }))
    }
}

/// `email_service`: sends confirmations.
#[derive(Debug, Dependencies)]
pub struct EmailService;

#[service(name = "email_service")]
impl EmailService {
    /// Sends an order confirmation; an address without `@` is a `ValueError`.
    #[rpc(expected_exceptions = [ValueError])]
    pub async fn send_confirmation(
        &self,
        customer_email: String,
        order_id: Value,
    ) -> Result<bool, ValueError> {
        if !customer_email.contains('@') {
            return Err(invalid("Invalid email address"));
        }
        tracing::info!(%customer_email, %order_id, "confirmation sent");
        Ok(true)
    }
}

/// `order_service`: processes orders.
#[derive(Debug, Dependencies)]
pub struct OrderService {
    payment_service: PaymentServiceClient,
    inventory_service: InventoryServiceClient,
    email_service: EmailServiceClient,
    events: EventDispatcher,
}

#[service(name = "order_service", dispatches("order_placed" = OrderPlaced))]
impl OrderService {
    /// Reads `order_data["payment_info"]`, `order_data["items"]`,
    /// `order_data["customer_email"]` and `order_data["order_id"]`; calls
    /// `payment_service.process_payment(payment_info)`,
    /// `inventory_service.reserve_items(items)` and
    /// `email_service.send_confirmation(customer_email, order_id)` in parallel (all three
    /// in flight at once), then dispatches an `order_placed` event.
    ///
    /// Returns `{"status": "success", "payment", "inventory", "email_sent"}`, or
    /// `{"status": "failed", "error": "<exc_type> <value>"}` when a step failed (and then
    /// no event).
    #[rpc]
    pub async fn process_order_parallel(&self, order_data: Value) -> Result<Value, EventError> {
        let order_id = order_data.get("order_id").cloned().unwrap_or(Value::Null);
        let email = order_data
            .get("customer_email")
            .cloned()
            .unwrap_or(Value::Null);
        let Some(customer_email) = email.as_str().map(str::to_owned) else {
            return Ok(json!({
                "status": "failed",
                "error": format!("TypeError customer_email must be a string, not {email}"),
            }));
        };
        let items: Vec<Value> = match order_data.get("items") {
            None => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => {
                return Ok(json!({
                    "status": "failed",
                    "error": format!("TypeError items must be a list, not {other}"),
                }));
            }
        };
        let payment_info = order_data
            .get("payment_info")
            .cloned()
            .unwrap_or(Value::Null);
        let sent = async {
            let payment = self
                .payment_service
                .call_async()
                .process_payment(payment_info)
                .await?;
            let inventory = self
                .inventory_service
                .call_async()
                .reserve_items(items)
                .await?;
            let email_sent = self
                .email_service
                .call_async()
                .send_confirmation(customer_email, order_id.clone())
                .await?;
            Ok::<_, RpcError>((payment, inventory, email_sent))
        };
        let outcome = match sent.await {
            Ok((payment, inventory, email_sent)) => {
                let (payment, inventory, email_sent) =
                    tokio::join!(payment.result(), inventory.result(), email_sent.result());
                let (payment, inventory, email_sent) = (
                    payment.map_err(RpcError::from),
                    inventory.map_err(RpcError::from),
                    email_sent.map_err(RpcError::from),
                );
                match (payment, inventory, email_sent) {
                    (Ok(p), Ok(i), Ok(e)) => Ok((p, i, e)),
                    (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok((payment, inventory, email_sent)) => {
                let placed = OrderPlaced {
                    order_id,
                    customer_email: email,
                    payment: payment.clone(),
                };
                self.events.dispatch("order_placed", placed).await?;
                Ok(
                    json!({"status": "success", "payment": payment, "inventory": inventory, "email_sent": email_sent}),
                )
            }
            Err(error) => Ok(json!({"status": "failed", "error": describe(&error)})),
        }
    }
}

fn describe(error: &RpcError) -> String {
    match error.remote() {
        Some(remote) => format!("{} {}", remote.exc_type, remote.value),
        None => error.to_string(),
    }
}
