//! From a committed entry of a partition log to the public events it gives rise to.
//!
//! A log entry names an entity's event (`kind`, `id`, `seq`); the catalogue's mappings
//! need the entity's state just before and just after it. [`Source`] folds the entity's
//! events to get both, and keeps the state it reached per entity (a bounded cache), so
//! reading a partition's log in order folds each event once rather than once per later
//! event of the same entity.

use std::collections::HashMap;

use super::catalogue::order_events;
use super::catalogue_kinds::{review_events, stock_events, user_events, webhook_events, At};
use super::catalogue_machines::machine_events;
use super::public::PublicEvent;
use crate::domain::machine::Machine;
use crate::domain::order::Order;
use crate::domain::review::Review;
use crate::domain::stock::Stock;
use crate::domain::user::User;
use crate::domain::webhook::Webhooks;
use crate::domain::{Aggregate, EntityKind};
use crate::store::layout::LogEntry;
use crate::store::{Journal, StoreError};

/// Most entities whose folded state one source keeps; past it the cache starts over.
const MAX_CACHED: usize = 4096;

/// One event of an entity with the state before and after it.
type Step<A> = (
    <A as Aggregate>::State,
    <A as Aggregate>::Event,
    <A as Aggregate>::State,
);

/// The states reached so far, per entity, for one kind.
struct Folds<A: Aggregate>(HashMap<String, (u64, A::State)>);

impl<A: Aggregate> Default for Folds<A> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<A: Aggregate> Folds<A> {
    /// The state of `id` before and after its event `seq`, and that event.
    fn step(
        &mut self,
        journal: &Journal,
        id: &str,
        seq: u64,
    ) -> Result<Option<Step<A>>, StoreError> {
        let before = match self.0.remove(id) {
            Some((at, state)) if at + 1 == seq => state,
            _ => {
                let events = journal.events::<A>(id, 0, seq.saturating_sub(1) as usize)?;
                A::replay(events.iter().map(|(_, _, e)| e))
            }
        };
        let Some((_, _, event)) = journal.events::<A>(id, seq - 1, 1)?.into_iter().next() else {
            return Ok(None);
        };
        let mut after = before.clone();
        A::apply(&mut after, &event);
        if self.0.len() >= MAX_CACHED {
            self.0.clear();
        }
        self.0.insert(id.to_owned(), (seq, after.clone()));
        Ok(Some((before, event, after)))
    }
}

/// Derives public events from log entries, folding entity states as it goes.
#[derive(Default)]
pub struct Source {
    /// `inventory.low_stock_threshold`: `stock.low` when what is available falls to it.
    low_stock: i64,
    orders: Folds<Order>,
    users: Folds<User>,
    stock: Folds<Stock>,
    machines: Folds<Machine>,
    reviews: Folds<Review>,
}

impl Source {
    /// A source that raises `stock.low` at `low_stock` available units (0: never).
    pub fn new(low_stock: i64) -> Self {
        Self {
            low_stock,
            ..Self::default()
        }
    }

    /// The public events of entry `pseq` of partition `p`'s log, in catalogue order.
    /// Kinds the catalogue does not map (carts, whose checkout is told by its order,
    /// products, payments, sessions, email claims) give none, unread.
    pub fn derive(
        &mut self,
        journal: &Journal,
        p: u32,
        pseq: u64,
        entry: &LogEntry,
    ) -> Result<Vec<PublicEvent>, StoreError> {
        let at = At {
            partition: p,
            pseq,
            at: entry.at,
        };
        let id = entry.id.as_str();
        Ok(match entry.kind() {
            Some(EntityKind::Order) => match self.orders.step(journal, id, entry.seq)? {
                Some((b, _, a)) => order_events(p, pseq, entry.at, &b, &a),
                None => Vec::new(),
            },
            Some(EntityKind::User) => match self.users.step(journal, id, entry.seq)? {
                Some((b, _, a)) => user_events(at, id, &b, &a),
                None => Vec::new(),
            },
            Some(EntityKind::Sku) => match self.stock.step(journal, id, entry.seq)? {
                Some((b, e, a)) => stock_events(at, id, &b, &e, &a, self.low_stock),
                None => Vec::new(),
            },
            Some(EntityKind::Machine) => match self.machines.step(journal, id, entry.seq)? {
                Some((b, e, a)) => machine_events(at, id, &b, &e, &a),
                None => Vec::new(),
            },
            Some(EntityKind::Review) => match self.reviews.step(journal, id, entry.seq)? {
                Some((b, e, a)) => review_events(at, id, &b, &e, &a),
                None => Vec::new(),
            },
            Some(EntityKind::Webhook) => {
                match journal
                    .events::<Webhooks>(id, entry.seq.saturating_sub(1), 1)?
                    .into_iter()
                    .next()
                {
                    Some((_, _, e)) => webhook_events(at, &e),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        })
    }
}
