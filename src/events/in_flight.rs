//! What a dispatcher (webhook deliveries, notification sends) has in flight: each record
//! `(partition, key)` at most once at a time, and at most `max` per group (an endpoint, a
//! channel), so that a slow target fills only its own slots. A [`Claim`] frees its slot
//! when dropped, however the attempt ends.
//!
//! [`earliest_first`] orders the due records of all local partitions by due time before
//! they are claimed, so that the slots go to the records waiting longest, whichever
//! partition holds them: read partition by partition, the records of the first partitions
//! would take every slot while they keep failing and retrying, and a later partition's
//! records would wait for them to go dead.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

struct State<G> {
    per_group: HashMap<G, usize>,
    launched: HashSet<(u32, Vec<u8>)>,
}

/// The records in flight, by group `G`.
pub struct InFlight<G> {
    state: Arc<Mutex<State<G>>>,
}

impl<G> Default for InFlight<G> {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                per_group: HashMap::new(),
                launched: HashSet::new(),
            })),
        }
    }
}

fn lock<G>(m: &Mutex<State<G>>) -> MutexGuard<'_, State<G>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<G: Hash + Eq + Clone> InFlight<G> {
    /// Slots of `group` in use.
    pub fn busy(&self, group: &G) -> usize {
        lock(&self.state).per_group.get(group).copied().unwrap_or(0)
    }

    /// Takes a slot of `group` for record `(p, key)`: `None` if the record is in flight
    /// already or the group has `max` in flight.
    pub fn claim(&self, p: u32, key: &[u8], group: &G, max: usize) -> Option<Claim<G>> {
        let mut s = lock(&self.state);
        if s.per_group.get(group).copied().unwrap_or(0) >= max.max(1) {
            return None;
        }
        if !s.launched.insert((p, key.to_vec())) {
            return None;
        }
        *s.per_group.entry(group.clone()).or_default() += 1;
        Some(Claim {
            state: self.state.clone(),
            p,
            key: key.to_vec(),
            group: group.clone(),
        })
    }
}

/// A due record found by a pass: `at` is its due time, `(p, key)` where it is stored.
pub struct Due<T> {
    pub at: u64,
    pub p: u32,
    pub key: Vec<u8>,
    pub item: T,
}

/// The due records, earliest due first (then by partition and key, so the order is total).
pub fn earliest_first<T>(mut due: Vec<Due<T>>) -> Vec<Due<T>> {
    due.sort_by(|a, b| (a.at, a.p, &a.key).cmp(&(b.at, b.p, &b.key)));
    due
}

/// One record in flight; dropping it frees the slot.
pub struct Claim<G: Hash + Eq> {
    state: Arc<Mutex<State<G>>>,
    pub p: u32,
    pub key: Vec<u8>,
    pub group: G,
}

impl<G: Hash + Eq> Drop for Claim<G> {
    fn drop(&mut self) {
        let mut s = lock(&self.state);
        s.launched.remove(&(self.p, std::mem::take(&mut self.key)));
        if let Some(n) = s.per_group.get_mut(&self.group) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.per_group.remove(&self.group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_go_to_the_earliest_due_whatever_the_partition() {
        let due = |at, p, key: &str| Due {
            at,
            p,
            key: key.as_bytes().to_vec(),
            item: (),
        };
        // Partition 0 holds many records due after partition 63's one.
        let mut found: Vec<Due<()>> = (0..10).map(|i| due(100 + i, 0, "a")).collect();
        found.push(due(50, 63, "z"));
        found.push(due(100, 7, "b"));
        let order: Vec<(u64, u32)> = earliest_first(found).iter().map(|d| (d.at, d.p)).collect();
        assert_eq!(order[0], (50, 63));
        assert_eq!(order[1], (100, 0));
        assert_eq!(order[2], (100, 7), "ties by partition");
        assert!(order.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn a_record_once_and_a_group_up_to_its_max() {
        let f = InFlight::<&str>::default();
        let a = f.claim(1, b"k1", &"e", 2).expect("free");
        assert!(
            f.claim(1, b"k1", &"e", 2).is_none(),
            "the same record twice"
        );
        let b = f
            .claim(2, b"k1", &"e", 2)
            .expect("another partition's record");
        assert!(f.claim(1, b"k2", &"e", 2).is_none(), "the group is full");
        assert!(
            f.claim(1, b"k2", &"other", 2).is_some(),
            "other groups are not"
        );
        assert_eq!(f.busy(&"e"), 2);
        drop(a);
        assert_eq!(f.busy(&"e"), 1);
        assert!(
            f.claim(1, b"k1", &"e", 2).is_some(),
            "free again once dropped"
        );
        drop(b);
    }
}
