//! Restart policy: exponential backoff between restarts, and an intensity limit
//! (at most `max_restarts` within `window`) past which the entity is quarantined.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RestartPolicy {
    pub max_restarts: usize,
    pub window: Duration,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub quarantine: Duration,
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    RestartAfter(Duration),
    Quarantine(Duration),
}

impl RestartPolicy {
    /// Records a failure at `now` in `history` and decides.
    pub fn on_failure(&self, history: &mut VecDeque<Instant>, now: Instant) -> Decision {
        while history
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.window)
        {
            history.pop_front();
        }
        history.push_back(now);
        if history.len() > self.max_restarts {
            history.clear();
            return Decision::Quarantine(self.quarantine);
        }
        let exp = (history.len() as u32).saturating_sub(1).min(16);
        let backoff = self
            .backoff_initial
            .saturating_mul(1 << exp)
            .min(self.backoff_max);
        Decision::RestartAfter(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_quarantines_past_the_limit() {
        let p = RestartPolicy {
            max_restarts: 3,
            window: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(25),
            quarantine: Duration::from_secs(5),
        };
        let mut h = VecDeque::new();
        let t = Instant::now();
        assert_eq!(
            p.on_failure(&mut h, t),
            Decision::RestartAfter(Duration::from_millis(10))
        );
        assert_eq!(
            p.on_failure(&mut h, t),
            Decision::RestartAfter(Duration::from_millis(20))
        );
        assert_eq!(
            p.on_failure(&mut h, t),
            Decision::RestartAfter(Duration::from_millis(25))
        );
        assert_eq!(
            p.on_failure(&mut h, t),
            Decision::Quarantine(Duration::from_secs(5))
        );
        // Failures outside the window are forgotten.
        let later = t + Duration::from_secs(61);
        assert_eq!(
            p.on_failure(&mut h, later),
            Decision::RestartAfter(Duration::from_millis(10))
        );
    }
}
