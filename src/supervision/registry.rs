//! The per-kind registry of live entity actors.
//!
//! Every transition of a slot happens under one lock, so two requests racing to
//! activate the same id end on the same actor: the first inserts `Activating` and
//! spawns; the others wait for it. A slot in transition holds a `watch::Sender`; when
//! the transition ends the sender is dropped and every waiter re-reads the slot.
//!
//! An active slot also holds the actor's [`Pending`] count of caller messages in flight,
//! which the router checks against `actors.max_pending` before it sends.

use crate::actors::admission::Pending;
use crate::actors::entity::Slots;
use parking_lot::Mutex;
use ractor::{ActorId, ActorRef};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A live actor, its count of caller messages in flight, and the partition of its entity
/// (computed once at activation, so a handoff picks a partition's actors without hashing
/// every live id).
pub struct Live<M> {
    pub actor: ActorRef<M>,
    pub pending: Pending,
    pub partition: u32,
}

impl<M> Clone for Live<M> {
    fn clone(&self) -> Self {
        Self {
            actor: self.actor.clone(),
            pending: self.pending.clone(),
            partition: self.partition,
        }
    }
}

pub enum Slot<M> {
    Active(Live<M>),
    /// Being spawned and recovered; the activation task holds the sender.
    Activating(watch::Receiver<()>),
    /// Draining for passivation; removed when the supervisor sees it terminate.
    Stopping {
        actor: ActorId,
        done: watch::Sender<()>,
    },
    /// Failed; restarts after a backoff.
    Restarting {
        done: watch::Sender<()>,
    },
    /// Too many failures, or its journal does not decode.
    Quarantined {
        until: Instant,
        detail: String,
    },
}

/// What a caller should do after looking at a slot.
pub enum Lookup<M> {
    Ready(Live<M>),
    Wait(watch::Receiver<()>),
    /// Nobody owns the id: the caller must activate it, then drop the sender.
    Activate(watch::Sender<()>),
    /// Quarantined (503 `entity_quarantined`) for `retry_after` more.
    Unavailable {
        retry_after: Duration,
        detail: String,
    },
}

pub struct Registry<M> {
    slots: Mutex<HashMap<String, Slot<M>>>,
    /// Which entity a live actor serves, for supervision events.
    owners: Mutex<HashMap<ActorId, String>>,
}

impl<M> Default for Registry<M> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
        }
    }
}

impl<M> Registry<M> {
    pub fn lookup(&self, id: &str) -> Lookup<M> {
        let mut slots = self.slots.lock();
        match slots.get(id) {
            Some(Slot::Active(r)) => return Lookup::Ready(r.clone()),
            Some(Slot::Activating(rx)) => return Lookup::Wait(rx.clone()),
            Some(Slot::Stopping { done, .. }) | Some(Slot::Restarting { done }) => {
                return Lookup::Wait(done.subscribe())
            }
            Some(Slot::Quarantined { until, detail }) => {
                let now = Instant::now();
                if *until > now {
                    return Lookup::Unavailable {
                        retry_after: *until - now,
                        detail: detail.clone(),
                    };
                }
            }
            None => {}
        }
        let (tx, rx) = watch::channel(());
        slots.insert(id.to_owned(), Slot::Activating(rx));
        Lookup::Activate(tx)
    }

    /// Records a started actor for `id`.
    pub fn activated(&self, id: &str, partition: u32, actor: ActorRef<M>) {
        self.owners.lock().insert(actor.get_id(), id.to_owned());
        let live = Live {
            actor,
            pending: Pending::default(),
            partition,
        };
        self.slots.lock().insert(id.to_owned(), Slot::Active(live));
    }

    /// Marks `id` unavailable until `until`.
    pub fn quarantine(&self, id: &str, until: Instant, detail: String) {
        self.slots
            .lock()
            .insert(id.to_owned(), Slot::Quarantined { until, detail });
    }

    /// The actor `actor` asks to passivate. Returns false if it no longer owns the slot.
    pub fn begin_stop(&self, id: &str, actor: ActorId) -> bool {
        let mut slots = self.slots.lock();
        match slots.get(id) {
            Some(Slot::Active(r)) if r.actor.get_id() == actor => {
                let (done, _) = watch::channel(());
                slots.insert(id.to_owned(), Slot::Stopping { actor, done });
                true
            }
            _ => false,
        }
    }

    /// The actor has stopped: free its slot (waking waiters). Returns its entity id.
    pub fn stopped(&self, actor: ActorId) -> Option<String> {
        let id = self.owners.lock().remove(&actor)?;
        let mut slots = self.slots.lock();
        let owned = match slots.get(&id) {
            Some(Slot::Active(r)) => r.actor.get_id() == actor,
            Some(Slot::Stopping { actor: a, .. }) => *a == actor,
            _ => false,
        };
        if owned {
            slots.remove(&id);
        }
        Some(id)
    }

    /// The actor failed: put its slot in `Restarting` (callers wait) and return the
    /// entity id. The slot changes again when the restart activates or quarantines it.
    pub fn failed(&self, actor: ActorId) -> Option<String> {
        let id = self.owners.lock().remove(&actor)?;
        let (done, _) = watch::channel(());
        self.slots
            .lock()
            .insert(id.clone(), Slot::Restarting { done });
        Some(id)
    }

    /// Frees a slot whose activation failed or was abandoned.
    pub fn clear(&self, id: &str) {
        self.slots.lock().remove(id);
    }

    /// Live actors, for shutdown.
    pub fn active(&self) -> Vec<ActorRef<M>> {
        self.slots
            .lock()
            .values()
            .filter_map(|s| match s {
                Slot::Active(r) => Some(r.actor.clone()),
                _ => None,
            })
            .collect()
    }

    /// The live actors whose id `select` picks, for stopping a partition's entities.
    /// Only the picked ones are copied out (a handoff picks one partition of many).
    /// The live actors of the entities of partition `p`.
    pub fn active_in(&self, p: u32) -> Vec<ActorRef<M>> {
        self.slots
            .lock()
            .values()
            .filter_map(|s| match s {
                Slot::Active(r) if r.partition == p => Some(r.actor.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn active_count(&self) -> usize {
        self.owners.lock().len()
    }
}

impl<M: Send + 'static> Slots for Registry<M> {
    fn begin_stop(&self, id: &str, actor: ActorId) -> bool {
        Registry::begin_stop(self, id, actor)
    }
}
