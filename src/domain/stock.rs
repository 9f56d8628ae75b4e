//! Inventory for one SKU: units on hand, and reservations held by orders until they
//! are committed (sold), released, or expire.
//!
//! Every command an order sends is idempotent per order id, so a resumed saga never
//! reserves or commits twice. Closed reservations are remembered until their expiry
//! has passed, so a late duplicate `Reserve` cannot take stock again.
//!
//! That memory (`closed`) is bounded twice, so a busy SKU's state (cloned per command,
//! re-encoded per snapshot) stays small: by time (a day past the reservation's expiry,
//! [`CLOSED_RETENTION_MS`]) and by count (`keep_closed` in the closing commands, from
//! `inventory.closed_reservations_max`, default [`DEFAULT_KEEP_CLOSED`]), evicting the
//! oldest (lowest `keep_until`, then order id) through a [`StockEvent::Trimmed`] event, so
//! replay evicts exactly what the live entity did.
//!
//! Why evicting by count is safe: a command for a closed reservation only comes from the
//! order's own saga repeating a step whose outcome it had not recorded yet (a crash or a
//! timeout between the stock write and the order's event). The saga repeats such a step
//! within its retry delay, seconds, and the order moves on once it records the outcome,
//! never back. For a repeat to miss its record, this SKU would have to close
//! `keep_closed` other reservations in between. If it still happened: a repeated
//! `Reserve` whose deadline passed is refused anyway (`expires_at <= now`), one whose
//! deadline has not passed reserves again and is released when it expires; a repeated
//! `Commit` would take the units again from what is available (or fail `out_of_stock`
//! and be compensated); a repeated `Return` would do nothing.

use super::location::MAIN;
use super::stock_location::{
    self as at, allocate, legacy, Allocation, LocationStock, Transfer, TransferFailure,
};
use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Largest `on_hand` accepted.
pub const MAX_ON_HAND: i64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub quantity: i64,
    pub expires_at: Millis,
    /// Where its units are held (they sum to `quantity`).
    pub allocations: Vec<Allocation>,
}

/// What became of a reservation once it left `reservations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Released,
    Committed,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub quantity: i64,
    pub outcome: Outcome,
    /// Remembered until this time, then pruned.
    pub keep_until: Millis,
    /// Where its units were held or taken from.
    pub allocations: Vec<Allocation>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockState {
    pub on_hand: i64,
    pub reserved: i64,
    pub reservations: BTreeMap<Uuid, Reservation>,
    pub closed: BTreeMap<Uuid, Closed>,
    /// Units per location; `on_hand` and `reserved` are their sums.
    pub locations: BTreeMap<String, LocationStock>,
    /// Transfers in transit, and the last finished ones.
    pub transfers: BTreeMap<Uuid, Transfer>,
    /// Per machine location, the machine's sales of this SKU already taken off its
    /// units there.
    pub machine_sold: BTreeMap<String, u64>,
}

impl StockState {
    /// The units at `location` (none when it never held any).
    pub fn at(&self, location: &str) -> LocationStock {
        self.locations.get(location).copied().unwrap_or_default()
    }
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
    /// The earliest time a reservation expires, for the actor's timer.
    pub fn next_expiry(&self) -> Option<Millis> {
        self.reservations.values().map(|r| r.expires_at).min()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Cancelled,
    Expired,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum StockCommand {
    /// An operator adjustment: goods received (+) or written off (-).
    Adjust {
        delta: i64,
        reason: String,
        by: String,
        /// Where the units are received or written off.
        location: String,
    },
    /// Holds units for an order, drawn from `from` in order (empty: [`MAIN`]).
    Reserve {
        order_id: Uuid,
        quantity: i64,
        expires_at: Millis,
        now: Millis,
        from: Vec<String>,
    },
    Release {
        order_id: Uuid,
        now: Millis,
        /// Most closed reservations to remember (see the module doc).
        keep_closed: u32,
    },
    /// Sells the reserved units. If the reservation already expired, the units are
    /// taken from what is available, or the command is refused with `out_of_stock`.
    Commit {
        order_id: Uuid,
        quantity: i64,
        now: Millis,
        keep_closed: u32,
        /// Where to take the units from if the reservation is gone (empty: [`MAIN`]).
        from: Vec<String>,
    },
    /// Puts committed units back on hand (a compensation after a failed commit).
    Return { order_id: Uuid, now: Millis },
    /// Releases every reservation whose time has passed.
    Expire { now: Millis, keep_closed: u32 },
    /// Moves `quantity` of an order's held units from one location to another, if the
    /// destination has them available.
    MoveReservation {
        order_id: Uuid,
        from: String,
        to: String,
        quantity: i64,
    },
    /// Starts a transfer: holds `quantity` at `from` while in transit.
    TransferOut {
        transfer_id: Uuid,
        from: String,
        to: String,
        quantity: i64,
        now: Millis,
    },
    /// Ends a transfer: received at its destination (`failure: None`), or released back
    /// to its source.
    TransferEnd {
        transfer_id: Uuid,
        failure: Option<TransferFailure>,
        now: Millis,
    },
    /// A restock visit: `quantity` units moved from a truck into a machine at once (a
    /// transfer started and received), with the machine's own count of the SKU before
    /// it (`reported`) recorded beside the ledger's.
    Restock {
        visit_id: Uuid,
        from: String,
        to: String,
        quantity: i64,
        reported: i64,
        now: Millis,
    },
    /// Takes a restock visit's units back to the truck (the visit failed for another
    /// SKU): the compensation of `Restock`.
    RestockUndo { visit_id: Uuid, now: Millis },
    /// The machine at `location` has sold `total` units of this SKU in all: what is
    /// beyond the total already taken off leaves its units there.
    MachineSales { location: String, total: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockEvent {
    Adjusted {
        delta: i64,
        reason: String,
        by: String,
    },
    Reserved {
        order_id: Uuid,
        quantity: i64,
        expires_at: Millis,
    },
    Released {
        order_id: Uuid,
        quantity: i64,
        reason: ReleaseReason,
        keep_until: Millis,
    },
    Committed {
        order_id: Uuid,
        quantity: i64,
        from_reservation: bool,
        keep_until: Millis,
    },
    Returned {
        order_id: Uuid,
        quantity: i64,
    },
    /// Forgets closed reservations remembered until before `now`.
    Pruned {
        now: Millis,
    },
    /// Forgets the oldest closed reservations (lowest `keep_until`, then order id) until
    /// at most `keep` are left.
    Trimmed {
        keep: u32,
    },
    // Events from here on name locations. The ones above mean `main`.
    AdjustedAt {
        location: String,
        delta: i64,
        reason: String,
        by: String,
    },
    Allocated {
        order_id: Uuid,
        quantity: i64,
        expires_at: Millis,
        allocations: Vec<Allocation>,
    },
    /// A commit with no reservation left, taken from `allocations`.
    CommittedAt {
        order_id: Uuid,
        quantity: i64,
        allocations: Vec<Allocation>,
        keep_until: Millis,
    },
    ReservationMoved {
        order_id: Uuid,
        from: String,
        to: String,
        quantity: i64,
    },
    TransferStarted {
        transfer_id: Uuid,
        from: String,
        to: String,
        quantity: i64,
        at: Millis,
    },
    TransferReceived {
        transfer_id: Uuid,
        at: Millis,
    },
    TransferFailed {
        transfer_id: Uuid,
        reason: TransferFailure,
        at: Millis,
    },
    /// A restock visit's count at a machine: what the machine reported against what the
    /// ledger held there, before the visit's units.
    Counted {
        visit_id: Uuid,
        location: String,
        reported: i64,
        ledger: i64,
    },
    /// A received transfer (a restock visit's) taken back: its units are at the source
    /// again.
    TransferReversed {
        transfer_id: Uuid,
        at: Millis,
    },
    /// The machine at `location` sold `delta` more units (`total` in all).
    MachineSold {
        location: String,
        total: u64,
        delta: u64,
    },
}

/// How long a closed reservation is remembered past `now` at least (one day).
pub const CLOSED_RETENTION_MS: Millis = 24 * 3600 * 1000;

/// How many closed reservations a SKU remembers at most, unless configured otherwise
/// (`inventory.closed_reservations_max`). About 200 KiB of state at most.
pub const DEFAULT_KEEP_CLOSED: u32 = 4096;

pub struct Stock;

impl Aggregate for Stock {
    const KIND: EntityKind = EntityKind::Sku;
    type State = StockState;
    type Command = StockCommand;
    type Event = StockEvent;

    fn decide(s: &StockState, cmd: &StockCommand) -> Result<Vec<StockEvent>, Rejection> {
        let mut evs = decide_step(s, cmd)?;
        if let StockCommand::Release { keep_closed, .. }
        | StockCommand::Commit { keep_closed, .. }
        | StockCommand::Expire { keep_closed, .. } = cmd
        {
            trim_closed(s, &mut evs, *keep_closed);
        }
        Ok(evs)
    }

    fn apply(s: &mut StockState, event: &StockEvent) {
        apply_event(s, event)
    }

    fn can_passivate(s: &StockState) -> bool {
        // Reservations need this actor's timer to expire them.
        s.reservations.is_empty()
    }
}

/// Appends a [`StockEvent::Trimmed`] when the closing events would leave more than `keep`
/// closed reservations.
fn trim_closed(s: &StockState, evs: &mut Vec<StockEvent>, keep: u32) {
    let mut added = std::collections::BTreeSet::new();
    for e in evs.iter() {
        if let StockEvent::Released { order_id, .. }
        | StockEvent::Committed { order_id, .. }
        | StockEvent::CommittedAt { order_id, .. } = e
        {
            if !s.closed.contains_key(order_id) {
                added.insert(*order_id);
            }
        }
    }
    if s.closed.len() + added.len() > keep as usize {
        evs.push(StockEvent::Trimmed { keep });
    }
}

fn decide_step(s: &StockState, cmd: &StockCommand) -> Result<Vec<StockEvent>, Rejection> {
    use StockCommand as C;
    match cmd {
        C::Adjust {
            delta,
            reason,
            by,
            location,
        } => {
            super::location::valid_location_id(location)?;
            if *delta == 0 {
                return reject(RejectionCode::Validation, "delta must not be zero");
            }
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 200 {
                return reject(
                    RejectionCode::Validation,
                    "reason must be 1 to 200 characters",
                );
            }
            let Some(after) = s.on_hand.checked_add(*delta) else {
                return reject(RejectionCode::Validation, "delta is out of range");
            };
            if after > MAX_ON_HAND {
                return reject(
                    RejectionCode::Validation,
                    format!("on_hand may not exceed {MAX_ON_HAND}"),
                );
            }
            let here = s.at(location);
            let after_here = here.on_hand + delta;
            if after_here < here.reserved {
                return reject(
                    RejectionCode::InsufficientStock,
                    format!(
                        "on_hand at {location} would fall to {after_here}, below the {} units reserved there",
                        here.reserved
                    ),
                );
            }
            Ok(vec![StockEvent::AdjustedAt {
                location: location.clone(),
                delta: *delta,
                reason: reason.to_owned(),
                by: by.clone(),
            }])
        }
        C::Reserve {
            order_id,
            quantity,
            expires_at,
            now,
            from,
        } => {
            if s.reservations.contains_key(order_id) {
                return Ok(vec![]);
            }
            if s.closed.contains_key(order_id) {
                return reject(
                    RejectionCode::InvalidTransition,
                    "the reservation for this order is already closed",
                );
            }
            if *quantity <= 0 {
                return reject(RejectionCode::Validation, "quantity must be positive");
            }
            if expires_at <= now {
                return reject(
                    RejectionCode::InvalidTransition,
                    "the reservation has expired",
                );
            }
            let allocations = allocate(s, from, *quantity).map_err(|avail| {
                Rejection::new(RejectionCode::OutOfStock, format!("only {avail} available"))
            })?;
            Ok(vec![StockEvent::Allocated {
                order_id: *order_id,
                quantity: *quantity,
                expires_at: *expires_at,
                allocations,
            }])
        }
        C::Release { order_id, now, .. } => Ok(match s.reservations.get(order_id) {
            Some(r) => vec![StockEvent::Released {
                order_id: *order_id,
                quantity: r.quantity,
                reason: ReleaseReason::Cancelled,
                keep_until: keep_until(r.expires_at, *now),
            }],
            None => vec![],
        }),
        C::Commit {
            order_id,
            quantity,
            now,
            from,
            ..
        } => {
            if let Some(r) = s.reservations.get(order_id) {
                return Ok(vec![StockEvent::Committed {
                    order_id: *order_id,
                    quantity: r.quantity,
                    from_reservation: true,
                    keep_until: keep_until(r.expires_at, *now),
                }]);
            }
            match s.closed.get(order_id).map(|c| c.outcome) {
                Some(Outcome::Committed) => Ok(vec![]),
                Some(Outcome::Returned) => reject(
                    RejectionCode::InvalidTransition,
                    "the units of this order were returned",
                ),
                Some(Outcome::Released) | None => {
                    if *quantity <= 0 {
                        return reject(RejectionCode::Validation, "quantity must be positive");
                    }
                    let allocations = allocate(s, from, *quantity).map_err(|_| {
                        Rejection::new(
                            RejectionCode::OutOfStock,
                            "the reservation expired and the units are gone",
                        )
                    })?;
                    Ok(vec![StockEvent::CommittedAt {
                        order_id: *order_id,
                        quantity: *quantity,
                        allocations,
                        keep_until: keep_until(0, *now),
                    }])
                }
            }
        }
        C::Return { order_id, .. } => Ok(match s.closed.get(order_id) {
            Some(c) if c.outcome == Outcome::Committed => vec![StockEvent::Returned {
                order_id: *order_id,
                quantity: c.quantity,
            }],
            _ => vec![],
        }),
        C::Expire { now, .. } => {
            let mut evs: Vec<StockEvent> = s
                .reservations
                .iter()
                .filter(|(_, r)| r.expires_at <= *now)
                .map(|(id, r)| StockEvent::Released {
                    order_id: *id,
                    quantity: r.quantity,
                    reason: ReleaseReason::Expired,
                    keep_until: keep_until(r.expires_at, *now),
                })
                .collect();
            if s.closed.values().any(|c| c.keep_until < *now) {
                evs.push(StockEvent::Pruned { now: *now });
            }
            Ok(evs)
        }
        C::MoveReservation {
            order_id,
            from,
            to,
            quantity,
        } => at::move_reservation(s, *order_id, from, to, *quantity),
        C::TransferOut {
            transfer_id,
            from,
            to,
            quantity,
            now,
        } => {
            super::location::valid_location_id(from)?;
            super::location::valid_location_id(to)?;
            at::transfer_out(s, *transfer_id, from, to, *quantity, *now)
        }
        C::TransferEnd {
            transfer_id,
            failure,
            now,
        } => at::transfer_end(s, *transfer_id, *failure, *now),
        C::Restock {
            visit_id,
            from,
            to,
            quantity,
            reported,
            now,
        } => {
            if s.transfers.contains_key(visit_id) {
                return Ok(vec![]);
            }
            super::location::valid_location_id(from)?;
            super::location::valid_location_id(to)?;
            let mut evs = at::transfer_out(s, *visit_id, from, to, *quantity, *now)?;
            evs.push(StockEvent::TransferReceived {
                transfer_id: *visit_id,
                at: *now,
            });
            evs.push(StockEvent::Counted {
                visit_id: *visit_id,
                location: to.clone(),
                reported: *reported,
                ledger: s.at(to).on_hand,
            });
            Ok(evs)
        }
        C::RestockUndo { visit_id, now } => Ok(match s.transfers.get(visit_id) {
            Some(t) if t.status == at::TransferStatus::Received => {
                vec![StockEvent::TransferReversed {
                    transfer_id: *visit_id,
                    at: *now,
                }]
            }
            _ => vec![],
        }),
        C::MachineSales { location, total } => {
            super::location::valid_location_id(location)?;
            let done = s.machine_sold.get(location).copied().unwrap_or(0);
            Ok(if *total > done {
                vec![StockEvent::MachineSold {
                    location: location.clone(),
                    total: *total,
                    delta: total - done,
                }]
            } else {
                vec![]
            })
        }
    }
}

/// Adds `sign * a.quantity` on hand (`hand`) and reserved (`held`) at each allocation.
fn add_each(s: &mut StockState, allocations: &[Allocation], hand: i64, held: i64) {
    for a in allocations {
        at::add(s, &a.location, hand * a.quantity, held * a.quantity);
    }
}

/// Where a reservation's or a closed record's units are, with the ones written before
/// locations existed at `main`.
fn where_held(allocations: &[Allocation], quantity: i64) -> Vec<Allocation> {
    if allocations.is_empty() {
        legacy(quantity)
    } else {
        allocations.to_vec()
    }
}

fn apply_event(s: &mut StockState, event: &StockEvent) {
    match event {
        StockEvent::Adjusted { delta, .. } => at::add(s, MAIN, *delta, 0),
        StockEvent::AdjustedAt {
            location, delta, ..
        } => at::add(s, location, *delta, 0),
        StockEvent::Reserved {
            order_id,
            quantity,
            expires_at,
        } => reserve(s, *order_id, *quantity, *expires_at, legacy(*quantity)),
        StockEvent::Allocated {
            order_id,
            quantity,
            expires_at,
            allocations,
        } => reserve(s, *order_id, *quantity, *expires_at, allocations.clone()),
        StockEvent::Released {
            order_id,
            quantity,
            keep_until,
            ..
        } => {
            let held = match s.reservations.remove(order_id) {
                Some(r) => {
                    let held = where_held(&r.allocations, r.quantity);
                    add_each(s, &held, 0, -1);
                    held
                }
                None => legacy(*quantity),
            };
            s.closed.insert(
                *order_id,
                Closed {
                    quantity: *quantity,
                    outcome: Outcome::Released,
                    keep_until: *keep_until,
                    allocations: held,
                },
            );
        }
        StockEvent::Committed {
            order_id,
            quantity,
            from_reservation,
            keep_until,
        } => {
            let taken = match s.reservations.get(order_id) {
                Some(r) if *from_reservation => {
                    let held = where_held(&r.allocations, r.quantity);
                    s.reservations.remove(order_id);
                    add_each(s, &held, -1, -1);
                    held
                }
                _ => {
                    let taken = legacy(*quantity);
                    add_each(s, &taken, -1, 0);
                    taken
                }
            };
            s.closed.insert(
                *order_id,
                Closed {
                    quantity: *quantity,
                    outcome: Outcome::Committed,
                    keep_until: *keep_until,
                    allocations: taken,
                },
            );
        }
        StockEvent::CommittedAt {
            order_id,
            quantity,
            allocations,
            keep_until,
        } => {
            add_each(s, allocations, -1, 0);
            s.closed.insert(
                *order_id,
                Closed {
                    quantity: *quantity,
                    outcome: Outcome::Committed,
                    keep_until: *keep_until,
                    allocations: allocations.clone(),
                },
            );
        }
        StockEvent::Returned { order_id, quantity } => {
            let back = match s.closed.get_mut(order_id) {
                Some(c) => {
                    c.outcome = Outcome::Returned;
                    where_held(&c.allocations, c.quantity)
                }
                None => legacy(*quantity),
            };
            add_each(s, &back, 1, 0);
        }
        StockEvent::ReservationMoved {
            order_id,
            from,
            to,
            quantity,
        } => at::apply_moved(s, *order_id, from, to, *quantity),
        StockEvent::TransferStarted { .. }
        | StockEvent::TransferReceived { .. }
        | StockEvent::TransferFailed { .. }
        | StockEvent::TransferReversed { .. } => at::apply_transfer(s, event),
        // A record for the audit trail: the units moved with the visit's transfer.
        StockEvent::Counted { .. } => {}
        StockEvent::MachineSold {
            location,
            total,
            delta,
        } => {
            let delta = i64::try_from(*delta).unwrap_or(i64::MAX);
            at::add(s, location, -delta, 0);
            s.machine_sold.insert(location.clone(), *total);
        }
        StockEvent::Pruned { now } => s.closed.retain(|_, c| c.keep_until >= *now),
        StockEvent::Trimmed { keep } => evict_oldest(&mut s.closed, *keep as usize),
    }
}

fn reserve(
    s: &mut StockState,
    order_id: Uuid,
    quantity: i64,
    expires_at: Millis,
    allocations: Vec<Allocation>,
) {
    add_each(s, &allocations, 0, 1);
    s.reservations.insert(
        order_id,
        Reservation {
            quantity,
            expires_at,
            allocations,
        },
    );
}

/// Removes the oldest entries (lowest `keep_until`, then order id: a total order, so the
/// result does not depend on anything but the map) until `keep` are left.
fn evict_oldest(closed: &mut BTreeMap<Uuid, Closed>, keep: usize) {
    let excess = closed.len().saturating_sub(keep);
    if excess == 0 {
        return;
    }
    let mut by_age: Vec<(Millis, Uuid)> =
        closed.iter().map(|(id, c)| (c.keep_until, *id)).collect();
    by_age.select_nth_unstable(excess - 1);
    for (_, id) in &by_age[..excess] {
        closed.remove(id);
    }
}

fn keep_until(expires_at: Millis, now: Millis) -> Millis {
    expires_at.max(now).saturating_add(CLOSED_RETENTION_MS)
}

#[cfg(test)]
#[path = "stock_tests.rs"]
mod tests;
