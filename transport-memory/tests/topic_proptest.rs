//! The broker's topic matcher agrees with the reference matcher of the conformance suite
//! on random patterns and keys (PROPTEST_CASES cases, 5000 by default).

use nameko_memory::topic::TopicPattern;
use nameko_transport_conformance::{TOPIC_CASES, reference_topic_match};
use proptest::prelude::*;

fn dotted(words: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(words), 0..=max)
        .prop_map(|words| words.join("."))
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matcher_agrees_with_the_reference(
        pattern in dotted(&["a", "b", "*", "#", ""], 6),
        key in dotted(&["a", "b", ""], 6),
    ) {
        prop_assert_eq!(
            TopicPattern::new(&pattern).matches(&key),
            reference_topic_match(&pattern, &key),
            "pattern {:?} key {:?}", pattern, key
        );
    }

    #[test]
    fn matcher_agrees_on_arbitrary_text(pattern in "[ab*#.]{0,12}", key in "[ab.]{0,12}") {
        prop_assert_eq!(
            TopicPattern::new(&pattern).matches(&key),
            reference_topic_match(&pattern, &key),
            "pattern {:?} key {:?}", pattern, key
        );
    }
}

#[test]
fn matcher_agrees_with_the_conformance_table() {
    for &(pattern, key, expected) in TOPIC_CASES {
        assert_eq!(
            TopicPattern::new(pattern).matches(key),
            expected,
            "pattern {pattern:?} key {key:?}"
        );
    }
}
