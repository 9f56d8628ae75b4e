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

/// Formats Unix milliseconds as RFC 3339 UTC, e.g. `2026-11-22T07:13:22.123Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses an RFC 3339 time (any offset) as Unix milliseconds; a time before 1970 is
/// refused.
pub fn parse_rfc3339(s: &str) -> Result<u64, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s.trim())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e})"))?;
    u64::try_from(t.timestamp_millis()).map_err(|_| format!("{s:?} is before 1970"))
}

/// The current year and month (UTC), for card expiry checks.
pub fn year_month(ms: u64) -> (u32, u32) {
    let s = rfc3339(ms);
    (
        s[0..4].parse().unwrap_or(1970),
        s[5..7].parse().unwrap_or(1),
    )
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
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_331_602_123), "2026-11-22T07:13:22.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(year_month(1_795_331_602_123), (2026, 11));
    }

    #[test]
    fn parses_what_it_formats_and_any_offset() {
        for ms in [0, 951_782_400_000, 1_795_331_602_123] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Ok(ms));
        }
        assert_eq!(
            parse_rfc3339("2026-11-22T08:13:22.123+01:00"),
            Ok(1_795_331_602_123)
        );
        assert!(parse_rfc3339("1969-12-31T23:59:59Z").is_err());
        assert!(parse_rfc3339("tomorrow").is_err());
    }

    #[test]
    fn the_system_clock_is_past_2020() {
        // 2020-01-01T00:00:00Z; a clock before it is misconfigured, not "now".
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
