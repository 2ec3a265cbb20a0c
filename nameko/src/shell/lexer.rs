//! Python's tokens, as far as the shell's language uses them: names, numbers, strings
//! (with Python's prefixes, quotes and escapes), brackets and punctuation, comments.

use super::syntax::SyntaxError;

/// A token and where it is in the source (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// The kinds of token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Name(String),
    Int(i128),
    Float(f64),
    Str(String),
    /// Punctuation and operators, longest match first (`**` before `*`).
    Op(&'static str),
    /// The end of a statement: a newline outside brackets.
    Newline,
    End,
}

/// Operators and punctuation Python knows, longest first; the shell's grammar uses few
/// of them, the others get an error that names them.
const OPS: &[&str] = &[
    "**=", "//=", ">>=", "<<=", "...", "**", "//", "==", "!=", "<=", ">=", "->", "+=", "-=", "*=",
    "/=", "%=", "&=", "|=", "^=", "@=", ":=", "<<", ">>", "(", ")", "[", "]", "{", "}", ",", ":",
    ".", ";", "=", "+", "-", "*", "/", "%", "@", "&", "|", "^", "~", "<", ">", "!",
];

/// The longest source the shell reads as one statement.
pub(crate) const MAX_SOURCE: usize = 8 * 1024 * 1024;

/// Splits `source` into tokens.
///
/// # Errors
///
/// An unterminated string, a malformed number, a character Python does not accept.
pub(crate) fn tokenize(source: &str) -> Result<Vec<Token>, SyntaxError> {
    if source.len() > MAX_SOURCE {
        return Err(SyntaxError::new(
            source,
            0,
            format!("the input is longer than {} MiB", MAX_SOURCE / 1024 / 1024),
            None,
        ));
    }
    Lexer {
        source,
        pos: 0,
        depth: Vec::new(),
        tokens: Vec::new(),
    }
    .run()
}

/// Whether `source` ends inside brackets or a triple-quoted string, so that the next line
/// continues it (as Python's prompt shows `...`).
pub(crate) fn is_incomplete(source: &str) -> bool {
    match tokenize(source) {
        Ok(_) => false,
        Err(error) => error.incomplete,
    }
}

struct Lexer<'s> {
    source: &'s str,
    pos: usize,
    /// The open brackets, with their offsets.
    depth: Vec<(char, usize)>,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn rest(&self) -> &str {
        &self.source[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn error(&self, at: usize, message: impl Into<String>, hint: Option<String>) -> SyntaxError {
        SyntaxError::new(self.source, at, message, hint)
    }

    fn push(&mut self, kind: Tok, start: usize) {
        self.tokens.push(Token {
            kind,
            start,
            end: self.pos,
        });
    }

    fn run(mut self) -> Result<Vec<Token>, SyntaxError> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            match c {
                '\n' => {
                    self.pos += 1;
                    if self.depth.is_empty() {
                        self.push(Tok::Newline, start);
                    }
                }
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '#' => {
                    self.pos += self.rest().find('\n').unwrap_or(self.rest().len());
                }
                '\\' if self.rest()[1..].starts_with('\n') => self.pos += 2,
                '0'..='9' => self.number()?,
                '.' if self.rest()[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                    self.number()?;
                }
                '\'' | '"' => self.string(start, false)?,
                c if c == '_' || c.is_alphabetic() => self.name_or_prefixed_string()?,
                _ => self.op(c, start)?,
            }
        }
        if let Some((open, at)) = self.depth.last().copied() {
            let mut error = self.error(
                at,
                format!("'{open}' was never closed"),
                Some(format!("add '{}' at the end", closing(open))),
            );
            error.incomplete = true;
            return Err(error);
        }
        let end = self.pos;
        self.tokens.push(Token {
            kind: Tok::End,
            start: end,
            end,
        });
        Ok(self.tokens)
    }

    fn op(&mut self, c: char, start: usize) -> Result<(), SyntaxError> {
        let Some(op) = OPS.iter().find(|op| self.rest().starts_with(**op)) else {
            let hint = match c {
                '‘' | '’' | '“' | '”' => Some("use straight quotes ' or \"".to_owned()),
                _ => None,
            };
            return Err(self.error(
                start,
                format!("invalid character '{c}' (U+{:04X})", u32::from(c)),
                hint,
            ));
        };
        match *op {
            "(" | "[" | "{" => self.depth.push((c, start)),
            ")" | "]" | "}" => match self.depth.pop() {
                Some((open, _)) if closing(open) == c => {}
                Some((open, at)) => {
                    return Err(self.error(
                        start,
                        format!(
                            "closing parenthesis '{c}' does not match opening parenthesis '{open}' at column {}",
                            column(self.source, at)
                        ),
                        Some(format!("close '{open}' with '{}'", closing(open))),
                    ));
                }
                None => {
                    return Err(self.error(
                        start,
                        format!("unmatched '{c}'"),
                        Some(format!(
                            "remove it, or open it before with '{}'",
                            opening(c)
                        )),
                    ));
                }
            },
            _ => {}
        }
        self.pos += op.len();
        self.push(Tok::Op(op), start);
        Ok(())
    }

    fn name_or_prefixed_string(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c == '_' || c.is_alphanumeric()))
            .unwrap_or(self.rest().len());
        let name = &self.rest()[..len];
        let after = self.rest()[len..].chars().next();
        if matches!(after, Some('\'' | '"')) && len <= 2 {
            let prefix = name.to_ascii_lowercase();
            match prefix.as_str() {
                "r" | "u" => {
                    self.pos += len;
                    return self.string(start, prefix == "r");
                }
                "b" | "rb" | "br" => {
                    return Err(self.error(
                        start,
                        "bytes are not supported: JSON has no bytes",
                        Some("use a str, e.g. 'text'".to_owned()),
                    ));
                }
                "f" | "rf" | "fr" => {
                    return Err(self.error(
                        start,
                        "f-strings are not supported",
                        Some("write the text in full, e.g. 'text'".to_owned()),
                    ));
                }
                _ => {}
            }
        }
        let name = name.to_owned();
        self.pos += len;
        self.push(Tok::Name(name), start);
        Ok(())
    }

    fn number(&mut self) -> Result<(), SyntaxError> {
        let start = self.pos;
        let source = self.source;
        let rest = &source[self.pos..];
        let bytes = rest.as_bytes();
        let radix = match (bytes.first(), bytes.get(1).map(u8::to_ascii_lowercase)) {
            (Some(b'0'), Some(b'x')) => Some(16),
            (Some(b'0'), Some(b'o')) => Some(8),
            (Some(b'0'), Some(b'b')) => Some(2),
            _ => None,
        };
        // The whole literal: alphanumerics, underscores, points, and signs after `e`.
        let mut len = 0;
        let mut prev = ' ';
        for c in rest.chars() {
            let part = c.is_ascii_alphanumeric()
                || c == '_'
                || (c == '.' && radix.is_none())
                || ((c == '+' || c == '-') && radix.is_none() && (prev == 'e' || prev == 'E'));
            if !part {
                break;
            }
            len += c.len_utf8();
            prev = c;
        }
        let text = &rest[..len];
        self.pos += len;
        let invalid = |lexer: &Self, what: &str| {
            lexer.error(start, format!("invalid {what} literal `{text}`"), None)
        };
        if let Some(radix) = radix {
            let digits = strip_underscores(&text[2..]).ok_or_else(|| invalid(self, "number"))?;
            let value = i128::from_str_radix(&digits, radix).map_err(|_| {
                if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                    invalid(self, "number")
                } else {
                    self.error(start, format!("the integer `{text}` is too large"), None)
                }
            })?;
            self.push(Tok::Int(value), start);
            return Ok(());
        }
        if text.ends_with(['j', 'J']) {
            return Err(self.error(
                start,
                "complex numbers are not supported: JSON has none",
                None,
            ));
        }
        let digits = strip_underscores(text).ok_or_else(|| invalid(self, "decimal"))?;
        let is_float = digits.contains(['.', 'e', 'E']);
        if is_float {
            let valid = digits
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
            match digits.parse::<f64>() {
                Ok(value) if valid => self.push(Tok::Float(value), start),
                _ => return Err(invalid(self, "decimal")),
            }
            return Ok(());
        }
        if !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(self, "decimal"));
        }
        if digits.len() > 1 && digits.starts_with('0') && digits.chars().any(|c| c != '0') {
            return Err(self.error(
                start,
                "leading zeros in decimal integer literals are not permitted",
                Some(format!(
                    "write {} (or 0o{} for an octal number)",
                    digits.trim_start_matches('0'),
                    digits.trim_start_matches('0')
                )),
            ));
        }
        let value = digits
            .parse::<i128>()
            .map_err(|_| self.error(start, format!("the integer `{text}` is too large"), None))?;
        self.push(Tok::Int(value), start);
        Ok(())
    }

    /// A string starting at the quote under `self.pos` (`start` is where its prefix began).
    fn string(&mut self, start: usize, raw: bool) -> Result<(), SyntaxError> {
        let quote = self.peek().unwrap_or('\'');
        let triple: String = std::iter::repeat_n(quote, 3).collect();
        let delimiter = if self.rest().starts_with(&triple) {
            triple
        } else {
            quote.to_string()
        };
        let opening = self.pos;
        self.pos += delimiter.len();
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                let mut error = self.error(
                    opening,
                    "unterminated string literal",
                    Some(format!("close it with {delimiter}")),
                );
                error.incomplete = delimiter.len() == 3;
                return Err(error);
            };
            if self.rest().starts_with(&delimiter) {
                self.pos += delimiter.len();
                break;
            }
            if c == '\n' && delimiter.len() == 1 {
                return Err(self.error(
                    opening,
                    "unterminated string literal",
                    Some(format!("close it with {delimiter} on the same line")),
                ));
            }
            self.pos += c.len_utf8();
            if c != '\\' {
                text.push(c);
                continue;
            }
            if raw {
                text.push('\\');
                if let Some(next) = self.peek() {
                    text.push(next);
                    self.pos += next.len_utf8();
                }
                continue;
            }
            self.escape(&mut text)?;
        }
        self.push(Tok::Str(text), start);
        Ok(())
    }

    /// One escape sequence, after its backslash.
    fn escape(&mut self, text: &mut String) -> Result<(), SyntaxError> {
        let at = self.pos - 1;
        let Some(c) = self.peek() else {
            return Ok(());
        };
        self.pos += c.len_utf8();
        let simple = match c {
            '\n' => Some(None),
            '\\' => Some(Some('\\')),
            '\'' => Some(Some('\'')),
            '"' => Some(Some('"')),
            'a' => Some(Some('\x07')),
            'b' => Some(Some('\x08')),
            'f' => Some(Some('\x0c')),
            'n' => Some(Some('\n')),
            'r' => Some(Some('\r')),
            't' => Some(Some('\t')),
            'v' => Some(Some('\x0b')),
            '/' => Some(Some('/')),
            _ => None,
        };
        if let Some(simple) = simple {
            text.extend(simple);
            return Ok(());
        }
        match c {
            '0'..='7' => {
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                text.push(char::from_u32(value).unwrap_or('\u{fffd}'));
            }
            'x' | 'u' | 'U' => {
                let width = match c {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let value = self.hex(at, c, width)?;
                let value = if c == 'u' && (0xd800..0xdc00).contains(&value) {
                    self.low_surrogate(at, value)?
                } else {
                    value
                };
                let decoded = char::from_u32(value).ok_or_else(|| {
                    self.error(
                        at,
                        format!("\\{c}{value:x} is not a character JSON can carry"),
                        None,
                    )
                })?;
                text.push(decoded);
            }
            'N' => {
                return Err(self.error(
                    at,
                    "\\N{...} escapes are not supported",
                    Some("type the character itself, or use \\u".to_owned()),
                ));
            }
            other => {
                // Python keeps unknown escapes as they are.
                text.push('\\');
                text.push(other);
            }
        }
        Ok(())
    }

    fn hex(&mut self, at: usize, kind: char, width: usize) -> Result<u32, SyntaxError> {
        let digits: String = self.rest().chars().take(width).collect();
        if digits.len() != width || !digits.chars().all(|d| d.is_ascii_hexdigit()) {
            return Err(self.error(
                at,
                format!("truncated \\{kind} escape: it needs {width} hex digits"),
                None,
            ));
        }
        self.pos += width;
        u32::from_str_radix(&digits, 16)
            .map_err(|_| self.error(at, format!("invalid \\{kind} escape"), None))
    }

    /// A high surrogate `\uD83D` must be followed by a low one (`\uDE00`), which JSON
    /// combines into one character.
    fn low_surrogate(&mut self, at: usize, high: u32) -> Result<u32, SyntaxError> {
        if self.rest().starts_with("\\u") {
            let save = self.pos;
            self.pos += 2;
            let low = self.hex(at, 'u', 4)?;
            if (0xdc00..0xe000).contains(&low) {
                return Ok(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00));
            }
            self.pos = save;
        }
        Err(self.error(
            at,
            format!("lone surrogate \\u{high:x}: a JSON string cannot carry it"),
            Some("follow it with its low surrogate (\\udc00 to \\udfff)".to_owned()),
        ))
    }
}

/// `1_000` as `1000`; `None` for misplaced underscores (`1__0`, `_1`, `1_`).
fn strip_underscores(text: &str) -> Option<String> {
    if text.starts_with('_') || text.ends_with('_') || text.contains("__") {
        return None;
    }
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_'
            && !(bytes[i - 1].is_ascii_alphanumeric() && bytes[i + 1].is_ascii_alphanumeric())
        {
            return None;
        }
    }
    Some(text.replace('_', ""))
}

fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

fn opening(close: char) -> char {
    match close {
        ')' => '(',
        ']' => '[',
        _ => '{',
    }
}

/// The 1-based column, in characters, of byte offset `at` in its line.
pub(crate) fn column(source: &str, at: usize) -> usize {
    let at = at.min(source.len());
    let at = (0..=at)
        .rev()
        .find(|i| source.is_char_boundary(*i))
        .unwrap_or(0);
    let line_start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    source[line_start..at].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<Tok> {
        tokenize(source)
            .unwrap()
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn numbers_as_python_reads_them() {
        assert_eq!(
            kinds("1 1_000 0x1F 0o17 0b101 1.5 .5 5. 1e16 1E-5 1e400"),
            vec![
                Tok::Int(1),
                Tok::Int(1000),
                Tok::Int(31),
                Tok::Int(15),
                Tok::Int(5),
                Tok::Float(1.5),
                Tok::Float(0.5),
                Tok::Float(5.0),
                Tok::Float(1e16),
                Tok::Float(1e-5),
                Tok::Float(f64::INFINITY),
                Tok::End
            ]
        );
        for bad in ["007", "1__0", "1_", "1.2.3", "0x", "1j", "12abc"] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn strings_with_python_quotes_prefixes_and_escapes() {
        assert_eq!(
            kinds(r#"'a' "b" '''c'd''' r'\n' u'\x41\u00e9\U0001F600' "\ud83d\ude00" 'x\q'"#),
            vec![
                Tok::Str("a".into()),
                Tok::Str("b".into()),
                Tok::Str("c'd".into()),
                Tok::Str("\\n".into()),
                Tok::Str("Aé😀".into()),
                Tok::Str("😀".into()),
                Tok::Str("x\\q".into()),
                Tok::End
            ]
        );
        assert_eq!(kinds(r"'\101\0'"), vec![Tok::Str("A\0".into()), Tok::End]);
        for bad in ["'open", "b'x'", "f'{x}'", r"'\x4'", r"'\ud83d'", "'a\nb'"] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn brackets_continue_lines_and_must_match() {
        assert!(is_incomplete("f(1,"));
        assert!(is_incomplete("x = '''abc"));
        assert!(!is_incomplete("f(1))"));
        assert!(!is_incomplete("'abc"));
        let error = tokenize("f(1]").unwrap_err();
        assert_eq!(error.column, 4);
        assert!(error.message.contains("does not match"), "{error}");
        assert_eq!(
            kinds("f(1,\n2)\nx"),
            vec![
                Tok::Name("f".into()),
                Tok::Op("("),
                Tok::Int(1),
                Tok::Op(","),
                Tok::Int(2),
                Tok::Op(")"),
                Tok::Newline,
                Tok::Name("x".into()),
                Tok::End
            ]
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(column("é = (", 5), 5);
        assert_eq!(column("a\nbc", 3), 2);
    }
}
