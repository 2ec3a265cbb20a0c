//! nameko's command line: `run` for service binaries, and the client commands `call`,
//! `dispatch`, `shell` (see [`shell`](crate::shell)) and `show-config`, which the `nameko`
//! tool offers on its own.
//!
//! A service binary gets the whole command line from a one-line `main`:
//!
//! ```no_run
//! use nameko::prelude::*;
//!
//! #[derive(Dependencies)]
//! struct ServiceY;
//!
//! #[service(name = "service_y")]
//! impl ServiceY {
//!     #[rpc]
//!     async fn append_identifier(&self, value: String) -> String {
//!         format!("{value}-y")
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     nameko::cli::main(nameko::services![ServiceY])
//! }
//! ```
//!
//! ```text
//! $ my-services run --config config.yaml -d max_workers=4
//! $ my-services run service_y --broker amqp://guest:guest@rabbit:5672/
//! $ my-services show-config --config config.yaml
//! $ my-services call service_y.append_identifier '"x"'
//! $ my-services asyncapi --format yaml > asyncapi.yaml
//! ```
//!
//! # Configuration
//!
//! Every command reads the same options, before or after the command name:
//!
//! - `-c`/`--config FILE`: a YAML file in nameko's format, with `${VAR}` and
//!   `${VAR:default}` substituted from the environment;
//! - `-d`/`--define KEY=VALUE` (repeatable): overrides a key; the value is parsed as YAML
//!   and a bare `KEY` means `true`;
//! - `--broker URI`, or the `AMQP_URI` environment variable: the broker, used only when
//!   the file and the defines leave `AMQP_URI` unset (as in nameko 3). Without any of
//!   them, nameko's default `amqp://guest:guest@localhost:5672/`, or what
//!   [`Cli::default_broker`] says.
//!
//! # `run`
//!
//! Starts every service (or those named), one container and one connection each, logs
//! which services started and on which broker (without its password), and serves until
//! `SIGTERM` or Ctrl-C. The first signal stops gracefully within `SHUTDOWN_TIMEOUT`; a
//! second one kills (see [`serve`](crate::serve)). Logging follows `RUST_LOG` or the
//! config's `LOGGING` (see [`logging`]).
//!
//! # `asyncapi`
//!
//! Prints the AsyncAPI 3.0 document of the binary's services (see
//! [`asyncapi`](mod@crate::asyncapi)): JSON by default, `--format yaml`, `--output FILE`;
//! `--title` and `--api-version` set `info.title` and `info.version`. Its servers are the
//! brokers of the configuration, passwords hidden. Nothing connects to a broker.
//!
//! # Exit codes
//!
//! See [`exit`].

mod client;
mod dead_letters;
mod error;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use nameko_core::config::{AMQP_URI, Config, DEFAULT_AMQP_URI, ProcessEnv, redact_uri};
use nameko_core::dependency::States;
use nameko_core::runner::{RunnerError, ServiceRunner};
use nameko_core::service::Service;
use nameko_core::service::schema::ServiceDescription;

use crate::asyncapi::{AsyncApiError, Describe, Format};
use crate::connect::Connector;
use crate::logging;
use client::{CALL_HELP, CallCmd, DispatchCmd, client};
pub(crate) use error::CliError;
use error::{clap_exit, report, start_error};

/// The exit codes of the `nameko` tool and of service binaries.
///
/// | Code | `call`, `dispatch`, `show-config` | `run` |
/// |---|---|---|
/// | 0 | success | stopped gracefully after a signal |
/// | 1 | the service answered with an error | a service crashed or failed to start |
/// | 2 | usage error: arguments, JSON, config | usage error: arguments, config |
/// | 3 | unknown service | |
/// | 4 | timeout | |
/// | 5 | cannot connect to the broker | cannot connect to the broker |
/// | 6 | any other failure | any other failure |
/// | 7 | | stop forced: the shutdown deadline passed with workers running, or a second signal killed the services |
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// `call`: the service answered with an error (`exc_type: value` on standard error).
    pub const REMOTE_ERROR: u8 = 1;
    /// `run`: a service crashed, or failed to start.
    pub const CRASHED: u8 = 1;
    /// Bad arguments, bad JSON, an unreadable or invalid configuration.
    pub const USAGE: u8 = 2;
    /// `call`: no service of that name is listening.
    pub const UNKNOWN_SERVICE: u8 = 3;
    /// `call`: no reply in time.
    pub const TIMEOUT: u8 = 4;
    /// The broker cannot be reached, or refused the connection.
    pub const CONNECTION: u8 = 5;
    /// Any other failure.
    pub const FAILURE: u8 = 6;
    /// `run`: the stop was forced, by the shutdown deadline or a second signal.
    pub const FORCED: u8 = 7;
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (run: stopped gracefully)
  1  call: the service answered with an error, printed as `exc_type: value` on stderr
     run: a service crashed or failed to start
  2  usage error: bad arguments, bad JSON, unreadable or invalid config
  3  unknown service: no service of that name is listening
  4  timeout: no reply within --timeout (default: RPC_TIMEOUT, 30 s)
  5  cannot connect to the broker
  6  any other failure
  7  run: stop forced (shutdown deadline passed, or a second signal)";

fn broker_help(default_broker: &str) -> String {
    format!(
        "The broker is AMQP_URI from --config or --define; else --broker; else the AMQP_URI\n\
         environment variable; else {}. Passwords are never printed.",
        redact_uri(default_broker)
    )
}

const TOOL_EXAMPLES: &str = "\
Examples:
  nameko call greeting.hello '\"Matt\"'                   one argument
  nameko call calculator.add '[1, 2]'                   positional arguments
  nameko call users.create --kwargs '{\"name\": \"Ada\"}' --context language=en
  nameko call reports.build --timeout 120 --broker amqp://guest:guest@rabbit:5672/
  nameko dispatch orders order_placed '{\"order_id\": 1}'
  nameko shell --broker amqp://guest:guest@rabbit:5672/   then: n.rpc.calculator.add(1, 2)
  nameko show-config --config config.yaml -d max_workers=4";

/// Options every command reads.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ConfigArgs {
    /// YAML config file (nameko's format; `${VAR}` and `${VAR:default}` are substituted
    /// from the environment)
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,

    /// Override a config key (repeatable); VALUE is parsed as YAML, a bare KEY means true
    #[arg(short = 'd', long = "define", value_name = "KEY=VALUE", global = true)]
    define: Vec<String>,

    /// Broker URI, used when the config does not set AMQP_URI
    #[arg(
        long,
        value_name = "URI",
        env = "AMQP_URI",
        hide_env_values = true,
        global = true
    )]
    broker: Option<String>,

    /// Log more: client commands print only their own output unless given -v (warnings),
    /// -vv (info), -vvv (debug); `run` logs at LOGGING (INFO by default), -v debug, -vv
    /// trace. RUST_LOG overrides both
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count, global = true)]
    verbose: u8,
}

impl ConfigArgs {
    /// How many `-v` were given.
    pub(crate) fn verbosity(&self) -> u8 {
        self.verbose
    }
}

/// The client commands.
#[derive(Debug, Clone, Subcommand)]
enum ClientCommand {
    /// Call a service's RPC method and print its result as JSON
    #[command(after_help = CALL_HELP, allow_negative_numbers = true)]
    Call(CallCmd),
    /// Dispatch an event as if service SOURCE had dispatched it
    Dispatch(DispatchCmd),
    /// Print the configuration after environment substitution, passwords hidden
    ShowConfig,
    /// Look at, replay or purge the dead letters of a queue (messages whose retries ran out)
    DeadLetters(dead_letters::DeadLettersCmd),
    /// An interactive shell on the cluster: n.rpc.<service>.<method>(...) as in Python nameko
    #[command(after_help = crate::shell::SHELL_HELP)]
    Shell(crate::shell::ShellCmd),
}

#[derive(Debug, Clone, Args)]
struct RunCmd {
    /// Services to run (default: all of them)
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
}

/// The `nameko` tool.
#[derive(Debug, Parser)]
#[command(
    name = "nameko",
    version,
    about = "Call services, dispatch events and open a shell on a nameko cluster (Python or Rust).",
    after_help = format!("{TOOL_EXAMPLES}\n\n{}\n\n{EXIT_CODES_HELP}", broker_help(DEFAULT_AMQP_URI)),
    propagate_version = true
)]
struct ToolArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: ClientCommand,
}

/// A service binary.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Run nameko services, call them, and dispatch events."
)]
struct ServiceArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: ServiceCommand,
}

/// `asyncapi`'s options.
#[derive(Debug, Clone, Args)]
struct AsyncapiCmd {
    /// The document's format
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write the document to FILE instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The document's title (info.title; default: the services' names)
    #[arg(long)]
    title: Option<String>,
    /// The version of the API the document describes (info.version)
    #[arg(long = "api-version", value_name = "VERSION", default_value = "1.0.0")]
    api_version: String,
}

#[derive(Debug, Clone, Subcommand)]
enum ServiceCommand {
    /// Run the services until SIGTERM or Ctrl-C (a second Ctrl-C kills them)
    Run(RunCmd),
    /// Print the AsyncAPI 3.0 document of the services: channels, operations, message schemas
    Asyncapi(AsyncapiCmd),
    #[command(flatten)]
    Client(ClientCommand),
}

/// One service a [`Cli`] can run.
#[derive(Clone, Copy)]
struct Registration {
    name: &'static str,
    add: fn(&ServiceRunner) -> Result<(), RunnerError>,
    describe: Describe,
}

fn add_service<S: Service>(runner: &ServiceRunner) -> Result<(), RunnerError> {
    runner.add::<S>().map(|_| ())
}

/// The command line of a service binary: build it with [`services!`](crate::services)
/// (or [`Cli::new`] and [`Cli::service`]) and hand it to [`main`].
///
/// ```no_run
/// # use nameko::prelude::*;
/// # #[derive(Dependencies)] struct ServiceX;
/// # #[service(name = "service_x")] impl ServiceX { #[rpc] async fn ping(&self) {} }
/// # #[derive(Dependencies)] struct ServiceY;
/// # #[service(name = "service_y")] impl ServiceY { #[rpc] async fn ping(&self) {} }
/// fn main() -> std::process::ExitCode {
///     nameko::services![ServiceX, ServiceY].default_broker("memory://").main()
/// }
/// ```
#[derive(Clone)]
#[must_use]
pub struct Cli {
    services: Vec<Registration>,
    default_broker: String,
    states: States,
}

impl fmt::Debug for Cli {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cli")
            .field(
                "services",
                &self.services.iter().map(|s| s.name).collect::<Vec<_>>(),
            )
            .field("default_broker", &redact_uri(&self.default_broker))
            .field("states", &self.states)
            .finish()
    }
}

impl Default for Cli {
    fn default() -> Self {
        Self::new()
    }
}

impl Cli {
    /// A command line without services yet, whose default broker is nameko's
    /// `amqp://guest:guest@localhost:5672/`.
    pub fn new() -> Self {
        Self {
            services: Vec::new(),
            default_broker: DEFAULT_AMQP_URI.to_owned(),
            states: States::new(),
        }
    }

    /// Adds a service for `run`.
    pub fn service<S: Service>(mut self) -> Self {
        self.services.push(Registration {
            name: S::name(),
            add: add_service::<S>,
            describe: ServiceDescription::of::<S>,
        });
        self
    }

    /// Gives `value` to the [`State<T>`](crate::dependency::State) fields of its type in
    /// every service the binary runs (with `run`, or in its shell's playground).
    ///
    /// ```no_run
    /// use std::sync::Arc;
    ///
    /// use nameko::prelude::*;
    ///
    /// #[derive(Debug, Clone)]
    /// struct Prices(Arc<Vec<(String, f64)>>);
    ///
    /// #[derive(Dependencies)]
    /// struct Shop {
    ///     prices: State<Prices>,
    /// }
    ///
    /// #[service(name = "shop")]
    /// impl Shop {
    ///     #[rpc]
    ///     async fn price(&self, item: String) -> Option<f64> {
    ///         self.prices.0.iter().find(|(name, _)| *name == item).map(|(_, p)| *p)
    ///     }
    /// }
    ///
    /// fn main() -> std::process::ExitCode {
    ///     let prices = Prices(Arc::new(vec![("tea".to_owned(), 2.5)]));
    ///     nameko::services![Shop].with_state(prices).main()
    /// }
    /// ```
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.states.insert(value);
        self
    }

    /// The broker used when neither the config, `--broker` nor the environment names one;
    /// `memory://` runs everything in-process.
    pub fn default_broker(mut self, uri: impl Into<String>) -> Self {
        self.default_broker = uri.into();
        self
    }

    /// The names of the services, in the order they were added.
    #[must_use]
    pub fn service_names(&self) -> Vec<&'static str> {
        self.services.iter().map(|s| s.name).collect()
    }

    /// How to describe each service, for its AsyncAPI document.
    pub(crate) fn describers(&self) -> Vec<(&'static str, Describe)> {
        self.services.iter().map(|s| (s.name, s.describe)).collect()
    }

    /// The broker used when nothing else names one.
    pub(crate) fn default_broker_uri(&self) -> &str {
        &self.default_broker
    }

    /// Runs the command line of this process on a new tokio runtime, and returns the
    /// exit code to end with.
    pub fn main(self) -> ExitCode {
        self.main_from(std::env::args_os())
    }

    /// As [`Cli::main`], with these arguments (the first is the program's name).
    pub fn main_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        block_on(self.execute(args))
    }

    /// Runs a command line on the current tokio runtime and returns its exit code.
    pub async fn execute<I, T>(self, args: I) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let bin = args
            .first()
            .and_then(|a| std::path::Path::new(a).file_name())
            .map_or_else(
                || "service".to_owned(),
                |n| n.to_string_lossy().into_owned(),
            );
        let command = ServiceArgs::command()
            .name(bin.clone())
            .bin_name(bin)
            .about(format!(
                "Run nameko services ({}), call them, and dispatch events.",
                self.service_names().join(", ")
            ))
            .after_help(format!(
                "{}\n\n{EXIT_CODES_HELP}",
                broker_help(&self.default_broker)
            ));
        let parsed = match command
            .try_get_matches_from(args)
            .and_then(|m| ServiceArgs::from_arg_matches(&m))
        {
            Ok(parsed) => parsed,
            Err(error) => return clap_exit(&error),
        };
        let result = match parsed.command {
            ServiceCommand::Run(run) => self.run(&parsed.config, &run).await,
            ServiceCommand::Asyncapi(cmd) => self.asyncapi(&parsed.config, &cmd),
            ServiceCommand::Client(ClientCommand::Shell(shell)) => {
                let local: Vec<_> = self.services.iter().map(|s| s.add).collect();
                crate::shell::main(
                    &parsed.config,
                    shell,
                    &self.default_broker,
                    &local,
                    &self.states,
                )
                .await
            }
            ServiceCommand::Client(command) => {
                client(&parsed.config, command, &self.default_broker).await
            }
        };
        report(result)
    }

    fn asyncapi(&self, args: &ConfigArgs, cmd: &AsyncapiCmd) -> Result<(), CliError> {
        let config = load_config(args, &self.default_broker)?;
        let mut api = crate::asyncapi(self.clone())
            .config(config)
            .version(cmd.api_version.clone());
        if let Some(title) = &cmd.title {
            api = api.title(title.clone());
        }
        let text = api.render(cmd.format).map_err(|error| match error {
            AsyncApiError::Config(_) | AsyncApiError::Broker(_) => {
                CliError::Usage(error.to_string())
            }
            other => CliError::Failed(other.to_string()),
        })?;
        match &cmd.output {
            Some(path) => std::fs::write(path, text)
                .map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display()))),
            None => {
                use std::io::Write as _;
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(text.as_bytes())
                    .and_then(|()| stdout.flush())
                    .map_err(|e| CliError::Failed(format!("cannot write the document: {e}")))
            }
        }
    }

    async fn run(&self, args: &ConfigArgs, run: &RunCmd) -> Result<(), CliError> {
        let config = load_config(args, &self.default_broker)?;
        logging::init_service(&config, args.verbosity())
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let selected: Vec<Registration> = if run.services.is_empty() {
            self.services.clone()
        } else {
            run.services
                .iter()
                .map(|name| {
                    self.services
                        .iter()
                        .find(|s| s.name == name)
                        .copied()
                        .ok_or_else(|| {
                            CliError::Usage(format!(
                                "no service `{name}` here; the services are: {}",
                                self.service_names().join(", ")
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        if selected.is_empty() {
            return Err(CliError::Usage("there are no services to run".to_owned()));
        }
        let connector = Connector::from_config(&config)?;
        let broker = connector.broker().to_string();
        let runner = ServiceRunner::with_connector(config, move |service| {
            let connector = connector.clone();
            async move { connector.connect_as(service).await }
        })
        .with_states(self.states.clone());
        for service in &selected {
            (service.add)(&runner).map_err(|e| CliError::Usage(e.to_string()))?;
        }
        let names = runner.service_names();
        // Listen before starting: a SIGTERM sent while the services start, or on reading
        // the line below, stops them gracefully instead of killing the process.
        let signals = crate::serve::os_signals()
            .map_err(|e| CliError::Failed(format!("cannot listen for signals: {e}")))?;
        tracing::info!(services = ?names, %broker, "starting services");
        if let Err(error) = runner.start().await {
            return Err(start_error(error));
        }
        tracing::info!(
            services = ?names,
            %broker,
            "services started; serving until SIGTERM or Ctrl-C"
        );
        let served = crate::serve::serve_with(&runner, signals).await;
        let code = served.exit_code();
        if code == exit::OK {
            tracing::info!(outcome = %served, "services stopped");
            Ok(())
        } else {
            Err(CliError::Served {
                code,
                message: served.to_string(),
            })
        }
    }
}

/// Runs a service binary's command line: the one line of its `main`.
///
/// ```no_run
/// # use nameko::prelude::*;
/// # #[derive(Dependencies)] struct ServiceX;
/// # #[service(name = "service_x")] impl ServiceX { #[rpc] async fn ping(&self) {} }
/// fn main() -> std::process::ExitCode {
///     nameko::cli::main(nameko::services![ServiceX])
/// }
/// ```
pub fn main(cli: Cli) -> ExitCode {
    cli.main()
}

/// The `nameko` tool's `main`: `call`, `dispatch` and `show-config` against any nameko
/// cluster.
pub fn tool_main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    block_on(tool_execute(args))
}

/// Runs the `nameko` tool's command line on the current tokio runtime and returns its
/// exit code.
pub async fn tool_execute<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let parsed = match ToolArgs::try_parse_from(args) {
        Ok(parsed) => parsed,
        Err(error) => return clap_exit(&error),
    };
    report(client(&parsed.config, parsed.command, DEFAULT_AMQP_URI).await)
}

fn block_on(future: impl Future<Output = u8>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => ExitCode::from(runtime.block_on(future)),
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// The configuration of a command: the file, the defines, then the broker.
pub(crate) fn load_config(args: &ConfigArgs, default_broker: &str) -> Result<Config, CliError> {
    let mut config = match &args.config {
        Some(path) => Config::from_yaml_file(path, &ProcessEnv)?,
        None => Config::new(),
    };
    config.apply_defines(&args.define)?;
    let unset = config
        .amqp_uri()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .is_none();
    if unset {
        let broker = args.broker.as_deref().unwrap_or(default_broker);
        config.set(AMQP_URI, broker);
    }
    Ok(config)
}

/// A [`Cli`] with these services: `nameko::services![ServiceX, ServiceY]`.
///
/// ```no_run
/// # use nameko::prelude::*;
/// # #[derive(Dependencies)] struct ServiceX;
/// # #[service(name = "service_x")] impl ServiceX { #[rpc] async fn ping(&self) {} }
/// fn main() -> std::process::ExitCode {
///     nameko::cli::main(nameko::services![ServiceX])
/// }
/// ```
#[macro_export]
macro_rules! services {
    ($($service:ty),* $(,)?) => {
        $crate::cli::Cli::new()$(.service::<$service>())*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_lines_are_well_formed() {
        ToolArgs::command().debug_assert();
        ServiceArgs::command().debug_assert();
    }

    #[test]
    fn config_precedence_is_file_and_defines_then_broker_then_default() {
        let args = |define: &[&str], broker: Option<&str>| ConfigArgs {
            config: None,
            define: define.iter().map(|d| (*d).to_owned()).collect(),
            broker: broker.map(str::to_owned),
            verbose: 0,
        };
        let uri = |args: &ConfigArgs| {
            load_config(args, "memory://")
                .unwrap()
                .amqp_uri()
                .unwrap()
                .map(str::to_owned)
        };
        assert_eq!(uri(&args(&[], None)).as_deref(), Some("memory://"));
        assert_eq!(
            uri(&args(&[], Some("amqp://b"))).as_deref(),
            Some("amqp://b")
        );
        assert_eq!(
            uri(&args(&["AMQP_URI=amqp://d"], Some("amqp://b"))).as_deref(),
            Some("amqp://d")
        );
        assert_eq!(
            uri(&args(&["AMQP_URI="], Some("amqp://b"))).as_deref(),
            Some("amqp://b"),
            "a null AMQP_URI is unset"
        );
    }
}
