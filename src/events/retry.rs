//! The webhook retry policy, a pure function of the attempt number, its outcome and a
//! random seed: a timeout, a connection error, 408, 429 or 5xx is retried after an
//! exponential backoff with full jitter (a delay drawn uniformly from
//! `[0, initial * 2^(attempt-1)]`, capped at [`MAX_BACKOFF_MS`]); any other 4xx, and the
//! last allowed attempt failing, go to the dead-letter queue at once; 2xx is delivered.

use rand::{Rng, SeedableRng};

/// The longest single backoff (6 hours): with the default 1 s initial and 8 attempts,
/// the ceilings sum to about 2 minutes, and a larger `retry_initial_ms` spreads the
/// attempts over up to about a day.
pub const MAX_BACKOFF_MS: u64 = 6 * 60 * 60 * 1000;

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The endpoint answered with this HTTP status.
    Status(u16),
    /// No answer within `webhooks.timeout_ms`.
    Timeout,
    /// The connection could not be made (refused, reset, DNS failure).
    ConnectionError,
    /// The target resolved to a refused address (private, loopback) or scheme.
    Refused,
}

/// What the delivery does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAfter { ms: u64 },
    DeadLetter,
}

/// Whether an outcome is worth retrying.
pub fn is_retryable(outcome: AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Timeout | AttemptOutcome::ConnectionError => true,
        AttemptOutcome::Status(s) => s == 408 || s == 429 || (500..=599).contains(&s),
        AttemptOutcome::Refused => false,
    }
}

/// The next step after attempt `attempt` (1-based) ended with `outcome`.
pub fn next_step(
    attempt: u32,
    outcome: AttemptOutcome,
    initial_ms: u64,
    max_attempts: u32,
    seed: u64,
) -> NextStep {
    if let AttemptOutcome::Status(s) = outcome {
        if (200..=299).contains(&s) {
            return NextStep::Delivered;
        }
    }
    if !is_retryable(outcome) || attempt >= max_attempts {
        return NextStep::DeadLetter;
    }
    let ceiling = backoff_ceiling(attempt, initial_ms);
    let ms = rand::rngs::StdRng::seed_from_u64(seed).random_range(0..=ceiling);
    NextStep::RetryAfter { ms }
}

/// The largest delay after attempt `attempt`: `initial * 2^(attempt-1)`, capped.
pub fn backoff_ceiling(attempt: u32, initial_ms: u64) -> u64 {
    let shift = attempt.saturating_sub(1).min(40);
    initial_ms.saturating_mul(1u64 << shift).min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn outcome() -> impl Strategy<Value = AttemptOutcome> {
        prop_oneof![
            (100u16..600).prop_map(AttemptOutcome::Status),
            Just(AttemptOutcome::Timeout),
            Just(AttemptOutcome::ConnectionError),
            Just(AttemptOutcome::Refused),
        ]
    }

    proptest! {
        #[test]
        fn the_policy_is_total_deterministic_and_bounded(
            attempt in 1u32..20, o in outcome(), initial in 1u64..100_000, max in 1u32..12, seed in any::<u64>()
        ) {
            let step = next_step(attempt, o, initial, max, seed);
            prop_assert_eq!(step, next_step(attempt, o, initial, max, seed));
            match step {
                NextStep::Delivered => prop_assert!(matches!(o, AttemptOutcome::Status(200..=299))),
                NextStep::RetryAfter { ms } => {
                    prop_assert!(is_retryable(o));
                    prop_assert!(attempt < max);
                    prop_assert!(ms <= backoff_ceiling(attempt, initial));
                    prop_assert!(ms <= MAX_BACKOFF_MS);
                }
                NextStep::DeadLetter => prop_assert!(!is_retryable(o) || attempt >= max),
            }
        }
    }

    #[test]
    fn the_issue_s_cases() {
        let dl = |a, o| next_step(a, o, 1000, 8, 7);
        for s in [408, 429, 500, 503, 599] {
            assert!(matches!(
                dl(1, AttemptOutcome::Status(s)),
                NextStep::RetryAfter { .. }
            ));
        }
        assert!(matches!(
            dl(1, AttemptOutcome::Timeout),
            NextStep::RetryAfter { .. }
        ));
        for s in [400, 401, 404, 410, 422] {
            assert_eq!(dl(1, AttemptOutcome::Status(s)), NextStep::DeadLetter);
        }
        assert_eq!(dl(8, AttemptOutcome::Status(500)), NextStep::DeadLetter);
        assert_eq!(dl(3, AttemptOutcome::Status(204)), NextStep::Delivered);
        assert_eq!(backoff_ceiling(1, 1000), 1000);
        assert_eq!(backoff_ceiling(4, 1000), 8000);
        assert_eq!(backoff_ceiling(60, 1000), MAX_BACKOFF_MS);
    }
}
