//! The public events of vending machines: pure functions of the machine's state before
//! and after one committed event, and the event.
//!
//! - `machine.online` / `machine.offline`: the machine's connectivity changed; `data` is
//!   `machine_id`.
//! - `machine.alarm`: an alarm code opened that was not open; `data` is `machine_id`,
//!   `alarm`, `severity`.
//! - `machine.low_stock`: a slot fell to the machine's low-stock threshold; `data` is
//!   `machine_id`, `slot`, `sku`, `level`.
//! - `machine.vend`: a successful vend was counted (a duplicate the machine re-sent is
//!   not); `data` is `machine_id`, `vend_id`, `slot`, `sku`, `price_minor`, `order_id`
//!   (`null` for a cash or card vend at the machine).

use serde_json::json;

use super::catalogue_kinds::At;
use super::public::{EventType, PublicEvent};
use crate::domain::machine::{MachineEvent, MachineState, Message};

/// The public events of machine `id`'s event `event`, from `before` to `after`.
pub fn machine_events(
    at: At,
    id: &str,
    before: &MachineState,
    event: &MachineEvent,
    after: &MachineState,
) -> Vec<PublicEvent> {
    let mut out = Vec::new();
    match (before.online, after.online) {
        (false, true) => out.push(at.event(EventType::MachineOnline, json!({"machine_id": id}))),
        (true, false) => out.push(at.event(EventType::MachineOffline, json!({"machine_id": id}))),
        _ => {}
    }
    // One public event per log entry and type: the first alarm that opened.
    if let Some((code, alarm)) = after
        .alarms
        .iter()
        .find(|(code, _)| !before.alarms.contains_key(*code))
    {
        out.push(at.event(
            EventType::MachineAlarm,
            json!({"machine_id": id, "alarm": code, "severity": alarm.severity}),
        ));
    }
    match event {
        MachineEvent::LowStock { slot, sku, level } => out.push(at.event(
            EventType::MachineLowStock,
            json!({"machine_id": id, "slot": slot, "sku": sku.as_str(), "level": level}),
        )),
        MachineEvent::Received {
            message:
                Message::Vend {
                    vend_id,
                    slot,
                    sku,
                    price_minor,
                    order_id,
                    success: true,
                    ..
                },
            ..
        } if after.sales.units > before.sales.units => out.push(at.event(
            EventType::MachineVend,
            json!({
                "machine_id": id,
                "vend_id": vend_id,
                "slot": slot,
                "sku": sku,
                "price_minor": price_minor,
                "order_id": order_id,
            }),
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::machine::{AlarmSeverity, OpenAlarm, VendMethod};
    use crate::domain::Sku;
    use proptest::prelude::*;

    const AT: At = At {
        partition: 1,
        pseq: 2,
        at: 3,
    };

    fn types(evs: &[PublicEvent]) -> Vec<EventType> {
        evs.iter().map(|e| e.r#type).collect()
    }

    proptest! {
        /// Online and offline are told exactly on a change of connectivity.
        #[test]
        fn connectivity_is_told_on_its_changes_only(b in any::<bool>(), a in any::<bool>()) {
            let st = |online| MachineState { online, ..MachineState::default() };
            let ev = MachineEvent::Connected { at: 1 };
            let got = types(&machine_events(AT, "vm", &st(b), &ev, &st(a)));
            let want = match (b, a) {
                (false, true) => vec![EventType::MachineOnline],
                (true, false) => vec![EventType::MachineOffline],
                _ => vec![],
            };
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_new_alarm_a_low_slot_and_a_counted_vend_are_told() {
        let before = MachineState::default();
        let mut after = before.clone();
        after.alarms.insert(
            "door".into(),
            OpenAlarm {
                severity: AlarmSeverity::Critical,
                raised_at: 1,
            },
        );
        let low = MachineEvent::LowStock {
            slot: 4,
            sku: Sku::parse("COLA").unwrap(),
            level: 1,
        };
        let evs = machine_events(AT, "vm", &before, &low, &after);
        assert_eq!(
            types(&evs),
            [EventType::MachineAlarm, EventType::MachineLowStock]
        );
        assert_eq!(evs[0].data["severity"], "critical");
        assert_eq!(evs[1].data["level"], 1);
        // An alarm already open is not told again.
        assert!(machine_events(AT, "vm", &after, &low, &after)
            .iter()
            .all(|e| e.r#type != EventType::MachineAlarm));

        let vend = |success| MachineEvent::Received {
            seq: 9,
            at: 9,
            message: Message::Vend {
                vend_id: uuid::Uuid::from_u128(7),
                slot: 4,
                sku: "COLA".into(),
                price_minor: 150,
                method: VendMethod::Cash,
                order_id: None,
                success,
                failure_reason: None,
            },
        };
        let mut sold = MachineState::default();
        sold.sales.units = 1;
        let evs = machine_events(AT, "vm", &MachineState::default(), &vend(true), &sold);
        assert_eq!(types(&evs), [EventType::MachineVend]);
        assert_eq!(evs[0].data["price_minor"], 150);
        // A duplicate (not counted) or a failed vend is not a sale.
        let same = MachineState::default();
        assert!(machine_events(AT, "vm", &same, &vend(true), &same).is_empty());
        assert!(machine_events(AT, "vm", &same, &vend(false), &same).is_empty());
    }
}
