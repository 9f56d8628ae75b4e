//! Unit and property tests for the vending machine aggregate.

use super::*;
use proptest::prelude::*;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn uid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

/// Decides and applies; returns the events.
fn run(s: &mut MachineState, c: MachineInput) -> Result<Vec<MachineEvent>, Rejection> {
    let evs = Machine::decide(s, &c)?;
    for e in &evs {
        Machine::apply(s, e);
    }
    Ok(evs)
}

fn ok(s: &mut MachineState, c: MachineInput) -> Vec<MachineEvent> {
    run(s, c).expect("command accepted")
}

fn register() -> MachineInput {
    MachineInput::Register {
        name: "Lobby".into(),
        location: "HQ".into(),
        secret_hash: "h1".into(),
        low_stock_threshold: DEFAULT_LOW_STOCK_THRESHOLD,
        at: 1,
    }
}

fn spec(slot: u32, level: u32) -> SlotSpec {
    SlotSpec {
        slot,
        sku: sku(&format!("SKU-{slot}")),
        price_minor: 150,
        capacity: 10,
        level,
    }
}

/// A registered, connected machine with slots 0..3 at level 5, capacity 10.
fn machine() -> MachineState {
    let mut s = MachineState::default();
    ok(&mut s, register());
    ok(
        &mut s,
        MachineInput::SetPlanogram {
            slots: (0..3).map(|i| spec(i, 5)).collect(),
        },
    );
    ok(&mut s, MachineInput::Connected { at: 10 });
    s
}

fn vend(seq: u64, vend_id: u128, slot: u32, success: bool) -> MachineInput {
    MachineInput::Vend {
        seq,
        at: 100 + seq,
        vend_id: uid(vend_id),
        slot,
        sku: format!("SKU-{slot}"),
        price_minor: 150,
        method: VendMethod::Cash,
        order_id: None,
        success,
        failure_reason: (!success).then(|| "jam".to_owned()),
    }
}

fn app_vend(seq: u64, vend_id: u128, slot: u32, order: u128, success: bool) -> MachineInput {
    MachineInput::Vend {
        seq,
        at: 100 + seq,
        vend_id: uid(vend_id),
        slot,
        sku: format!("SKU-{slot}"),
        price_minor: 150,
        method: VendMethod::App,
        order_id: Some(uid(order)),
        success,
        failure_reason: (!success).then(|| "jam".to_owned()),
    }
}

fn restock(seq: u64, slot: u32, level_after: u32) -> MachineInput {
    MachineInput::Restock {
        seq,
        at: 100 + seq,
        slot,
        level_after,
        operator_id: Some("op".into()),
    }
}

fn ack(seq: u64, command_id: u128, status: AckStatus) -> MachineInput {
    MachineInput::CommandAck {
        seq,
        at: 100 + seq,
        command_id: uid(command_id),
        status,
        detail: String::new(),
    }
}

fn issue(command_id: u128, command: MachineCommand, at: Millis) -> MachineInput {
    MachineInput::IssueCommand {
        command_id: uid(command_id),
        command,
        at,
    }
}

fn reserve(order: u128, slot: u32, deadline: Millis) -> MachineInput {
    MachineInput::ReserveForApp {
        order_id: uid(order),
        slot,
        deadline,
    }
}

fn low_stock_count(evs: &[MachineEvent]) -> usize {
    evs.iter()
        .filter(|e| matches!(e, MachineEvent::LowStock { .. }))
        .count()
}

#[test]
fn register_is_idempotent_and_required() {
    let mut s = MachineState::default();
    let err = Machine::decide(&s, &MachineInput::Connected { at: 1 }).unwrap_err();
    assert_eq!(err.code, RejectionCode::NotFound);
    assert_eq!(
        Machine::decide(&s, &vend(1, 1, 0, true)).unwrap_err().code,
        RejectionCode::NotFound
    );
    assert_eq!(ok(&mut s, register()).len(), 1);
    assert!(ok(&mut s, register()).is_empty());
    let other = MachineInput::Register {
        name: "Other".into(),
        location: "HQ".into(),
        secret_hash: "h1".into(),
        low_stock_threshold: 2,
        at: 5,
    };
    assert_eq!(
        run(&mut s, other).unwrap_err().code,
        RejectionCode::Conflict
    );
    assert_eq!(s.low_stock_threshold, 2);
    ok(
        &mut s,
        MachineInput::RotateSecret {
            secret_hash: "h2".into(),
        },
    );
    assert_eq!(s.registration.as_ref().unwrap().secret_hash, "h2");
    assert!(ok(
        &mut s,
        MachineInput::RotateSecret {
            secret_hash: "h2".into()
        }
    )
    .is_empty());
    ok(
        &mut s,
        MachineInput::UpdateInfo {
            name: " Hall ".into(),
            location: "B2".into(),
        },
    );
    assert_eq!(s.registration.as_ref().unwrap().name, "Hall");
    let bad = MachineInput::UpdateInfo {
        name: "  ".into(),
        location: String::new(),
    };
    assert_eq!(
        run(&mut s, bad).unwrap_err().code,
        RejectionCode::Validation
    );
}

#[test]
fn planogram_is_validated_and_keeps_locks() {
    let mut s = machine();
    let mut bad = spec(0, 11);
    assert_eq!(
        run(
            &mut s,
            MachineInput::SetPlanogram {
                slots: vec![bad.clone()]
            }
        )
        .unwrap_err()
        .code,
        RejectionCode::Validation
    );
    bad.level = 1;
    bad.price_minor = -1;
    assert!(run(&mut s, MachineInput::SetPlanogram { slots: vec![bad] }).is_err());
    let twice = vec![spec(0, 1), spec(0, 2)];
    assert!(run(&mut s, MachineInput::SetPlanogram { slots: twice }).is_err());
    ok(
        &mut s,
        issue(
            1,
            MachineCommand::LockSlot {
                slot: 1,
                reason: "broken".into(),
            },
            20,
        ),
    );
    ok(&mut s, ack(1, 1, AckStatus::Done));
    assert!(s.planogram[&1].locked);
    ok(
        &mut s,
        MachineInput::SetPlanogram {
            slots: vec![spec(1, 9)],
        },
    );
    assert_eq!(s.planogram.len(), 1);
    assert!(s.planogram[&1].locked);
    assert_eq!(s.planogram[&1].level, 9);
    assert!(ok(
        &mut s,
        MachineInput::SetPlanogram {
            slots: vec![spec(1, 9)]
        }
    )
    .is_empty());
    // A slot held for an app order cannot be removed.
    ok(
        &mut s,
        MachineInput::SetPlanogram {
            slots: vec![spec(1, 9), spec(2, 3)],
        },
    );
    ok(&mut s, reserve(7, 2, 1_000));
    let err = run(
        &mut s,
        MachineInput::SetPlanogram {
            slots: vec![spec(1, 9)],
        },
    )
    .unwrap_err();
    assert_eq!(err.code, RejectionCode::InvalidTransition);
}

#[test]
fn duplicate_seq_is_ignored_and_every_new_seq_advances() {
    let mut s = machine();
    ok(&mut s, vend(1, 1, 0, true));
    assert_eq!(s.acked_seq, 1);
    assert!(ok(&mut s, vend(1, 1, 0, true)).is_empty());
    assert!(
        ok(&mut s, vend(1, 99, 0, true)).is_empty(),
        "same seq, other vend"
    );
    assert_eq!(s.sales.units, 1);
    // Unknown slot on restock, unknown command on ack: only the seq advances.
    let evs = ok(&mut s, restock(2, 42, 3));
    assert!(matches!(
        evs[..],
        [MachineEvent::Received {
            seq: 2,
            message: Message::Skipped {
                reason: SkipReason::UnknownSlot
            },
            ..
        }]
    ));
    ok(&mut s, ack(5, 77, AckStatus::Done));
    assert_eq!(s.acked_seq, 5);
    // Heartbeat records state and temperature.
    ok(
        &mut s,
        MachineInput::Heartbeat {
            seq: 6,
            at: 500,
            state: HeartbeatState::Service,
            temperature_dc: 42,
            door_open: true,
        },
    );
    assert_eq!(
        (s.heartbeat, s.temperature_dc, s.door_open),
        (HeartbeatState::Service, 42, true)
    );
    assert_eq!(s.last_seen, 500);
    assert!(
        ok(&mut s, restock(3, 0, 10)).is_empty(),
        "seq below acked_seq"
    );
    assert_eq!(s.planogram[&0].level, 4);
}

#[test]
fn vends_count_once_per_vend_id() {
    let mut s = machine();
    ok(&mut s, vend(1, 1, 0, true));
    ok(&mut s, vend(2, 2, 0, true));
    assert_eq!(s.planogram[&0].level, 3);
    // The same vend re-sent under a new seq: only the seq advances.
    let evs = ok(&mut s, vend(3, 2, 0, true));
    assert!(matches!(
        evs[..],
        [MachineEvent::Received {
            seq: 3,
            message: Message::Skipped {
                reason: SkipReason::DuplicateVend
            },
            ..
        }]
    ));
    assert_eq!(s.acked_seq, 3);
    assert_eq!((s.sales.units, s.sales.value_minor), (2, 300));
    assert_eq!(s.sales.per_slot[&0], 2);
    let slot_sku = s.planogram[&0].sku.clone();
    assert_eq!(
        s.sales.per_sku.get(&slot_sku),
        Some(&2),
        "counted under the slot's SKU"
    );
    assert_eq!(s.planogram[&0].level, 3);
}

#[test]
fn failed_vends_never_decrement_and_empty_slots_stay_at_zero() {
    let mut s = machine();
    ok(&mut s, vend(1, 1, 0, false));
    assert_eq!(s.planogram[&0].level, 5);
    assert_eq!((s.sales.units, s.sales.failed_vends), (0, 1));
    ok(&mut s, restock(2, 0, 0));
    ok(&mut s, vend(3, 3, 0, true));
    assert_eq!(s.planogram[&0].level, 0);
    assert_eq!(s.sales.units, 1);
    // A vend from a slot missing from the planogram still counts as a sale.
    ok(&mut s, vend(4, 4, 9, true));
    assert_eq!(s.sales.units, 2);
    assert!(!s.sales.per_slot.contains_key(&9));
}

#[test]
fn restock_clamps_to_capacity() {
    let mut s = machine();
    ok(&mut s, restock(1, 0, 500));
    assert_eq!(s.planogram[&0].level, 10);
}

#[test]
fn low_stock_fires_once_per_downward_crossing() {
    let mut s = machine();
    let mut fired = vec![];
    for seq in 1..=4 {
        fired.push(low_stock_count(&ok(
            &mut s,
            vend(seq, u128::from(seq), 0, true),
        )));
    }
    // 5 -> 4 -> 3 -> 2 (fires) -> 1
    assert_eq!(fired, vec![0, 0, 1, 0]);
    assert_eq!(s.planogram[&0].level, 1);
    assert_eq!(s.low_stock_slots(), vec![0]);
    assert_eq!(low_stock_count(&ok(&mut s, restock(5, 0, 8))), 0);
    // A restock that lowers the level across the threshold is a crossing too.
    let evs = ok(&mut s, restock(6, 0, 2));
    assert!(evs.contains(&MachineEvent::LowStock {
        slot: 0,
        sku: sku("SKU-0"),
        level: 2
    }));
    assert_eq!(low_stock_count(&ok(&mut s, vend(7, 7, 0, true))), 0);
    ok(&mut s, MachineInput::SetLowStockThreshold { threshold: 0 });
    assert_eq!(
        low_stock_count(&ok(&mut s, vend(8, 8, 0, true))),
        1,
        "1 -> 0 crosses 0"
    );
}

#[test]
fn reserve_for_app_checks_online_lock_and_availability() {
    let mut s = machine();
    ok(&mut s, restock(1, 0, 1));
    ok(&mut s, reserve(1, 0, 1_000));
    assert!(ok(&mut s, reserve(1, 0, 1_000)).is_empty(), "idempotent");
    assert_eq!(
        run(&mut s, reserve(1, 1, 1_000)).unwrap_err().code,
        RejectionCode::Conflict
    );
    assert_eq!(
        run(&mut s, reserve(2, 0, 1_000)).unwrap_err().code,
        RejectionCode::OutOfStock
    );
    assert_eq!(
        run(&mut s, reserve(2, 9, 1_000)).unwrap_err().code,
        RejectionCode::NotFound
    );
    assert_eq!(slot_availability(&s)[0], (0, sku("SKU-0"), 150, false));
    ok(
        &mut s,
        issue(
            5,
            MachineCommand::LockSlot {
                slot: 1,
                reason: "x".into(),
            },
            20,
        ),
    );
    ok(&mut s, ack(2, 5, AckStatus::Done));
    let err = run(&mut s, reserve(3, 1, 1_000)).unwrap_err();
    assert_eq!(err.code, RejectionCode::InvalidTransition);
    assert!(!slot_availability(&s)[1].3);
    ok(&mut s, issue(6, MachineCommand::UnlockSlot { slot: 1 }, 20));
    ok(&mut s, ack(3, 6, AckStatus::Done));
    ok(&mut s, reserve(3, 1, 1_000));
    let connection = s.connection;
    ok(&mut s, MachineInput::Disconnected { at: 50, connection });
    let err = run(&mut s, reserve(4, 2, 1_000)).unwrap_err();
    assert!(err.message.starts_with("machine_offline"), "{err:?}");
    assert!(!Machine::can_passivate(&s), "holds keep it active");
}

#[test]
fn app_vend_success_completes_the_hold_and_its_dispense() {
    let mut s = machine();
    ok(&mut s, reserve(1, 0, 1_000));
    let dispense = MachineCommand::Dispense {
        order_id: uid(1),
        slot: 0,
        deadline_unix_ms: 1_000,
    };
    ok(&mut s, issue(10, dispense, 20));
    ok(&mut s, ack(1, 10, AckStatus::Accepted));
    assert!(
        pending_resends(&s, 10_000, 100).is_empty(),
        "accepted commands are not re-sent"
    );
    let evs = ok(&mut s, app_vend(2, 50, 0, 1, true));
    assert!(evs.contains(&MachineEvent::AppVendSucceeded {
        order_id: uid(1),
        vend_id: uid(50)
    }));
    assert!(s.holds.is_empty());
    assert!(s.pending.is_empty());
    assert_eq!(s.command(&uid(10)).unwrap().status, CommandStatus::Done);
    assert_eq!((s.planogram[&0].level, s.sales.units), (4, 1));
    // Re-delivery changes nothing.
    assert!(ok(&mut s, app_vend(2, 50, 0, 1, true)).is_empty());
}

#[test]
fn app_vend_failure_and_rejected_dispense_release_the_unit() {
    let mut s = machine();
    ok(&mut s, reserve(1, 0, 1_000));
    ok(
        &mut s,
        issue(
            10,
            MachineCommand::Dispense {
                order_id: uid(1),
                slot: 0,
                deadline_unix_ms: 1_000,
            },
            20,
        ),
    );
    let evs = ok(&mut s, app_vend(1, 50, 0, 1, false));
    assert!(evs.contains(&MachineEvent::AppVendFailed {
        order_id: uid(1),
        reason: "jam".into()
    }));
    assert_eq!((s.planogram[&0].level, s.sales.units), (5, 0));
    assert!(s.holds.is_empty() && s.pending.is_empty());

    ok(&mut s, reserve(2, 0, 1_000));
    ok(
        &mut s,
        issue(
            11,
            MachineCommand::Dispense {
                order_id: uid(2),
                slot: 0,
                deadline_unix_ms: 1_000,
            },
            20,
        ),
    );
    let evs = ok(&mut s, ack(2, 11, AckStatus::Rejected));
    assert!(evs
        .iter()
        .any(|e| matches!(e, MachineEvent::AppVendFailed { order_id, .. } if *order_id == uid(2))));
    assert!(s.holds.is_empty() && s.pending.is_empty());
    // A dispense needs a matching hold.
    let err = run(
        &mut s,
        issue(
            12,
            MachineCommand::Dispense {
                order_id: uid(3),
                slot: 0,
                deadline_unix_ms: 1,
            },
            20,
        ),
    )
    .unwrap_err();
    assert_eq!(err.code, RejectionCode::InvalidTransition);
}

#[test]
fn expired_holds_are_released_and_their_dispense_cancelled() {
    let mut s = machine();
    ok(&mut s, reserve(1, 0, 500));
    ok(&mut s, reserve(2, 1, 900));
    ok(
        &mut s,
        issue(
            10,
            MachineCommand::Dispense {
                order_id: uid(1),
                slot: 0,
                deadline_unix_ms: 500,
            },
            20,
        ),
    );
    assert_eq!(next_hold_deadline(&s), Some(500));
    assert_eq!(expired_holds(&s, 499), Vec::<Uuid>::new());
    assert_eq!(expired_holds(&s, 500), vec![uid(1)]);
    ok(
        &mut s,
        MachineInput::ReleaseApp {
            order_id: uid(1),
            reason: "vend_timeout".into(),
        },
    );
    assert_eq!(
        s.command(&uid(10)).unwrap().status,
        CommandStatus::Cancelled
    );
    assert!(pending_resends(&s, 10_000, 1).is_empty());
    assert!(ok(
        &mut s,
        MachineInput::ReleaseApp {
            order_id: uid(1),
            reason: "x".into()
        }
    )
    .is_empty());
    assert_eq!(s.available_units(0), 5);
    // A late vend for the released order is still a sale.
    ok(&mut s, app_vend(1, 9, 0, 1, true));
    assert_eq!(s.sales.units, 1);
}

#[test]
fn commands_are_resent_until_acked_and_done_updates_state() {
    let mut s = machine();
    ok(
        &mut s,
        issue(
            1,
            MachineCommand::SetPrice {
                slot: 0,
                price_minor: 275,
            },
            100,
        ),
    );
    assert!(
        ok(&mut s, issue(1, MachineCommand::RequestAudit, 100)).is_empty(),
        "same id"
    );
    ok(&mut s, issue(2, MachineCommand::RequestAudit, 150));
    let err = run(
        &mut s,
        issue(
            3,
            MachineCommand::SetPrice {
                slot: 9,
                price_minor: 1,
            },
            100,
        ),
    )
    .unwrap_err();
    assert_eq!(err.code, RejectionCode::NotFound);
    assert_eq!(pending_resends(&s, 199, 100), Vec::<Uuid>::new());
    assert_eq!(pending_resends(&s, 200, 100), vec![uid(1)]);
    ok(
        &mut s,
        MachineInput::CommandResent {
            command_id: uid(1),
            at: 200,
        },
    );
    assert_eq!(s.pending[&uid(1)].attempts, 2);
    assert_eq!(pending_resends(&s, 260, 100), vec![uid(2)]);
    ok(&mut s, ack(1, 1, AckStatus::Busy));
    assert_eq!(pending_resends(&s, 300, 100), vec![uid(1), uid(2)]);
    assert_eq!(s.planogram[&0].price_minor, 150);
    ok(&mut s, ack(2, 1, AckStatus::Done));
    assert_eq!(s.planogram[&0].price_minor, 275);
    assert_eq!(s.command(&uid(1)).unwrap().status, CommandStatus::Done);
    ok(&mut s, ack(3, 2, AckStatus::Rejected));
    assert!(s.pending.is_empty());
    assert!(ok(
        &mut s,
        MachineInput::CommandResent {
            command_id: uid(1),
            at: 400
        }
    )
    .is_empty());
}

#[test]
fn silent_machines_go_offline_after_three_intervals() {
    let mut s = machine();
    ok(
        &mut s,
        MachineInput::Heartbeat {
            seq: 1,
            at: 1_000,
            state: HeartbeatState::Idle,
            temperature_dc: 40,
            door_open: false,
        },
    );
    let check = |now| MachineInput::MarkOfflineIfSilent {
        now,
        heartbeat_interval_ms: 100,
    };
    assert!(ok(&mut s, check(1_299)).is_empty());
    assert!(!Machine::can_passivate(&s));
    assert_eq!(
        ok(&mut s, check(1_300)),
        vec![MachineEvent::WentOffline { at: 1_300 }]
    );
    assert!(!s.online);
    assert!(Machine::can_passivate(&s));
    assert!(ok(&mut s, check(2_000)).is_empty());
    // A message on the stream brings it back.
    ok(
        &mut s,
        MachineInput::Heartbeat {
            seq: 2,
            at: 2_100,
            state: HeartbeatState::Idle,
            temperature_dc: 40,
            door_open: false,
        },
    );
    assert!(s.online);
    // The end of an older session leaves a newer one online.
    let connection = s.connection;
    ok(&mut s, MachineInput::Connected { at: 2_150 });
    ok(
        &mut s,
        MachineInput::Disconnected {
            at: 2_160,
            connection,
        },
    );
    assert!(s.online);
    ok(
        &mut s,
        MachineInput::Disconnected {
            at: 2_200,
            connection: connection + 1,
        },
    );
    assert!(!s.online);
    ok(&mut s, issue(1, MachineCommand::RequestAudit, 2_300));
    assert!(
        !Machine::can_passivate(&s),
        "pending commands keep it active"
    );
}

#[test]
fn alarms_open_and_clear() {
    let mut s = machine();
    let alarm = |seq, code: &str, cleared| MachineInput::Alarm {
        seq,
        at: seq * 10,
        code: code.into(),
        severity: AlarmSeverity::Critical,
        cleared,
    };
    ok(&mut s, alarm(1, "door", false));
    ok(&mut s, alarm(2, "temp", false));
    ok(&mut s, alarm(3, "door", false));
    assert_eq!(s.alarms["door"].raised_at, 10);
    ok(&mut s, alarm(4, "door", true));
    assert_eq!(s.alarms.keys().collect::<Vec<_>>(), vec!["temp"]);
}

#[test]
fn state_and_events_round_trip_through_the_store_codec() {
    use crate::store::codec::{decode, encode};
    let mut s = machine();
    let mut log = vec![];
    log.extend(ok(&mut s, reserve(1, 0, 500)));
    log.extend(ok(
        &mut s,
        issue(
            2,
            MachineCommand::LockSlot {
                slot: 1,
                reason: "r".into(),
            },
            5,
        ),
    ));
    log.extend(ok(&mut s, app_vend(1, 3, 0, 1, true)));
    log.extend(ok(
        &mut s,
        MachineInput::Alarm {
            seq: 2,
            at: 3,
            code: "c".into(),
            severity: AlarmSeverity::Info,
            cleared: false,
        },
    ));
    log.extend(ok(&mut s, restock(3, 2, 1)));
    log.extend(ok(&mut s, ack(4, 2, AckStatus::Done)));
    let back: MachineState = decode(&encode(&s)).unwrap();
    assert_eq!(back, s);
    for e in &log {
        let back: MachineEvent = decode(&encode(e)).unwrap();
        assert_eq!(&back, e);
    }
}

#[test]
fn recent_vends_are_bounded() {
    let mut r = RecentVends::default();
    for i in 0..(MAX_RECENT_VENDS as u128 + 5) {
        r.insert(uid(i), usize::MAX);
    }
    assert_eq!(
        r.len(),
        MAX_RECENT_VENDS,
        "never more than the hard ceiling"
    );
    assert!(!r.contains(&uid(4)) && r.contains(&uid(5)));
    r.trim(3);
    assert_eq!(r.len(), 3);
}

#[test]
fn the_timer_applies_the_configured_vend_window() {
    let mut s = machine();
    assert_eq!(s.vend_window as usize, DEFAULT_RECENT_VENDS);
    for i in 1..=6 {
        ok(&mut s, restock(i, 0, 10));
    }
    for (seq, id) in (7..).zip(0..6u128) {
        ok(&mut s, vend(seq, 500 + id, 0, true));
    }
    assert_eq!(s.recent_vends.len(), 6);
    let tick = |window| MachineInput::Tick {
        now: 200,
        heartbeat_interval_ms: 1000,
        resend_after_ms: 100,
        recent_vends_window: window,
    };
    let evs = ok(&mut s, tick(3));
    assert_eq!(evs, vec![MachineEvent::VendWindowSet { window: 3 }]);
    assert_eq!((s.vend_window, s.recent_vends.len()), (3, 3));
    assert!(ok(&mut s, tick(3)).is_empty(), "set once");
    // A recent vend re-sent under a new seq is dropped; one older than the window is not.
    let units = s.sales.units;
    ok(&mut s, vend(20, 505, 0, true));
    assert_eq!(s.sales.units, units, "vend 505 is within the window");
    ok(&mut s, vend(21, 500, 0, true));
    assert_eq!(s.sales.units, units + 1, "vend 500 was forgotten");
    assert_eq!(s.recent_vends.len(), 3, "the window holds after more vends");
    // Out-of-range windows are clamped.
    ok(&mut s, tick(0));
    assert_eq!(s.vend_window, 1);
    ok(&mut s, tick(u32::MAX));
    assert_eq!(s.vend_window as usize, MAX_RECENT_VENDS);
}

#[path = "props.rs"]
mod props;

#[test]
fn tick_times_out_holds_marks_silent_machines_offline_and_resends() {
    let mut s = machine();
    ok(&mut s, reserve(7, 0, 500));
    let dispense = MachineCommand::Dispense {
        order_id: uid(7),
        slot: 0,
        deadline_unix_ms: 500,
    };
    ok(&mut s, issue(70, dispense, 20));
    ok(&mut s, issue(71, MachineCommand::RequestAudit, 20));
    ok(
        &mut s,
        MachineInput::Heartbeat {
            seq: 1,
            at: 400,
            state: HeartbeatState::Idle,
            temperature_dc: 40,
            door_open: false,
        },
    );
    // Timer due at the earliest of: hold deadline 500, silence 400 + 3*1000, resends 20 + 100.
    assert_eq!(next_tick(&s, 1000, 100), Some(120));
    let tick = |now| MachineInput::Tick {
        now,
        heartbeat_interval_ms: 1000,
        resend_after_ms: 100,
        recent_vends_window: DEFAULT_RECENT_VENDS as u32,
    };
    let evs = ok(&mut s, tick(120));
    let resent: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e, MachineEvent::CommandResent { .. }))
        .collect();
    assert_eq!(
        resent.len(),
        2,
        "both unacked commands are re-sent: {evs:?}"
    );
    // At the deadline the hold times out, its dispense is cancelled, the order gets a notice.
    let evs = ok(&mut s, tick(500));
    assert!(evs.contains(&MachineEvent::AppTimedOut { order_id: uid(7) }));
    assert!(s.holds.is_empty());
    assert_eq!(s.notices.get(&uid(7)), Some(&AppOutcome::TimedOut));
    assert_eq!(
        s.command(&uid(70)).unwrap().status,
        CommandStatus::Cancelled
    );
    assert!(s.online);
    // Silent for three intervals: offline, and no more resends while offline.
    let evs = ok(&mut s, tick(3400));
    assert_eq!(evs, vec![MachineEvent::WentOffline { at: 3400 }]);
    assert_eq!(next_tick(&s, 1000, 100), None);
    assert!(
        !Machine::can_passivate(&s),
        "an undelivered notice keeps it active"
    );
    ok(&mut s, MachineInput::AppNotified { order_id: uid(7) });
    assert!(s.notices.is_empty());
    // Telling it twice changes nothing.
    assert!(ok(&mut s, MachineInput::AppNotified { order_id: uid(7) }).is_empty());
}

#[test]
fn vend_outcomes_are_kept_for_the_order_until_notified() {
    let mut s = machine();
    ok(&mut s, reserve(1, 0, 10_000));
    ok(&mut s, reserve(2, 1, 10_000));
    ok(&mut s, app_vend(1, 11, 0, 1, true));
    ok(&mut s, app_vend(2, 12, 1, 2, false));
    assert_eq!(
        s.notices.get(&uid(1)),
        Some(&AppOutcome::Vended { vend_id: uid(11) })
    );
    assert!(matches!(
        s.notices.get(&uid(2)),
        Some(AppOutcome::Failed { .. })
    ));
    // A release by the order itself leaves no notice: the order already knows.
    ok(&mut s, reserve(3, 2, 10_000));
    ok(
        &mut s,
        MachineInput::ReleaseApp {
            order_id: uid(3),
            reason: "payment_declined".into(),
        },
    );
    assert!(!s.notices.contains_key(&uid(3)));
}

#[test]
fn a_new_session_resends_every_command_not_accepted() {
    let mut s = machine();
    ok(&mut s, issue(1, MachineCommand::RequestAudit, 20));
    ok(&mut s, issue(2, MachineCommand::RequestAudit, 20));
    ok(&mut s, ack(1, 2, AckStatus::Accepted));
    let evs = ok(&mut s, MachineInput::ResendPending { at: 50 });
    assert_eq!(
        evs,
        vec![MachineEvent::CommandResent {
            command_id: uid(1),
            at: 50
        }]
    );
    assert_eq!(s.command(&uid(1)).unwrap().attempts, 2);
}

/// A snapshot written before `vend_window` existed is the same bytes without the last
/// field: it must fail to decode (so the machine is rebuilt from its events), never decode
/// as some other state, even for a machine that never vended.
#[test]
fn a_snapshot_from_before_the_vend_window_does_not_decode() {
    use crate::store::codec::{decode, encode};
    let mut s = machine();
    ok(
        &mut s,
        MachineInput::IssueCommand {
            command_id: uid(77),
            command: MachineCommand::RequestAudit,
            at: 20,
        },
    );
    s.vend_window = 5;
    let bytes = encode(&s);
    assert_eq!(decode::<MachineState>(&bytes).unwrap(), s);
    let old = &bytes[..bytes.len() - 1];
    assert!(decode::<MachineState>(old).is_err());
}
