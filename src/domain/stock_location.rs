//! A SKU's units per location, and its transfers between locations.
//!
//! One SKU entity holds its units at every location (`StockState::locations`), so a
//! checkout's allocation across locations, a transfer from one to another and a
//! reservation moved between them are each decided by one writer over one state: no two
//! of them can take the same unit (the oversell races of multi-location shops need a
//! lock here they cannot).
//!
//! The totals `on_hand` and `reserved` of [`StockState`] are the sums over locations;
//! every event that changes units says at which location, and events written before
//! locations existed mean [`MAIN`].
//!
//! A transfer (`TransferOut`, then `TransferIn` or `TransferFail`) is a two-step saga in
//! one entity: its units are reserved at the source while in transit (still counted on
//! hand there, no longer available), then moved to the destination when received, or
//! released back to the source when the destination refuses them or the transfer is
//! cancelled. The units are never on hand at two places, nor at none.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::location::MAIN;
use super::stock::{StockEvent, StockState};
use super::{reject, Millis, Rejection, RejectionCode};

/// Most transfers of one SKU in transit at once.
pub const MAX_OPEN_TRANSFERS: usize = 100;
/// Finished transfers of one SKU remembered (the oldest finished are forgotten).
pub const KEEP_FINISHED_TRANSFERS: usize = 100;

/// Units at one location.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationStock {
    pub on_hand: i64,
    pub reserved: i64,
}

impl LocationStock {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

/// Units of an order line taken from one location.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Allocation {
    pub location: String,
    pub quantity: i64,
}

/// The allocation of a reservation or a sale recorded before locations existed.
pub fn legacy(quantity: i64) -> Vec<Allocation> {
    vec![Allocation {
        location: MAIN.to_owned(),
        quantity,
    }]
}

/// The locations to draw from: `from`, or [`MAIN`] when it names none.
pub fn draw_from(from: &[String]) -> Vec<String> {
    if from.is_empty() {
        vec![MAIN.to_owned()]
    } else {
        from.to_vec()
    }
}

/// Takes `quantity` units from the locations `from` in order, each as much as it has
/// available; `Err` with what they have together when that is less.
pub fn allocate(s: &StockState, from: &[String], quantity: i64) -> Result<Vec<Allocation>, i64> {
    let mut left = quantity;
    let mut out: Vec<Allocation> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for loc in draw_from(from) {
        if !seen.insert(loc.clone()) {
            continue;
        }
        let avail = s.at(&loc).available().max(0);
        total += avail;
        let take = avail.min(left);
        if take > 0 {
            out.push(Allocation {
                location: loc,
                quantity: take,
            });
            left -= take;
        }
    }
    if left > 0 {
        Err(total)
    } else {
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferStatus {
    InTransit,
    Received,
    /// Released back to the source: the destination refused the units (closed), or the
    /// transfer was cancelled.
    Failed,
}

/// Why a transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferFailure {
    DestinationClosed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub quantity: i64,
    pub status: TransferStatus,
    pub failure: Option<TransferFailure>,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
}

/// Decides a transfer's first step: reserve `quantity` at `from` for `transfer_id`.
pub fn transfer_out(
    s: &StockState,
    transfer_id: Uuid,
    from: &str,
    to: &str,
    quantity: i64,
    now: Millis,
) -> Result<Vec<StockEvent>, Rejection> {
    if let Some(t) = s.transfers.get(&transfer_id) {
        if t.from == from && t.to == to && t.quantity == quantity {
            return Ok(vec![]);
        }
        return reject(
            RejectionCode::Conflict,
            "this transfer id names another transfer",
        );
    }
    if from == to {
        return reject(RejectionCode::Validation, "from and to must differ");
    }
    if quantity <= 0 {
        return reject(RejectionCode::Validation, "quantity must be positive");
    }
    let open = s
        .transfers
        .values()
        .filter(|t| t.status == TransferStatus::InTransit)
        .count();
    if open >= MAX_OPEN_TRANSFERS {
        return reject(
            RejectionCode::Conflict,
            format!("{MAX_OPEN_TRANSFERS} transfers of this SKU are already in transit"),
        );
    }
    let avail = s.at(from).available();
    if avail < quantity {
        return reject(
            RejectionCode::InsufficientStock,
            format!("only {} available at {from}", avail.max(0)),
        );
    }
    Ok(vec![StockEvent::TransferStarted {
        transfer_id,
        from: from.to_owned(),
        to: to.to_owned(),
        quantity,
        at: now,
    }])
}

/// Decides a transfer's second step: received at its destination, or failed.
pub fn transfer_end(
    s: &StockState,
    transfer_id: Uuid,
    failure: Option<TransferFailure>,
    now: Millis,
) -> Result<Vec<StockEvent>, Rejection> {
    let Some(t) = s.transfers.get(&transfer_id) else {
        return reject(
            RejectionCode::NotFound,
            format!("no transfer {transfer_id}"),
        );
    };
    match (&t.status, failure) {
        (TransferStatus::InTransit, None) => Ok(vec![StockEvent::TransferReceived {
            transfer_id,
            at: now,
        }]),
        (TransferStatus::InTransit, Some(reason)) => Ok(vec![StockEvent::TransferFailed {
            transfer_id,
            reason,
            at: now,
        }]),
        (TransferStatus::Received, None) => Ok(vec![]),
        (TransferStatus::Failed, Some(_)) => Ok(vec![]),
        (TransferStatus::Received, Some(_)) => reject(
            RejectionCode::InvalidTransition,
            "the transfer was already received",
        ),
        (TransferStatus::Failed, None) => reject(
            RejectionCode::InvalidTransition,
            "the transfer already failed; its units are back at the source",
        ),
    }
}

/// Moves held units of an order between locations, re-checking the destination.
pub fn move_reservation(
    s: &StockState,
    order_id: Uuid,
    from: &str,
    to: &str,
    quantity: i64,
) -> Result<Vec<StockEvent>, Rejection> {
    let Some(r) = s.reservations.get(&order_id) else {
        return reject(
            RejectionCode::NotFound,
            "no open reservation for this order",
        );
    };
    super::location::valid_location_id(to)?;
    if quantity <= 0 || from == to {
        return reject(
            RejectionCode::Validation,
            "quantity must be positive and the locations must differ",
        );
    }
    let held = r
        .allocations
        .iter()
        .filter(|a| a.location == from)
        .map(|a| a.quantity)
        .sum::<i64>();
    if held < quantity {
        return reject(
            RejectionCode::Validation,
            format!("the reservation holds {held} at {from}"),
        );
    }
    let avail = s.at(to).available();
    if avail < quantity {
        return reject(
            RejectionCode::InsufficientStock,
            format!("only {} available at {to}", avail.max(0)),
        );
    }
    Ok(vec![StockEvent::ReservationMoved {
        order_id,
        from: from.to_owned(),
        to: to.to_owned(),
        quantity,
    }])
}

/// Applies [`StockEvent::ReservationMoved`].
pub fn apply_moved(s: &mut StockState, order_id: Uuid, from: &str, to: &str, quantity: i64) {
    let order_id = &order_id;
    let quantity = &quantity;

    let Some(r) = s.reservations.get_mut(order_id) else {
        return;
    };
    let mut left = *quantity;
    for a in r.allocations.iter_mut().filter(|a| a.location == from) {
        let take = a.quantity.min(left);
        a.quantity -= take;
        left -= take;
    }
    r.allocations.retain(|a| a.quantity > 0);
    match r.allocations.iter_mut().find(|a| a.location == to) {
        Some(a) => a.quantity += quantity,
        None => r.allocations.push(Allocation {
            location: to.to_owned(),
            quantity: *quantity,
        }),
    }
    add(s, from, 0, -quantity);
    add(s, to, 0, *quantity);
}

/// Adds `on_hand` and `reserved` units at `location`, and to the totals.
pub fn add(s: &mut StockState, location: &str, on_hand: i64, reserved: i64) {
    let l = s.locations.entry(location.to_owned()).or_default();
    l.on_hand = l.on_hand.saturating_add(on_hand);
    l.reserved = l.reserved.saturating_add(reserved);
    s.on_hand = s.on_hand.saturating_add(on_hand);
    s.reserved = s.reserved.saturating_add(reserved);
}

/// Applies a transfer event.
pub fn apply_transfer(s: &mut StockState, e: &StockEvent) {
    match e {
        StockEvent::TransferStarted {
            transfer_id,
            from,
            to,
            quantity,
            at,
        } => {
            add(s, from, 0, *quantity);
            s.transfers.insert(
                *transfer_id,
                Transfer {
                    from: from.clone(),
                    to: to.clone(),
                    quantity: *quantity,
                    status: TransferStatus::InTransit,
                    failure: None,
                    started_at: *at,
                    finished_at: None,
                },
            );
        }
        StockEvent::TransferReceived { transfer_id, at } => {
            let Some(t) = s.transfers.get(transfer_id).cloned() else {
                return;
            };
            add(s, &t.from, -t.quantity, -t.quantity);
            add(s, &t.to, t.quantity, 0);
            finish(s, *transfer_id, TransferStatus::Received, None, *at);
        }
        StockEvent::TransferFailed {
            transfer_id,
            reason,
            at,
        } => {
            let Some(t) = s.transfers.get(transfer_id).cloned() else {
                return;
            };
            add(s, &t.from, 0, -t.quantity);
            finish(s, *transfer_id, TransferStatus::Failed, Some(*reason), *at);
        }
        StockEvent::TransferReversed { transfer_id, at } => {
            let Some(t) = s.transfers.get(transfer_id).cloned() else {
                return;
            };
            add(s, &t.to, -t.quantity, 0);
            add(s, &t.from, t.quantity, 0);
            finish(
                s,
                *transfer_id,
                TransferStatus::Failed,
                Some(TransferFailure::Cancelled),
                *at,
            );
        }
        _ => {}
    }
}

fn finish(
    s: &mut StockState,
    id: Uuid,
    status: TransferStatus,
    failure: Option<TransferFailure>,
    at: Millis,
) {
    if let Some(t) = s.transfers.get_mut(&id) {
        t.status = status;
        t.failure = failure;
        t.finished_at = Some(at);
    }
    let mut finished: Vec<(Millis, Uuid)> = s
        .transfers
        .iter()
        .filter_map(|(id, t)| t.finished_at.map(|f| (f, *id)))
        .collect();
    if finished.len() > KEEP_FINISHED_TRANSFERS {
        finished.sort();
        for (_, id) in &finished[..finished.len() - KEEP_FINISHED_TRANSFERS] {
            s.transfers.remove(id);
        }
    }
}

#[cfg(test)]
#[path = "stock_location_tests.rs"]
mod tests;
