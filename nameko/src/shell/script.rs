//! Script mode: the lines of standard input (or any reader) run in order, each result
//! printed, until the end or the first error.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::Shell;
use super::eval::Flow;
use super::lexer::{MAX_SOURCE, is_incomplete};
use crate::cli::exit;

/// Runs `input` on `shell`; the exit code.
pub(crate) async fn run<R: AsyncBufRead + Unpin + Send>(
    shell: &mut Shell,
    mut input: R,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> u8 {
    let mut pending = String::new();
    let mut line_number = 0_usize;
    loop {
        let mut line = Vec::new();
        let limit = u64::try_from(MAX_SOURCE + 1).unwrap_or(u64::MAX);
        let read = (&mut input).take(limit).read_until(b'\n', &mut line).await;
        match read {
            Err(error) => {
                let _ = writeln!(err, "error: cannot read the script: {error}");
                return exit::FAILURE;
            }
            Ok(0) => {
                if pending.trim().is_empty() {
                    return exit::OK;
                }
                // The statement never ended: its syntax error says why.
                return eval(shell, &pending, out, err).await.unwrap_or(exit::OK);
            }
            Ok(_) => {}
        }
        line_number += 1;
        if line.len() > MAX_SOURCE || pending.len() + line.len() > MAX_SOURCE {
            let _ = writeln!(
                err,
                "SyntaxError: line {line_number} makes a statement longer than {} MiB",
                MAX_SOURCE / 1024 / 1024
            );
            return exit::USAGE;
        }
        let Ok(text) = String::from_utf8(line) else {
            let _ = writeln!(err, "SyntaxError: line {line_number} is not valid UTF-8");
            return exit::USAGE;
        };
        pending.push_str(&text);
        if is_incomplete(&pending) {
            continue;
        }
        let source = std::mem::take(&mut pending);
        if let Some(code) = eval(shell, &source, out, err).await {
            return code;
        }
    }
}

/// Runs one statement; the exit code if the script ends here.
async fn eval(
    shell: &mut Shell,
    source: &str,
    out: &mut (dyn Write + Send),
    err: &mut (dyn Write + Send),
) -> Option<u8> {
    match shell.eval(source, out).await {
        Ok(Flow::Continue) => None,
        Ok(Flow::Exit) => Some(exit::OK),
        Err(error) => {
            let _ = out.flush();
            let _ = writeln!(err, "{error}");
            let _ = err.flush();
            Some(error.exit_code())
        }
    }
}
