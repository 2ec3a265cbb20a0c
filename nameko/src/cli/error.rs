//! How a command's failure is printed, and the exit code it ends with.

use nameko_core::config::ConfigLoadError;
use nameko_core::runner::RunnerError;

use super::exit;
use crate::connect::ConnectError;
use crate::logging::redact_line;

/// Prints clap's help, version or error, and gives the exit code.
pub(super) fn clap_exit(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print!("{error}");
            exit::OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{error}");
            exit::USAGE
        }
        _ => {
            eprint!("{}", redact_line(&error.to_string()));
            exit::USAGE
        }
    }
}

/// Prints a command's failure and gives the exit code.
pub(super) fn report(result: Result<(), CliError>) -> u8 {
    match result {
        Ok(()) => exit::OK,
        Err(error) => {
            match &error {
                CliError::Remote(line) => eprintln!("{}", redact_line(line)),
                CliError::Reported(_) => {}
                other => eprintln!("error: {}", redact_line(&other.to_string())),
            }
            error.exit_code()
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigLoadError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// `exc_type: value`.
    #[error("{0}")]
    Remote(String),
    #[error("UnknownService: {0}")]
    UnknownService(String),
    #[error("RpcTimeout: {0}")]
    Timeout(String),
    #[error("{0}")]
    Connection(String),
    #[error("{0}")]
    Failed(String),
    #[error("{error}")]
    Start { code: u8, error: RunnerError },
    #[error("{message}")]
    Served { code: u8, message: String },
    /// Already printed; exit with this code.
    #[error("exit code {0}")]
    Reported(u8),
}

impl CliError {
    pub(super) fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Config(_) => exit::USAGE,
            Self::Connect(e) if e.is_config_error() => exit::USAGE,
            Self::Connect(_) | Self::Connection(_) => exit::CONNECTION,
            Self::Remote(_) => exit::REMOTE_ERROR,
            Self::UnknownService(_) => exit::UNKNOWN_SERVICE,
            Self::Timeout(_) => exit::TIMEOUT,
            Self::Failed(_) => exit::FAILURE,
            Self::Start { code, .. } | Self::Served { code, .. } | Self::Reported(code) => *code,
        }
    }
}

pub(super) fn start_error(error: RunnerError) -> CliError {
    let code = match &error {
        RunnerError::Connect { error: cause, .. } => match cause.downcast_ref::<ConnectError>() {
            Some(e) if e.is_config_error() => exit::USAGE,
            _ => exit::CONNECTION,
        },
        RunnerError::Container { error, .. }
            if matches!(**error, nameko_core::container::ContainerError::Config(_)) =>
        {
            exit::USAGE
        }
        _ => exit::CRASHED,
    };
    CliError::Start { code, error }
}
