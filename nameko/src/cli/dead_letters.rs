//! The client command `dead-letters list|replay|purge <queue>`: the messages an
//! entrypoint with a retry policy gave up on (see `nameko::retry`).

use clap::{Args, Subcommand};
use nameko_core::config::Config;
use nameko_core::retry::dead_letters::{self, DeadLetter, dead_queue_of};
use nameko_core::transport::TransportError;
use serde_json::{Value, json};

use super::CliError;
use super::client::client_transport;

#[derive(Debug, Clone, Args)]
pub(super) struct DeadLettersCmd {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Clone, Subcommand)]
enum Action {
    /// Print the dead letters of QUEUE (or QUEUE.dead), one JSON object a line: body,
    /// exc_type, value, attempts, original_queue; they stay in the queue
    List(Target),
    /// Send the dead letters back to the queue they came from, to be handled afresh
    Replay(Target),
    /// Delete the dead letters
    Purge(Target),
}

#[derive(Debug, Clone, Args)]
struct Target {
    /// The entrypoint's queue (its dead letters are in QUEUE.dead), or the dead-letter
    /// queue itself
    queue: String,
    /// At most this many messages
    #[arg(long, default_value_t = 1000)]
    limit: usize,
}

fn failed(queue: &str, error: TransportError) -> CliError {
    match error {
        TransportError::NotFound(_) => CliError::Failed(format!(
            "no dead-letter queue `{}`: is an entrypoint with a retry policy consuming `{queue}`?",
            dead_queue_of(queue)
        )),
        other if other.is_connection_error() => CliError::Connection(other.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

fn as_json(letter: &DeadLetter) -> Value {
    let body = serde_json::from_slice::<Value>(&letter.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&letter.body).into_owned()));
    json!({
        "body": body,
        "exc_type": letter.exc_type,
        "value": letter.value,
        "attempts": letter.attempts,
        "original_queue": letter.original_queue,
    })
}

pub(super) async fn run(config: &Config, cmd: &DeadLettersCmd) -> Result<(), CliError> {
    let transport = client_transport(config).await?;
    let transport = transport.as_ref();
    let result = match &cmd.action {
        Action::List(target) => dead_letters::list(transport, &target.queue, target.limit)
            .await
            .map(|letters| {
                for letter in &letters {
                    println!("{}", as_json(letter));
                }
            })
            .map_err(|e| failed(&target.queue, e)),
        Action::Replay(target) => dead_letters::replay(transport, &target.queue, target.limit)
            .await
            .map(|n| {
                println!(
                    "replayed {n} message(s) from {}",
                    dead_queue_of(&target.queue)
                )
            })
            .map_err(|e| failed(&target.queue, e)),
        Action::Purge(target) => dead_letters::purge(transport, &target.queue, target.limit)
            .await
            .map(|n| {
                println!(
                    "purged {n} message(s) from {}",
                    dead_queue_of(&target.queue)
                )
            })
            .map_err(|e| failed(&target.queue, e)),
    };
    let _ = transport.close().await;
    result
}
