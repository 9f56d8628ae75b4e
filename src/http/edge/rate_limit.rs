//! Rate limits by route group with `governor` keyed limiters (GCRA, no queues).
//!
//! - group **auth**: `POST /v1/auth/login` and `POST /v1/auth/register`, keyed by client
//!   IP, `auth_per_minute` with a burst of `auth_burst` (brute-force protection), and
//!   also by account ([`crate::auth::attempts`], the body's normalised email),
//!   `account_per_minute` with a burst of `account_burst`;
//! - group **default**: everything else, keyed by user id when the caller presents a
//!   valid access token, else by client IP, `per_second` with a burst of `burst`;
//! - exempt: `/health/*` and `/metrics`, so probes and scrapes never get 429.
//!
//! The client IP is the peer's, or the one a trusted proxy names ([`super::forwarded`]).
//! IPv6 clients are keyed by their /64 (one host usually owns a whole /64), IPv4-mapped
//! addresses by the IPv4 address. Keys that are indistinguishable from fresh ones are
//! dropped by [`RateLimits::retain_recent`], which the listener runs periodically and
//! which [`RateLimits::check`] also runs when the key count passes [`MAX_KEYS`].

use crate::app::config::RateLimitConfig;
use crate::auth::attempts::AccountAttempts;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use warp::http::Method;

/// Above this many live keys in one limiter, a check also sweeps stale keys.
pub const MAX_KEYS: usize = 100_000;
/// How often (in checks) the key count is looked at.
const SWEEP_CHECK_EVERY: u64 = 4096;

/// Which limit a request falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Auth,
    Default,
}

/// Who is counted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    Ip(IpAddr),
    User(String),
}

/// The group of a request, or `None` when it is exempt.
pub fn classify(method: &Method, path: &str) -> Option<Group> {
    let path = path.trim_end_matches('/');
    if path.starts_with("/health/") || path == "/health" || path == "/metrics" {
        return None;
    }
    if method == Method::POST && matches!(path, "/v1/auth/login" | "/v1/auth/register") {
        return Some(Group::Auth);
    }
    Some(Group::Default)
}

/// The client's IP as a rate-limit key: IPv6 collapsed to its /64, IPv4-mapped IPv6 to
/// the IPv4 address.
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// The edge's limiters. With the default clock these are `DefaultKeyedRateLimiter`s;
/// tests use governor's fake clock.
pub struct RateLimits<C: Clock = DefaultClock> {
    default: Keyed<ClientKey, C>,
    auth: Keyed<IpAddr, C>,
    accounts: AccountAttempts<C>,
    checks: AtomicU64,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits<DefaultClock> {
    /// The limiters, or `None` when rate limiting is disabled.
    pub fn new(cfg: &RateLimitConfig) -> Option<Self> {
        Self::with_clock(cfg, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimits<C> {
    /// As [`RateLimits::new`], on `clock`. Zero rates or bursts count as 1.
    pub fn with_clock(cfg: &RateLimitConfig, clock: C) -> Option<Self> {
        if !cfg.enabled {
            return None;
        }
        let default = Quota::per_second(nz(cfg.per_second)).allow_burst(nz(cfg.burst));
        let auth = Quota::per_minute(nz(cfg.auth_per_minute)).allow_burst(nz(cfg.auth_burst));
        Some(Self {
            default: RateLimiter::dashmap_with_clock(default, clock.clone()),
            auth: RateLimiter::dashmap_with_clock(auth, clock.clone()),
            accounts: AccountAttempts::with_clock(cfg, clock),
            checks: AtomicU64::new(0),
        })
    }

    /// Counts one request of `group` for `key`. `Err` carries how long the client must
    /// wait before the next request can conform. An `Auth` check uses the key's IP.
    pub fn check(&self, group: Group, key: &ClientKey, ip: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_CHECK_EVERY == 0
            && (self.default.len() > MAX_KEYS || self.auth.len() > MAX_KEYS)
        {
            self.retain_recent();
        }
        let outcome = match group {
            Group::Auth => self
                .auth
                .check_key(&ip_key(ip))
                .map_err(|n| n.wait_time_from(self.auth.clock().now())),
            Group::Default => self
                .default
                .check_key(key)
                .map_err(|n| n.wait_time_from(self.default.clock().now())),
        };
        // A zero wait would round to `Retry-After: 0`; the error path rounds up to 1 s.
        outcome.map_err(|wait| wait.max(Duration::from_millis(1)))
    }

    /// Counts one login or register attempt on `email`'s account; `Err` is the wait.
    pub fn check_account(&self, email: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_CHECK_EVERY == 0
            && self.accounts.len() > MAX_KEYS
        {
            self.accounts.retain_recent();
        }
        self.accounts.check(email)
    }

    /// Drops keys whose state is indistinguishable from a fresh one.
    pub fn retain_recent(&self) {
        self.accounts.retain_recent();
        self.default.retain_recent();
        self.auth.retain_recent();
        self.default.shrink_to_fit();
        self.auth.shrink_to_fit();
    }

    /// Live keys across the limiters (an estimate under concurrency).
    pub fn len(&self) -> usize {
        self.default.len() + self.auth.len() + self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn cfg(per_second: u32, burst: u32, auth_per_minute: u32, auth_burst: u32) -> RateLimitConfig {
        RateLimitConfig {
            enabled: true,
            per_second,
            burst,
            auth_per_minute,
            auth_burst,
            ..RateLimitConfig::default()
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn groups() {
        let post = Method::POST;
        assert_eq!(classify(&post, "/v1/auth/login"), Some(Group::Auth));
        assert_eq!(classify(&post, "/v1/auth/register/"), Some(Group::Auth));
        assert_eq!(classify(&post, "/v1/auth/refresh"), Some(Group::Default));
        assert_eq!(
            classify(&Method::GET, "/v1/auth/login"),
            Some(Group::Default)
        );
        assert_eq!(classify(&Method::GET, "/health/live"), None);
        assert_eq!(classify(&Method::GET, "/health/ready"), None);
        assert_eq!(classify(&Method::GET, "/metrics"), None);
        assert_eq!(classify(&Method::GET, "/metricsx"), Some(Group::Default));
        assert_eq!(classify(&Method::GET, "/v1/products"), Some(Group::Default));
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_v4_by_v4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(mapped), A);
    }

    #[test]
    fn disabled_means_no_limiter() {
        let mut c = cfg(1, 1, 1, 1);
        c.enabled = false;
        assert!(RateLimits::new(&c).is_none());
    }

    #[test]
    fn default_group_allows_the_burst_then_refills_per_key() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&cfg(2, 3, 60, 1), clock.clone()).unwrap();
        let ka = ClientKey::Ip(A);
        for _ in 0..3 {
            assert_eq!(rl.check(Group::Default, &ka, A), Ok(()));
        }
        let wait = rl.check(Group::Default, &ka, A).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        // Other keys are independent: another IP, and a user behind the same IP.
        assert_eq!(rl.check(Group::Default, &ClientKey::Ip(B), B), Ok(()));
        let user = ClientKey::User("u1".into());
        assert_eq!(rl.check(Group::Default, &user, A), Ok(()));
        // After the wait, one more request conforms.
        clock.advance(wait);
        assert_eq!(rl.check(Group::Default, &ka, A), Ok(()));
        assert!(rl.check(Group::Default, &ka, A).is_err());
    }

    #[test]
    fn auth_group_is_per_ip_and_per_minute_with_its_own_budget() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&cfg(1000, 1000, 6, 2), clock.clone()).unwrap();
        // The key passed does not matter for auth: the IP does.
        let user = ClientKey::User("u1".into());
        assert_eq!(rl.check(Group::Auth, &user, A), Ok(()));
        assert_eq!(rl.check(Group::Auth, &ClientKey::Ip(A), A), Ok(()));
        let wait = rl.check(Group::Auth, &ClientKey::Ip(A), A).unwrap_err();
        // 6 per minute: one every 10 s.
        assert!(
            wait > Duration::from_secs(9) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert_eq!(rl.check(Group::Auth, &ClientKey::Ip(B), B), Ok(()));
        // The default group is untouched by auth traffic.
        assert_eq!(rl.check(Group::Default, &ClientKey::Ip(A), A), Ok(()));
        clock.advance(wait);
        assert_eq!(rl.check(Group::Auth, &ClientKey::Ip(A), A), Ok(()));
    }

    #[test]
    fn zero_quotas_are_treated_as_one_not_a_panic() {
        let rl = RateLimits::with_clock(&cfg(0, 0, 0, 0), FakeRelativeClock::default()).unwrap();
        assert_eq!(rl.check(Group::Default, &ClientKey::Ip(A), A), Ok(()));
        assert!(rl.check(Group::Default, &ClientKey::Ip(A), A).is_err());
    }

    #[test]
    fn stale_keys_are_swept() {
        let clock = FakeRelativeClock::default();
        let rl = RateLimits::with_clock(&cfg(10, 1, 60, 1), clock.clone()).unwrap();
        for i in 0..50u8 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::new(10, 1, 0, i));
            rl.check(Group::Default, &ClientKey::Ip(ip), ip).unwrap();
            rl.check(Group::Auth, &ClientKey::Ip(ip), ip).unwrap();
        }
        assert_eq!(rl.len(), 100);
        clock.advance(Duration::from_secs(120));
        rl.retain_recent();
        assert!(rl.is_empty(), "{} keys left", rl.len());
    }
}
