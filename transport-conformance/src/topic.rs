//! A reference for RabbitMQ's topic matching, written to be obviously correct rather than
//! fast, and a table of cases checked against RabbitMQ.

/// Whether a topic binding `pattern` matches a routing `key`, as RabbitMQ decides it.
///
/// Both are split on `.` into words; an empty string is zero words (as RabbitMQ splits it),
/// so `a..b` is three words with an empty one in the middle. `*` matches exactly one word
/// (which may be empty) and `#` matches zero or more words, anywhere in the pattern. Any
/// other word matches only itself.
///
/// This is a plain recursive search, meant as the oracle that faster matchers are compared
/// with, not for routing.
///
/// ```
/// use nameko_transport_conformance::reference_topic_match;
///
/// assert!(reference_topic_match("a.*.c", "a.b.c"));
/// assert!(reference_topic_match("a.#", "a"));
/// assert!(reference_topic_match("#", ""));
/// assert!(!reference_topic_match("*", ""));
/// ```
#[must_use]
pub fn reference_topic_match(pattern: &str, key: &str) -> bool {
    matches_words(&words(pattern), &words(key))
}

fn words(s: &str) -> Vec<&str> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('.').collect()
    }
}

fn matches_words(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| matches_words(rest, &key[skip..])),
        Some((&"*", rest)) => !key.is_empty() && matches_words(rest, &key[1..]),
        Some((word, rest)) => key.first() == Some(word) && matches_words(rest, &key[1..]),
    }
}

/// Topic routing cases as RabbitMQ decides them: `(binding pattern, routing key, matches)`.
///
/// Covers `*` and `#` at the start, middle and end, `a.#` matching `a`, `#` matching the
/// empty key, `*` not matching it, and empty words.
pub const TOPIC_CASES: &[(&str, &str, bool)] = &[
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
    ("a.#.c", "a.b.b", false),
    ("#.b.#", "b", true),
    ("#.b.#", "a.b.c", true),
    ("#.b.#", "a.c", false),
    ("#.#", "", true),
    ("#.#", "a.b", true),
    ("*.#", "", false),
    ("*.#", "a", true),
    ("#.*", "a.b", true),
    ("#.*", "", false),
    ("a.*.#", "a", false),
    ("a.*.#", "a.b", true),
    ("a..b", "a..b", true),
    ("a.*.b", "a..b", true),
    ("a.#.b", "a..b", true),
    ("a.b", "a..b", false),
    ("a.*", "a.", true),
    ("a", "a.", false),
    ("", "", true),
    ("", "a", false),
    ("#.a.#", "a.a", true),
    ("rpc-calc.*", "rpc-calc.add", true),
    ("calc.add", "calc.add", true),
    ("calc.add", "calc.addition", false),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_agrees_with_the_rabbitmq_table() {
        for &(pattern, key, expected) in TOPIC_CASES {
            assert_eq!(
                reference_topic_match(pattern, key),
                expected,
                "pattern {pattern:?} key {key:?}"
            );
        }
    }

    #[test]
    fn empty_string_is_zero_words() {
        assert!(words("").is_empty());
        assert_eq!(words("."), vec!["", ""]);
        assert_eq!(words("a..b"), vec!["a", "", "b"]);
    }
}
