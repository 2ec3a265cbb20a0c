//! `websocket_service`: nameko's WebSocket RPC and hub, with a page that lists orders as
//! they are placed (`interop/python/websocket_service.py` is the same service for
//! Python nameko).
//!
//! | entrypoint | what it does |
//! |---|---|
//! | ws `echo(socket_id, value)` | answers `value` |
//! | ws `subscribe(socket_id, channel)` | subscribes the socket; answers `"subscribed"` |
//! | ws `unsubscribe(socket_id, channel)` | unsubscribes it; answers `"unsubscribed"` |
//! | ws `subscriptions(socket_id)` | the socket's channels, sorted |
//! | `POST /broadcast/<channel>` (JSON body) | pushes the body as event `message` to the channel; answers `{"sent": true}` |
//! | `GET /` | the page (`examples/static/websocket.html`) |
//! | `order_service`'s `order_placed` | pushes the event's payload as event `order_placed` to channel `orders` |

use nameko::prelude::*;
use nameko::web::websocket::{ConnectionNotFound, WebSocketHub};
use nameko::web::{BadRequest, json_dumps, ws_rpc};

/// The page: static HTML and JavaScript that connects to `/ws`, subscribes to
/// `orders`, lists orders as they arrive, and calls `echo` from a form.
pub const PAGE: &str = include_str!("../static/websocket.html");

/// `websocket_service`.
#[derive(Debug, Dependencies)]
pub struct WebsocketService {
    hub: WebSocketHub,
}

#[service(name = "websocket_service")]
impl WebsocketService {
    /// Answers `value`.
    #[ws_rpc]
    pub async fn echo(&self, socket_id: String, value: Value) -> Value {
        let _ = socket_id;
        value
    }

    /// Subscribes the socket to `channel`.
    #[ws_rpc]
    pub async fn subscribe(
        &self,
        socket_id: String,
        channel: String,
    ) -> Result<&'static str, ConnectionNotFound> {
        self.hub.subscribe(&socket_id, &channel)?;
        Ok("subscribed")
    }

    /// Unsubscribes the socket from `channel`.
    #[ws_rpc]
    pub async fn unsubscribe(&self, socket_id: String, channel: String) -> &'static str {
        self.hub.unsubscribe(&socket_id, &channel);
        "unsubscribed"
    }

    /// The socket's channels, sorted.
    #[ws_rpc]
    pub async fn subscriptions(&self, socket_id: String) -> Vec<String> {
        self.hub.get_subscriptions(&socket_id)
    }

    /// `POST /broadcast/<channel>` with a JSON body: pushes it as event `message`.
    #[http("POST", "/broadcast/<channel>")]
    pub async fn broadcast(&self, request: Request, channel: String) -> Result<String, BadRequest> {
        let body: Value = request.json()?;
        self.hub.broadcast(&channel, "message", body);
        Ok(json_dumps(&json!({"sent": true})))
    }

    /// `GET /`: the page.
    #[http("GET", "/")]
    pub async fn page(&self) -> Response {
        Response::new(PAGE).with_content_type("text/html; charset=utf-8")
    }

    /// Orders appear on the pages subscribed to `orders`.
    #[event_handler("order_service", "order_placed")]
    pub async fn order_placed(&self, payload: Value) {
        self.hub.broadcast("orders", "order_placed", payload);
    }
}
