//! Tests of [`super`] (stock.rs), kept beside it so the module stays readable.

use super::*;
use proptest::prelude::*;

fn cmd() -> impl Strategy<Value = StockCommand> {
    cmd_keeping(DEFAULT_KEEP_CLOSED)
}

fn cmd_keeping(keep: u32) -> impl Strategy<Value = StockCommand> {
    let order = (0u128..6).prop_map(Uuid::from_u128);
    prop_oneof![
        (-20i64..30).prop_map(|d| StockCommand::Adjust {
            location: MAIN.into(),
            delta: d,
            reason: "count".into(),
            by: "op".into()
        }),
        (order.clone(), -1i64..6, 0u64..200, 0u64..200).prop_map(|(o, q, e, n)| {
            StockCommand::Reserve {
                from: vec![],
                order_id: o,
                quantity: q,
                expires_at: e,
                now: n,
            }
        }),
        (order.clone(), 0u64..200).prop_map(move |(o, n)| StockCommand::Release {
            order_id: o,
            now: n,
            keep_closed: keep,
        }),
        (order.clone(), 1i64..6, 0u64..200).prop_map(move |(o, q, n)| StockCommand::Commit {
            from: vec![],
            order_id: o,
            quantity: q,
            now: n,
            keep_closed: keep,
        }),
        (order, 0u64..200).prop_map(|(o, n)| StockCommand::Return {
            order_id: o,
            now: n
        }),
        (0u64..400).prop_map(move |n| StockCommand::Expire {
            now: n,
            keep_closed: keep
        }),
    ]
}

proptest! {
    #[test]
    fn available_is_on_hand_minus_reserved_and_never_negative(cmds in proptest::collection::vec(cmd(), 0..80)) {
        let mut s = StockState::default();
        let mut log = vec![];
        for c in &cmds {
            let before = s.clone();
            match Stock::decide(&s, c) {
                Ok(evs) => for e in evs { Stock::apply(&mut s, &e); log.push(e); },
                Err(_) => prop_assert_eq!(&before, &s),
            }
            prop_assert_eq!(s.available(), s.on_hand - s.reserved);
            prop_assert!(s.available() >= 0, "available went negative: {:?}", s);
            prop_assert!(s.reserved >= 0);
            prop_assert_eq!(s.reserved, s.reservations.values().map(|r| r.quantity).sum::<i64>());
        }
        prop_assert_eq!(Stock::replay(&log), s);
    }

    #[test]
    fn reserve_and_commit_are_idempotent_per_order(q in 1i64..5, stock in 5i64..20) {
        let mut s = StockState::default();
        let o = Uuid::from_u128(7);
        let reserve = StockCommand::Reserve { from: vec![], order_id: o, quantity: q, expires_at: 100, now: 1 };
        let commit = StockCommand::Commit { from: vec![], order_id: o, quantity: q, now: 2, keep_closed: 4 };
        for c in [StockCommand::Adjust { location: MAIN.into(), delta: stock, reason: "in".into(), by: "op".into() }, reserve.clone(), reserve.clone(), commit.clone(), commit, reserve] {
            if let Ok(evs) = Stock::decide(&s, &c) { for e in evs { Stock::apply(&mut s, &e); } }
        }
        prop_assert_eq!(s.on_hand, stock - q);
        prop_assert_eq!(s.reserved, 0);
    }
}

/// Closes `n` reservations of distinct orders, one at a time, at increasing times.
fn close_many(s: &mut StockState, n: u128, keep: u32) {
    for i in 0..n {
        let o = Uuid::from_u128(1000 + i);
        let now = i as u64 * 10;
        for c in [
            StockCommand::Reserve {
                from: vec![],
                order_id: o,
                quantity: 1,
                expires_at: now + 5,
                now,
            },
            StockCommand::Commit {
                from: vec![],
                order_id: o,
                quantity: 1,
                now: now + 1,
                keep_closed: keep,
            },
        ] {
            for e in Stock::decide(s, &c).unwrap() {
                Stock::apply(s, &e);
            }
        }
    }
}

proptest! {
    /// Whatever the commands, `closed` never holds more than the bound after a closing
    /// command, and replaying the events gives the same state (eviction is pure).
    #[test]
    fn closed_reservations_stay_within_the_bound(
        (k, cmds) in (1u32..4).prop_flat_map(|k| {
            proptest::collection::vec(cmd_keeping(k), 0..80).prop_map(move |c| (k, c))
        }),
    ) {
        let mut s = StockState::default();
        let mut log = vec![];
        for c in &cmds {
            if let Ok(evs) = Stock::decide(&s, c) {
                for e in evs { Stock::apply(&mut s, &e); log.push(e); }
            }
            prop_assert!(s.closed.len() <= k as usize, "{} closed, bound {}", s.closed.len(), k);
        }
        prop_assert_eq!(Stock::replay(&log), s);
    }
}

#[test]
fn the_oldest_closed_reservations_are_evicted_first() {
    let mut s = StockState::default();
    for e in Stock::decide(
        &s,
        &StockCommand::Adjust {
            location: MAIN.into(),
            delta: 100,
            reason: "in".into(),
            by: "op".into(),
        },
    )
    .unwrap()
    {
        Stock::apply(&mut s, &e);
    }
    close_many(&mut s, 20, 8);
    assert_eq!(s.closed.len(), 8);
    let kept: Vec<u128> = s.closed.keys().map(|u| u.as_u128() - 1000).collect();
    assert_eq!(kept, (12..20).collect::<Vec<_>>(), "the 8 newest are kept");
    assert_eq!((s.on_hand, s.reserved), (80, 0));
    // A repeated commit of a remembered order is still a no-op.
    let again = StockCommand::Commit {
        from: vec![],
        order_id: Uuid::from_u128(1019),
        quantity: 1,
        now: 500,
        keep_closed: 8,
    };
    assert_eq!(Stock::decide(&s, &again).unwrap(), vec![]);
}

#[test]
fn expired_reservations_are_released() {
    let mut s = StockState::default();
    let o = Uuid::from_u128(1);
    for c in [
        StockCommand::Adjust {
            location: MAIN.into(),
            delta: 3,
            reason: "in".into(),
            by: "op".into(),
        },
        StockCommand::Reserve {
            from: vec![],
            order_id: o,
            quantity: 2,
            expires_at: 50,
            now: 0,
        },
        StockCommand::Expire {
            now: 49,
            keep_closed: DEFAULT_KEEP_CLOSED,
        },
    ] {
        for e in Stock::decide(&s, &c).unwrap() {
            Stock::apply(&mut s, &e);
        }
    }
    assert_eq!(s.reserved, 2);
    assert!(!Stock::can_passivate(&s));
    for e in Stock::decide(
        &s,
        &StockCommand::Expire {
            now: 50,
            keep_closed: DEFAULT_KEEP_CLOSED,
        },
    )
    .unwrap()
    {
        Stock::apply(&mut s, &e);
    }
    assert_eq!((s.on_hand, s.reserved), (3, 0));
    let err = Stock::decide(
        &s,
        &StockCommand::Reserve {
            from: vec![],
            order_id: o,
            quantity: 1,
            expires_at: 500,
            now: 60,
        },
    )
    .unwrap_err();
    assert_eq!(err.code, RejectionCode::InvalidTransition);
    let err = Stock::decide(
        &s,
        &StockCommand::Adjust {
            location: MAIN.into(),
            delta: -4,
            reason: "x".into(),
            by: "op".into(),
        },
    )
    .unwrap_err();
    assert_eq!(err.code, RejectionCode::InsufficientStock);
}
