//! The results of a run, and the tables made of them: medians, ranges and paired ratios.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::contender::{Client, Contender, Server};
use crate::scenario::Scenario;
use crate::stats::{RunFigures, Spread};

/// One measured run of one scenario by one contender.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSample {
    /// The round, from 1.
    pub round: usize,
    /// The contender's key.
    pub contender: &'static str,
    /// The scenario.
    pub scenario: Scenario,
    /// What the client measured.
    pub figures: RunFigures,
    /// CPU time of the client process per call, in µs.
    pub client_cpu_us: f64,
    /// CPU time of the server process per call, in µs (none in process).
    pub server_cpu_us: Option<f64>,
}

/// One start of a server process.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerSample {
    /// The round, from 1.
    pub round: usize,
    /// The contender's key.
    pub contender: &'static str,
    /// The server.
    pub server: Server,
    /// From spawning the process to a consumer on its queue, in ms.
    pub ready_ms: f64,
    /// Resident memory half a second after it was ready, in KiB.
    pub idle_rss_kib: u64,
    /// Peak resident memory by the end of its runs, in KiB.
    pub peak_rss_kib: u64,
}

/// Everything a run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Rounds run.
    pub rounds: usize,
    /// Calls in flight in the `pipe` scenario.
    pub inflight: usize,
    /// The contenders that ran.
    pub contenders: Vec<Contender>,
    /// Measured client runs.
    pub calls: Vec<CallSample>,
    /// Server starts.
    pub servers: Vec<ServerSample>,
    /// Contenders left out, and why.
    pub skipped: Vec<String>,
    /// Contender runs that failed.
    pub failures: Vec<String>,
}

/// The paired reference of a row: raw lapin with the same prefetch, and Python.
fn lapin_reference(key: &str) -> Option<&'static str> {
    match key {
        "rs" | "py" | "py-rs" | "rs-py" => Some("lapin"),
        "rs-p100" => Some("lapin-p100"),
        _ => None,
    }
}

/// The typed client's contenders, each with the `RpcProxy::call` contender sending
/// positional arguments and the one sending the typed client's keyword arguments.
const TYPED_PAIRS: [(&str, &str, &str, &str); 2] = [
    ("rs-typed", "rs", "rs-kwargs", "RabbitMQ"),
    (
        "memory-typed",
        "memory",
        "memory-kwargs",
        "memory transport, current-thread runtime",
    ),
];

fn python_reference(key: &str) -> Option<&'static str> {
    match key {
        "rs" | "lapin" | "py-rs" | "rs-py" => Some("py"),
        _ => None,
    }
}

impl Report {
    /// An empty report of `rounds` rounds.
    #[must_use]
    pub fn new(rounds: usize) -> Self {
        Self {
            rounds,
            ..Self::default()
        }
    }

    fn samples(&self, key: &str, scenario: Scenario) -> impl Iterator<Item = &CallSample> {
        self.calls
            .iter()
            .filter(move |s| s.contender == key && s.scenario == scenario)
    }

    /// Calls per second of a contender in a scenario, over rounds.
    #[must_use]
    pub fn rate(&self, key: &str, scenario: Scenario) -> Option<Spread> {
        Spread::of(self.samples(key, scenario).map(|s| s.figures.calls_per_s))
    }

    /// A figure of a contender in a scenario, over rounds.
    pub fn figure(
        &self,
        key: &str,
        scenario: Scenario,
        f: impl Fn(&CallSample) -> Option<f64>,
    ) -> Option<Spread> {
        Spread::of(self.samples(key, scenario).filter_map(f))
    }

    /// The ratio of `key`'s calls per second to `reference`'s, paired by round.
    #[must_use]
    pub fn ratio(&self, key: &str, reference: &str, scenario: Scenario) -> Option<Spread> {
        Spread::of(self.samples(key, scenario).filter_map(|s| {
            self.samples(reference, scenario)
                .find(|r| r.round == s.round)
                .map(|r| s.figures.calls_per_s / r.figures.calls_per_s)
        }))
    }

    /// The ratio of `key`'s server CPU time per call to `reference`'s, paired by round.
    #[must_use]
    pub fn cpu_ratio(&self, key: &str, reference: &str, scenario: Scenario) -> Option<Spread> {
        Spread::of(self.samples(key, scenario).filter_map(|s| {
            let reference = self
                .samples(reference, scenario)
                .find(|r| r.round == s.round)?
                .server_cpu_us?;
            let own = s.server_cpu_us?;
            (reference > 0.0).then(|| own / reference)
        }))
    }

    /// A figure of a contender's server starts, over rounds.
    pub fn server_figure(&self, key: &str, f: impl Fn(&ServerSample) -> f64) -> Option<Spread> {
        Spread::of(self.servers.iter().filter(|s| s.contender == key).map(f))
    }

    /// The tables, in Markdown.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let broker: Vec<&Contender> = self
            .contenders
            .iter()
            .filter(|c| c.needs_broker())
            .collect();
        if !broker.is_empty() {
            let _ = writeln!(
                out,
                "### RabbitMQ\n\n| scenario | client → server | calls/s median (min..max) | × raw lapin | × Python | p50 ms | p99 ms | client CPU µs/call | server CPU µs/call |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
            );
            for scenario in Scenario::ALL {
                for c in broker.iter().filter(|c| c.scenarios.contains(&scenario)) {
                    self.row(&mut out, c, scenario);
                }
            }
        }
        let memory: Vec<&Contender> = self
            .contenders
            .iter()
            .filter(|c| matches!(c.client, Client::Memory { .. }))
            .collect();
        if !memory.is_empty() {
            let _ = writeln!(
                out,
                "\n### Memory transport (service and client in one process)\n\n| scenario | runtime | calls/s median (min..max) | p50 ms | p99 ms | CPU µs/call |\n|---|---|---:|---:|---:|---:|"
            );
            for scenario in Scenario::ALL {
                for c in memory.iter().filter(|c| c.scenarios.contains(&scenario)) {
                    let Some(rate) = self.rate(c.key, scenario) else {
                        continue;
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} |",
                        scenario_title(scenario, self.inflight),
                        c.label,
                        spread_int(rate),
                        median(self.figure(c.key, scenario, |s| Some(s.figures.p50_ms)), 3),
                        median(self.figure(c.key, scenario, |s| Some(s.figures.p99_ms)), 3),
                        median(self.figure(c.key, scenario, |s| Some(s.client_cpu_us)), 1),
                    );
                }
            }
        }
        let typed: Vec<(&str, &str, &str, &str)> = TYPED_PAIRS
            .into_iter()
            .filter(|(typed, call, _, _)| {
                self.contenders.iter().any(|c| c.key == *typed)
                    && self.contenders.iter().any(|c| c.key == *call)
            })
            .collect();
        if !typed.is_empty() {
            let _ = writeln!(
                out,
                "\n### Typed client against `RpcProxy::call` (same run, paired by round)\n\n`call` sends positional arguments; `call` (kwargs) sends the keyword arguments the typed client sends.\n\n| scenario | transport | typed calls/s | `call` calls/s | typed × `call` (min..max) | typed × `call` (kwargs) (min..max) | typed p50 ms | `call` p50 ms |\n|---|---|---:|---:|---:|---:|---:|---:|"
            );
            let spread = |r: Option<Spread>| {
                r.map_or_else(
                    || "".to_owned(),
                    |r| format!("{:.3}× ({:.3}..{:.3})", r.median, r.min, r.max),
                )
            };
            for scenario in Scenario::ALL {
                for (typed, call, kwargs, transport) in &typed {
                    let (Some(t), Some(c)) =
                        (self.rate(typed, scenario), self.rate(call, scenario))
                    else {
                        continue;
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {transport} | {} | {} | {} | {} | {} | {} |",
                        scenario_title(scenario, self.inflight),
                        thousands(t.median),
                        thousands(c.median),
                        spread(self.ratio(typed, call, scenario)),
                        spread(self.ratio(typed, kwargs, scenario)),
                        median(self.figure(typed, scenario, |s| Some(s.figures.p50_ms)), 3),
                        median(self.figure(call, scenario, |s| Some(s.figures.p50_ms)), 3),
                    );
                }
            }
        }
        let servers: Vec<&Contender> = broker
            .iter()
            .copied()
            .filter(|c| self.servers.iter().any(|s| s.contender == c.key))
            .collect();
        if !servers.is_empty() {
            let _ = writeln!(
                out,
                "\n### Servers\n\n| server (run as) | ready to serve, ms | idle RSS, MB | peak RSS, MB |\n|---|---:|---:|---:|"
            );
            for c in servers {
                let Some(server) = c.server else { continue };
                let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
                let _ = writeln!(
                    out,
                    "| {} ({}) | {} | {} | {} |",
                    server.label(),
                    c.label,
                    spread(self.server_figure(c.key, |s| s.ready_ms), 0),
                    spread(self.server_figure(c.key, |s| mb(s.idle_rss_kib)), 1),
                    spread(self.server_figure(c.key, |s| mb(s.peak_rss_kib)), 1),
                );
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "\nSkipped: {}.", self.skipped.join("; "));
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "\nFailures:");
            for failure in &self.failures {
                let _ = writeln!(out, "- {failure}");
            }
        }
        out
    }

    fn row(&self, out: &mut String, c: &Contender, scenario: Scenario) {
        let Some(rate) = self.rate(c.key, scenario) else {
            return;
        };
        let ratio = |reference: Option<&str>| {
            reference
                .and_then(|r| self.ratio(c.key, r, scenario))
                .map_or_else(|| "".to_owned(), |s| format!("{:.2}×", s.median))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            scenario_title(scenario, self.inflight),
            c.label,
            spread_int(rate),
            ratio(lapin_reference(c.key)),
            ratio(python_reference(c.key)),
            median(self.figure(c.key, scenario, |s| Some(s.figures.p50_ms)), 2),
            median(self.figure(c.key, scenario, |s| Some(s.figures.p99_ms)), 2),
            median(self.figure(c.key, scenario, |s| Some(s.client_cpu_us)), 0),
            median(self.figure(c.key, scenario, |s| s.server_cpu_us), 0),
        );
    }

    /// The targets, each with what was measured and whether it was met.
    #[must_use]
    pub fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut cpu_targets = Vec::new();
        let mut ratio =
            |name: &str, key: &str, reference: &str, scenario: Scenario, at_least: f64| {
                if let Some(r) = self.ratio(key, reference, scenario) {
                    targets.push(Target {
                        name: name.to_owned(),
                        measured: format!("{:.2}× ({:.2}..{:.2})", r.median, r.min, r.max),
                        met: r.median >= at_least,
                    });
                }
            };
        ratio(
            "nameko-rs ≥ 0.9× raw lapin, sequential",
            "rs",
            "lapin",
            Scenario::Seq,
            0.9,
        );
        ratio(
            "nameko-rs ≥ 0.9× raw lapin, 100 in flight",
            "rs",
            "lapin",
            Scenario::Pipe,
            0.9,
        );
        ratio(
            "nameko-rs ≥ 2× Python nameko, sequential",
            "rs",
            "py",
            Scenario::Seq,
            2.0,
        );
        ratio(
            "nameko-rs ≥ 6× Python nameko, 100 in flight",
            "rs",
            "py",
            Scenario::Pipe,
            6.0,
        );
        ratio(
            "PREFETCH_COUNT 100: nameko-rs ≥ 0.9× raw lapin --prefetch 100, 100 in flight",
            "rs-p100",
            "lapin-p100",
            Scenario::Pipe,
            0.9,
        );
        for (key, reference, prefetch) in [("rs", "lapin", 10), ("rs-p100", "lapin-p100", 100)] {
            ratio(
                &format!(
                    "per-call cost: ≥ 0.95× raw lapin, 100 in flight, PREFETCH_COUNT {prefetch}"
                ),
                key,
                reference,
                Scenario::Pipe,
                0.95,
            );
            if let Some(r) = self.cpu_ratio(key, reference, Scenario::Pipe) {
                cpu_targets.push(Target {
                    name: format!(
                        "per-call cost: service CPU per call ≤ 1.25× raw lapin's, 100 in flight, PREFETCH_COUNT {prefetch}"
                    ),
                    measured: format!("{:.2}× ({:.2}..{:.2})", r.median, r.min, r.max),
                    met: r.median <= 1.25,
                });
            }
        }
        for scenario in [
            Scenario::Seq,
            Scenario::Pipe,
            Scenario::Seq10k,
            Scenario::Event,
        ] {
            ratio(
                &format!(
                    "Python client → nameko-rs faster than → Python, {}",
                    scenario.title()
                ),
                "py-rs",
                "py",
                scenario,
                1.0 + f64::EPSILON,
            );
        }
        for (typed, call, kwargs, transport) in TYPED_PAIRS {
            for scenario in [Scenario::Seq, Scenario::Pipe] {
                ratio(
                    &format!(
                        "typed client no slower than `call` (≥ 0.97×), {transport}, {}",
                        scenario.title()
                    ),
                    typed,
                    call,
                    scenario,
                    0.97,
                );
                ratio(
                    &format!(
                        "typed client no slower than `call` with the same keyword arguments (≥ 0.97×), {transport}, {}",
                        scenario.title()
                    ),
                    typed,
                    kwargs,
                    scenario,
                    0.97,
                );
            }
        }
        for scenario in [Scenario::Seq, Scenario::Pipe] {
            ratio(
                &format!(
                    "metrics on no slower than off (≥ 0.97×), memory transport, {}",
                    scenario.title()
                ),
                "memory-metrics",
                "memory",
                scenario,
                0.97,
            );
        }
        targets.append(&mut cpu_targets);
        for (key, runtime, seq_floor) in [
            ("memory", "current-thread runtime", 50_000.0),
            (
                "memory-mt",
                "multi-thread runtime, load in a task",
                100_000.0,
            ),
            (
                "memory-mt-block-on",
                "multi-thread runtime, load in `block_on`",
                100_000.0,
            ),
        ] {
            for (scenario, floor) in [(Scenario::Seq, seq_floor), (Scenario::Pipe, 150_000.0)] {
                if let Some(rate) = self.rate(key, scenario) {
                    targets.push(Target {
                        name: format!(
                            "memory transport ≥ {} calls/s, {}, {runtime}",
                            thousands(floor),
                            scenario.title()
                        ),
                        measured: format!("{} calls/s", thousands(rate.median)),
                        met: rate.median >= floor,
                    });
                }
            }
        }
        if let Some(rss) = self.server_figure("rs", |s| s.idle_rss_kib as f64 * 1024.0 / 1e6) {
            targets.push(Target {
                name: "idle nameko-rs service < 15 MB RSS".to_owned(),
                measured: format!("{:.1} MB", rss.median),
                met: rss.max < 15.0,
            });
        }
        if let Some(ready) = self.server_figure("rs", |s| s.ready_ms) {
            targets.push(Target {
                name: "nameko-rs service ready within 100 ms of start".to_owned(),
                measured: format!(
                    "{:.0} ms ({:.0}..{:.0})",
                    ready.median, ready.min, ready.max
                ),
                met: ready.max <= 100.0,
            });
        }
        if let Some(p50) = self.figure("rs", Scenario::Seq, |s| Some(s.figures.p50_ms)) {
            targets.push(Target {
                name: "p50 of a sequential call far below 40 ms (no Nagle)".to_owned(),
                measured: format!("{:.2} ms", p50.median),
                met: p50.max < 20.0,
            });
        }
        targets
    }

    /// Every sample, as JSON.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "rounds": self.rounds,
            "calls": self.calls.iter().map(|s| json!({
                "round": s.round,
                "contender": s.contender,
                "scenario": s.scenario.name(),
                "calls": s.figures.calls,
                "calls_per_s": s.figures.calls_per_s,
                "p50_ms": s.figures.p50_ms,
                "p99_ms": s.figures.p99_ms,
                "client_cpu_us": s.client_cpu_us,
                "server_cpu_us": s.server_cpu_us,
            })).collect::<Vec<_>>(),
            "servers": self.servers.iter().map(|s| json!({
                "round": s.round,
                "contender": s.contender,
                "ready_ms": s.ready_ms,
                "idle_rss_kib": s.idle_rss_kib,
                "peak_rss_kib": s.peak_rss_kib,
            })).collect::<Vec<_>>(),
            "skipped": self.skipped,
            "failures": self.failures,
        })
    }
}

/// A target and how the run did against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What is aimed at.
    pub name: String,
    /// What was measured.
    pub measured: String,
    /// Whether it was met.
    pub met: bool,
}

/// The targets as a Markdown table.
#[must_use]
pub fn render_targets(targets: &[Target]) -> String {
    let mut out = String::from("| target | measured | met |\n|---|---:|:---:|\n");
    for t in targets {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            t.name,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        );
    }
    out
}

fn scenario_title(scenario: Scenario, inflight: usize) -> String {
    match scenario {
        Scenario::Pipe => format!("{inflight} {}", scenario.title()),
        _ => scenario.title().to_owned(),
    }
}

fn median(spread: Option<Spread>, digits: usize) -> String {
    spread.map_or_else(String::new, |s| format!("{:.*}", digits, s.median))
}

fn spread(spread: Option<Spread>, digits: usize) -> String {
    spread.map_or_else(String::new, |s| {
        format!(
            "{:.*} ({:.*}..{:.*})",
            digits, s.median, digits, s.min, digits, s.max
        )
    })
}

fn spread_int(s: Spread) -> String {
    format!(
        "{} ({}..{})",
        thousands(s.median),
        thousands(s.min),
        thousands(s.max)
    )
}

/// `12345.6` as `12,346`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(round: usize, contender: &'static str, rate: f64) -> CallSample {
        CallSample {
            round,
            contender,
            scenario: Scenario::Seq,
            figures: RunFigures {
                calls: 10,
                elapsed_s: 10.0 / rate,
                calls_per_s: rate,
                p50_ms: 1.0,
                p99_ms: 2.0,
                mean_ms: 1.0,
                max_ms: 3.0,
            },
            client_cpu_us: 50.0,
            server_cpu_us: Some(40.0),
        }
    }

    #[test]
    fn ratios_pair_rounds() {
        let mut report = Report::new(2);
        report.calls = vec![
            sample(1, "rs", 900.0),
            sample(1, "lapin", 1000.0),
            sample(2, "rs", 1200.0),
            sample(2, "lapin", 1000.0),
            sample(2, "py", 400.0),
        ];
        let r = report.ratio("rs", "lapin", Scenario::Seq).unwrap();
        assert!((r.min - 0.9).abs() < 1e-9 && (r.max - 1.2).abs() < 1e-9);
        let r = report.ratio("rs", "py", Scenario::Seq).unwrap();
        assert!((r.median - 3.0).abs() < 1e-9, "only round 2 pairs");
        let targets = report.targets();
        let seq = targets
            .iter()
            .find(|t| t.name.contains("0.9× raw lapin, sequential"))
            .unwrap();
        assert!(seq.met, "median 1.05");
        let py = targets
            .iter()
            .find(|t| t.name.contains("2× Python"))
            .unwrap();
        assert!(py.met);
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
    }
}
