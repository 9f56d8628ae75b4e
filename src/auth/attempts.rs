//! Login and register attempts per account: a governor keyed limiter on the normalised
//! email (`rate_limit.account_per_minute`, burst `rate_limit.account_burst`). It sits
//! beside the per-address limit of the edge, so many addresses cannot brute-force one
//! account while one address still cannot lock out the others. Keys are SHA-256 digests
//! of the email, so the limiter never holds addresses in clear.

use crate::app::config::RateLimitConfig;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::Digest;
use std::num::NonZeroU32;
use std::time::Duration;

/// An email as accounts are keyed: trimmed and lower-cased (as registration stores it).
pub fn normalise(email: &str) -> String {
    email.trim().to_lowercase()
}

type Key = [u8; 32];
type Keyed<C> =
    RateLimiter<Key, DefaultKeyedStateStore<Key>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Attempts per account.
pub struct AccountAttempts<C: Clock = DefaultClock> {
    limiter: Keyed<C>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl AccountAttempts<DefaultClock> {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self::with_clock(cfg, DefaultClock::default())
    }
}

impl<C: Clock> AccountAttempts<C> {
    /// On `clock`; zero rates or bursts count as 1.
    pub fn with_clock(cfg: &RateLimitConfig, clock: C) -> Self {
        let quota =
            Quota::per_minute(nz(cfg.account_per_minute)).allow_burst(nz(cfg.account_burst));
        Self {
            limiter: RateLimiter::dashmap_with_clock(quota, clock),
        }
    }

    /// Counts one attempt on `email`'s account; `Err` is how long to wait.
    pub fn check(&self, email: &str) -> Result<(), Duration> {
        let key: Key = sha2::Sha256::digest(normalise(email).as_bytes()).into();
        self.limiter
            .check_key(&key)
            .map_err(|n| n.wait_time_from(self.limiter.clock().now()))
            .map_err(|w| w.max(Duration::from_millis(1)))
    }

    /// Drops keys whose state is indistinguishable from a fresh one.
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn cfg(per_minute: u32, burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            account_per_minute: per_minute,
            account_burst: burst,
            ..RateLimitConfig::default()
        }
    }

    #[test]
    fn one_account_is_limited_whatever_its_spelling_and_others_are_not() {
        let clock = FakeRelativeClock::default();
        let a = AccountAttempts::with_clock(&cfg(6, 2), clock.clone());
        assert_eq!(a.check("Victim@Example.com"), Ok(()));
        assert_eq!(a.check(" victim@example.com "), Ok(()));
        let wait = a.check("VICTIM@example.COM").unwrap_err();
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(a.check("other@example.com"), Ok(()));
        clock.advance(wait);
        assert_eq!(a.check("victim@example.com"), Ok(()));
        clock.advance(Duration::from_secs(600));
        a.retain_recent();
        assert!(a.is_empty(), "{} keys", a.len());
    }
}
