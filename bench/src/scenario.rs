//! What is measured: the scenarios and their payloads, shared by every client.

use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

/// The 10 KB string of the large payload (the Python client's `BLOB`).
#[must_use]
pub fn blob() -> String {
    "0123456789abcdef".repeat(640)
}

/// The small payload of call `i`: `{"n": i}`.
#[must_use]
pub fn small(i: usize) -> Value {
    json!({ "n": i })
}

/// The 10 KB payload of call `i`: `{"n": i, "blob": <10240 characters>}`.
#[must_use]
pub fn large(i: usize, blob: &str) -> Value {
    json!({ "n": i, "blob": blob })
}

/// One benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Sequential calls with a small payload.
    Seq,
    /// Small calls, a fixed number in flight.
    Pipe,
    /// Sequential calls with a 10 KB payload.
    Seq10k,
    /// Events dispatched one after the other to a handler, until it has seen them all.
    Event,
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Self; 4] = [Self::Seq, Self::Pipe, Self::Seq10k, Self::Event];

    /// The name clients know it by.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Seq => "seq",
            Self::Pipe => "pipe",
            Self::Seq10k => "seq10k",
            Self::Event => "event",
        }
    }

    /// A description for tables.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Seq => "sequential small calls",
            Self::Pipe => "calls in flight",
            Self::Seq10k => "sequential 10 KB calls",
            Self::Event => "events dispatched to a handler",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| format!("unknown scenario `{s}` (seq, pipe, seq10k, event)"))
    }
}

/// How many calls a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Measured calls of `seq`.
    pub seq: usize,
    /// Measured calls of `pipe`.
    pub pipe: usize,
    /// Calls in flight in `pipe`.
    pub inflight: usize,
    /// Measured calls of `seq10k`.
    pub big: usize,
    /// Measured events of `event`.
    pub events: usize,
    /// Unmeasured calls before each measured run.
    pub warmup: usize,
}

impl Sizes {
    /// The measured calls of a scenario.
    #[must_use]
    pub fn calls(&self, scenario: Scenario) -> usize {
        match scenario {
            Scenario::Seq => self.seq,
            Scenario::Pipe => self.pipe,
            Scenario::Seq10k => self.big,
            Scenario::Event => self.events,
        }
    }

    /// The client flags that set these sizes (the same for every client).
    #[must_use]
    pub fn client_args(&self) -> Vec<String> {
        [
            ("--seq-n", self.seq),
            ("--pipe-n", self.pipe),
            ("--inflight", self.inflight),
            ("--big-n", self.big),
            ("--warmup", self.warmup),
        ]
        .into_iter()
        .flat_map(|(flag, n)| [flag.to_owned(), n.to_string()])
        .collect()
    }
}

impl Default for Sizes {
    fn default() -> Self {
        Self {
            seq: 2000,
            pipe: 5000,
            inflight: 100,
            big: 1000,
            events: 2000,
            warmup: 100,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_match_the_python_client() {
        assert_eq!(blob().len(), 10_240);
        assert_eq!(small(3), json!({"n": 3}));
        assert_eq!(large(1, "x"), json!({"n": 1, "blob": "x"}));
    }

    #[test]
    fn scenarios_parse_by_name() {
        for sc in Scenario::ALL {
            assert_eq!(sc.name().parse::<Scenario>(), Ok(sc));
        }
        assert!("nope".parse::<Scenario>().is_err());
    }
}
