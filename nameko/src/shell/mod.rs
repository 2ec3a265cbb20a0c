//! `nameko shell`: an interactive console on a cluster, with Python nameko's `n.rpc`
//! syntax.
//!
//! ```text
//! $ nameko shell --broker amqp://guest:guest@localhost/
//! Nameko shell (nameko-rs 0.1.0) on linux
//! Broker: amqp://guest:***@localhost:5672/%2f
//! >>> n.rpc.calculator.add(1, 2)
//! 3.0
//! >>> n.rpc["service_x"].remote_method("hello")
//! 'hello-x-y'
//! >>> n.rpc.user_service.calculate_user_score(1, base_score=10, multiplier=1.5)
//! {'user_id': 1, 'score': 15.0}
//! >>> n.rpc.calculator.divide(1, 0)
//! RemoteError: ValueError Division by zero
//! >>> r = n.rpc.calculator.multiply.call_async(6, 7)
//! >>> r.result()
//! 42.0
//! >>> n.dispatch_event("order_service", "order_placed", {"order_id": 1})
//! >>> n.context(user_id=7, language="en")
//! >>> n.timeout(5)
//! >>> n.config["AMQP_URI"]
//! 'amqp://guest:***@localhost/'
//! ```
//!
//! What a Python nameko user types works as typed: attribute and `["name"]` access on
//! `n.rpc`, positional and keyword arguments (and `*args`, `**kwargs`), Python literals
//! (`'text'`, `"text"`, numbers, `True`, `False`, `None`, lists, tuples, dicts, nested)
//! and JSON (`true`, `false`, `null`), `call_async` and `.result()`,
//! `n.dispatch_event(source, event_type, payload)`, `n.config`, `n.context(...)` (the
//! context data of the calls that follow), `n.timeout(seconds)`, and `name = ...`
//! assignments used later. Results print as Python's `repr` would print them; errors print
//! on one line, as Python names them (`RemoteError: ValueError Division by zero`,
//! `RpcTimeout: ...`, `UnknownService: ...`, `NameError: ...`), and a line the shell
//! cannot read shows the column and the fix. `help()` lists all of it.
//!
//! Interactively (standard input is a terminal) the shell is a line editor with history
//! (in the user's data directory, e.g. `~/.local/share/nameko/shell_history`), Tab
//! completion (the members of `n`, service names, method names once a call showed them),
//! Ctrl-C to cancel the line or the call in flight, and Ctrl-D to leave. Lines piped on
//! standard input run as a script: each result is printed, and the first error ends it
//! with the exit code of [`ShellError::exit_code`].
//!
//! A service binary offers `shell` too. On an in-process broker (`memory://`), which no
//! other process can reach, its shell first starts the binary's own services in the
//! process, so `my-services shell` is a playground without RabbitMQ.
//!
//! [`Shell`] is the same shell for code: it evaluates lines against any transport.

mod client;
mod command;
mod complete;
mod editor;
mod error;
mod eval;
mod handle;
mod lexer;
mod parser;
mod repr;
mod script;
mod syntax;
mod value;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nameko_core::config::Config;
use nameko_core::transport::Transport;
use tokio::io::AsyncBufRead;
use tokio::task::JoinHandle;

pub(crate) use command::{SHELL_HELP, ShellCmd, main};
pub use complete::{
    DirectoryError, ManagementDirectory, MemoryDirectory, ServiceDirectory, services_from_queues,
};
pub use error::ShellError;
pub use eval::Flow;
pub use syntax::SyntaxError;
pub use value::JsonError;

use complete::{SharedKnown, lock};
use eval::Session;

/// How long a listing of the services may take before completion goes without it.
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(2);

/// A shell on a cluster: evaluates lines as `nameko shell` does.
///
/// ```
/// use nameko::config::Config;
/// use nameko::shell::Shell;
///
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// let config = Config::new().with("AMQP_URI", "memory://shell-docs");
/// let transport = nameko::connect(&config).await.unwrap();
/// let mut shell = Shell::start(transport, config).await.unwrap();
/// let mut out = Vec::new();
/// shell.eval("x = {'a': (1, 2.0, None)}; x", &mut out).await.unwrap();
/// assert_eq!(String::from_utf8(out).unwrap(), "{'a': (1, 2.0, None)}\n");
/// let error = shell.eval("n.rpc.nobody.ping()", &mut Vec::new()).await.unwrap_err();
/// assert!(error.to_string().starts_with("UnknownService: Unknown service `nobody`"));
/// shell.close().await;
/// # });
/// ```
#[derive(Debug)]
pub struct Shell {
    session: Session,
    known: SharedKnown,
    directory: Option<Arc<dyn ServiceDirectory>>,
    refresh: Option<JoinHandle<()>>,
}

impl Shell {
    /// A shell on `transport`: starts its RPC proxy (which declares a reply queue).
    ///
    /// # Errors
    ///
    /// [`ShellError::Start`] if the broker refuses the proxy's reply queue, or the
    /// configuration has a value of the wrong type.
    pub async fn start(transport: Arc<dyn Transport>, config: Config) -> Result<Self, ShellError> {
        let client = client::Client::start(transport, config)
            .await
            .map_err(|error| ShellError::Start(Box::new(error)))?;
        let known: SharedKnown = Arc::new(Mutex::default());
        Ok(Self {
            session: Session::new(client, known.clone()),
            known,
            directory: None,
            refresh: None,
        })
    }

    /// Completes service names from `directory` as well as from the calls made.
    #[must_use]
    pub fn with_directory(mut self, directory: Arc<dyn ServiceDirectory>) -> Self {
        self.directory = Some(directory);
        self
    }

    /// Runs one line (or several statements separated by `;` or newlines), writing the
    /// `repr` of each value that is not `None`, and what `print` prints, to `out`.
    ///
    /// # Errors
    ///
    /// The first statement that fails; the statements before it ran.
    pub async fn eval(
        &mut self,
        source: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Flow, ShellError> {
        self.session.run(source, out).await
    }

    /// Runs the lines of `input` as a script (a statement may continue over lines while
    /// a bracket is open), writing results to `out` and the first error to `err`; returns
    /// the exit code: 0, or [`ShellError::exit_code`] of the error that stopped it.
    pub async fn run_script<R: AsyncBufRead + Unpin + Send>(
        &mut self,
        input: R,
        out: &mut (dyn std::io::Write + Send),
        err: &mut (dyn std::io::Write + Send),
    ) -> u8 {
        script::run(self, input, out, err).await
    }

    /// The completions of `line` with the cursor at byte offset `pos`: where the text to
    /// replace starts, and the candidates.
    #[must_use]
    pub fn completions(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        complete::complete(&lock(&self.known), line, pos)
    }

    /// Lists the services through the directory (waiting at most 2 seconds), for
    /// completion.
    pub async fn refresh_services(&self) {
        if let Some(directory) = &self.directory {
            refresh(directory.clone(), self.known.clone()).await;
        }
    }

    /// Starts a listing of the services in the background, unless one is running.
    fn refresh_in_background(&mut self) {
        let Some(directory) = &self.directory else {
            return;
        };
        if self
            .refresh
            .as_ref()
            .is_some_and(|task| !task.is_finished())
        {
            return;
        }
        self.refresh = Some(tokio::spawn(refresh(directory.clone(), self.known.clone())));
    }

    fn known(&self) -> SharedKnown {
        self.known.clone()
    }

    /// Stops the shell's RPC proxy. The transport stays open for its owner to close.
    pub async fn close(self) {
        if let Some(task) = &self.refresh {
            task.abort();
        }
        self.session.client.close().await;
    }
}

async fn refresh(directory: Arc<dyn ServiceDirectory>, known: SharedKnown) {
    match tokio::time::timeout(DIRECTORY_TIMEOUT, directory.services()).await {
        Ok(Ok(services)) => lock(&known).set_listed(services),
        Ok(Err(error)) => tracing::debug!(%error, "cannot list the services for completion"),
        Err(_) => tracing::debug!("listing the services for completion timed out"),
    }
}
