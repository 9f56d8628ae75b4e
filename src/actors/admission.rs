//! Admission of a caller's message at an entity: the per-entity bound on messages in
//! flight, and the ticket that decides, race-free, whether a message was applied.
//!
//! - [`Pending`] counts an entity's messages from the send until the actor drops them
//!   (handled or expired). The router takes a [`PendingGuard`] before it sends and
//!   refuses past `actors.max_pending`, so nothing is queued past the bound; the guard
//!   travels in the message, so a message whose caller gave up still counts while it
//!   waits in the mailbox.
//! - [`Ticket`] carries the caller's deadline and one shared state, moved exactly once
//!   from `NotStarted`: by the actor to `Started` when it dequeues the message before the
//!   deadline, or to `Abandoned` (by the actor past the deadline, or by the caller when
//!   its wait ends). Whoever wins decides: an abandoned message is never applied, so a
//!   caller that abandoned it may answer "not applied"; a caller that lost the race
//!   waits for the reply of the started command.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::time::Instant;

/// An entity's count of caller messages in flight. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Pending(Arc<AtomicUsize>);

impl Pending {
    /// Counts one more message, unless `max` are already in flight.
    pub fn try_admit(&self, max: usize) -> Option<PendingGuard> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| PendingGuard(self.0.clone()))
    }

    /// Messages in flight now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One counted message; uncounts it when dropped.
#[derive(Debug)]
pub struct PendingGuard(Arc<AtomicUsize>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

const NOT_STARTED: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// The caller's side of a ticket: it keeps this while the message travels. Dropping it
/// abandons the message (a caller that went away does not get its command run later).
#[derive(Debug)]
pub struct Claim(Arc<AtomicU8>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.abandon();
    }
}

impl Claim {
    /// Gives the message up unless the actor already started it. True: the message is
    /// (now, or already was) abandoned and will never be applied. False: it started.
    pub fn abandon(&self) -> bool {
        match self
            .0
            .compare_exchange(NOT_STARTED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(now) => now == ABANDONED,
        }
    }
}

/// What travels with a caller's message to the entity.
#[derive(Debug)]
pub struct Ticket {
    state: Arc<AtomicU8>,
    deadline: Instant,
    _pending: PendingGuard,
}

impl Ticket {
    /// A ticket for a message whose caller waits until `deadline`, and the caller's claim.
    pub fn new(deadline: Instant, pending: PendingGuard) -> (Ticket, Claim) {
        let state = Arc::new(AtomicU8::new(NOT_STARTED));
        let claim = Claim(state.clone());
        let ticket = Ticket {
            state,
            deadline,
            _pending: pending,
        };
        (ticket, claim)
    }

    /// Called by the actor as it dequeues the message: true if it may run it. False if
    /// the caller abandoned it or its deadline has passed (it is then abandoned).
    pub fn start(&self) -> bool {
        let next = if Instant::now() >= self.deadline {
            ABANDONED
        } else {
            STARTED
        };
        self.state
            .compare_exchange(NOT_STARTED, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            && next == STARTED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn guard() -> (Pending, PendingGuard) {
        let p = Pending::default();
        let g = p.try_admit(usize::MAX).unwrap();
        (p, g)
    }

    #[test]
    fn pending_refuses_past_its_bound_and_counts_down_on_drop() {
        let p = Pending::default();
        let a = p.try_admit(2).unwrap();
        let b = p.try_admit(2).unwrap();
        assert!(p.try_admit(2).is_none(), "a third message is refused");
        assert_eq!(p.count(), 2);
        drop(a);
        assert_eq!(p.count(), 1);
        let c = p.try_admit(2).expect("room again after a drop");
        drop((b, c));
        assert_eq!(p.count(), 0);
    }

    #[test]
    fn a_ticket_counts_until_the_actor_drops_it() {
        let (p, g) = guard();
        let (ticket, _claim) = Ticket::new(Instant::now() + Duration::from_secs(60), g);
        assert_eq!(p.count(), 1);
        assert!(ticket.start());
        drop(ticket);
        assert_eq!(p.count(), 0);
    }

    #[test]
    fn a_started_message_cannot_be_abandoned() {
        let (_p, g) = guard();
        let (ticket, claim) = Ticket::new(Instant::now() + Duration::from_secs(60), g);
        assert!(ticket.start());
        assert!(
            !claim.abandon(),
            "the caller must wait for the started command"
        );
    }

    #[test]
    fn an_abandoned_message_is_never_started() {
        let (_p, g) = guard();
        let (ticket, claim) = Ticket::new(Instant::now() + Duration::from_secs(60), g);
        assert!(claim.abandon());
        assert!(!ticket.start());
        assert!(claim.abandon(), "abandoning again still says not applied");
    }

    #[test]
    fn a_message_dequeued_past_its_deadline_is_abandoned_not_started() {
        let (_p, g) = guard();
        let (ticket, claim) = Ticket::new(Instant::now() - Duration::from_millis(1), g);
        assert!(!ticket.start());
        assert!(claim.abandon(), "the caller sees it was not applied");
    }

    #[test]
    fn a_dropped_claim_abandons_an_unstarted_message() {
        let (_p, g) = guard();
        let (ticket, claim) = Ticket::new(Instant::now() + Duration::from_secs(60), g);
        drop(claim);
        assert!(
            !ticket.start(),
            "a caller that went away does not get it run"
        );
    }

    #[test]
    fn racing_start_and_abandon_have_exactly_one_winner() {
        for _ in 0..200 {
            let (_p, g) = guard();
            let (ticket, claim) = Ticket::new(Instant::now() + Duration::from_secs(60), g);
            let t = std::thread::spawn(move || ticket.start());
            let abandoned = claim.abandon();
            let started = t.join().unwrap();
            assert_ne!(started, abandoned, "exactly one side wins");
        }
    }
}
