//! A vending machine: its registration, connectivity, last heartbeat, alarms, planogram,
//! sales counters, the commands sent down to it, and the units held for app purchases.
//!
//! Every message a machine sends carries a per-machine `seq`. A message with
//! `seq <= acked_seq` is a duplicate and produces no events; any other message produces a
//! [`MachineEvent::Received`] that advances `acked_seq`, even when it changes nothing else
//! ([`Message::Skipped`]), so the server can ack cumulatively. Vends are also de-duplicated
//! by `vend_id`, over a window of recent vends ([`MachineState::vend_window`]). Machine messages are never
//! rejected once the machine is registered: a refusal would stall the machine's journal.
//!
//! Times are passed in by the caller. The `at` of a machine message is the time the server
//! received it (the actor's clock), not the machine's clock, so `last_seen` and the
//! offline check use one clock.
//!
//! - [`types`]: limits, state, inputs, events, and the commands sent to the machine.
//! - `decide`: validation and the per-command decision helpers.

mod decide;
pub mod types;

pub use types::*;

use crate::domain::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode, Sku};
use decide::*;
use uuid::Uuid;

/// The vending machine aggregate.
pub struct Machine;

impl Aggregate for Machine {
    const KIND: EntityKind = EntityKind::Machine;
    const INDEXES: &'static [crate::domain::Index] = &[
        crate::domain::Index::Machines,
        crate::domain::Index::LiveMachines,
    ];
    type State = MachineState;
    type Command = MachineInput;
    type Event = MachineEvent;

    fn decide(s: &MachineState, cmd: &MachineInput) -> Result<Vec<MachineEvent>, Rejection> {
        use MachineInput as C;
        if let C::Register {
            name,
            location,
            secret_hash,
            low_stock_threshold,
            at,
        } = cmd
        {
            let (name, location) = validate_info(name, location)?;
            validate_hash(secret_hash)?;
            return match &s.registration {
                None => Ok(vec![MachineEvent::Registered {
                    name,
                    location,
                    secret_hash: secret_hash.clone(),
                    low_stock_threshold: *low_stock_threshold,
                    at: *at,
                }]),
                Some(r)
                    if r.name == name
                        && r.location == location
                        && &r.secret_hash == secret_hash =>
                {
                    Ok(vec![])
                }
                Some(_) => reject(RejectionCode::Conflict, "machine already registered"),
            };
        }
        let reg = registered(s)?;
        // Machine messages: a seq at or below `acked_seq` was applied already.
        let dup = |seq: &u64| *seq <= s.acked_seq;
        Ok(match cmd {
            C::Register { .. } => unreachable!("handled above"),
            C::UpdateInfo { name, location } => {
                let (name, location) = validate_info(name, location)?;
                if reg.name == name && reg.location == location {
                    vec![]
                } else {
                    vec![MachineEvent::InfoUpdated { name, location }]
                }
            }
            C::RotateSecret { secret_hash } => {
                validate_hash(secret_hash)?;
                if &reg.secret_hash == secret_hash {
                    vec![]
                } else {
                    vec![MachineEvent::SecretRotated {
                        secret_hash: secret_hash.clone(),
                    }]
                }
            }
            C::SetPlanogram { slots } => decide_planogram(s, slots)?,
            C::SetLowStockThreshold { threshold } => {
                if *threshold > MAX_CAPACITY {
                    return reject(
                        RejectionCode::Validation,
                        format!("threshold must be at most {MAX_CAPACITY}"),
                    );
                }
                if *threshold == s.low_stock_threshold {
                    vec![]
                } else {
                    vec![MachineEvent::LowStockThresholdSet {
                        threshold: *threshold,
                    }]
                }
            }
            // Every session is counted, so its end can name it.
            C::Connected { at } => vec![MachineEvent::Connected { at: *at }],
            C::Disconnected { at, connection } => {
                if s.online && *connection == s.connection {
                    vec![MachineEvent::Disconnected { at: *at }]
                } else {
                    vec![]
                }
            }
            C::MarkOfflineIfSilent {
                now,
                heartbeat_interval_ms,
            } => {
                if *heartbeat_interval_ms == 0 {
                    return reject(RejectionCode::Validation, "heartbeat interval must be > 0");
                }
                let limit = heartbeat_interval_ms.saturating_mul(SILENT_INTERVALS);
                if s.online && now.saturating_sub(s.last_seen) >= limit {
                    vec![MachineEvent::WentOffline { at: *now }]
                } else {
                    vec![]
                }
            }
            C::Heartbeat { seq, .. }
            | C::Vend { seq, .. }
            | C::Restock { seq, .. }
            | C::Alarm { seq, .. }
            | C::CommandAck { seq, .. }
                if dup(seq) =>
            {
                vec![]
            }
            C::Heartbeat {
                seq,
                at,
                state,
                temperature_dc,
                door_open,
            } => vec![received(
                *seq,
                *at,
                Message::Heartbeat {
                    state: *state,
                    temperature_dc: *temperature_dc,
                    door_open: *door_open,
                },
            )],
            C::Vend {
                seq,
                at,
                vend_id,
                slot,
                sku,
                price_minor,
                method,
                order_id,
                success,
                failure_reason,
            } => decide_vend(
                s,
                *seq,
                *at,
                *vend_id,
                *slot,
                sku,
                *price_minor,
                *method,
                *order_id,
                *success,
                failure_reason,
            ),
            C::Restock {
                seq,
                at,
                slot,
                level_after,
                operator_id,
            } => match s.planogram.get(slot) {
                None => vec![skipped(*seq, *at, SkipReason::UnknownSlot)],
                Some(sl) => {
                    let level_after = (*level_after).min(sl.capacity);
                    let mut evs = vec![received(
                        *seq,
                        *at,
                        Message::Restock {
                            slot: *slot,
                            level_after,
                            operator_id: operator_id.as_deref().map(clip),
                        },
                    )];
                    evs.extend(low_stock(s, *slot, level_after));
                    evs
                }
            },
            C::Alarm {
                seq,
                at,
                code,
                severity,
                cleared,
            } => {
                let code = clip(code);
                if !cleared && !s.alarms.contains_key(&code) && s.alarms.len() >= MAX_OPEN_ALARMS {
                    vec![skipped(*seq, *at, SkipReason::TooManyAlarms)]
                } else {
                    vec![received(
                        *seq,
                        *at,
                        Message::Alarm {
                            code,
                            severity: *severity,
                            cleared: *cleared,
                        },
                    )]
                }
            }
            C::CommandAck {
                seq,
                at,
                command_id,
                status,
                detail,
            } => decide_ack(s, *seq, *at, *command_id, *status, detail),
            C::IssueCommand {
                command_id,
                command,
                at,
            } => decide_issue(s, *command_id, command, *at)?,
            C::CommandResent { command_id, at } => match s.pending.get(command_id) {
                Some(_) => vec![MachineEvent::CommandResent {
                    command_id: *command_id,
                    at: *at,
                }],
                None => vec![],
            },
            C::ReserveForApp {
                order_id,
                slot,
                deadline,
            } => decide_reserve(s, *order_id, *slot, *deadline)?,
            C::Tick {
                now,
                heartbeat_interval_ms,
                resend_after_ms,
                recent_vends_window,
            } => {
                let mut evs = decide_tick(s, *now, *heartbeat_interval_ms, *resend_after_ms);
                let window = (*recent_vends_window).clamp(1, MAX_RECENT_VENDS as u32);
                if window != s.vend_window {
                    evs.push(MachineEvent::VendWindowSet { window });
                }
                evs
            }
            C::ResendPending { at } => s
                .pending
                .iter()
                .filter(|(_, r)| matches!(r.status, CommandStatus::Sent | CommandStatus::Busy))
                .map(|(id, _)| MachineEvent::CommandResent {
                    command_id: *id,
                    at: *at,
                })
                .collect(),
            C::AppNotified { order_id } => {
                if s.notices.contains_key(order_id) {
                    vec![MachineEvent::AppNotified {
                        order_id: *order_id,
                    }]
                } else {
                    vec![]
                }
            }
            C::ReleaseApp { order_id, reason } => {
                if s.holds.contains_key(order_id) {
                    let mut evs = close_dispense(s, *order_id, CommandStatus::Cancelled, reason);
                    evs.push(MachineEvent::AppReleased {
                        order_id: *order_id,
                        reason: clip(reason),
                    });
                    evs
                } else {
                    vec![]
                }
            }
        })
    }

    fn apply(s: &mut MachineState, event: &MachineEvent) {
        use MachineEvent as E;
        match event {
            E::Registered {
                name,
                location,
                secret_hash,
                low_stock_threshold,
                at,
            } => {
                s.registration = Some(Registration {
                    name: name.clone(),
                    location: location.clone(),
                    secret_hash: secret_hash.clone(),
                    registered_at: *at,
                });
                s.low_stock_threshold = *low_stock_threshold;
            }
            E::InfoUpdated { name, location } => {
                if let Some(r) = s.registration.as_mut() {
                    r.name = name.clone();
                    r.location = location.clone();
                }
            }
            E::SecretRotated { secret_hash } => {
                if let Some(r) = s.registration.as_mut() {
                    r.secret_hash = secret_hash.clone();
                }
            }
            E::PlanogramSet { slots } => s.planogram = slots.clone(),
            E::LowStockThresholdSet { threshold } => s.low_stock_threshold = *threshold,
            E::Connected { at } => {
                s.online = true;
                s.connection += 1;
                s.last_seen = s.last_seen.max(*at);
            }
            E::Disconnected { at } => {
                s.online = false;
                s.last_seen = s.last_seen.max(*at);
            }
            E::WentOffline { .. } => s.online = false,
            E::Received { seq, at, message } => {
                s.acked_seq = s.acked_seq.max(*seq);
                s.last_seen = s.last_seen.max(*at);
                s.online = true;
                apply_message(s, *at, message);
            }
            E::LowStock { .. } => {}
            E::SlotPriceSet { slot, price_minor } => {
                if let Some(sl) = s.planogram.get_mut(slot) {
                    sl.price_minor = *price_minor;
                }
            }
            E::SlotLockSet { slot, locked } => {
                if let Some(sl) = s.planogram.get_mut(slot) {
                    sl.locked = *locked;
                }
            }
            E::CommandIssued {
                command_id,
                command,
                at,
            } => {
                s.pending.insert(
                    *command_id,
                    CommandRecord {
                        command: command.clone(),
                        issued_at: *at,
                        sent_at: *at,
                        attempts: 1,
                        status: CommandStatus::Sent,
                        detail: None,
                    },
                );
            }
            E::CommandResent { command_id, at } => {
                if let Some(r) = s.pending.get_mut(command_id) {
                    r.sent_at = *at;
                    r.attempts = r.attempts.saturating_add(1);
                    if r.status == CommandStatus::Busy {
                        r.status = CommandStatus::Sent;
                    }
                }
            }
            E::CommandClosed {
                command_id,
                status,
                detail,
            } => set_command_status(s, *command_id, *status, detail),
            E::AppReserved {
                order_id,
                slot,
                deadline,
            } => {
                s.holds.insert(
                    *order_id,
                    AppHold {
                        slot: *slot,
                        deadline: *deadline,
                    },
                );
            }
            E::AppVendSucceeded { order_id, vend_id } => {
                s.holds.remove(order_id);
                s.notices
                    .insert(*order_id, AppOutcome::Vended { vend_id: *vend_id });
            }
            E::AppVendFailed { order_id, reason } => {
                s.holds.remove(order_id);
                s.notices.insert(
                    *order_id,
                    AppOutcome::Failed {
                        reason: reason.clone(),
                    },
                );
            }
            E::AppReleased { order_id, .. } => {
                s.holds.remove(order_id);
            }
            E::AppTimedOut { order_id } => {
                s.holds.remove(order_id);
                s.notices.insert(*order_id, AppOutcome::TimedOut);
            }
            E::AppNotified { order_id } => {
                s.notices.remove(order_id);
            }
            E::VendWindowSet { window } => {
                s.vend_window = *window;
                s.recent_vends.trim(*window as usize);
            }
        }
    }

    fn can_passivate(s: &MachineState) -> bool {
        !s.online && s.pending.is_empty() && s.holds.is_empty() && s.notices.is_empty()
    }
}

fn set_command_status(s: &mut MachineState, id: Uuid, status: CommandStatus, detail: &str) {
    let Some(r) = s.pending.get_mut(&id) else {
        return;
    };
    r.status = status;
    r.detail = (!detail.is_empty()).then(|| detail.to_owned());
    if status.is_final() {
        if let Some(r) = s.pending.remove(&id) {
            s.recent_commands.push_back((id, r));
            while s.recent_commands.len() > MAX_RECENT_COMMANDS {
                s.recent_commands.pop_front();
            }
        }
    }
}

fn apply_message(s: &mut MachineState, at: Millis, message: &Message) {
    match message {
        Message::Skipped { .. } => {}
        Message::Heartbeat {
            state,
            temperature_dc,
            door_open,
        } => {
            s.heartbeat = *state;
            s.temperature_dc = *temperature_dc;
            s.door_open = *door_open;
        }
        Message::Vend {
            vend_id,
            slot,
            price_minor,
            success,
            ..
        } => {
            s.recent_vends.insert(*vend_id, s.vend_window as usize);
            if !success {
                s.sales.failed_vends += 1;
                return;
            }
            s.sales.units += 1;
            s.sales.value_minor = s.sales.value_minor.saturating_add(*price_minor);
            if let Some(sl) = s.planogram.get_mut(slot) {
                sl.level = sl.level.saturating_sub(1);
                *s.sales.per_slot.entry(*slot).or_default() += 1;
                *s.sales.per_sku.entry(sl.sku.clone()).or_default() += 1;
            }
        }
        Message::Restock {
            slot, level_after, ..
        } => {
            if let Some(sl) = s.planogram.get_mut(slot) {
                sl.level = (*level_after).min(sl.capacity);
            }
        }
        Message::Alarm {
            code,
            severity,
            cleared,
        } => {
            if *cleared {
                s.alarms.remove(code);
            } else {
                let raised_at = s.alarms.get(code).map_or(at, |a| a.raised_at);
                s.alarms.insert(
                    code.clone(),
                    OpenAlarm {
                        severity: *severity,
                        raised_at,
                    },
                );
            }
        }
        Message::CommandAck {
            command_id,
            status,
            detail,
        } => set_command_status(s, *command_id, (*status).into(), detail),
    }
}

/// A machine id: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn valid_machine_id(s: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        reject(
            RejectionCode::Validation,
            "machine id must be 1 to 64 characters of [A-Za-z0-9._-]",
        )
    }
}

/// Pending commands that are due for a resend: sent (or answered `Busy`) at least
/// `timeout_ms` ago and not acked since. `Accepted` commands are not re-sent.
pub fn pending_resends(s: &MachineState, now: Millis, timeout_ms: u64) -> Vec<Uuid> {
    s.pending
        .iter()
        .filter(|(_, r)| matches!(r.status, CommandStatus::Sent | CommandStatus::Busy))
        .filter(|(_, r)| now.saturating_sub(r.sent_at) >= timeout_ms)
        .map(|(id, _)| *id)
        .collect()
}

/// App holds whose deadline has passed (`deadline <= now`).
pub fn expired_holds(s: &MachineState, now: Millis) -> Vec<Uuid> {
    s.holds
        .iter()
        .filter(|(_, h)| h.deadline <= now)
        .map(|(id, _)| *id)
        .collect()
}

/// The earliest app-hold deadline, for the actor's timer.
pub fn next_hold_deadline(s: &MachineState) -> Option<Millis> {
    s.holds.values().map(|h| h.deadline).min()
}

/// When [`MachineInput::Tick`] next has something to do: the earliest hold deadline, and
/// while online the silence limit and the earliest command resend.
pub fn next_tick(
    s: &MachineState,
    heartbeat_interval_ms: u64,
    resend_after_ms: u64,
) -> Option<Millis> {
    let silent = s.online.then(|| {
        s.last_seen
            .saturating_add(heartbeat_interval_ms.saturating_mul(SILENT_INTERVALS))
    });
    let resend = if s.online {
        s.pending
            .values()
            .filter(|r| matches!(r.status, CommandStatus::Sent | CommandStatus::Busy))
            .map(|r| r.sent_at.saturating_add(resend_after_ms))
            .min()
    } else {
        None
    };
    [next_hold_deadline(s), silent, resend]
        .into_iter()
        .flatten()
        .min()
}

/// For shoppers: each slot's sku, price, and whether a unit can be bought (not locked and
/// some level not held by app purchases). Connectivity is not considered here.
pub fn slot_availability(s: &MachineState) -> Vec<(u32, Sku, i64, bool)> {
    s.planogram
        .iter()
        .map(|(n, sl)| {
            (
                *n,
                sl.sku.clone(),
                sl.price_minor,
                !sl.locked && s.available_units(*n) > 0,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
