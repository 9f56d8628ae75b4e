//! How the machine aggregate decides: validation and the per-command decision helpers
//! used by `Machine::decide`. Pure: no IO, clock or randomness.

use super::types::*;
use crate::domain::{reject, Millis, Rejection, RejectionCode};
use std::collections::BTreeMap;
use uuid::Uuid;

pub(super) fn clip(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

pub(super) fn registered(s: &MachineState) -> Result<&Registration, Rejection> {
    s.registration
        .as_ref()
        .ok_or_else(|| Rejection::new(RejectionCode::NotFound, "machine not registered"))
}

pub(super) fn validate_info(name: &str, location: &str) -> Result<(String, String), Rejection> {
    let (name, location) = (name.trim(), location.trim());
    if name.is_empty() || name.chars().count() > 100 {
        return reject(
            RejectionCode::Validation,
            "name must be 1 to 100 characters",
        );
    }
    if location.chars().count() > 200 {
        return reject(
            RejectionCode::Validation,
            "location must be at most 200 characters",
        );
    }
    Ok((name.to_owned(), location.to_owned()))
}

pub(super) fn validate_hash(h: &str) -> Result<(), Rejection> {
    if h.is_empty() || h.len() > 512 {
        return reject(
            RejectionCode::Validation,
            "secret hash must be 1 to 512 bytes",
        );
    }
    Ok(())
}

pub(super) fn received(seq: u64, at: Millis, message: Message) -> MachineEvent {
    MachineEvent::Received { seq, at, message }
}

pub(super) fn skipped(seq: u64, at: Millis, reason: SkipReason) -> MachineEvent {
    received(seq, at, Message::Skipped { reason })
}

/// A `LowStock` event if the slot's level goes from above the threshold to at or below it.
pub(super) fn low_stock(s: &MachineState, slot: u32, after: u32) -> Option<MachineEvent> {
    let sl = s.planogram.get(&slot)?;
    let t = s.low_stock_threshold;
    (sl.level > t && after <= t).then(|| MachineEvent::LowStock {
        slot,
        sku: sl.sku.clone(),
        level: after,
    })
}

/// Closes the pending `Dispense` for `order_id`, if any.
pub(super) fn close_dispense(
    s: &MachineState,
    order_id: Uuid,
    status: CommandStatus,
    detail: &str,
) -> Vec<MachineEvent> {
    s.pending
        .iter()
        .filter(|(_, r)| matches!(r.command, MachineCommand::Dispense { order_id: o, .. } if o == order_id))
        .map(|(id, _)| MachineEvent::CommandClosed {
            command_id: *id,
            status,
            detail: clip(detail),
        })
        .collect()
}

pub(super) fn require_slot(s: &MachineState, slot: u32) -> Result<&Slot, Rejection> {
    s.planogram
        .get(&slot)
        .ok_or_else(|| Rejection::new(RejectionCode::NotFound, format!("slot {slot} not found")))
}

pub(super) fn decide_planogram(
    s: &MachineState,
    slots: &[SlotSpec],
) -> Result<Vec<MachineEvent>, Rejection> {
    if slots.len() > MAX_SLOTS {
        return reject(
            RejectionCode::Validation,
            format!("at most {MAX_SLOTS} slots"),
        );
    }
    let mut map = BTreeMap::new();
    for sp in slots {
        if !(0..=MAX_PRICE_MINOR).contains(&sp.price_minor) {
            return reject(
                RejectionCode::Validation,
                format!(
                    "slot {}: price_minor must be 0 to {MAX_PRICE_MINOR}",
                    sp.slot
                ),
            );
        }
        if sp.capacity == 0 || sp.capacity > MAX_CAPACITY {
            return reject(
                RejectionCode::Validation,
                format!("slot {}: capacity must be 1 to {MAX_CAPACITY}", sp.slot),
            );
        }
        if sp.level > sp.capacity {
            return reject(
                RejectionCode::Validation,
                format!("slot {}: level exceeds capacity", sp.slot),
            );
        }
        let slot = Slot {
            sku: sp.sku.clone(),
            price_minor: sp.price_minor,
            capacity: sp.capacity,
            level: sp.level,
            locked: s.planogram.get(&sp.slot).is_some_and(|o| o.locked),
        };
        if map.insert(sp.slot, slot).is_some() {
            return reject(
                RejectionCode::Validation,
                format!("slot {} appears twice", sp.slot),
            );
        }
    }
    if let Some((o, h)) = s.holds.iter().find(|(_, h)| !map.contains_key(&h.slot)) {
        return reject(
            RejectionCode::InvalidTransition,
            format!("slot {} is held for app order {o}", h.slot),
        );
    }
    if map == s.planogram {
        return Ok(vec![]);
    }
    Ok(vec![MachineEvent::PlanogramSet { slots: map }])
}

#[allow(clippy::too_many_arguments)]
pub(super) fn decide_vend(
    s: &MachineState,
    seq: u64,
    at: Millis,
    vend_id: Uuid,
    slot: u32,
    sku: &str,
    price_minor: i64,
    method: VendMethod,
    order_id: Option<Uuid>,
    success: bool,
    failure_reason: &Option<String>,
) -> Vec<MachineEvent> {
    if s.recent_vends.contains(&vend_id) {
        return vec![skipped(seq, at, SkipReason::DuplicateVend)];
    }
    let failure_reason = failure_reason.as_deref().map(clip);
    let mut evs = vec![received(
        seq,
        at,
        Message::Vend {
            vend_id,
            slot,
            sku: sku.chars().take(64).collect(),
            price_minor: price_minor.clamp(0, MAX_PRICE_MINOR),
            method,
            order_id,
            success,
            failure_reason: failure_reason.clone(),
        },
    )];
    if success {
        if let Some(sl) = s.planogram.get(&slot) {
            evs.extend(low_stock(s, slot, sl.level.saturating_sub(1)));
        }
    }
    if let Some(order_id) = order_id.filter(|o| s.holds.contains_key(o)) {
        if success {
            evs.push(MachineEvent::AppVendSucceeded { order_id, vend_id });
            evs.extend(close_dispense(s, order_id, CommandStatus::Done, "vended"));
        } else {
            let reason = failure_reason.unwrap_or_else(|| "vend_failed".into());
            evs.extend(close_dispense(
                s,
                order_id,
                CommandStatus::Rejected,
                &reason,
            ));
            evs.push(MachineEvent::AppVendFailed { order_id, reason });
        }
    }
    evs
}

pub(super) fn decide_ack(
    s: &MachineState,
    seq: u64,
    at: Millis,
    command_id: Uuid,
    status: AckStatus,
    detail: &str,
) -> Vec<MachineEvent> {
    let Some(rec) = s.pending.get(&command_id) else {
        return vec![skipped(seq, at, SkipReason::UnknownCommand)];
    };
    let detail = clip(detail);
    let mut evs = vec![received(
        seq,
        at,
        Message::CommandAck {
            command_id,
            status,
            detail: detail.clone(),
        },
    )];
    let event = match (&rec.command, status) {
        (MachineCommand::SetPrice { slot, price_minor }, AckStatus::Done) => {
            Some(MachineEvent::SlotPriceSet {
                slot: *slot,
                price_minor: *price_minor,
            })
        }
        (MachineCommand::LockSlot { slot, .. }, AckStatus::Done) => {
            Some(MachineEvent::SlotLockSet {
                slot: *slot,
                locked: true,
            })
        }
        (MachineCommand::UnlockSlot { slot }, AckStatus::Done) => Some(MachineEvent::SlotLockSet {
            slot: *slot,
            locked: false,
        }),
        (MachineCommand::Dispense { order_id, .. }, AckStatus::Rejected)
            if s.holds.contains_key(order_id) =>
        {
            Some(MachineEvent::AppVendFailed {
                order_id: *order_id,
                reason: clip(&format!("dispense_rejected: {detail}")),
            })
        }
        _ => None,
    };
    // A slot removed from the planogram since the command was issued is left alone.
    evs.extend(event.filter(|e| match e {
        MachineEvent::SlotPriceSet { slot, .. } | MachineEvent::SlotLockSet { slot, .. } => {
            s.planogram.contains_key(slot)
        }
        _ => true,
    }));
    evs
}

pub(super) fn decide_issue(
    s: &MachineState,
    command_id: Uuid,
    command: &MachineCommand,
    at: Millis,
) -> Result<Vec<MachineEvent>, Rejection> {
    if s.command(&command_id).is_some() {
        return Ok(vec![]);
    }
    if s.pending.len() >= MAX_PENDING_COMMANDS {
        return reject(
            RejectionCode::Conflict,
            format!("{MAX_PENDING_COMMANDS} commands are already pending"),
        );
    }
    let command = match command {
        MachineCommand::SetPrice { slot, price_minor } => {
            require_slot(s, *slot)?;
            if !(0..=MAX_PRICE_MINOR).contains(price_minor) {
                return reject(
                    RejectionCode::Validation,
                    format!("price_minor must be 0 to {MAX_PRICE_MINOR}"),
                );
            }
            command.clone()
        }
        MachineCommand::LockSlot { slot, reason } => {
            require_slot(s, *slot)?;
            MachineCommand::LockSlot {
                slot: *slot,
                reason: clip(reason),
            }
        }
        MachineCommand::UnlockSlot { slot } => {
            require_slot(s, *slot)?;
            command.clone()
        }
        MachineCommand::Dispense { order_id, slot, .. } => {
            match s.holds.get(order_id) {
                Some(h) if h.slot == *slot => {}
                _ => {
                    return reject(
                        RejectionCode::InvalidTransition,
                        format!("no app hold for order {order_id} on slot {slot}"),
                    )
                }
            }
            command.clone()
        }
        MachineCommand::RequestAudit => command.clone(),
    };
    Ok(vec![MachineEvent::CommandIssued {
        command_id,
        command,
        at,
    }])
}

pub(super) fn decide_reserve(
    s: &MachineState,
    order_id: Uuid,
    slot: u32,
    deadline: Millis,
) -> Result<Vec<MachineEvent>, Rejection> {
    if let Some(h) = s.holds.get(&order_id) {
        return if h.slot == slot {
            Ok(vec![])
        } else {
            reject(
                RejectionCode::Conflict,
                format!("order {order_id} already holds slot {}", h.slot),
            )
        };
    }
    if !s.online {
        return reject(
            RejectionCode::InvalidTransition,
            "machine_offline: the machine is not connected",
        );
    }
    let sl = require_slot(s, slot)?;
    if sl.locked {
        return reject(
            RejectionCode::InvalidTransition,
            format!("slot_locked: slot {slot} is locked"),
        );
    }
    if s.available_units(slot) == 0 {
        return reject(
            RejectionCode::OutOfStock,
            format!("slot {slot} has no units available"),
        );
    }
    Ok(vec![MachineEvent::AppReserved {
        order_id,
        slot,
        deadline,
    }])
}

pub(super) fn decide_tick(
    s: &MachineState,
    now: Millis,
    heartbeat_interval_ms: u64,
    resend_after_ms: u64,
) -> Vec<MachineEvent> {
    let mut evs = vec![];
    for order_id in super::expired_holds(s, now) {
        evs.extend(close_dispense(
            s,
            order_id,
            CommandStatus::Cancelled,
            "vend_timeout",
        ));
        evs.push(MachineEvent::AppTimedOut { order_id });
    }
    let limit = heartbeat_interval_ms
        .max(1)
        .saturating_mul(SILENT_INTERVALS);
    if s.online && now.saturating_sub(s.last_seen) >= limit {
        evs.push(MachineEvent::WentOffline { at: now });
    } else if s.online {
        let closed: Vec<Uuid> = evs
            .iter()
            .filter_map(|e| match e {
                MachineEvent::CommandClosed { command_id, .. } => Some(*command_id),
                _ => None,
            })
            .collect();
        evs.extend(
            super::pending_resends(s, now, resend_after_ms)
                .into_iter()
                .filter(|id| !closed.contains(id))
                .map(|command_id| MachineEvent::CommandResent {
                    command_id,
                    at: now,
                }),
        );
    }
    evs
}
