//! Exchanges route as RabbitMQ's do: default, direct, fanout and topic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use nameko_transport::{ExchangeKind, QueueOptions, Transport};
use proptest::collection::vec;
use proptest::prelude::{Just, Strategy, prop_oneof};
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;

use crate::runner::{CaseResult, Context as _, Cx, ensure};
use crate::support::{diff_ids, drain_ids, publish_one};
use crate::topic::{TOPIC_CASES, reference_topic_match};

/// Checks that each queue in `queues` got exactly the ids in `expected[queue]`.
async fn expect_routed(
    cx: &Cx<'_>,
    conn: &Arc<dyn Transport>,
    expected: &BTreeMap<String, Vec<String>>,
) -> CaseResult {
    cx.harness.settle().await;
    let mut problems = Vec::new();
    for (queue, ids) in expected {
        let got = drain_ids(cx, conn, queue).await?;
        if let Some(diff) = diff_ids(ids, &got) {
            problems.push(format!("queue {queue}: {diff}"));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n    "));
    Ok(())
}

/// The default exchange routes to the queue named by the routing key, and only to it.
pub(crate) async fn default_exchange_routes_by_queue_name(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q1 = cx.queue(&conn, "q1", QueueOptions::default()).await?;
    let q2 = cx.queue(&conn, "q2", QueueOptions::default()).await?;
    publish_one(&conn, "", &q1, "to-q1").await?;
    publish_one(&conn, "", &q2, "to-q2").await?;
    // Not mandatory: a key naming no queue is silently dropped.
    publish_one(&conn, "", &cx.name("no-such-queue"), "to-nowhere").await?;
    let expected = BTreeMap::from([
        (q1, vec!["to-q1".to_owned()]),
        (q2, vec!["to-q2".to_owned()]),
    ]);
    expect_routed(cx, &conn, &expected).await
}

/// A direct exchange routes by exact key to every queue bound with it.
pub(crate) async fn direct_exchange_routes_by_exact_key(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let ex = cx.exchange(&conn, "direct", ExchangeKind::Direct).await?;
    let qa = cx.queue(&conn, "qa", QueueOptions::default()).await?;
    let qb = cx.queue(&conn, "qb", QueueOptions::default()).await?;
    let qa2 = cx.queue(&conn, "qa2", QueueOptions::default()).await?;
    for (q, key) in [(&qa, "a"), (&qb, "b"), (&qa2, "a")] {
        conn.bind_queue(q, &ex, key)
            .await
            .ctx(&format!("binding {q} to {ex} with {key:?}"))?;
    }
    for (key, id) in [
        ("a", "key-a"),
        ("b", "key-b"),
        ("c", "key-c"),
        ("a.b", "key-a.b"),
    ] {
        publish_one(&conn, &ex, key, id).await?;
    }
    let expected = BTreeMap::from([
        (qa, vec!["key-a".to_owned()]),
        (qb, vec!["key-b".to_owned()]),
        (qa2, vec!["key-a".to_owned()]),
    ]);
    expect_routed(cx, &conn, &expected).await
}

/// A fanout exchange copies every message to every bound queue, whatever the key.
pub(crate) async fn fanout_copies_to_every_bound_queue(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let ex = cx.exchange(&conn, "fanout", ExchangeKind::Fanout).await?;
    let mut expected = BTreeMap::new();
    for n in 0..3 {
        let q = cx
            .queue(&conn, &format!("q{n}"), QueueOptions::default())
            .await?;
        conn.bind_queue(&q, &ex, &format!("ignored-{n}"))
            .await
            .ctx(&format!("binding {q}"))?;
        expected.insert(q, vec!["m-0".to_owned(), "m-1".to_owned()]);
    }
    publish_one(&conn, &ex, "anything", "m-0").await?;
    publish_one(&conn, &ex, "", "m-1").await?;
    expect_routed(cx, &conn, &expected).await
}

/// Binds one queue per pattern to a fresh topic exchange, publishes each key once, and
/// checks every (pattern, key) pair: against `table` where it gives the answer, against
/// [`reference_topic_match`] everywhere.
async fn check_topic_routing(
    cx: &Cx<'_>,
    conn: &Arc<dyn Transport>,
    round: &str,
    patterns: &[String],
    keys: &[String],
    table: &BTreeMap<(String, String), bool>,
) -> CaseResult {
    let ex = cx
        .exchange(conn, &format!("topic-{round}"), ExchangeKind::Topic)
        .await?;
    let patterns: BTreeSet<&String> = patterns.iter().collect();
    let keys: BTreeSet<&String> = keys.iter().collect();
    let key_ids: BTreeMap<String, &String> = keys
        .iter()
        .enumerate()
        .map(|(n, key)| (format!("{round}-key-{n}"), *key))
        .collect();
    let mut queues = Vec::new();
    for (n, pattern) in patterns.iter().enumerate() {
        let q = cx
            .queue(conn, &format!("{round}-p{n}"), QueueOptions::default())
            .await?;
        conn.bind_queue(&q, &ex, pattern)
            .await
            .ctx(&format!("binding {q} with pattern {pattern:?}"))?;
        queues.push((q, *pattern));
    }
    for (id, key) in &key_ids {
        publish_one(conn, &ex, key, id).await?;
    }
    cx.harness.settle().await;
    let mut problems = Vec::new();
    for (queue, pattern) in &queues {
        let got = drain_ids(cx, conn, queue).await?;
        let got_set: BTreeSet<&str> = got.iter().map(String::as_str).collect();
        if got_set.len() != got.len() {
            problems.push(format!(
                "pattern {pattern:?}: some key arrived more than once: {got:?}"
            ));
        }
        for (id, key) in &key_ids {
            let pair = ((*pattern).clone(), (*key).clone());
            let expected = table
                .get(&pair)
                .copied()
                .unwrap_or_else(|| reference_topic_match(pattern, key));
            let routed = got_set.contains(id.as_str());
            if routed != expected {
                problems.push(format!(
                    "pattern {pattern:?} key {key:?}: expected {}, got {}",
                    if expected { "a match" } else { "no match" },
                    if routed { "the message" } else { "nothing" },
                ));
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "{} wrong routing decisions:\n    {}",
        problems.len(),
        problems.join("\n    ")
    );
    Ok(())
}

/// RabbitMQ's topic semantics, case by case from a table.
pub(crate) async fn topic_wildcards_table(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let table: BTreeMap<(String, String), bool> = TOPIC_CASES
        .iter()
        .map(|&(p, k, m)| ((p.to_owned(), k.to_owned()), m))
        .collect();
    let patterns: Vec<String> = table.keys().map(|(p, _)| p.clone()).collect();
    let keys: Vec<String> = table.keys().map(|(_, k)| k.clone()).collect();
    check_topic_routing(cx, &conn, "table", &patterns, &keys, &table).await
}

fn word(choices: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(choices)
}

fn dotted(choices: &'static [&'static str]) -> impl Strategy<Value = String> {
    vec(word(choices), 0..=4).prop_map(|words| words.join("."))
}

/// Random patterns and keys over a small alphabet, so that matches are common, routed by
/// the backend and compared with [`reference_topic_match`].
pub(crate) async fn topic_wildcards_random(cx: &Cx<'_>) -> CaseResult {
    const KEY_WORDS: &[&str] = &["a", "b", "c", ""];
    const PATTERN_WORDS: &[&str] = &["a", "b", "*", "#", "", "a", "#"];
    let rounds = if cx.short { 2 } else { 8 };
    let conn = cx.connect().await;
    let mut runner = TestRunner::default();
    let patterns = vec(dotted(PATTERN_WORDS), 16);
    let keys = vec(prop_oneof![dotted(KEY_WORDS), Just(String::new())], 40);
    let empty = BTreeMap::new();
    for round in 0..rounds {
        let patterns = patterns
            .new_tree(&mut runner)
            .map_err(|e| format!("generating patterns: {e}"))?
            .current();
        let keys = keys
            .new_tree(&mut runner)
            .map_err(|e| format!("generating keys: {e}"))?
            .current();
        check_topic_routing(cx, &conn, &format!("r{round}"), &patterns, &keys, &empty).await?;
    }
    Ok(())
}

/// A queue bound by several patterns that all match gets one copy of the message.
pub(crate) async fn topic_overlapping_bindings_deliver_once(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let ex = cx.exchange(&conn, "topic", ExchangeKind::Topic).await?;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    for pattern in ["a.*", "#", "a.b", "*.b", "a.#", "a.b"] {
        conn.bind_queue(&q, &ex, pattern)
            .await
            .ctx(&format!("binding {q} with {pattern:?}"))?;
    }
    publish_one(&conn, &ex, "a.b", "once").await?;
    publish_one(&conn, &ex, "z", "hash-only").await?;
    let expected = BTreeMap::from([(q, vec!["once".to_owned(), "hash-only".to_owned()])]);
    expect_routed(cx, &conn, &expected).await
}
