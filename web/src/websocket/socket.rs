//! One connected socket: its bounded send queue and writer, and the loop that answers
//! its frames one at a time, as nameko does.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nameko_core::context::ContextData;
use parking_lot::Mutex;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::frame;
use super::server::Shared;

/// How long a close frame may take to go out before the connection is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// The upgraded connection.
pub(crate) type Stream = WebSocketStream<TokioIo<Upgraded>>;

/// What the writer sends.
enum Out {
    Text(Utf8Bytes),
    Close(CloseFrame),
}

/// A connected socket, as the hub and the server see it.
pub(crate) struct SocketHandle {
    pub(crate) id: Arc<str>,
    pub(crate) context: ContextData,
    pub(crate) subscriptions: Mutex<BTreeSet<String>>,
    queue: mpsc::Sender<Out>,
    /// Cancelled when the socket must go now (its queue overflowed, the server is
    /// killed, the connection failed).
    closing: CancellationToken,
    /// The close frame to send when `closing` is cancelled.
    reason: Mutex<Option<CloseFrame>>,
}

impl SocketHandle {
    /// Queues a frame; a full queue closes the socket (the client does not read).
    /// Returns whether the frame was queued.
    pub(crate) fn push(&self, text: Utf8Bytes) -> bool {
        match self.queue.try_send(Out::Text(text)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    socket_id = %self.id,
                    capacity = self.queue.max_capacity(),
                    "WebSocket send queue full: the client does not read; closing the socket"
                );
                self.close_now(
                    CloseCode::Policy,
                    "send queue full: the client does not read its frames",
                );
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Closes the socket at once, with a close frame if it can still be sent.
    pub(crate) fn close_now(&self, code: CloseCode, reason: &str) {
        let mut slot = self.reason.lock();
        if slot.is_none() && !self.closing.is_cancelled() {
            *slot = Some(CloseFrame {
                code,
                reason: reason.into(),
            });
        }
        drop(slot);
        self.closing.cancel();
    }

    /// Closes the socket after the frames already queued.
    fn close_after_queued(&self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if self.queue.try_send(Out::Close(frame.clone())).is_err() {
            self.close_now(frame.code, reason);
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_cancelled()
    }
}

/// Serves one upgraded connection until it closes: registers the socket, sends
/// `connected`, answers frames one at a time, and unregisters it.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: Stream,
    context: ContextData,
    stopping: CancellationToken,
    killed: &CancellationToken,
) {
    let id: Arc<str> = uuid::Uuid::new_v4().to_string().into();
    let (queue, outgoing) = mpsc::channel(shared.settings().send_queue.max(1));
    let handle = Arc::new(SocketHandle {
        id: id.clone(),
        context,
        subscriptions: Mutex::new(BTreeSet::new()),
        queue,
        closing: killed.child_token(),
        reason: Mutex::new(None),
    });
    let (sink, mut incoming) = stream.split();
    handle.push(frame::event("connected", json!({"socket_id": &*id})));
    shared.add_socket(handle.clone());
    tracing::debug!(socket_id = %id, "WebSocket connected");
    let writer = tokio::spawn(write(sink, outgoing, handle.clone()));

    loop {
        let next = tokio::select! {
            biased;
            () = handle.closing.cancelled() => break,
            () = stopping.cancelled() => {
                handle.close_after_queued(CloseCode::Away, "the server is stopping");
                break;
            }
            next = incoming.next() => next,
        };
        let payload = match next {
            Some(Ok(Message::Text(text))) => text.into(),
            Some(Ok(Message::Binary(bytes))) => bytes,
            // The close handshake completes as the stream is read on.
            Some(Ok(_)) => continue,
            Some(Err(error)) => {
                tracing::debug!(socket_id = %id, %error, "WebSocket connection failed");
                if matches!(error, tokio_tungstenite::tungstenite::Error::Capacity(_)) {
                    handle.close_now(CloseCode::Size, "message too big");
                } else {
                    handle.close_now(CloseCode::Protocol, "");
                }
                break;
            }
            None => {
                handle.closing.cancel();
                break;
            }
        };
        let answer = shared.answer(&handle, &payload).await;
        handle.push(answer);
    }
    shared.remove_socket(&id);
    // The writer ends once its close frame is out, or at once when the socket closes now.
    let _ = writer.await;
    tracing::debug!(socket_id = %id, "WebSocket disconnected");
}

/// Sends queued frames until the socket closes.
async fn write(
    mut sink: futures_util::stream::SplitSink<Stream, Message>,
    mut outgoing: mpsc::Receiver<Out>,
    handle: Arc<SocketHandle>,
) {
    let closing = handle.closing.clone();
    loop {
        let out = tokio::select! {
            biased;
            () = closing.cancelled() => break,
            out = outgoing.recv() => out,
        };
        match out {
            Some(Out::Text(text)) => {
                let sent = tokio::select! {
                    biased;
                    () = closing.cancelled() => break,
                    sent = sink.send(Message::Text(text)) => sent,
                };
                if sent.is_err() {
                    closing.cancel();
                    return;
                }
            }
            Some(Out::Close(frame)) => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame))))
                    .await;
                closing.cancel();
                return;
            }
            None => return,
        }
    }
    let reason = handle.reason.lock().take();
    if let Some(frame) = reason {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.send(Message::Close(Some(frame)))).await;
    }
}
