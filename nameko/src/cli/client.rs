//! The client commands `call` and `dispatch`.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use nameko_core::config::{Config, parse_define, redact_uri};
use nameko_core::context::ContextData;
use nameko_core::dependency::States;
use nameko_core::errors::RpcError;
use nameko_core::events::{EventError, StandaloneDispatcher};
use nameko_core::rpc::ClusterRpcProxy;
use nameko_core::transport::Transport;
use nameko_core::wire::CallArgs;
use serde_json::Value;

use super::{CliError, ClientCommand, ConfigArgs, load_config};
use crate::connect::Connector;
use crate::logging;

pub(super) const CALL_HELP: &str = "\
ARGS is JSON: a list is the list of positional arguments ('[1, \"a\"]'); any other
value is the only argument ('\"hello\"', '5', '{\"a\": 1}'); to pass one list, wrap it:
'[[1, 2]]'. Without ARGS the method gets no positional arguments. Strings need JSON
quotes. The result is printed as JSON on stdout.";

#[derive(Debug, Clone, Args)]
pub(super) struct CallCmd {
    /// The method to call, as SERVICE.METHOD
    #[arg(value_name = "SERVICE.METHOD")]
    target: String,

    /// Positional arguments as JSON (see below)
    #[arg(value_name = "ARGS")]
    args: Option<String>,

    /// Keyword arguments as a JSON object
    #[arg(long, value_name = "JSON")]
    kwargs: Option<String>,

    /// Context data sent with the call (repeatable), e.g. language=en or user_id=42;
    /// VALUE is parsed as YAML
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,

    /// Seconds to wait for the reply (default: the config's RPC_TIMEOUT, 30)
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    timeout: Option<Duration>,

    /// Print the result as indented JSON
    #[arg(long)]
    pretty: bool,
}

#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub(super) struct DispatchCmd {
    /// The service the event claims to come from
    source: String,
    /// The event type
    event_type: String,
    /// The event's payload, as JSON
    #[arg(value_name = "PAYLOAD_JSON")]
    payload: String,
}

pub(super) async fn client(
    args: &ConfigArgs,
    command: ClientCommand,
    default_broker: &str,
) -> Result<(), CliError> {
    if let ClientCommand::Shell(shell) = command {
        return crate::shell::main(args, shell, default_broker, &[], &States::new()).await;
    }
    let config = load_config(args, default_broker)?;
    if let ClientCommand::ShowConfig = command {
        print!("{}", config.redacted().to_yaml_string());
        return Ok(());
    }
    logging::init_client(args.verbosity()).map_err(|e| CliError::Usage(e.to_string()))?;
    match command {
        ClientCommand::Call(call) => self::call(&config, &call).await,
        ClientCommand::Dispatch(dispatch) => self::dispatch(&config, &dispatch).await,
        ClientCommand::DeadLetters(cmd) => super::dead_letters::run(&config, &cmd).await,
        ClientCommand::ShowConfig | ClientCommand::Shell(_) => Ok(()),
    }
}

/// Connects for a client command; the in-process broker cannot reach services of other
/// processes, so it is refused.
pub(super) async fn client_transport(config: &Config) -> Result<Arc<dyn Transport>, CliError> {
    let connector = Connector::from_config(config)?;
    if connector.broker().is_memory() {
        return Err(CliError::Usage(format!(
            "AMQP_URI is {}, an in-process broker, which no other process can reach; \
             set AMQP_URI (or --broker) to the cluster's RabbitMQ",
            connector.broker()
        )));
    }
    Ok(connector.connect().await?)
}

async fn call(config: &Config, cmd: &CallCmd) -> Result<(), CliError> {
    let (service, method) = cmd
        .target
        .split_once('.')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty())
        .ok_or_else(|| {
            CliError::Usage(format!(
                "`{}` is not SERVICE.METHOD (e.g. greeting.hello)",
                cmd.target
            ))
        })?;
    let mut args = match &cmd.args {
        None => CallArgs::new(),
        Some(text) => match parse_json("ARGS", text)? {
            Value::Array(values) => CallArgs::positional(values),
            value => CallArgs::positional(vec![value]),
        },
    };
    if let Some(text) = &cmd.kwargs {
        match parse_json("--kwargs", text)? {
            Value::Object(map) => {
                for (key, value) in map {
                    args = args.kwarg(key, value);
                }
            }
            other => {
                return Err(CliError::Usage(format!(
                    "--kwargs must be a JSON object, not {}",
                    nameko_core::wire::json_kind(&other)
                )));
            }
        }
    }
    let mut context = ContextData::new();
    for item in &cmd.context {
        if !item.contains('=') {
            return Err(CliError::Usage(format!(
                "--context `{}` is not KEY=VALUE",
                redact_uri(item)
            )));
        }
        let (key, value) = parse_define(item).map_err(|e| CliError::Usage(e.to_string()))?;
        context.set(key, value);
    }
    let timeout = match cmd.timeout {
        Some(timeout) => timeout,
        None => config
            .rpc_timeout()
            .map_err(|e| CliError::Usage(e.to_string()))?,
    };
    let transport = client_transport(config).await?;
    let result = async {
        let proxy = ClusterRpcProxy::start_with_context(transport.clone(), config, context)
            .await
            .map_err(|e| rpc_error(e, service, method))?;
        let result = proxy
            .service(service)
            .with_timeout(timeout)
            .call::<Value>(method, args)
            .await;
        proxy.stop().await;
        result.map_err(|e| rpc_error(e, service, method))
    }
    .await;
    let _ = transport.close().await;
    let value = result?;
    let text = if cmd.pretty {
        serde_json::to_string_pretty(&value)
    } else {
        serde_json::to_string(&value)
    }
    .map_err(|e| CliError::Failed(format!("cannot print the result: {e}")))?;
    println!("{text}");
    Ok(())
}

fn rpc_error(error: RpcError, service: &str, method: &str) -> CliError {
    if let Some(remote) = error.remote() {
        return CliError::Remote(format!("{}: {}", remote.exc_type, remote.value));
    }
    match error {
        RpcError::MethodNotFound(value) => CliError::Remote(format!("MethodNotFound: {value}")),
        RpcError::IncorrectSignature(value) => {
            CliError::Remote(format!("IncorrectSignature: {value}"))
        }
        RpcError::MalformedRequest(value) => CliError::Remote(format!("MalformedRequest: {value}")),
        RpcError::UnknownService(name) => CliError::UnknownService(format!(
            "Unknown service `{name}`: no service of that name is listening"
        )),
        RpcError::Timeout(after) => CliError::Timeout(format!(
            "no reply from {service}.{method} within {} s",
            after.as_secs_f64()
        )),
        RpcError::Transport(e) if e.is_connection_error() => {
            CliError::Connection(format!("lost the broker: {e}"))
        }
        RpcError::InvalidArguments(message) => CliError::Usage(message),
        other => CliError::Failed(other.to_string()),
    }
}

async fn dispatch(config: &Config, cmd: &DispatchCmd) -> Result<(), CliError> {
    let payload = parse_json("PAYLOAD_JSON", &cmd.payload)?;
    let transport = client_transport(config).await?;
    let result = async {
        let dispatcher = StandaloneDispatcher::new(transport.clone(), config)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        dispatcher
            .dispatch(&cmd.source, &cmd.event_type, payload)
            .await
            .map_err(|error| match error {
                EventError::Transport(e) if e.is_connection_error() => {
                    CliError::Connection(format!("lost the broker: {e}"))
                }
                EventError::Payload(message) => CliError::Usage(message),
                other => CliError::Failed(other.to_string()),
            })
    }
    .await;
    let _ = transport.close().await;
    result
}

fn parse_json(what: &str, text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text).map_err(|e| {
        CliError::Usage(format!(
            "{what} is not valid JSON ({e}); strings need JSON quotes, e.g. '\"hello\"'"
        ))
    })
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if seconds <= 0.0 {
        return Err("the timeout must be positive".to_owned());
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::exit;

    #[test]
    fn seconds_must_be_positive_numbers() {
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }

    #[test]
    fn remote_errors_print_as_exc_type_and_value() {
        let remote = nameko_core::errors::RemoteError::new(
            "ValueError",
            "builtins.ValueError",
            ["bad"],
            "bad",
        );
        let error = rpc_error(RpcError::Remote(remote), "s", "m");
        assert_eq!(error.to_string(), "ValueError: bad");
        assert_eq!(error.exit_code(), exit::REMOTE_ERROR);
        let missing = rpc_error(RpcError::MethodNotFound("nope".to_owned()), "s", "m");
        assert_eq!(missing.to_string(), "MethodNotFound: nope");
        let timeout = rpc_error(RpcError::Timeout(Duration::from_millis(1500)), "s", "m");
        assert_eq!(
            timeout.to_string(),
            "RpcTimeout: no reply from s.m within 1.5 s"
        );
        assert_eq!(timeout.exit_code(), exit::TIMEOUT);
        let unknown = rpc_error(RpcError::UnknownService("s".to_owned()), "s", "m");
        assert_eq!(unknown.exit_code(), exit::UNKNOWN_SERVICE);
    }
}
