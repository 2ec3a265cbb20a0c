//! WebSocket RPC and the WebSocket hub: nameko's `nameko.web.websocket`, frame for
//! frame, on the process's web server (same `WEB_SERVER_ADDRESS`, path `/ws`).
//!
//! ```
//! use nameko::prelude::*;
//! use nameko::web::{http, ws_rpc};
//! use nameko::web::websocket::{ConnectionNotFound, WebSocketHub};
//!
//! #[derive(Dependencies)]
//! struct WebsocketService {
//!     hub: WebSocketHub,
//! }
//!
//! #[service(name = "websocket_service")]
//! impl WebsocketService {
//!     /// `{"method": "echo", "data": {"value": 1}}` is answered with `1`.
//!     #[ws_rpc]
//!     async fn echo(&self, socket_id: String, value: Value) -> Value {
//!         value
//!     }
//!
//!     #[ws_rpc]
//!     async fn subscribe(&self, socket_id: String, channel: String) -> Result<&'static str, ConnectionNotFound> {
//!         self.hub.subscribe(&socket_id, &channel)?;
//!         Ok("subscribed")
//!     }
//!
//!     /// Pushes the body to the channel's sockets.
//!     #[http("POST", "/broadcast/<channel>")]
//!     async fn broadcast(&self, request: Request, channel: String) -> Result<String, nameko::web::BadRequest> {
//!         let body: Value = request.json()?;
//!         self.hub.broadcast(&channel, "message", body);
//!         Ok(nameko::web::json_dumps(&json!({"sent": true})))
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! # The protocol
//!
//! - On connecting, a socket gets `{"type": "event", "event": "connected", "data":
//!   {"socket_id": "<uuid4>"}}`.
//! - A frame `{"method": "<name>", "data": {<keyword arguments>}, "correlation_id":
//!   <anything>}` (text or binary) calls the `#[ws_rpc]` method of that name with the
//!   socket id first. The answer is `{"type": "result", "success": true, "data":
//!   <result>, "correlation_id": <the same>}`, or `"success": false` with nameko's
//!   error dict (`exc_type`, `exc_path`, `exc_args`, `value`) under `"error"`: a frame
//!   that is not a JSON object with a `method` is `MalformedRequest` (`correlation_id`
//!   `null`), an unknown method `MethodNotFound`, arguments that do not fit
//!   `IncorrectSignature` with Python's wording, and the method's own errors as an RPC
//!   caller gets them. A bad frame never closes the socket.
//! - Frames of one socket are answered one at a time, in order, each in a worker of
//!   the method's service (counted against its `max_workers`), with the context data
//!   that the web server's hook ([`WebConfig::context_data_from_headers`]) took from
//!   the upgrade request.
//! - [`WebSocketHub`] pushes `{"type": "event", "event": ..., "data": ...}` frames.
//!
//! One process has one `/ws`: a socket calls the methods of every service of the
//! process (two services with a WebSocket method of the same name are refused), and
//! every hub of the process reaches every socket.
//!
//! # Limits and shutdown
//!
//! Each socket has a bounded send queue (`WEBSOCKET_SEND_QUEUE` frames, default 256):
//! a client that stops reading is closed with code 1008 and a reason once its queue is
//! full, so it cannot make the server buffer without bound (size the queue for the
//! largest burst of pushes a healthy client must take). A message larger than
//! `MAX_WEBSOCKET_MESSAGE` (default 1 MiB) closes the socket with 1009; more than
//! `MAX_WEBSOCKETS` sockets (default 10,000) are refused with 503. A graceful stop
//! stops reading frames, lets the calls in flight answer, then closes every socket with
//! a close frame (1001, `the server is stopping`), within `SHUTDOWN_TIMEOUT`.
//!
//! [`WebConfig::context_data_from_headers`]: crate::WebConfig::context_data_from_headers

mod entrypoint;
mod frame;
mod hub;
mod server;
mod socket;

pub use entrypoint::WsRpc;
pub use hub::{ConnectionNotFound, WebSocketHub, WebSocketHubProvider};
pub use server::{
    MAX_WEBSOCKET_MESSAGE, MAX_WEBSOCKETS, WEBSOCKET_PATH, WEBSOCKET_SEND_QUEUE, WebSocketServer,
    WebSocketSettings,
};
