//! Mapping lapin's errors and AMQP reply codes to [`TransportError`].

use lapin::ErrorKind;
use nameko_transport::TransportError;

/// The error for an AMQP reply code and the broker's reply text.
pub(crate) fn from_reply(code: u16, text: &str) -> TransportError {
    match code {
        403 => TransportError::AccessRefused(text.to_owned()),
        404 => TransportError::NotFound(text.to_owned()),
        405 => TransportError::ResourceLocked(text.to_owned()),
        406 => TransportError::PreconditionFailed(text.to_owned()),
        // Hard errors close the whole connection.
        320 | 501..=506 | 530 | 540 | 541 => {
            TransportError::Disconnected(format!("connection closed by the broker: {text}"))
        }
        _ => TransportError::Other(format!("broker replied {code}: {text}")),
    }
}

/// The error for a failed broker operation.
pub(crate) fn from_lapin(err: &lapin::Error) -> TransportError {
    match err.kind() {
        ErrorKind::ProtocolError(amqp) => from_reply(amqp.get_id(), amqp.get_message().as_str()),
        ErrorKind::IOError(_)
        | ErrorKind::RuntimeShutdownError(_)
        | ErrorKind::MissingHeartbeatError
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidConnectionState(_) => TransportError::Disconnected(err.to_string()),
        _ => TransportError::Other(err.to_string()),
    }
}

/// The broker's reply code and text, when the error is an AMQP protocol error.
pub(crate) fn reply_of(err: &lapin::Error) -> Option<(u16, &str)> {
    match err.kind() {
        ErrorKind::ProtocolError(amqp) => Some((amqp.get_id(), amqp.get_message().as_str())),
        _ => None,
    }
}

/// The error for a failed connection attempt, with anything that could be the password
/// removed. A refused login is [`TransportError::AccessRefused`] (retrying will not help);
/// everything else is [`TransportError::Connect`].
pub(crate) fn from_connect(err: &lapin::Error, scrub: impl Fn(&str) -> String) -> TransportError {
    match reply_of(err) {
        Some((403, text)) => TransportError::AccessRefused(scrub(text)),
        Some((code, text)) => TransportError::Connect(scrub(&format!("{code} {text}"))),
        None => TransportError::Connect(scrub(&err.to_string())),
    }
}
