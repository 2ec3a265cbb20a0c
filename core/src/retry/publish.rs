//! Re-publishing a failed delivery to its delay queue, or to its dead-letter queue.

use std::sync::Arc;
use std::time::Duration;

use crate::errors::RemoteError;
use crate::transport::topology::Declaration;
use crate::transport::{
    ExchangeKind, ExchangeOptions, FieldTable, FieldValue, Message, PublishOptions, PublishOutcome,
    QueueOptions, Transport, TransportError,
};

use super::{
    ATTEMPTS_HEADER, BACKOFF_EXCHANGE, BACKOFF_HEADER, Backoff, DeadLetter, EXC_PATH_HEADER,
    EXC_TYPE_HEADER, EXPIRY_GRACE_PERIOD, ORIGINAL_QUEUE_HEADER, RETRY_ATTEMPT_HEADER,
    RETRY_EXC_TYPE_HEADER, RETRY_VALUE_HEADER, RetryEvent, VALUE_HEADER, backoff_queue_name,
    dead_letter_queue_name, listener, retries_so_far,
};

const CALL_ID_STACK_HEADER: &str = "nameko.call_id_stack";

/// What became of a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    Retried,
    DeadLettered,
}

/// Applies an entrypoint's [`Backoff`] to its failed deliveries.
#[derive(Debug)]
pub(crate) struct Retrier {
    policy: Backoff,
    queue: String,
    dead_queue: Option<String>,
    transport: Arc<dyn Transport>,
}

fn int_header(value: u64) -> FieldValue {
    i32::try_from(value).map_or_else(
        |_| FieldValue::I64(i64::try_from(value).unwrap_or(i64::MAX)),
        FieldValue::I32,
    )
}

fn millis(delay: Duration) -> u64 {
    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
}

impl Retrier {
    pub(crate) fn new(policy: Backoff, queue: &str, transport: Arc<dyn Transport>) -> Self {
        let dead_queue = match &policy.dead_letter {
            DeadLetter::Queue => Some(dead_letter_queue_name(queue)),
            DeadLetter::Exchange(_) => None,
        };
        Self {
            policy,
            queue: queue.to_owned(),
            dead_queue,
            transport,
        }
    }

    /// What the entrypoint declares besides its own queue: its dead-letter queue.
    pub(crate) fn declarations(&self) -> Option<Declaration> {
        self.dead_queue
            .as_ref()
            .map(|q| Declaration::queue(q.clone(), QueueOptions::durable()))
    }

    /// The attempt a delivery with these headers is, from 1.
    pub(crate) fn attempt_of(headers: &FieldTable) -> u32 {
        retries_so_far(headers).saturating_add(1)
    }

    /// Re-publishes a delivery whose attempt `attempt` failed with `error`: to its delay
    /// queue while retries are left, else to its dead-letter queue. The caller acks the
    /// delivery once this succeeded, and requeues it otherwise.
    pub(crate) async fn failed(
        &self,
        message: Message,
        attempt: u32,
        error: &RemoteError,
        call_id_stack: &[String],
    ) -> Result<Handled, TransportError> {
        let delay = self.policy.delay_before_retry(attempt);
        let event = RetryEvent {
            queue: self.queue.clone(),
            attempt,
            exc_type: error.exc_type.clone(),
            value: error.value.clone(),
            delay,
        };
        match delay {
            Some(delay) => {
                self.republish(message, attempt, delay, error, call_id_stack)
                    .await?;
                Self::retried(&event);
                Ok(Handled::Retried)
            }
            None => {
                self.dead_letter(message, attempt, error).await?;
                tracing::warn!(queue = %self.queue, attempts = attempt, exc_type = %error.exc_type,
                    value = %error.value, "delivery failed its last attempt; dead-lettered");
                if let Some(l) = listener() {
                    l.dead_lettered(&event);
                }
                Ok(Handled::DeadLettered)
            }
        }
    }

    /// Re-publishes a request whose attempt `attempt` failed to its delay queue, if
    /// retries are left; `Ok(false)` when none are (the caller answers with the error).
    pub(crate) async fn retry(
        &self,
        message: Message,
        attempt: u32,
        error: &RemoteError,
        call_id_stack: &[String],
    ) -> Result<bool, TransportError> {
        let Some(delay) = self.policy.delay_before_retry(attempt) else {
            return Ok(false);
        };
        self.republish(message, attempt, delay, error, call_id_stack)
            .await?;
        Self::retried(&RetryEvent {
            queue: self.queue.clone(),
            attempt,
            exc_type: error.exc_type.clone(),
            value: error.value.clone(),
            delay: Some(delay),
        });
        Ok(true)
    }

    fn retried(event: &RetryEvent) {
        tracing::info!(queue = %event.queue, attempt = event.attempt, delay = ?event.delay,
            exc_type = %event.exc_type, "delivery failed; retrying after a delay");
        if let Some(l) = listener() {
            l.retried(event);
        }
    }

    async fn republish(
        &self,
        mut message: Message,
        attempt: u32,
        delay: Duration,
        error: &RemoteError,
        call_id_stack: &[String],
    ) -> Result<(), TransportError> {
        let ms = millis(delay);
        let queue = backoff_queue_name(delay);
        let transport = self.transport.as_ref();
        // Declared on every retry, as nameko-amqp-retry does: an unused delay queue
        // expires.
        transport
            .declare_exchange(
                BACKOFF_EXCHANGE,
                ExchangeKind::Headers,
                ExchangeOptions::durable(),
            )
            .await?;
        let expires = ms.saturating_add(millis(EXPIRY_GRACE_PERIOD));
        transport
            .declare_queue(
                &queue,
                QueueOptions::durable()
                    .with_argument("x-expires", int_header(expires))
                    .with_argument("x-dead-letter-exchange", ""),
            )
            .await?;
        transport
            .bind_queue_with_arguments(
                &queue,
                BACKOFF_EXCHANGE,
                "",
                FieldTable::new()
                    .with(BACKOFF_HEADER, int_header(ms))
                    .with("x-match", "any"),
            )
            .await?;
        let headers = &mut message.properties.headers;
        headers.insert(BACKOFF_HEADER, int_header(ms));
        headers.insert(RETRY_ATTEMPT_HEADER, int_header(attempt.into()));
        headers.insert(RETRY_EXC_TYPE_HEADER, error.exc_type.as_str());
        headers.insert(RETRY_VALUE_HEADER, error.value.as_str());
        if let Some((last, parents)) = call_id_stack.split_last() {
            let mut stack: Vec<FieldValue> = parents
                .iter()
                .map(|id| FieldValue::String(id.clone()))
                .collect();
            stack.push(FieldValue::String(format!("{last}.backoff")));
            headers.insert(CALL_ID_STACK_HEADER, FieldValue::Array(stack));
        }
        message.properties.expiration = Some(ms.to_string());
        let outcome = transport
            .publish(
                BACKOFF_EXCHANGE,
                &self.queue,
                message,
                PublishOptions::default().with_mandatory(true),
            )
            .await?;
        check(outcome, &format!("re-publishing to `{queue}`"))
    }

    async fn dead_letter(
        &self,
        mut message: Message,
        attempts: u32,
        error: &RemoteError,
    ) -> Result<(), TransportError> {
        let headers = &mut message.properties.headers;
        for key in [
            BACKOFF_HEADER,
            RETRY_ATTEMPT_HEADER,
            RETRY_EXC_TYPE_HEADER,
            RETRY_VALUE_HEADER,
        ] {
            headers.remove(key);
        }
        headers.insert(EXC_TYPE_HEADER, error.exc_type.as_str());
        headers.insert(EXC_PATH_HEADER, error.exc_path.as_str());
        headers.insert(VALUE_HEADER, error.value.as_str());
        headers.insert(ATTEMPTS_HEADER, int_header(attempts.into()));
        headers.insert(ORIGINAL_QUEUE_HEADER, self.queue.as_str());
        message.properties.expiration = None;
        let options = PublishOptions::default().with_mandatory(true);
        match (&self.dead_queue, &self.policy.dead_letter) {
            (Some(dead), _) => {
                let outcome = self
                    .transport
                    .publish("", dead, message.clone(), options)
                    .await?;
                if outcome.is_returned() {
                    // The dead-letter queue was deleted since the entrypoint declared it.
                    self.transport
                        .declare_queue(dead, QueueOptions::durable())
                        .await?;
                    let outcome = self.transport.publish("", dead, message, options).await?;
                    return check(outcome, &format!("dead-lettering to `{dead}`"));
                }
                check(outcome, &format!("dead-lettering to `{dead}`"))
            }
            (None, DeadLetter::Exchange(exchange)) => {
                let outcome = self
                    .transport
                    .publish(exchange, &self.queue, message, options)
                    .await?;
                check(outcome, &format!("dead-lettering to exchange `{exchange}`"))
            }
            (None, _) => Err(TransportError::Other(
                "no dead-letter destination".to_owned(),
            )),
        }
    }
}

fn check(outcome: PublishOutcome, doing: &str) -> Result<(), TransportError> {
    match outcome {
        PublishOutcome::Confirmed | PublishOutcome::Sent => Ok(()),
        PublishOutcome::Returned { reply_text, .. } => Err(TransportError::Other(format!(
            "{doing}: returned by the broker ({reply_text})"
        ))),
        other => Err(TransportError::Other(format!("{doing}: {other:?}"))),
    }
}
