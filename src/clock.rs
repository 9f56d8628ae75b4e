//! The wall clock, in one place at the bottom of the crate: a [`Clock`] answers "now" in
//! milliseconds since the Unix epoch (`domain::Millis`). The entity shell and the sagas
//! take one injected (`EntityConfig::clock`, handed to behaviors with their effects), so
//! a test can drive time with a [`ManualClock`]; the edges, whose "now" only stamps a
//! command, read the process-wide [`now_ms`].
//!
//! This module imports nothing of the crate: every layer may use it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A source of the current time, in ms since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> u64;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        Self(AtomicU64::new(start_ms))
    }

    /// Sets the time to `ms`.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::Release);
    }

    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// The process-wide system clock, as a handle to inject.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// Now, by the system's wall clock (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(250);
        assert_eq!(c.now_ms(), 1_250);
        c.set(7);
        assert_eq!(c.now_ms(), 7);
    }

    #[test]
    fn the_system_clock_is_past_2020() {
        // 2020-01-01T00:00:00Z; a clock before it is misconfigured, not "now".
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
