//! Property tests of a SKU's units across locations (stock_location.rs and the location
//! arms of stock.rs): whatever commands arrive, units are conserved, no location is
//! oversold, and the totals are the sums of the locations.

use super::*;
use crate::domain::stock::{Stock, StockCommand, StockEvent, StockState};
use crate::domain::Aggregate;
use proptest::prelude::*;

const LOCS: [&str; 3] = ["main", "a", "b"];
/// A machine location: filled by restock visits, emptied by the machine's sales.
const MACHINE: &str = "m1";

fn loc() -> impl Strategy<Value = String> {
    (0usize..3).prop_map(|i| LOCS[i].to_owned())
}

fn cmd() -> impl Strategy<Value = StockCommand> {
    let order = (0u128..5).prop_map(Uuid::from_u128);
    let transfer = (10u128..14).prop_map(Uuid::from_u128);
    let from = proptest::sample::subsequence(LOCS.to_vec(), 0..=3)
        .prop_shuffle()
        .prop_map(|v| v.into_iter().map(str::to_owned).collect::<Vec<_>>());
    prop_oneof![
        (loc(), -10i64..20).prop_map(|(l, d)| StockCommand::Adjust {
            delta: d,
            reason: "count".into(),
            by: "op".into(),
            location: l,
        }),
        (order.clone(), 1i64..8, 50u64..200, from.clone()).prop_map(|(o, q, e, f)| {
            StockCommand::Reserve {
                order_id: o,
                quantity: q,
                expires_at: e,
                now: 10,
                from: f,
            }
        }),
        order.clone().prop_map(|o| StockCommand::Release {
            order_id: o,
            now: 20,
            keep_closed: 8,
        }),
        (order.clone(), 1i64..8, from).prop_map(|(o, q, f)| StockCommand::Commit {
            order_id: o,
            quantity: q,
            now: 30,
            keep_closed: 8,
            from: f,
        }),
        order.clone().prop_map(|o| StockCommand::Return {
            order_id: o,
            now: 40
        }),
        (100u64..250).prop_map(|n| StockCommand::Expire {
            now: n,
            keep_closed: 8
        }),
        (order, loc(), loc(), 1i64..5).prop_map(|(o, f, t, q)| StockCommand::MoveReservation {
            order_id: o,
            from: f,
            to: t,
            quantity: q,
        }),
        (transfer.clone(), loc(), loc(), 1i64..6).prop_map(|(id, f, t, q)| {
            StockCommand::TransferOut {
                transfer_id: id,
                from: f,
                to: t,
                quantity: q,
                now: 5,
            }
        }),
        (
            (20u128..24).prop_map(Uuid::from_u128),
            loc(),
            1i64..6,
            0i64..9
        )
            .prop_map(|(id, f, q, r)| StockCommand::Restock {
                visit_id: id,
                from: f,
                to: MACHINE.into(),
                quantity: q,
                reported: r,
                now: 6,
            }),
        (20u128..24).prop_map(|id| StockCommand::RestockUndo {
            visit_id: Uuid::from_u128(id),
            now: 7,
        }),
        (0u64..30).prop_map(|t| StockCommand::MachineSales {
            location: MACHINE.into(),
            total: t,
        }),
        (transfer, 0u8..3).prop_map(|(id, how)| StockCommand::TransferEnd {
            transfer_id: id,
            failure: match how {
                0 => None,
                1 => Some(TransferFailure::DestinationClosed),
                _ => Some(TransferFailure::Cancelled),
            },
            now: 50,
        }),
    ]
}

/// Units received (adjustments) and sold (commits less returns), from the events.
fn ledger(log: &[StockEvent]) -> (i64, i64) {
    let (mut received, mut sold) = (0, 0);
    for e in log {
        match e {
            StockEvent::Adjusted { delta, .. } | StockEvent::AdjustedAt { delta, .. } => {
                received += delta
            }
            StockEvent::Committed { quantity, .. } | StockEvent::CommittedAt { quantity, .. } => {
                sold += quantity
            }
            StockEvent::Returned { quantity, .. } => sold -= quantity,
            StockEvent::MachineSold { delta, .. } => sold += *delta as i64,
            _ => {}
        }
    }
    (received, sold)
}

fn check(s: &StockState) -> Result<(), TestCaseError> {
    let on_hand: i64 = s.locations.values().map(|l| l.on_hand).sum();
    let reserved: i64 = s.locations.values().map(|l| l.reserved).sum();
    prop_assert_eq!(s.on_hand, on_hand, "on_hand is not the locations' sum");
    prop_assert_eq!(s.reserved, reserved, "reserved is not the locations' sum");
    for (id, l) in &s.locations {
        if id == MACHINE {
            // The machine is the truth of what it sold: its figure may go below zero
            // when it sold units no visit recorded. Nothing is ever reserved there.
            prop_assert_eq!(l.reserved, 0);
            continue;
        }
        prop_assert!(
            l.reserved >= 0 && l.available() >= 0,
            "{id} oversold: {l:?}"
        );
        let held: i64 = s
            .reservations
            .values()
            .flat_map(|r| &r.allocations)
            .filter(|a| &a.location == id)
            .map(|a| a.quantity)
            .sum::<i64>()
            + s.transfers
                .values()
                .filter(|t| t.status == TransferStatus::InTransit && &t.from == id)
                .map(|t| t.quantity)
                .sum::<i64>();
        prop_assert_eq!(held, l.reserved, "{} holds other than its reservations", id);
    }
    for r in s.reservations.values() {
        prop_assert_eq!(
            r.allocations.iter().map(|a| a.quantity).sum::<i64>(),
            r.quantity
        );
        prop_assert!(r.allocations.iter().all(|a| a.quantity > 0));
    }
    Ok(())
}

proptest! {
    #[test]
    fn units_are_conserved_across_locations_and_none_is_oversold(
        cmds in proptest::collection::vec(cmd(), 0..120)
    ) {
        let mut s = StockState::default();
        let mut log = vec![];
        for c in &cmds {
            let before = s.clone();
            match Stock::decide(&s, c) {
                Ok(evs) => for e in evs { Stock::apply(&mut s, &e); log.push(e); },
                Err(_) => prop_assert_eq!(&before, &s),
            }
            check(&s)?;
            let (received, sold) = ledger(&log);
            prop_assert_eq!(s.on_hand + sold, received, "on hand + sold != received");
        }
        let mut replayed = StockState::default();
        for e in &log {
            Stock::apply(&mut replayed, e);
        }
        prop_assert_eq!(replayed, s);
    }
}

#[test]
fn a_line_of_five_takes_three_then_two_by_the_order_given() {
    let mut s = StockState::default();
    add(&mut s, "a", 3, 0);
    add(&mut s, "b", 3, 0);
    let got = allocate(&s, &["main".into(), "a".into(), "b".into()], 5).unwrap();
    assert_eq!(
        got,
        vec![
            Allocation {
                location: "a".into(),
                quantity: 3
            },
            Allocation {
                location: "b".into(),
                quantity: 2
            },
        ]
    );
    let got = allocate(&s, &["b".into(), "a".into()], 5).unwrap();
    assert_eq!(
        got[0],
        Allocation {
            location: "b".into(),
            quantity: 3
        }
    );
    assert_eq!(allocate(&s, &["a".into()], 5), Err(3));
    // Units at a location not drawn from are not taken.
    assert_eq!(allocate(&s, &[], 1), Err(0));
}

#[test]
fn a_transfer_holds_at_the_source_then_moves_or_returns() {
    let mut s = StockState::default();
    add(&mut s, "main", 10, 0);
    let id = Uuid::from_u128(7);
    let run = |s: &mut StockState, c: StockCommand| -> Result<(), crate::domain::Rejection> {
        for e in Stock::decide(s, &c)? {
            Stock::apply(s, &e);
        }
        Ok(())
    };
    let out = StockCommand::TransferOut {
        transfer_id: id,
        from: "main".into(),
        to: "a".into(),
        quantity: 4,
        now: 1,
    };
    run(&mut s, out.clone()).unwrap();
    run(&mut s, out).unwrap(); // a repeat is a no-op
    assert_eq!((s.at("main").on_hand, s.at("main").available()), (10, 6));
    let fail = StockCommand::TransferEnd {
        transfer_id: id,
        failure: Some(TransferFailure::DestinationClosed),
        now: 2,
    };
    run(&mut s, fail.clone()).unwrap();
    run(&mut s, fail).unwrap();
    assert_eq!(s.at("main").available(), 10);
    assert_eq!(s.at("a").on_hand, 0);
    assert_eq!(s.transfers[&id].status, TransferStatus::Failed);
    let receive = StockCommand::TransferEnd {
        transfer_id: id,
        failure: None,
        now: 3,
    };
    assert!(
        run(&mut s, receive).is_err(),
        "a failed transfer is not received"
    );

    let id2 = Uuid::from_u128(8);
    run(
        &mut s,
        StockCommand::TransferOut {
            transfer_id: id2,
            from: "main".into(),
            to: "a".into(),
            quantity: 4,
            now: 4,
        },
    )
    .unwrap();
    run(
        &mut s,
        StockCommand::TransferEnd {
            transfer_id: id2,
            failure: None,
            now: 5,
        },
    )
    .unwrap();
    assert_eq!(
        (s.at("main").on_hand, s.at("a").on_hand, s.on_hand),
        (6, 4, 10)
    );
    assert_eq!(s.reserved, 0);
}
