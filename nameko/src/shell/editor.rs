//! The interactive shell: a rustyline line editor on its own thread (it blocks on the
//! terminal), with history in the user's data directory and Tab completion, and the loop
//! that evaluates what it reads, which Ctrl-C interrupts.
//!
//! While a line runs the terminal is in its ordinary (canonical) mode, so keys typed
//! meanwhile are the terminal driver's: Ctrl-C is a signal (it interrupts the line), and
//! Ctrl-D on an empty line is an end-of-file mark, which the driver hands over as a NUL
//! byte once the editor switches to raw mode for the next prompt. A NUL at an empty prompt
//! therefore ends the shell as Ctrl-D does: Ctrl-C then Ctrl-D exits at once.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc;

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::{DefaultHistory, History};
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, KeyCode, KeyEvent, Modifiers, RepeatCount,
};
use tokio::sync::oneshot;

use super::Shell;
use super::complete::{SharedKnown, complete, lock};
use super::eval::Flow;
use super::lexer::is_incomplete;
use crate::cli::exit;

const PROMPT: &str = ">>> ";
const CONTINUATION: &str = "... ";
/// Entries kept in the history file.
const HISTORY_SIZE: usize = 1000;

/// The history file: `<data dir>/nameko/shell_history` (`~/.local/share` on Linux,
/// following `XDG_DATA_HOME`).
fn history_file() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("nameko");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("shell_history"))
}

/// Completion for rustyline, from what the session knows.
struct ShellHelper {
    known: SharedKnown,
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(&lock(&self.known), line, pos))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

/// Ends the shell on a NUL read at an empty prompt: what the terminal driver makes of a
/// Ctrl-D typed while a line ran (see the module docs). Elsewhere a NUL does nothing.
struct EofTypedWhileBusy;

impl EofTypedWhileBusy {
    /// The key rustyline reads for a NUL byte (Ctrl-@).
    fn key() -> KeyEvent {
        KeyEvent(KeyCode::Char('@'), Modifiers::CTRL)
    }
}

impl ConditionalEventHandler for EofTypedWhileBusy {
    fn handle(
        &self,
        _event: &Event,
        _count: RepeatCount,
        _positive: bool,
        ctx: &EventContext<'_>,
    ) -> Option<Cmd> {
        ctx.line().is_empty().then_some(Cmd::EndOfFile)
    }
}

/// What the editor read.
enum Read {
    Line(String),
    /// Ctrl-C.
    Interrupted,
    /// Ctrl-D.
    Eof,
    Failed(String),
}

/// The line editor's thread: reads a line for each prompt it is sent.
struct LineEditor {
    requests: Option<mpsc::Sender<(&'static str, oneshot::Sender<Read>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LineEditor {
    fn start(known: SharedKnown) -> Result<Self, ReadlineError> {
        let config = Config::builder()
            .completion_type(CompletionType::List)
            .max_history_size(HISTORY_SIZE)?
            .history_ignore_dups(true)?
            .history_ignore_space(true)
            .auto_add_history(false)
            .build();
        let mut editor: Editor<ShellHelper, DefaultHistory> = Editor::with_config(config)?;
        editor.set_helper(Some(ShellHelper { known }));
        editor.bind_sequence(
            EofTypedWhileBusy::key(),
            EventHandler::Conditional(Box::new(EofTypedWhileBusy)),
        );
        let history = history_file();
        if let Some(path) = &history
            && path.exists()
            && let Err(error) = editor.load_history(path)
        {
            eprintln!(
                "warning: cannot read the history {}: {error}",
                path.display()
            );
        }
        let (requests, incoming) = mpsc::channel::<(&'static str, oneshot::Sender<Read>)>();
        let thread = std::thread::Builder::new()
            .name("nameko-shell-editor".to_owned())
            .spawn(move || {
                let mut warned = false;
                while let Ok((prompt, reply)) = incoming.recv() {
                    let read = loop {
                        match editor.readline(prompt) {
                            Ok(line) => break Read::Line(line),
                            Err(ReadlineError::Interrupted) => break Read::Interrupted,
                            Err(ReadlineError::Eof) => break Read::Eof,
                            Err(ReadlineError::Signal(_)) => {}
                            Err(error) => break Read::Failed(error.to_string()),
                        }
                    };
                    if let (Read::Line(line), Some(path)) = (&read, &history)
                        && !line.trim().is_empty()
                    {
                        let saved = editor
                            .history_mut()
                            .add(line)
                            .and_then(|_| editor.append_history(path));
                        if let Err(error) = saved
                            && !warned
                        {
                            warned = true;
                            eprintln!(
                                "warning: cannot write the history {}: {error}",
                                path.display()
                            );
                        }
                    }
                    if reply.send(read).is_err() {
                        break;
                    }
                }
            })
            .map_err(ReadlineError::Io)?;
        Ok(Self {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    async fn read(&self, prompt: &'static str) -> Read {
        let (reply, read) = oneshot::channel();
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|requests| requests.send((prompt, reply)).is_ok());
        if !sent {
            return Read::Failed("the line editor stopped".to_owned());
        }
        read.await
            .unwrap_or_else(|_| Read::Failed("the line editor stopped".to_owned()))
    }
}

impl Drop for LineEditor {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which is waiting for the next prompt.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs the shell on the terminal until Ctrl-D or `exit()`; the exit code.
pub(crate) async fn run(shell: &mut Shell, banner: &str) -> u8 {
    let editor = match LineEditor::start(shell.known()) {
        Ok(editor) => editor,
        Err(error) => {
            eprintln!("error: cannot start the line editor: {error}");
            return exit::FAILURE;
        }
    };
    println!("{banner}");
    loop {
        shell.refresh_in_background();
        let Some(source) = read_statement(&editor).await else {
            println!();
            return exit::OK;
        };
        if source.trim().is_empty() {
            continue;
        }
        let mut stdout = std::io::stdout();
        let outcome = tokio::select! {
            outcome = shell.eval(&source, &mut stdout) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        };
        let _ = stdout.flush();
        match outcome {
            Some(Ok(Flow::Continue)) => {}
            Some(Ok(Flow::Exit)) => return exit::OK,
            Some(Err(error)) => eprintln!("{error}"),
            None => eprintln!("\nKeyboardInterrupt"),
        }
    }
}

/// Reads a statement, over several lines while a bracket is open; `None` at Ctrl-D.
async fn read_statement(editor: &LineEditor) -> Option<String> {
    let mut source = String::new();
    loop {
        let prompt = if source.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        match editor.read(prompt).await {
            Read::Line(line) => {
                source.push_str(&line);
                if !is_incomplete(&source) {
                    return Some(source);
                }
                source.push('\n');
            }
            Read::Interrupted => {
                eprintln!("KeyboardInterrupt");
                source.clear();
            }
            Read::Eof if source.is_empty() => return None,
            // Ctrl-D in a continued statement runs it, and shows why it is incomplete.
            Read::Eof => return Some(source),
            Read::Failed(error) => {
                eprintln!("error: cannot read the terminal: {error}");
                return None;
            }
        }
    }
}
