//! Composing a YAML document: saphyr-parser's events into a tree of nodes, with anchors,
//! aliases and the limits that keep a document that multiplies through aliases from
//! exhausting memory.
//!
//! Scalars keep their text, style and tag: what they mean is decided later, by PyYAML's
//! rules ([`super::resolve`]) and nameko's substitution ([`super::substitute`]).

use std::collections::HashMap;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError};

/// Deepest nesting of sequences and mappings a document may have.
pub(super) const MAX_DEPTH: usize = 128;
/// Work allowed to build one document: one unit per node and per byte of scalar text,
/// which bounds documents that multiply through aliases.
pub(super) const MAX_EXPANSION: usize = 16 * 1024 * 1024;

/// A node of a document, shared by every alias of its anchor.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) kind: Kind,
    pub(super) line: usize,
    pub(super) column: usize,
    /// Nodes plus scalar bytes once aliases are expanded: the work of building it.
    size: usize,
    /// Nesting once aliases are expanded (1 for a scalar).
    depth: usize,
}

/// What a node is, with its tag as written (resolved to its full form).
#[derive(Debug)]
pub(super) enum Kind {
    Scalar {
        text: String,
        style: ScalarStyle,
        tag: Option<String>,
    },
    Sequence {
        tag: Option<String>,
        items: Vec<Rc<Node>>,
    },
    Mapping {
        tag: Option<String>,
        entries: Vec<(Rc<Node>, Rc<Node>)>,
    },
}

impl Kind {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Kind::Scalar { .. } => "a scalar",
            Kind::Sequence { .. } => "a sequence",
            Kind::Mapping { .. } => "a mapping",
        }
    }
}

/// A collection whose end event has not come yet.
struct Open {
    anchor: usize,
    line: usize,
    column: usize,
    tag: Option<String>,
    content: OpenContent,
    size: usize,
    depth: usize,
}

enum OpenContent {
    Sequence(Vec<Rc<Node>>),
    Mapping {
        entries: Vec<(Rc<Node>, Rc<Node>)>,
        key: Option<Rc<Node>>,
    },
}

/// Why a text could not be composed into a node tree.
#[derive(Debug)]
pub(super) enum ComposeError {
    Scan(ScanError),
    MultipleDocuments { line: usize, column: usize },
    TooDeep { line: usize, column: usize },
    TooLarge { line: usize, column: usize },
    RecursiveAlias { line: usize, column: usize },
}

impl ComposeError {
    pub(super) fn position(&self) -> (usize, usize) {
        match self {
            ComposeError::Scan(error) => (error.marker().line(), error.marker().col() + 1),
            ComposeError::MultipleDocuments { line, column }
            | ComposeError::TooDeep { line, column }
            | ComposeError::TooLarge { line, column }
            | ComposeError::RecursiveAlias { line, column } => (*line, *column),
        }
    }

    pub(super) fn message(&self) -> String {
        match self {
            ComposeError::Scan(error) => error.info().to_owned(),
            ComposeError::MultipleDocuments { .. } => {
                "expected a single document, found a second one".to_owned()
            }
            ComposeError::TooDeep { .. } => {
                format!("sequences and mappings nest more than {MAX_DEPTH} deep")
            }
            ComposeError::TooLarge { .. } => {
                "the document is too large once its aliases are expanded".to_owned()
            }
            ComposeError::RecursiveAlias { .. } => {
                "an alias refers to a node that contains it".to_owned()
            }
        }
    }
}

fn tag_name(tag: &saphyr_parser::Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

/// Parses `text` into the node tree of its single document (`None` for an empty stream).
pub(super) fn compose(text: &str) -> Result<Option<Rc<Node>>, ComposeError> {
    let mut anchors: HashMap<usize, Rc<Node>> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(ComposeError::Scan)?;
        let line = span.start.line();
        let column = span.start.col() + 1;
        let is_sequence = matches!(event, Event::SequenceStart(..));
        let (node, anchor) = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(ComposeError::MultipleDocuments { line, column });
                }
                continue;
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(node) => (Rc::clone(node), 0),
                None => return Err(ComposeError::RecursiveAlias { line, column }),
            },
            Event::Scalar(text, style, anchor, tag) => {
                let size = text.len().saturating_add(1);
                let kind = Kind::Scalar {
                    text: text.into_owned(),
                    style,
                    tag: tag.as_deref().map(tag_name),
                };
                let node = Node {
                    kind,
                    line,
                    column,
                    size,
                    depth: 1,
                };
                (Rc::new(node), anchor)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(ComposeError::TooDeep { line, column });
                }
                let content = if is_sequence {
                    OpenContent::Sequence(Vec::new())
                } else {
                    OpenContent::Mapping {
                        entries: Vec::new(),
                        key: None,
                    }
                };
                stack.push(Open {
                    anchor,
                    line,
                    column,
                    tag: tag.as_deref().map(tag_name),
                    content,
                    size: 1,
                    depth: 1,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = stack.pop() else { continue };
                let kind = match open.content {
                    OpenContent::Sequence(items) => Kind::Sequence {
                        tag: open.tag,
                        items,
                    },
                    OpenContent::Mapping { entries, .. } => Kind::Mapping {
                        tag: open.tag,
                        entries,
                    },
                };
                let node = Node {
                    kind,
                    line: open.line,
                    column: open.column,
                    size: open.size,
                    depth: open.depth,
                };
                (Rc::new(node), open.anchor)
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {
                continue;
            }
        };
        if anchor != 0 {
            anchors.insert(anchor, Rc::clone(&node));
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(open) => {
                // Sizes and depths add up through aliases, which catches documents that
                // multiply through them before anything is built.
                open.size = open.size.saturating_add(node.size);
                open.depth = open.depth.max(node.depth.saturating_add(1));
                if open.size > MAX_EXPANSION {
                    return Err(ComposeError::TooLarge { line, column });
                }
                if open.depth > MAX_DEPTH {
                    return Err(ComposeError::TooDeep { line, column });
                }
                match &mut open.content {
                    OpenContent::Sequence(items) => items.push(node),
                    OpenContent::Mapping { entries, key } => match key.take() {
                        None => *key = Some(node),
                        Some(key) => entries.push((key, node)),
                    },
                }
            }
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{NO_ENV, load_err, load_with};
    use crate::config::{Config, ConfigLoadError};
    use serde_json::json;

    #[test]
    fn aliases_repeat_their_anchor_and_substitute_each_time() {
        let yaml = "a: &x\n  uri: '${U:memory://}'\n  n: ${N:1}\nb: *x\nc: &y [1, 2]\nd: *y";
        assert_eq!(
            load_with(yaml, &[("N", "2")]),
            json!({"a": {"uri": "${U:memory://}", "n": 2}, "b": {"uri": "${U:memory://}", "n": 2}, "c": [1, 2], "d": [1, 2]})
        );
        let error = load_err("a: &x [1, *x]", &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::InvalidValue { .. }),
            "{error:?}"
        );
        let error = load_err("a: *nowhere", &NO_ENV);
        assert!(matches!(error, ConfigLoadError::Syntax { .. }), "{error:?}");
    }

    #[test]
    fn documents_that_explode_are_refused() {
        let mut yaml = String::from("l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n");
        for level in 1..10 {
            let previous = level - 1;
            yaml.push_str(&format!(
                "l{level}: &l{level} [*l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}, *l{previous}]\n"
            ));
        }
        let error = load_err(&yaml, &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::TooLarge { .. }),
            "{error:?}"
        );

        let deep = format!("a: {}{}", "[".repeat(200), "]".repeat(200));
        let error = load_err(&deep, &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::TooLarge { .. }),
            "{error:?}"
        );

        // Nesting adds up through aliases too.
        let nested = |inner: &str| format!("{}{inner}{}", "[".repeat(100), "]".repeat(100));
        let yaml = format!("a: &a {}\nb: {}", nested("1"), nested("*a"));
        let error = load_err(&yaml, &NO_ENV);
        assert!(
            matches!(error, ConfigLoadError::TooLarge { ref at, .. } if at.line == 2),
            "{error:?}"
        );
        assert!(Config::from_yaml_str(&format!("a: &a {}\nb: *a", nested("1")), &NO_ENV).is_ok());
    }

    #[test]
    fn document_level_errors() {
        let error = load_err("a: 1\nb: [1, 2\n", &NO_ENV);
        assert!(
            matches!(&error, ConfigLoadError::Syntax { at, .. } if at.line == 3 && at.column == 1),
            "{error:?}"
        );
        assert!(
            error
                .to_string()
                .starts_with("line 3, column 1: invalid YAML: "),
            "{error}"
        );

        let error = load_err("a: 1\n---\nb: 2\n", &NO_ENV);
        assert!(
            matches!(&error, ConfigLoadError::MultipleDocuments { at } if at.line == 2),
            "{error:?}"
        );

        for (yaml, found) in [
            ("- 1", "a sequence"),
            ("5", "a number"),
            ("text", "a string"),
        ] {
            let error = load_err(yaml, &NO_ENV);
            assert!(
                matches!(&error, ConfigLoadError::NotAMapping { found: f, .. } if *f == found),
                "{yaml}: {error:?}"
            );
        }
        // The whole document may come from a variable.
        assert_eq!(
            load_with("${CONFIG}", &[("CONFIG", "{a: 1}")]),
            json!({"a": 1})
        );
    }

    #[test]
    fn empty_documents_give_an_empty_config() {
        for yaml in ["", "# nothing\n", "---\n", "~", "\u{feff}"] {
            assert_eq!(load_with(yaml, &NO_ENV), json!({}), "{yaml:?}");
        }
        assert_eq!(load_with("\u{feff}a: 1", &NO_ENV), json!({"a": 1}));
    }
}
