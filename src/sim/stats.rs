//! Counters shared by every simulated machine, and the run's summary.

use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Raises the value to `v` if it is higher.
    pub fn max(&self, v: u64) {
        self.0.fetch_max(v, Ordering::Relaxed);
    }
    pub fn set_max(&self, v: u64) {
        self.max(v);
    }
}

/// A gauge that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Stream errors by kind (a gRPC code, or `connect`, `no_welcome`, ...).
#[derive(Debug, Default)]
pub struct Errors(Mutex<BTreeMap<String, u64>>);

impl Errors {
    pub fn record(&self, kind: &str) {
        *self.0.lock().entry(kind.to_owned()).or_default() += 1;
    }
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().clone()
    }
}

/// Everything the machines count.
#[derive(Debug, Default)]
pub struct Stats {
    pub online: Gauge,
    pub sessions: Counter,
    pub reconnects: Counter,
    pub injected_drops: Counter,
    pub auth_failures: Counter,
    pub sent: Counter,
    pub replayed: Counter,
    pub acks: Counter,
    /// The highest ack seen by any machine (for a sense of progress).
    pub acked: Counter,
    pub max_unacked: Counter,
    pub vends_ok: Counter,
    pub vends_failed: Counter,
    pub commands: Counter,
    pub dispenses: Counter,
    pub errors: Errors,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub machines: usize,
    pub seconds: f64,
    pub sessions_opened: u64,
    pub online_at_end: i64,
    pub messages_sent: u64,
    pub messages_replayed: u64,
    pub acks_received: u64,
    pub max_unacked: u64,
    pub vends_ok: u64,
    pub vends_failed: u64,
    pub commands_received: u64,
    pub dispenses_handled: u64,
    pub reconnects: u64,
    pub injected_drops: u64,
    pub auth_failures: u64,
    /// Stream errors by kind; drops injected by `--flaky` show up here too.
    pub stream_errors: BTreeMap<String, u64>,
}

impl Stats {
    pub fn summary(&self, machines: usize, seconds: f64) -> Summary {
        Summary {
            machines,
            seconds,
            sessions_opened: self.sessions.get(),
            online_at_end: self.online.get(),
            messages_sent: self.sent.get(),
            messages_replayed: self.replayed.get(),
            acks_received: self.acks.get(),
            max_unacked: self.max_unacked.get(),
            vends_ok: self.vends_ok.get(),
            vends_failed: self.vends_failed.get(),
            commands_received: self.commands.get(),
            dispenses_handled: self.dispenses.get(),
            reconnects: self.reconnects.get(),
            injected_drops: self.injected_drops.get(),
            auth_failures: self.auth_failures.get(),
            stream_errors: self.errors.snapshot(),
        }
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: [(&str, String); 15] = [
            ("machines", self.machines.to_string()),
            ("seconds", format!("{:.1}", self.seconds)),
            ("sessions opened", self.sessions_opened.to_string()),
            ("online at end", self.online_at_end.to_string()),
            ("messages sent", self.messages_sent.to_string()),
            ("  of which replayed", self.messages_replayed.to_string()),
            ("acks received", self.acks_received.to_string()),
            ("max unacked (one machine)", self.max_unacked.to_string()),
            (
                "vends ok / failed",
                format!("{} / {}", self.vends_ok, self.vends_failed),
            ),
            ("commands received", self.commands_received.to_string()),
            ("dispenses handled", self.dispenses_handled.to_string()),
            ("reconnects", self.reconnects.to_string()),
            ("injected drops", self.injected_drops.to_string()),
            ("auth failures", self.auth_failures.to_string()),
            ("stream errors", format!("{:?}", self.stream_errors)),
        ];
        for (k, v) in rows {
            writeln!(f, "{k:<28} {v}")?;
        }
        Ok(())
    }
}
