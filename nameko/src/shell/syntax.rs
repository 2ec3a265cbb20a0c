//! Syntax errors: where in the line, what is wrong, and how to fix it.

use std::fmt;

use super::lexer::column;

/// A line the shell cannot read: the line, a caret under the column, the reason and a
/// suggested fix.
///
/// ```text
///     n.rpc.calculator.add(1 2)
///                            ^
/// SyntaxError: invalid syntax at column 28. Perhaps you forgot a comma?
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyntaxError {
    /// The line of the input the error is on.
    pub line: String,
    /// The column of the error in that line, in characters, from 1.
    pub column: usize,
    /// What is wrong, in Python's words where Python has some.
    pub message: String,
    /// How to fix it, when there is an obvious fix.
    pub hint: Option<String>,
    /// The input ends too early (an open bracket or triple-quoted string): another line
    /// would continue it.
    pub(crate) incomplete: bool,
}

impl SyntaxError {
    /// An error at byte offset `at` of `source`.
    pub(crate) fn new(
        source: &str,
        at: usize,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let at = at.min(source.len());
        let at = (0..=at)
            .rev()
            .find(|i| source.is_char_boundary(*i))
            .unwrap_or(0);
        let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = source[at..].find('\n').map_or(source.len(), |i| at + i);
        Self {
            line: source[start..end].to_owned(),
            column: column(source, at),
            message: message.into(),
            hint,
            incomplete: false,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Tabs would shift the caret: shown as spaces.
        let line = self.line.replace('\t', " ");
        writeln!(f, "    {line}")?;
        writeln!(f, "    {}^", " ".repeat(self.column.saturating_sub(1)))?;
        write!(f, "SyntaxError: {} at column {}", self.message, self.column)?;
        if let Some(hint) = &self.hint {
            let mut chars = hint.chars();
            let first: String = chars
                .next()
                .map(char::to_uppercase)
                .into_iter()
                .flatten()
                .collect();
            write!(f, ". {first}{}", chars.as_str())?;
            if !hint.ends_with(['?', '.']) {
                f.write_str(".")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SyntaxError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_line_a_caret_and_the_fix() {
        let source = "x = 1\nn.rpc.calc.add(1 2)";
        let at = source.find('2').unwrap();
        let error = SyntaxError::new(
            source,
            at,
            "invalid syntax",
            Some("perhaps you forgot a comma?".to_owned()),
        );
        assert_eq!(
            error.to_string(),
            "    n.rpc.calc.add(1 2)\n                     ^\n\
             SyntaxError: invalid syntax at column 18. Perhaps you forgot a comma?"
        );
    }
}
