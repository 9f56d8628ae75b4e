//! Property tests of the machine aggregate: exactly-once delivery under replay and
//! duplicates, bounded slot levels, sales equal to distinct vends, LowStock per crossing.

use super::*;
use std::collections::BTreeMap;

const SLOTS: u32 = 4;

/// A registered, online machine with slots 0..SLOTS (capacity 10, level 6), 2 holds and
/// a few pending commands, so acks and app vends have something to hit.
fn base() -> MachineState {
    base_with_log().0
}

fn base_with_log() -> (MachineState, Vec<MachineEvent>) {
    let mut s = MachineState::default();
    let mut log = vec![];
    for c in [
        register(),
        MachineInput::SetPlanogram {
            slots: (0..SLOTS).map(|i| spec(i, 6)).collect(),
        },
        MachineInput::Connected { at: 1 },
        reserve(1, 0, 10_000),
        reserve(2, 1, 10_000),
        issue(
            100,
            MachineCommand::SetPrice {
                slot: 2,
                price_minor: 99,
            },
            2,
        ),
        issue(
            101,
            MachineCommand::LockSlot {
                slot: 3,
                reason: "x".into(),
            },
            2,
        ),
        issue(
            102,
            MachineCommand::Dispense {
                order_id: uid(2),
                slot: 1,
                deadline_unix_ms: 10_000,
            },
            2,
        ),
    ] {
        log.extend(ok(&mut s, c));
    }
    (s, log)
}

/// A machine message body, without its seq (assigned later).
#[derive(Debug, Clone)]
enum Body {
    Heartbeat(i32),
    /// vend id from a small pool; success is a function of the id so "distinct successful
    /// vend ids" is well defined; optionally an app order.
    Vend(u128, u32, Option<u128>),
    Restock(u32, u32),
    Alarm(u8, bool),
    Ack(u128, u8),
}

fn vend_ok(id: u128) -> bool {
    id % 5 != 0
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        1 => (-50i32..80).prop_map(Body::Heartbeat),
        4 => (0u128..40, 0u32..SLOTS + 1, proptest::option::weighted(0.2, 1u128..4))
            .prop_map(|(v, s, o)| Body::Vend(v, s, o)),
        2 => (0u32..SLOTS + 1, 0u32..14).prop_map(|(s, l)| Body::Restock(s, l)),
        1 => (0u8..3, any::<bool>()).prop_map(|(c, x)| Body::Alarm(c, x)),
        1 => (99u128..104, 0u8..4).prop_map(|(c, st)| Body::Ack(c, st)),
    ]
}

fn to_input(seq: u64, b: &Body) -> MachineInput {
    let at = 1_000 + seq;
    match b {
        Body::Heartbeat(t) => MachineInput::Heartbeat {
            seq,
            at,
            state: HeartbeatState::Vending,
            temperature_dc: *t,
            door_open: t % 2 == 0,
        },
        Body::Vend(v, slot, o) => MachineInput::Vend {
            seq,
            at,
            vend_id: uid(*v),
            slot: *slot,
            sku: format!("SKU-{slot}"),
            price_minor: 100 + *v as i64,
            method: if o.is_some() {
                VendMethod::App
            } else {
                VendMethod::Cashless
            },
            order_id: o.map(uid),
            success: vend_ok(*v),
            failure_reason: None,
        },
        Body::Restock(slot, l) => restock(seq, *slot, *l),
        Body::Alarm(c, cleared) => MachineInput::Alarm {
            seq,
            at,
            code: format!("a{c}"),
            severity: AlarmSeverity::Warning,
            cleared: *cleared,
        },
        Body::Ack(c, st) => MachineInput::CommandAck {
            seq,
            at,
            command_id: uid(*c),
            status: [
                AckStatus::Accepted,
                AckStatus::Done,
                AckStatus::Rejected,
                AckStatus::Busy,
            ][*st as usize],
            detail: "d".into(),
        },
    }
}

/// Messages with increasing seqs (with gaps).
fn messages() -> impl Strategy<Value = Vec<MachineInput>> {
    proptest::collection::vec((1u64..3, body()), 0..60).prop_map(|v| {
        let mut seq = 0;
        v.iter()
            .map(|(gap, b)| {
                seq += gap;
                to_input(seq, b)
            })
            .collect()
    })
}

fn deliver(s: &mut MachineState, log: &mut Vec<MachineEvent>, msgs: &[MachineInput]) {
    for m in msgs {
        log.extend(ok(s, m.clone()));
    }
}

proptest! {
    #[test]
    fn redelivery_is_exactly_once(
        msgs in messages(),
        cut in 0usize..60,
        back in 0usize..60,
        dups in proptest::collection::vec(any::<proptest::sample::Index>(), 0..30),
        shuffle_seed in any::<u64>(),
    ) {
        let mut once = base();
        let mut log = vec![];
        deliver(&mut once, &mut log, &msgs);

        // Deliver a prefix, "reconnect" and replay from an earlier point to the end,
        // then re-deliver everything shuffled with extra duplicates.
        let cut = cut.min(msgs.len());
        let from = cut.saturating_sub(back);
        let mut twice = base();
        let mut log2 = vec![];
        deliver(&mut twice, &mut log2, &msgs[..cut]);
        deliver(&mut twice, &mut log2, &msgs[from..]);
        prop_assert_eq!(&twice, &once);
        let mut again: Vec<MachineInput> = msgs.clone();
        if !msgs.is_empty() {
            again.extend(dups.iter().map(|i| msgs[i.index(msgs.len())].clone()));
        }
        // Deterministic shuffle.
        let mut x = shuffle_seed | 1;
        for i in (1..again.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            again.swap(i, (x % (i as u64 + 1)) as usize);
        }
        for m in &again {
            prop_assert!(Machine::decide(&twice, m).unwrap().is_empty());
        }
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(log2, log);
        prop_assert_eq!(once.acked_seq, msgs.iter().map(|m| match m {
            MachineInput::Heartbeat { seq, .. } | MachineInput::Vend { seq, .. } | MachineInput::Restock { seq, .. }
            | MachineInput::Alarm { seq, .. } | MachineInput::CommandAck { seq, .. } => *seq,
            _ => 0,
        }).max().unwrap_or(0));
    }

    #[test]
    fn invariants_hold_and_replay_rebuilds_state(msgs in messages(), ops in proptest::collection::vec((0u8..6, 0u128..6, 0u32..SLOTS + 1, 0u64..4_000), 0..30)) {
        let (mut s, mut log) = base_with_log();
        let mut successes = std::collections::BTreeSet::new();
        let mut ops = ops.into_iter();
        for m in &msgs {
            // Interleave server-side commands between machine messages.
            if let Some((k, id, slot, t)) = ops.next() {
                let c = match k {
                    0 => reserve(10 + id, slot, t),
                    1 => MachineInput::ReleaseApp { order_id: uid(10 + id), reason: "vend_timeout".into() },
                    2 => issue(200 + id, MachineCommand::SetPrice { slot, price_minor: t as i64 }, t),
                    3 => MachineInput::CommandResent { command_id: uid(200 + id), at: t },
                    4 => MachineInput::MarkOfflineIfSilent { now: t, heartbeat_interval_ms: 100 },
                    _ => MachineInput::Connected { at: t },
                };
                let before = s.clone();
                match run(&mut s, c) {
                    Ok(evs) => log.extend(evs),
                    Err(_) => prop_assert_eq!(&before, &s),
                }
            }
            if let MachineInput::Vend { vend_id, success: true, seq, .. } = m {
                if *seq > s.acked_seq && !s.recent_vends.contains(vend_id) {
                    successes.insert(*vend_id);
                }
            }
            log.extend(ok(&mut s, m.clone()));
            for sl in s.planogram.values() {
                prop_assert!(sl.level <= sl.capacity);
            }
            for h in s.holds.values() {
                prop_assert!(s.planogram.contains_key(&h.slot));
            }
        }
        prop_assert_eq!(s.sales.units, successes.len() as u64);
        prop_assert_eq!(s.sales.units, msgs.iter().filter_map(|m| match m {
            MachineInput::Vend { vend_id, success: true, .. } => Some(*vend_id),
            _ => None,
        }).collect::<std::collections::BTreeSet<_>>().len() as u64, "success depends on the id only");
        prop_assert_eq!(Machine::replay(&log), s);
    }

    #[test]
    fn recent_vends_never_exceed_the_configured_window(msgs in messages(), window in 1u32..8) {
        let (mut s, mut log) = base_with_log();
        let tick = MachineInput::Tick {
            now: 0,
            heartbeat_interval_ms: 1 << 40,
            resend_after_ms: 1 << 40,
            recent_vends_window: window,
        };
        log.extend(ok(&mut s, tick));
        prop_assert_eq!(s.vend_window, window);
        for m in &msgs {
            log.extend(ok(&mut s, m.clone()));
            prop_assert!(s.recent_vends.len() <= window as usize);
        }
        prop_assert_eq!(Machine::replay(&log), s);
    }

    #[test]
    fn low_stock_fires_once_per_downward_crossing_prop(msgs in messages(), threshold in 0u32..5) {
        let mut s = base();
        ok(&mut s, MachineInput::SetLowStockThreshold { threshold });
        let t = s.low_stock_threshold;
        let (mut crossings, mut fired) = (0usize, 0usize);
        for m in &msgs {
            let before: BTreeMap<u32, u32> = s.planogram.iter().map(|(k, v)| (*k, v.level)).collect();
            let evs = ok(&mut s, m.clone());
            fired += low_stock_count(&evs);
            for (k, v) in &s.planogram {
                if before[k] > t && v.level <= t {
                    crossings += 1;
                    let expected = MachineEvent::LowStock { slot: *k, sku: v.sku.clone(), level: v.level };
                    prop_assert!(evs.contains(&expected));
                }
            }
        }
        prop_assert_eq!(fired, crossings);
    }
}
