//! The `shell` command of the `nameko` tool and of service binaries.

use std::io::IsTerminal;
use std::sync::Arc;

use clap::Args;
use nameko_core::config::redact_uri;
use nameko_core::dependency::States;
use nameko_core::runner::{RunnerError, ServiceRunner};

use super::{ManagementDirectory, MemoryDirectory, ServiceDirectory, Shell, editor};
use crate::cli::{CliError, ConfigArgs, exit, load_config};
use crate::connect::{Broker, Connector, memory_broker};
use crate::logging;

/// How a service binary adds one of its services to a runner.
pub(crate) type AddService = fn(&ServiceRunner) -> Result<(), RunnerError>;

pub(crate) const SHELL_HELP: &str = "\
In the shell, n.rpc.<service>.<method>(...) calls a service, as in Python nameko:
  >>> n.rpc.calculator.add(1, 2)
  3.0
  >>> n.rpc[\"service_x\"].remote_method(\"hello\")
  >>> n.rpc.user_service.calculate_user_score(1, base_score=10, multiplier=1.5)
  >>> r = n.rpc.calculator.multiply.call_async(6, 7); r.result()
  >>> n.dispatch_event(\"order_service\", \"order_placed\", {\"order_id\": 1})
  >>> n.context(user_id=7, language=\"en\"); n.timeout(5); n.config
help() in the shell tells more. Lines piped on stdin run as a script: each result is
printed, and the first error ends it with the exit code below. History is kept in the
user's data directory (e.g. ~/.local/share/nameko/shell_history).
A service binary's shell on an in-process broker (memory://) first starts the binary's
own services in the process.";

/// `shell`'s own options (the broker and config options are every command's).
#[derive(Debug, Clone, Args)]
pub(crate) struct ShellCmd {}

/// Runs `shell`: connects like `call`, starts `local` services first on an in-process
/// broker, then reads the terminal (or runs standard input as a script).
pub(crate) async fn main(
    args: &ConfigArgs,
    _cmd: ShellCmd,
    default_broker: &str,
    local: &[AddService],
    states: &States,
) -> Result<(), CliError> {
    let config = load_config(args, default_broker)?;
    // Nothing but its own output by default (`-v` for more): the shell prints what goes
    // wrong with each line itself, and logs would mix with its output.
    logging::init_client(args.verbosity()).map_err(|e| CliError::Usage(e.to_string()))?;
    let connector = Connector::from_config(&config)?;
    let broker = connector.broker().clone();
    let mut directory: Option<Arc<dyn ServiceDirectory>> = None;
    let mut runner = None;
    if let Broker::Memory(name) = &broker {
        if local.is_empty() {
            return Err(CliError::Usage(format!(
                "AMQP_URI is {broker}, an in-process broker, which no other process can \
                 reach; set AMQP_URI (or --broker) to the cluster's RabbitMQ"
            )));
        }
        let services = ServiceRunner::with_connector(config.clone(), {
            let connector = connector.clone();
            move |service| {
                let connector = connector.clone();
                async move { connector.connect_as(service).await }
            }
        })
        .with_states(states.clone());
        for add in local {
            add(&services).map_err(|e| CliError::Usage(e.to_string()))?;
        }
        services
            .start()
            .await
            .map_err(|e| CliError::Failed(format!("the services did not start: {e}")))?;
        runner = Some(services);
        directory = Some(Arc::new(MemoryDirectory::new(memory_broker(name))));
    }
    if let Broker::Amqp(uri) = &broker {
        match ManagementDirectory::for_broker(uri) {
            Ok(management) => directory = Some(Arc::new(management)),
            Err(error) => tracing::debug!(%error, "no management API for completion"),
        }
    }
    let transport = connector.connect().await?;
    let code = match Shell::start(transport.clone(), config).await {
        Ok(shell) => {
            let mut shell = match directory {
                Some(directory) => shell.with_directory(directory),
                None => shell,
            };
            shell.refresh_services().await;
            let code = if std::io::stdin().is_terminal() {
                let banner = format!(
                    "Nameko shell (nameko-rs {}) on {}\nBroker: {}\n\
                     Type help() for help; Tab completes; Ctrl-D exits.",
                    env!("CARGO_PKG_VERSION"),
                    std::env::consts::OS,
                    redact_uri(&broker.to_string()),
                );
                editor::run(&mut shell, &banner).await
            } else {
                let mut out = std::io::stdout();
                let mut err = std::io::stderr();
                shell
                    .run_script(
                        tokio::io::BufReader::new(tokio::io::stdin()),
                        &mut out,
                        &mut err,
                    )
                    .await
            };
            shell.close().await;
            Ok(code)
        }
        Err(error) => Err(error),
    };
    let _ = transport.close().await;
    if let Some(runner) = runner {
        runner.stop().await;
    }
    match code {
        Ok(exit::OK) => Ok(()),
        Ok(code) => Err(CliError::Reported(code)),
        Err(error) => {
            let code = error.exit_code();
            eprintln!("{error}");
            Err(CliError::Reported(code))
        }
    }
}
