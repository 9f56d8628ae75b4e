//! Counting a load run: per-operation HDR latency histograms and error counts, merged
//! across workers, and the summary as a table or JSON.
//!
//! Latencies are microseconds from the *intended* start of a request. In open-loop mode
//! that is its slot in the schedule, so time spent waiting behind a slow request counts
//! (no coordinated omission); in closed-loop mode it is the moment the user sent it.

use super::mix::Op;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// The highest latency a histogram holds; longer ones are clamped to it (and the
/// request timeout is lower anyway).
const MAX_US: u64 = 120_000_000;

fn histogram() -> Histogram<u64> {
    // 3 significant digits over 1 µs .. 120 s: bounded memory (~200 KiB per op).
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// One worker's counts; workers merge theirs at the end.
#[derive(Default)]
pub struct Recorder {
    ops: BTreeMap<Op, OpCounts>,
    /// `"<status> <code>"`, `"io <kind>"` or `"timeout"` → count.
    errors: BTreeMap<String, u64>,
}

struct OpCounts {
    ok: Histogram<u64>,
    errors: u64,
}

impl Default for OpCounts {
    fn default() -> Self {
        Self {
            ok: histogram(),
            errors: 0,
        }
    }
}

impl Recorder {
    /// A success of `op` that took `latency`.
    pub fn ok(&mut self, op: Op, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, MAX_US);
        self.ops
            .entry(op)
            .or_default()
            .ok
            .record(us)
            .expect("clamped into the histogram's range");
    }

    /// A failure of `op`, keyed by what failed.
    pub fn error(&mut self, op: Op, key: String) {
        self.ops.entry(op).or_default().errors += 1;
        *self.errors.entry(key).or_default() += 1;
    }

    /// A failure of a multi-step `op` whose failing step was recorded with its key.
    pub fn failed(&mut self, op: Op) {
        self.ops.entry(op).or_default().errors += 1;
    }

    pub fn merge(&mut self, other: Recorder) {
        for (op, c) in other.ops {
            let mine = self.ops.entry(op).or_default();
            mine.ok.add(&c.ok).expect("same bounds");
            mine.errors += c.errors;
        }
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
    }

    /// The summary of a run that lasted `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut all = histogram();
        let mut ops = Vec::new();
        for (op, c) in &self.ops {
            all.add(&c.ok).expect("same bounds");
            ops.push(OpSummary::of(op.name(), &c.ok, c.errors, secs));
        }
        // Each failure once: a failed order's error is its step's.
        let errors_total = self.errors.values().sum();
        let overall = OpSummary::of("all", &all, errors_total, secs);
        Summary {
            elapsed_s: secs,
            ops,
            overall,
            errors: self.errors.clone(),
            errors_total,
        }
    }
}

/// Latency percentiles in milliseconds, and rates.
#[derive(Debug, Clone, Serialize)]
pub struct OpSummary {
    pub op: String,
    pub ok: u64,
    pub errors: u64,
    /// Successes per second.
    pub ok_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl OpSummary {
    fn of(name: &str, h: &Histogram<u64>, errors: u64, secs: f64) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            op: name.to_string(),
            ok: h.len(),
            errors,
            ok_per_s: h.len() as f64 / secs,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The counts of a whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub elapsed_s: f64,
    pub ops: Vec<OpSummary>,
    pub overall: OpSummary,
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
}

impl Summary {
    /// A fixed-width table, then the errors (or a line saying there were none).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<14} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "op", "ok", "errors", "ok/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for r in self.ops.iter().chain(std::iter::once(&self.overall)) {
            let _ = writeln!(
                out,
                "{:<14} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                r.op, r.ok, r.errors, r.ok_per_s, r.p50_ms, r.p90_ms, r.p99_ms, r.p999_ms, r.max_ms
            );
        }
        if self.errors_total == 0 {
            let _ = writeln!(out, "errors: none");
        } else {
            let _ = writeln!(
                out,
                "ERRORS: {} in all; this run does not count as a clean benchmark",
                self.errors_total
            );
            for (k, n) in &self.errors {
                let _ = writeln!(out, "  {n:>9}  {k}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_workers_add_up_and_percentiles_follow_the_samples() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for ms in 1..=100u64 {
            a.ok(Op::ViewCart, Duration::from_millis(ms));
        }
        b.ok(Op::ViewCart, Duration::from_millis(1000));
        b.error(Op::AddToCart, "409 out_of_stock".into());
        b.error(Op::AddToCart, "409 out_of_stock".into());
        a.error(Op::ViewCart, "timeout".into());
        a.merge(b);
        let s = a.summary(Duration::from_secs(2));
        let view = s.ops.iter().find(|o| o.op == "view_cart").unwrap();
        assert_eq!(view.ok, 101);
        assert_eq!(view.errors, 1);
        assert!((view.ok_per_s - 50.5).abs() < 1e-9);
        assert!((view.p50_ms - 51.0).abs() < 0.1, "{}", view.p50_ms);
        assert!((view.max_ms - 1000.0).abs() < 1.0, "{}", view.max_ms);
        let add = s.ops.iter().find(|o| o.op == "add_to_cart").unwrap();
        assert_eq!((add.ok, add.errors), (0, 2));
        assert_eq!(s.errors_total, 3);
        assert_eq!(s.errors["409 out_of_stock"], 2);
        assert_eq!(s.overall.ok, 101);
        assert!(s.table().contains("ERRORS: 3 in all"), "{}", s.table());
    }

    #[test]
    fn a_clean_run_says_so_and_clamps_huge_latencies() {
        let mut r = Recorder::default();
        r.ok(Op::Get, Duration::from_secs(10_000));
        r.ok(Op::Get, Duration::ZERO);
        let s = r.summary(Duration::from_secs(1));
        assert_eq!(s.overall.ok, 2);
        assert!(s.overall.max_ms <= 120_001.0 * 1.001);
        assert!(s.table().contains("errors: none"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["errors_total"], 0);
        assert_eq!(json["ops"][0]["op"], "get");
    }
}
