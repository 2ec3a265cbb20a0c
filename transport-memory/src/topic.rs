//! RabbitMQ's topic matching: binding patterns with `*` and `#` against routing keys.

use std::fmt;

/// One word of a compiled binding pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    /// Matches exactly this word.
    Literal(Box<str>),
    /// `*`: exactly one word, which may be empty.
    One,
    /// `#`: zero or more words.
    Any,
}

/// A compiled topic binding pattern.
///
/// Patterns and routing keys are split on `.` into words; an empty string is zero words,
/// as RabbitMQ splits it, and `a..b` has an empty middle word. `*` matches exactly one
/// word and `#` matches zero or more, anywhere in the pattern. Matching runs in
/// `O(pattern words × key words)` time without allocating beyond splitting the key.
///
/// ```
/// use nameko_memory::topic::TopicPattern;
///
/// let pattern = TopicPattern::new("orders.#.created");
/// assert!(pattern.matches("orders.created"));
/// assert!(pattern.matches("orders.eu.fr.created"));
/// assert!(!pattern.matches("orders.eu.deleted"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TopicPattern {
    source: Box<str>,
    words: Vec<Word>,
}

impl TopicPattern {
    /// Compiles a binding pattern. Consecutive `#` words collapse into one, which
    /// matches the same keys.
    #[must_use]
    pub fn new(pattern: &str) -> Self {
        let mut words: Vec<Word> = Vec::new();
        for word in split(pattern) {
            let word = match word {
                "*" => Word::One,
                "#" => Word::Any,
                literal => Word::Literal(literal.into()),
            };
            if word == Word::Any && words.last() == Some(&Word::Any) {
                continue;
            }
            words.push(word);
        }
        Self {
            source: pattern.into(),
            words,
        }
    }

    /// The pattern as it was written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no wildcard, so only the identical key matches.
    #[must_use]
    pub fn is_literal(&self) -> bool {
        self.words.iter().all(|w| matches!(w, Word::Literal(_)))
    }

    /// Whether `routing_key` matches this pattern.
    #[must_use]
    pub fn matches(&self, routing_key: &str) -> bool {
        if self.is_literal() {
            return *self.source == *routing_key;
        }
        let key: Vec<&str> = split(routing_key).collect();
        self.matches_words(&key)
    }

    /// Matches pre-split key words: the greedy wildcard algorithm, with `#` as the
    /// any-sequence wildcard and `*` as the any-single one, backtracking only to the
    /// most recent `#`.
    pub(crate) fn matches_words(&self, key: &[&str]) -> bool {
        let pattern = &self.words;
        let (mut p, mut k) = (0, 0);
        // Position after the last `#` seen, and the key position it was resumed from.
        let mut resume: Option<(usize, usize)> = None;
        while k < key.len() {
            match pattern.get(p) {
                Some(Word::Any) => {
                    resume = Some((p + 1, k));
                    p += 1;
                }
                Some(Word::One) => {
                    p += 1;
                    k += 1;
                }
                Some(Word::Literal(word)) if **word == *key[k] => {
                    p += 1;
                    k += 1;
                }
                _ => match resume {
                    // Let the last `#` swallow one more word and retry from there.
                    Some((after_hash, from)) => {
                        p = after_hash;
                        k = from + 1;
                        resume = Some((after_hash, from + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|w| *w == Word::Any)
    }
}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicPattern").field(&self.source).finish()
    }
}

/// Whether the topic binding `pattern` matches `routing_key`, as RabbitMQ decides it.
///
/// ```
/// use nameko_memory::topic::matches;
///
/// assert!(matches("a.*", "a.b"));
/// assert!(matches("a.#", "a"));
/// assert!(matches("#", ""));
/// assert!(!matches("*", ""));
/// ```
#[must_use]
pub fn matches(pattern: &str, routing_key: &str) -> bool {
    TopicPattern::new(pattern).matches(routing_key)
}

/// Splits a key or pattern into words; the empty string has none.
pub(crate) fn split(s: &str) -> impl Iterator<Item = &str> {
    let mut words = s.split('.');
    if s.is_empty() {
        words.next();
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(pattern, key, matches)`, as RabbitMQ routes them.
    const CASES: &[(&str, &str, bool)] = &[
        ("a.b.c", "a.b.c", true),
        ("a.b.c", "a.b", false),
        ("a.b.c", "a.b.c.d", false),
        ("a.*.c", "a.b.c", true),
        ("a.*.c", "a.c", false),
        ("a.*.c", "a.b.b.c", false),
        ("*", "a", true),
        ("*", "", false),
        ("*", "a.b", false),
        ("*.*", "a.b", true),
        ("*.*", "a", false),
        ("#", "", true),
        ("#", "a", true),
        ("#", "a.b.c", true),
        ("#", ".", true),
        ("a.#", "a", true),
        ("a.#", "a.b", true),
        ("a.#", "a.b.c", true),
        ("a.#", "b.a", false),
        ("a.#", "", false),
        ("#.c", "c", true),
        ("#.c", "a.b.c", true),
        ("#.c", "a.c.d", false),
        ("a.#.c", "a.c", true),
        ("a.#.c", "a.b.c", true),
        ("a.#.c", "a.b.b.c", true),
        ("a.#.c", "a.c.c", true),
        ("a.#.c", "a.b.b", false),
        ("#.b.#", "b", true),
        ("#.b.#", "a.b.c", true),
        ("#.b.#", "a.c", false),
        ("#.#", "", true),
        ("#.#", "a.b", true),
        ("#.#.#", "a", true),
        ("*.#", "", false),
        ("*.#", "a", true),
        ("#.*", "a.b", true),
        ("#.*", "", false),
        ("#.*.#", "a", true),
        ("a.*.#", "a", false),
        ("a.*.#", "a.b", true),
        ("#.a.*.b.#", "x.a.y.a.z.b.w", true),
        ("#.a.*.b.#", "a.b", false),
        ("a..b", "a..b", true),
        ("a.*.b", "a..b", true),
        ("a.#.b", "a..b", true),
        ("a.b", "a..b", false),
        ("a.*", "a.", true),
        ("a", "a.", false),
        (".", ".", true),
        ("*", ".", false),
        ("*.*", ".", true),
        ("", "", true),
        ("", "a", false),
        ("a", "", false),
        ("#.a.#", "a.a", true),
        ("rpc-calc.*", "rpc-calc.add", true),
        ("calc.add", "calc.addition", false),
    ];

    #[test]
    fn rabbitmq_topic_cases() {
        for &(pattern, key, expected) in CASES {
            assert_eq!(
                TopicPattern::new(pattern).matches(key),
                expected,
                "pattern {pattern:?} key {key:?}"
            );
        }
    }

    #[test]
    fn consecutive_hashes_collapse() {
        assert_eq!(TopicPattern::new("#.#.a").words.len(), 2);
        assert!(TopicPattern::new("#.#.a").matches("a"));
    }

    #[test]
    fn literal_patterns_compare_the_whole_key() {
        let p = TopicPattern::new("a.b");
        assert!(p.is_literal());
        assert!(p.matches("a.b"));
        assert!(!p.matches("a.b."));
        assert!(!TopicPattern::new("a.*").is_literal());
    }

    #[test]
    fn split_follows_rabbitmq() {
        assert_eq!(split("").count(), 0);
        assert_eq!(split(".").collect::<Vec<_>>(), vec!["", ""]);
        assert_eq!(split("a").collect::<Vec<_>>(), vec!["a"]);
    }
}
