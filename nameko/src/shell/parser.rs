//! The shell's line language: Python's expressions as a nameko user types them (names,
//! attributes, subscripts, calls with positional, keyword, `*` and `**` arguments,
//! literals of Python and JSON) and assignment to a name, one statement or several
//! separated by `;`.

use super::lexer::{Tok, Token, tokenize};
use super::syntax::SyntaxError;

/// The deepest nesting of brackets and unary signs the parser accepts (Python's own limit
/// is 200 parentheses).
const MAX_NESTING: usize = 100;

/// Python's keywords: the shell evaluates none but `True`, `False` and `None`, and says so.
const KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    /// `name = value`.
    Assign { name: String, value: Expr },
    /// An expression, whose value the shell prints.
    Expr(Expr),
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Name(String),
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Expr>),
    Tuple(Vec<Expr>),
    Dict(Vec<(Expr, Expr)>),
    Attr(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Arg>),
    Neg(Box<Expr>),
    Pos(Box<Expr>),
}

/// An argument of a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Positional(Expr),
    Keyword(String, Expr),
    /// `*values`.
    Star(Expr),
    /// `**mapping`.
    StarStar(Expr),
}

/// Parses a line (or a statement continued over several lines).
///
/// # Errors
///
/// A [`SyntaxError`] with the column and, where there is one, the fix.
pub(crate) fn parse(source: &str) -> Result<Vec<Stmt>, SyntaxError> {
    let tokens = tokenize(source)?;
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        nesting: 0,
    };
    parser.statements()
}

struct Parser<'s> {
    source: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

/// What may follow an expression where the parser stopped, for the hint.
#[derive(Clone, Copy)]
enum Context {
    Statement,
    Arguments,
    Items(char),
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].kind
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)].kind
    }

    fn start(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].start
    }

    fn advance(&mut self) -> Tok {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.is_op(op) {
            self.advance();
            true
        } else {
            false
        }
    }

    fn error_here(&self, message: impl Into<String>, hint: Option<String>) -> SyntaxError {
        SyntaxError::new(self.source, self.start(), message, hint)
    }

    fn statements(&mut self) -> Result<Vec<Stmt>, SyntaxError> {
        let mut statements = Vec::new();
        loop {
            match self.peek() {
                Tok::End => return Ok(statements),
                Tok::Newline => {
                    self.advance();
                    continue;
                }
                Tok::Op(";") => {
                    if statements.is_empty() {
                        return Err(self.error_here("invalid syntax", None));
                    }
                    self.advance();
                    continue;
                }
                _ => {}
            }
            statements.push(self.statement()?);
            match self.peek() {
                Tok::End | Tok::Newline | Tok::Op(";") => {}
                _ => return Err(self.unexpected(Context::Statement)),
            }
        }
    }

    fn statement(&mut self) -> Result<Stmt, SyntaxError> {
        if let Tok::Name(name) = self.peek()
            && KEYWORDS.contains(&name.as_str())
        {
            return Err(self.error_here(
                format!("`{name}` statements are not supported in the nameko shell"),
                Some(
                    "the shell evaluates expressions such as n.rpc.service.method(1, key='v') \
                     and assignments such as x = ..."
                        .to_owned(),
                ),
            ));
        }
        if let (Tok::Name(name), Tok::Op("=")) = (self.peek(), self.peek_at(1)) {
            let name = name.clone();
            if matches!(name.as_str(), "True" | "False" | "None") {
                return Err(self.error_here(format!("cannot assign to {name}"), None));
            }
            self.advance();
            self.advance();
            if matches!(self.peek(), Tok::End | Tok::Newline | Tok::Op(";")) {
                return Err(self.error_here(
                    "invalid syntax: nothing to assign",
                    Some(format!("write a value after '=', e.g. {name} = 1")),
                ));
            }
            let value = self.expr_list()?;
            return Ok(Stmt::Assign { name, value });
        }
        let expr = self.expr_list()?;
        if self.is_op("=") {
            return Err(self.error_here(
                "cannot assign to an expression",
                Some(
                    "only a name can be assigned, e.g. result = n.rpc.service.method()".to_owned(),
                ),
            ));
        }
        Ok(Stmt::Expr(expr))
    }

    /// `a` or `a, b, ...` (a tuple), as after `=` and at the start of a statement.
    fn expr_list(&mut self) -> Result<Expr, SyntaxError> {
        let first = self.expr()?;
        if !self.is_op(",") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(",") {
            if matches!(
                self.peek(),
                Tok::End | Tok::Newline | Tok::Op(";" | ")" | "]" | "=")
            ) {
                break;
            }
            items.push(self.expr()?);
        }
        Ok(Expr::Tuple(items))
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error_here("too many nested parentheses", None));
        }
        let result = self.unary();
        self.nesting -= 1;
        result
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat("-") {
            return Ok(Expr::Neg(Box::new(self.expr()?)));
        }
        if self.eat("+") {
            return Ok(Expr::Pos(Box::new(self.expr()?)));
        }
        let mut expr = self.atom()?;
        let base = self.nesting;
        loop {
            if matches!(self.peek(), Tok::Op("." | "[" | "(")) {
                // Each trailer nests the expression one level deeper.
                self.nesting += 1;
                if self.nesting > MAX_NESTING {
                    return Err(self.error_here("the expression is too deeply nested", None));
                }
            }
            if self.eat(".") {
                let Tok::Name(name) = self.peek() else {
                    return Err(self.error_here(
                        "invalid syntax: expected a name after '.'",
                        Some("e.g. n.rpc.service_name.method_name".to_owned()),
                    ));
                };
                let name = name.clone();
                self.advance();
                expr = Expr::Attr(Box::new(expr), name);
            } else if self.is_op("[") {
                self.advance();
                let index = self.expr_list()?;
                if self.is_op(":") {
                    return Err(self.error_here(
                        "slices are not supported in the nameko shell",
                        Some("index one item, e.g. x[0] or x['key']".to_owned()),
                    ));
                }
                self.close("]", Context::Items(']'))?;
                expr = Expr::Index(Box::new(expr), Box::new(index));
            } else if self.is_op("(") {
                self.advance();
                let args = self.arguments()?;
                expr = Expr::Call(Box::new(expr), args);
            } else {
                self.nesting = base;
                return Ok(expr);
            }
        }
    }

    fn atom(&mut self) -> Result<Expr, SyntaxError> {
        let token = self.advance();
        Ok(match token {
            Tok::Name(name) => match name.as_str() {
                "None" => Expr::None,
                "True" => Expr::Bool(true),
                "False" => Expr::Bool(false),
                keyword if KEYWORDS.contains(&keyword) => {
                    self.pos -= 1;
                    let hint = match keyword {
                        "for" => {
                            Some("comprehensions are not supported: write the list out".to_owned())
                        }
                        "and" | "or" | "not" | "in" | "is" => {
                            Some("the shell evaluates calls and literals, not operators".to_owned())
                        }
                        _ => None,
                    };
                    return Err(self.error_here(
                        format!("`{keyword}` is not supported in the nameko shell"),
                        hint,
                    ));
                }
                _ => Expr::Name(name),
            },
            Tok::Int(i) => Expr::Int(i),
            Tok::Float(f) => Expr::Float(f),
            Tok::Str(mut text) => {
                while let Tok::Str(more) = self.peek() {
                    text.push_str(more);
                    self.advance();
                }
                Expr::Str(text)
            }
            Tok::Op("(") => self.parenthesized()?,
            Tok::Op("[") => {
                let items = self.items(']')?;
                Expr::List(items)
            }
            Tok::Op("{") => self.braces()?,
            Tok::Op("...") => {
                self.pos -= 1;
                return Err(self.error_here("Ellipsis is not supported", None));
            }
            Tok::End | Tok::Newline => {
                self.pos -= usize::from(matches!(token, Tok::Newline));
                return Err(self.error_here(
                    "invalid syntax: the expression is incomplete",
                    Some("complete it with a value".to_owned()),
                ));
            }
            Tok::Op(op) => {
                self.pos -= 1;
                return Err(self.error_here(
                    format!("invalid syntax: unexpected '{op}'"),
                    Some("a value was expected here".to_owned()),
                ));
            }
        })
    }

    /// After `(`: `()`, `(x)`, `(x,)`, `(x, y)`.
    fn parenthesized(&mut self) -> Result<Expr, SyntaxError> {
        if self.eat(")") {
            return Ok(Expr::Tuple(Vec::new()));
        }
        let first = self.expr()?;
        if self.eat(")") {
            return Ok(first);
        }
        if !self.is_op(",") {
            return Err(self.unexpected(Context::Items(')')));
        }
        let mut items = vec![first];
        while self.eat(",") {
            if self.is_op(")") {
                break;
            }
            items.push(self.expr()?);
        }
        self.close(")", Context::Items(')'))?;
        Ok(Expr::Tuple(items))
    }

    /// Comma-separated values up to `close`, which may follow a trailing comma.
    fn items(&mut self, close: char) -> Result<Vec<Expr>, SyntaxError> {
        let close_op = if close == ']' { "]" } else { ")" };
        let mut items = Vec::new();
        loop {
            if self.eat(close_op) {
                return Ok(items);
            }
            items.push(self.expr()?);
            if self.eat(",") {
                continue;
            }
            self.close(close_op, Context::Items(close))?;
            return Ok(items);
        }
    }

    /// After `{`: a dict (`{}`, `{k: v, ...}`); sets are refused.
    fn braces(&mut self) -> Result<Expr, SyntaxError> {
        let mut entries = Vec::new();
        loop {
            if self.eat("}") {
                return Ok(Expr::Dict(entries));
            }
            if self.is_op("**") {
                return Err(self.error_here(
                    "`**` in a dict is not supported in the nameko shell",
                    Some("write the keys out".to_owned()),
                ));
            }
            let key = self.expr()?;
            if !self.eat(":") {
                if matches!(self.peek(), Tok::Op("," | "}")) {
                    return Err(self.error_here(
                        "sets are not supported: JSON has no sets",
                        Some("use a list [a, b] or a dict {key: value}".to_owned()),
                    ));
                }
                if matches!(self.peek(), Tok::Op("=")) {
                    return Err(self.error_here(
                        "invalid syntax: expected ':'",
                        Some("dict entries are written key: value, e.g. {'a': 1}".to_owned()),
                    ));
                }
                return Err(self.unexpected(Context::Items('}')));
            }
            let value = self.expr()?;
            entries.push((key, value));
            if self.eat(",") {
                continue;
            }
            self.close("}", Context::Items('}'))?;
            return Ok(Expr::Dict(entries));
        }
    }

    /// After `(` of a call: arguments up to `)`.
    fn arguments(&mut self) -> Result<Vec<Arg>, SyntaxError> {
        let mut args = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        loop {
            if self.eat(")") {
                return Ok(args);
            }
            let at = self.start();
            let arg = if self.eat("**") {
                Arg::StarStar(self.expr()?)
            } else if self.eat("*") {
                Arg::Star(self.expr()?)
            } else if let (Tok::Name(name), Tok::Op("=")) = (self.peek(), self.peek_at(1)) {
                let name = name.clone();
                if keywords.contains(&name) {
                    return Err(self.error_here(
                        format!("keyword argument repeated: {name}"),
                        Some(format!("give {name} once")),
                    ));
                }
                keywords.push(name.clone());
                self.advance();
                self.advance();
                Arg::Keyword(name, self.expr()?)
            } else {
                let value = self.expr()?;
                if self.is_op("=") {
                    return Err(SyntaxError::new(
                        self.source,
                        at,
                        "expression cannot contain assignment",
                        Some("a keyword argument is a plain name, e.g. f(key=1)".to_owned()),
                    ));
                }
                if matches!(self.peek(), Tok::Name(n) if n == "for") {
                    return Err(self.error_here(
                        "comprehensions are not supported in the nameko shell",
                        Some("write the values out".to_owned()),
                    ));
                }
                Arg::Positional(value)
            };
            if matches!(arg, Arg::Positional(_) | Arg::Star(_))
                && args
                    .iter()
                    .any(|a| matches!(a, Arg::Keyword(..) | Arg::StarStar(_)))
            {
                let what = if matches!(arg, Arg::Star(_)) {
                    "iterable argument unpacking follows keyword argument unpacking"
                } else {
                    "positional argument follows keyword argument"
                };
                return Err(SyntaxError::new(
                    self.source,
                    at,
                    what,
                    Some("put positional arguments first".to_owned()),
                ));
            }
            args.push(arg);
            if self.eat(",") {
                continue;
            }
            self.close(")", Context::Arguments)?;
            return Ok(args);
        }
    }

    /// Expects the closing `op`, or explains what is wrong.
    fn close(&mut self, op: &str, context: Context) -> Result<(), SyntaxError> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(self.unexpected(context))
        }
    }

    /// An error for a token that cannot follow the expression before it.
    fn unexpected(&self, context: Context) -> SyntaxError {
        let starts_value = matches!(
            self.peek(),
            Tok::Name(_) | Tok::Int(_) | Tok::Float(_) | Tok::Str(_) | Tok::Op("(" | "[" | "{")
        );
        if let Tok::Name(name) = self.peek()
            && KEYWORDS.contains(&name.as_str())
        {
            return self.error_here(
                format!("`{name}` is not supported in the nameko shell"),
                Some(
                    "the shell evaluates calls and literals, not operators or statements"
                        .to_owned(),
                ),
            );
        }
        if starts_value {
            return self.error_here(
                "invalid syntax",
                Some("perhaps you forgot a comma?".to_owned()),
            );
        }
        match (self.peek(), context) {
            (
                Tok::Op(
                    op @ ("+" | "-" | "*" | "/" | "//" | "%" | "**" | "@" | "==" | "!=" | "<" | ">"
                    | "<=" | ">=" | "&" | "|" | "^" | "<<" | ">>"),
                ),
                _,
            ) => self.error_here(
                format!("the nameko shell does not evaluate operators such as '{op}'"),
                Some("give the value itself, e.g. 3 rather than 1 + 2".to_owned()),
            ),
            (
                Tok::Op(
                    op @ ("+=" | "-=" | "*=" | "/=" | "//=" | "%=" | "**=" | "&=" | "|=" | "^="
                    | "@=" | ">>=" | "<<=" | ":="),
                ),
                _,
            ) => self.error_here(
                format!("the nameko shell does not evaluate '{op}'"),
                Some("assign the new value, e.g. x = 2".to_owned()),
            ),
            (Tok::Op(":"), Context::Statement) => self.error_here(
                "invalid syntax: unexpected ':'",
                Some("blocks (if, for, def) are not supported in the nameko shell".to_owned()),
            ),
            (Tok::Op(op), Context::Arguments) => self.error_here(
                format!("invalid syntax: expected ',' or ')', not '{op}'"),
                Some("separate arguments with commas and close the call with ')'".to_owned()),
            ),
            (Tok::Op(op), Context::Items(close)) => self.error_here(
                format!("invalid syntax: expected ',' or '{close}', not '{op}'"),
                None,
            ),
            (Tok::Op(op), Context::Statement) => {
                self.error_here(format!("invalid syntax: unexpected '{op}'"), None)
            }
            _ => self.error_here("invalid syntax", None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(source: &str) -> Expr {
        match parse(source).unwrap().pop().unwrap() {
            Stmt::Expr(e) => e,
            Stmt::Assign { .. } => panic!("an assignment"),
        }
    }

    fn name(n: &str) -> Box<Expr> {
        Box::new(Expr::Name(n.into()))
    }

    #[test]
    fn calls_with_attributes_subscripts_and_arguments() {
        assert_eq!(
            expr("n.rpc['svc'].m(1, -2.5, *x, key='v', **kw)"),
            Expr::Call(
                Box::new(Expr::Attr(
                    Box::new(Expr::Index(
                        Box::new(Expr::Attr(name("n"), "rpc".into())),
                        Box::new(Expr::Str("svc".into()))
                    )),
                    "m".into()
                )),
                vec![
                    Arg::Positional(Expr::Int(1)),
                    Arg::Positional(Expr::Neg(Box::new(Expr::Float(2.5)))),
                    Arg::Star(Expr::Name("x".into())),
                    Arg::Keyword("key".into(), Expr::Str("v".into())),
                    Arg::StarStar(Expr::Name("kw".into())),
                ]
            )
        );
    }

    #[test]
    fn literals_of_python_and_json() {
        assert_eq!(
            expr("({'a': [1, (2,), ()], \"b\": None}, True, 'x' 'y', [])"),
            Expr::Tuple(vec![
                Expr::Dict(vec![
                    (
                        Expr::Str("a".into()),
                        Expr::List(vec![
                            Expr::Int(1),
                            Expr::Tuple(vec![Expr::Int(2)]),
                            Expr::Tuple(vec![])
                        ])
                    ),
                    (Expr::Str("b".into()), Expr::None)
                ]),
                Expr::Bool(true),
                Expr::Str("xy".into()),
                Expr::List(vec![]),
            ])
        );
        assert_eq!(expr("1, 2"), Expr::Tuple(vec![Expr::Int(1), Expr::Int(2)]));
        assert_eq!(expr("(1)"), Expr::Int(1));
    }

    #[test]
    fn assignments_and_statement_lists() {
        let statements = parse("x = 1; y = x, 2\nx").unwrap();
        assert_eq!(statements.len(), 3);
        assert_eq!(
            statements[0],
            Stmt::Assign {
                name: "x".into(),
                value: Expr::Int(1)
            }
        );
        assert!(parse("").unwrap().is_empty());
        assert!(parse("# a comment").unwrap().is_empty());
    }

    fn error(source: &str) -> SyntaxError {
        parse(source).unwrap_err()
    }

    #[test]
    fn errors_point_at_the_column_and_suggest_the_fix() {
        let e = error("n.rpc.calculator.add(1 2)");
        assert_eq!((e.column, e.message.as_str()), (24, "invalid syntax"));
        assert_eq!(e.hint.as_deref(), Some("perhaps you forgot a comma?"));
        let e = error("n.rpc.calculator.add(1, 2");
        assert_eq!(e.column, 21);
        assert_eq!(e.message, "'(' was never closed");
        assert_eq!(
            error("f(a=1, 2)").message,
            "positional argument follows keyword argument"
        );
        assert_eq!(error("f(a=1, a=2)").message, "keyword argument repeated: a");
        assert!(error("{1, 2}").message.contains("sets are not supported"));
        assert!(error("import os").message.contains("`import` statements"));
        assert!(error("1 + 2").message.contains("operators such as '+'"));
        assert!(error("x.y = 1").message.contains("cannot assign"));
        assert!(error("x[1:2]").message.contains("slices"));
        assert!(error("n.").message.contains("expected a name"));
        assert!(error("x =").hint.unwrap().contains("x = 1"));
        assert!(error("[x for x in y]").message.contains("`for`"));
        assert!(error("f(x for x in y)").message.contains("comprehensions"));
        assert!(error("None = 1").message.contains("cannot assign to None"));
        assert_eq!(error(&"[".repeat(150)).message, "'[' was never closed");
        let closed = format!("{}{}", "[".repeat(150), "]".repeat(150));
        assert_eq!(error(&closed).message, "too many nested parentheses");
    }
}
