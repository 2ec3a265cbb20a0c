//! Latency and throughput figures of one measured run, and summaries over rounds.

use std::time::Duration;

use serde_json::{Value, json};

/// Nearest-rank percentile (`p` in 0..=100) of an ascending slice; `NaN` when empty.
#[must_use]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The figures of one measured run, as every benchmark client prints them (one JSON
/// object per line, the format of the Python and raw lapin clients).
#[derive(Debug, Clone, PartialEq)]
pub struct RunFigures {
    /// Calls (or events) measured.
    pub calls: usize,
    /// Wall time of the measured part, in seconds.
    pub elapsed_s: f64,
    /// Calls per second.
    pub calls_per_s: f64,
    /// Median latency, in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
    /// Mean latency, in milliseconds.
    pub mean_ms: f64,
    /// Worst latency, in milliseconds.
    pub max_ms: f64,
}

impl RunFigures {
    /// The figures of `latencies` measured over `elapsed`.
    #[must_use]
    pub fn from_latencies(latencies: &[Duration], elapsed: Duration) -> Self {
        let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let calls = ms.len();
        let elapsed_s = elapsed.as_secs_f64();
        Self {
            calls,
            elapsed_s,
            calls_per_s: if elapsed_s > 0.0 {
                calls as f64 / elapsed_s
            } else {
                f64::NAN
            },
            p50_ms: percentile(&ms, 50.0),
            p99_ms: percentile(&ms, 99.0),
            mean_ms: if calls == 0 {
                f64::NAN
            } else {
                ms.iter().sum::<f64>() / calls as f64
            },
            max_ms: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Reads the figures from a client's JSON line; `None` if a field is missing.
    #[must_use]
    pub fn from_json(line: &Value) -> Option<Self> {
        let f = |key: &str| line.get(key).and_then(Value::as_f64);
        Some(Self {
            calls: usize::try_from(line.get("calls")?.as_u64()?).ok()?,
            elapsed_s: f("elapsed_s")?,
            calls_per_s: f("calls_per_s")?,
            p50_ms: f("p50_ms")?,
            p99_ms: f("p99_ms")?,
            mean_ms: f("mean_ms").unwrap_or(f64::NAN),
            max_ms: f("max_ms").unwrap_or(f64::NAN),
        })
    }

    /// The JSON line of a run, with the client's name, the scenario and the run number.
    #[must_use]
    pub fn to_json(&self, implementation: &str, scenario: &str, run: usize) -> Value {
        json!({
            "impl": implementation,
            "scenario": scenario,
            "run": run,
            "calls": self.calls,
            "elapsed_s": round(self.elapsed_s, 4),
            "calls_per_s": round(self.calls_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "mean_ms": round(self.mean_ms, 3),
            "max_ms": round(self.max_ms, 3),
        })
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10_f64.powi(digits);
    (x * scale).round() / scale
}

/// Median, minimum and maximum of a figure over rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of the finite values; `None` when there is none.
    #[must_use]
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            f64::midpoint(v[n / 2 - 1], v[n / 2])
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn spreads_skip_missing_values() {
        let s = Spread::of([3.0, f64::NAN, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Spread::of([4.0, 1.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of([f64::NAN]).is_none());
    }

    #[test]
    fn json_lines_round_trip() {
        let run = RunFigures::from_latencies(
            &[Duration::from_millis(1), Duration::from_millis(3)],
            Duration::from_millis(4),
        );
        assert_eq!(run.calls_per_s, 500.0);
        let line = run.to_json("nameko-rs", "seq", 1);
        assert_eq!(line["impl"], "nameko-rs");
        let back = RunFigures::from_json(&line).unwrap();
        assert_eq!((back.calls, back.p50_ms, back.p99_ms), (2, 1.0, 3.0));
    }
}
