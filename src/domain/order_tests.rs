//! Property tests for the order saga: a simulated world answers each effect with a
//! random outcome, and customers interject at random.

use super::*;
use proptest::prelude::*;

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("S{i}")).unwrap()
}

fn placement() -> Placement {
    Placement {
        order_id: Uuid::from_u128(42),
        cart_id: Uuid::from_u128(7),
        owner: None,
        email: "a@b.c".into(),
        currency: "USD".into(),
        payment_method: "pm_x".into(),
        last4: "4242".into(),
        placed_at: 1,
        expires_at: 1_000,
        fingerprint: [7; 32],
        key_expires_at: 1_000_000,
    }
}

/// Answers an effect. `fail` picks a failure outcome where the effect can fail.
fn outcome(effect: &Effect, lines: usize, fail: bool, at: Millis) -> OrderCommand {
    match effect {
        Effect::LockCart { .. } if fail => OrderCommand::CartLockFailed {
            message: "gone".into(),
            at,
        },
        Effect::LockCart { .. } => OrderCommand::CartLocked {
            lines: (0..lines).map(|i| (sku(i), 1 + i as u32, 100)).collect(),
            at,
        },
        Effect::Reserve { sku, .. } if fail => OrderCommand::LineOutOfStock {
            sku: sku.clone(),
            message: "none".into(),
            at,
        },
        Effect::Reserve { sku, quantity, .. } => OrderCommand::LineReserved {
            sku: sku.clone(),
            allocations: crate::domain::stock_location::legacy(*quantity),
            at,
        },
        Effect::Authorize { .. } if fail => OrderCommand::PaymentFailed {
            code: FailureCode::PaymentDeclined,
            message: "no".into(),
            at,
        },
        Effect::Authorize { .. } => OrderCommand::Authorized {
            authorization: "pi_1".into(),
            at,
        },
        Effect::Capture { .. } if fail => OrderCommand::Expired { at },
        Effect::Capture { .. } => OrderCommand::Captured { at },
        Effect::Commit { sku, .. } if fail => OrderCommand::CommitFailed {
            sku: sku.clone(),
            message: "gone".into(),
            at,
        },
        Effect::Commit { sku, .. } => OrderCommand::LineCommitted {
            sku: sku.clone(),
            at,
        },
        Effect::Release { sku, .. } => OrderCommand::LineReleased {
            sku: sku.clone(),
            at,
        },
        Effect::Return { sku, .. } => OrderCommand::LineReturned {
            sku: sku.clone(),
            at,
        },
        Effect::Void { .. } => OrderCommand::Voided { at },
        Effect::Refund { .. } => OrderCommand::Refunded { at },
        Effect::ReopenCart { .. } => OrderCommand::CartReopened { at },
        // A vending order's one line is sku(0).
        Effect::ReserveSlot { .. } if fail => OrderCommand::SlotUnavailable {
            code: FailureCode::MachineOffline,
            message: "offline".into(),
            at,
        },
        Effect::ReserveSlot { .. } => OrderCommand::LineReserved {
            sku: sku(0),
            allocations: vec![],
            at,
        },
        Effect::Dispense { .. } if fail => OrderCommand::SlotUnavailable {
            code: FailureCode::VendTimeout,
            message: "late".into(),
            at,
        },
        Effect::Dispense { .. } => OrderCommand::DispenseSent { at },
        Effect::ReleaseSlot { .. } => OrderCommand::LineReleased { sku: sku(0), at },
        Effect::Price { .. } if fail => OrderCommand::PricingRefused {
            code: FailureCode::CouponExpired,
            message: "over".into(),
            at,
        },
        // Ten percent off the first line, by a coupon with a limit.
        Effect::Price { lines, .. } => OrderCommand::Priced {
            discounts: vec![PricedDiscount {
                promotion_id: "p1".into(),
                code: Some("TEN".into()),
                amount_minor: lines[0].2 * i64::from(lines[0].1) / 10,
                lines: vec![(lines[0].0.clone(), lines[0].2 * i64::from(lines[0].1) / 10)],
                usage_limit: Some(10),
                per_customer_limit: None,
            }],
            at,
        },
        Effect::ReservePromotion { promotion_id, .. } if fail => OrderCommand::PromotionRefused {
            promotion_id: promotion_id.clone(),
            code: FailureCode::CouponExhausted,
            message: "taken".into(),
            at,
        },
        Effect::ReservePromotion { promotion_id, .. } => OrderCommand::PromotionReserved {
            promotion_id: promotion_id.clone(),
            at,
        },
        Effect::ConsumePromotion { promotion_id, .. } if fail => {
            OrderCommand::PromotionConsumeFailed {
                promotion_id: promotion_id.clone(),
                message: "lapsed".into(),
                at,
            }
        }
        Effect::ConsumePromotion { promotion_id, .. } => OrderCommand::PromotionConsumed {
            promotion_id: promotion_id.clone(),
            at,
        },
        Effect::ReleasePromotion { promotion_id, .. } => OrderCommand::PromotionReleased {
            promotion_id: promotion_id.clone(),
            at,
        },
    }
}

fn vending() -> VendingPlacement {
    VendingPlacement {
        machine_id: "vm-1".into(),
        slot: 3,
        sku: sku(0),
        price_minor: 250,
        deadline: 500,
    }
}

fn place_vending() -> OrderCommand {
    OrderCommand::PlaceVending {
        placement: Placement {
            cart_id: Uuid::nil(),
            ..placement()
        },
        vending: vending(),
    }
}

#[derive(Debug, Clone)]
enum VStep {
    Drive(bool),
    Duplicate,
    Cancel,
    Report(u8),
}

fn vstep() -> impl Strategy<Value = VStep> {
    prop_oneof![
        8 => prop::bool::weighted(0.15).prop_map(VStep::Drive),
        1 => Just(VStep::Duplicate),
        1 => Just(VStep::Cancel),
        2 => (0u8..3).prop_map(VStep::Report),
    ]
}

fn report(kind: u8) -> VendReport {
    match kind {
        0 => VendReport::Vended {
            vend_id: Uuid::from_u128(9),
        },
        1 => VendReport::Failed {
            reason: "motor_jam".into(),
        },
        _ => VendReport::TimedOut,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn vending_saga_settles_and_never_charges_for_an_undelivered_unit(
        steps in proptest::collection::vec(vstep(), 0..40),
        final_report in 0u8..3,
    ) {
        let mut s = OrderState::default();
        let mut log = vec![];
        run(&mut s, &mut log, &place_vending());
        let mut at = 2;
        let mut last = None;
        let tail = std::iter::repeat_n(VStep::Drive(false), 20)
            .chain(std::iter::once(VStep::Report(final_report)))
            .chain(std::iter::repeat_n(VStep::Drive(false), 20));
        for st in steps.iter().cloned().chain(tail) {
            at += 1;
            let cmd = match st {
                VStep::Drive(fail) => match next_effect(&s) {
                    Some(e) => { let c = outcome(&e, 1, fail, at); last = Some(c.clone()); c }
                    None => continue,
                },
                VStep::Duplicate => match &last { Some(c) => c.clone(), None => continue },
                VStep::Cancel => OrderCommand::Cancel { at },
                // The machine only reports on a dispense it was sent.
                VStep::Report(k) if s.awaiting_vend() => OrderCommand::VendReported { report: report(k), at },
                VStep::Report(_) => continue,
            };
            run(&mut s, &mut log, &cmd);
        }
        for w in s.history.windows(2) {
            prop_assert!(w[0].0.can_become(w[1].0), "illegal edge {:?} -> {:?}", w[0].0, w[1].0);
        }
        prop_assert!(s.is_settled(), "not settled: {:?}", s);
        let vended = s.vending.as_ref().unwrap().state == VendState::Vended;
        match s.status {
            OrderStatus::Fulfilled => {
                prop_assert!(vended);
                prop_assert_eq!(s.payment.status, PaymentStatus::Captured);
                prop_assert_eq!(s.lines[0].stage, LineStage::Committed);
            }
            OrderStatus::Cancelled => {
                // Only a hard capture failure can leave a vended unit unpaid, and it says so.
                prop_assert!(!vended || s.failure.as_ref().unwrap().code == FailureCode::PaymentError, "a vended unit was not charged");
                prop_assert!(!matches!(s.payment.status, PaymentStatus::Authorized | PaymentStatus::Captured));
                prop_assert!(s.lines[0].stage != LineStage::Reserved, "the hold was not released");
            }
            other => prop_assert!(false, "unexpected end status {:?}", other),
        }
        prop_assert_eq!(Order::replay(&log), s);
    }
}

#[test]
fn vending_happy_path_and_its_failure_codes() {
    let drive = |s: &mut OrderState, log: &mut Vec<OrderEvent>| {
        let mut kinds = vec![];
        while let Some(e) = next_effect(s) {
            kinds.push(match &e {
                Effect::ReserveSlot { .. } => "reserve_slot",
                Effect::Authorize { .. } => "authorize",
                Effect::Dispense { .. } => "dispense",
                Effect::Capture { .. } => "capture",
                Effect::Void { .. } => "void",
                Effect::ReleaseSlot { .. } => "release_slot",
                _ => "other",
            });
            run(s, log, &outcome(&e, 1, false, 5));
        }
        kinds
    };
    let mut s = OrderState::default();
    let mut log = vec![];
    run(&mut s, &mut log, &place_vending());
    assert_eq!(s.kind(), "vending");
    assert_eq!(
        drive(&mut s, &mut log),
        ["reserve_slot", "authorize", "dispense"]
    );
    assert!(s.awaiting_vend() && !s.is_settled());
    assert_eq!(vend_status(&s).map(VendStatus::as_str), Some("dispensing"));
    // Cancelling while the machine dispenses is refused.
    assert!(Order::decide(&s, &OrderCommand::Cancel { at: 6 }).is_err());
    let mut ok = s.clone();
    run(
        &mut ok,
        &mut log,
        &OrderCommand::VendReported {
            report: report(0),
            at: 7,
        },
    );
    assert_eq!(drive(&mut ok, &mut log), ["capture"]);
    assert_eq!(ok.status, OrderStatus::Fulfilled);
    assert_eq!(vend_status(&ok).map(VendStatus::as_str), Some("vended"));
    for (k, code, status) in [
        (1, FailureCode::VendFailed, "failed"),
        (2, FailureCode::VendTimeout, "timed_out"),
    ] {
        let mut f = s.clone();
        run(
            &mut f,
            &mut log,
            &OrderCommand::VendReported {
                report: report(k),
                at: 7,
            },
        );
        assert_eq!(drive(&mut f, &mut log), ["void", "release_slot"]);
        assert_eq!(f.status, OrderStatus::Cancelled);
        assert_eq!(f.failure.as_ref().unwrap().code, code);
        assert_eq!(f.payment.status, PaymentStatus::Voided);
        assert_eq!(vend_status(&f).map(VendStatus::as_str), Some(status));
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// Perform the next effect; fail it if the flag is set.
    Drive(bool),
    /// Deliver the outcome of the current effect twice (a retried step).
    Duplicate,
    Cancel,
    Fulfil,
    Refund,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => prop::bool::weighted(0.15).prop_map(Step::Drive),
        1 => Just(Step::Duplicate),
        1 => Just(Step::Cancel),
        1 => Just(Step::Fulfil),
        1 => Just(Step::Refund),
    ]
}

fn run(s: &mut OrderState, log: &mut Vec<OrderEvent>, cmd: &OrderCommand) {
    let before = s.clone();
    match Order::decide(s, cmd) {
        Ok(evs) => {
            for e in evs {
                Order::apply(s, &e);
                log.push(e);
            }
        }
        Err(_) => assert_eq!(&before, s, "a rejection changed the state"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn saga_follows_allowed_edges_settles_and_replays(lines in 1usize..4, steps in proptest::collection::vec(step(), 0..60)) {
        let mut s = OrderState::default();
        let mut log = vec![];
        run(&mut s, &mut log, &OrderCommand::Place(placement()));
        let mut at = 2;
        let mut last = None;
        for st in steps.iter().cloned().chain(std::iter::repeat_n(Step::Drive(false), 40)) {
            at += 1;
            let cmd = match st {
                Step::Drive(fail) => match next_effect(&s) {
                    Some(e) => { let c = outcome(&e, lines, fail, at); last = Some(c.clone()); c }
                    None => continue,
                },
                Step::Duplicate => match &last { Some(c) => c.clone(), None => continue },
                Step::Cancel => OrderCommand::Cancel { at },
                Step::Fulfil => OrderCommand::Fulfil { at, by: "op".into() },
                Step::Refund => OrderCommand::RequestRefund { at, by: "op".into() },
            };
            run(&mut s, &mut log, &cmd);
            prop_assert_eq!(s.total_minor(), s.lines.iter().map(|l| l.unit_price_minor * i64::from(l.quantity) - l.discount_minor).sum::<i64>());
            prop_assert_eq!(s.subtotal_minor() - s.discount_minor(), s.total_minor());
            prop_assert!(s.lines.iter().all(|l| l.total_minor() >= 0));
        }
        // Every status change is an allowed edge.
        for w in s.history.windows(2) {
            prop_assert!(w[0].0.can_become(w[1].0), "illegal edge {:?} -> {:?}", w[0].0, w[1].0);
        }
        // The saga settled, and its end state is coherent.
        prop_assert!(s.is_settled(), "not settled: {:?}", s);
        match s.status {
            OrderStatus::Cancelled => {
                prop_assert!(s.failure.is_some());
                prop_assert!(!matches!(s.payment.status, PaymentStatus::Authorized | PaymentStatus::Captured));
                prop_assert!(s.lines.iter().all(|l| !matches!(l.stage, LineStage::Reserved | LineStage::Committed)));
                prop_assert!(s.cart_reopened, "a cancelled order must hand its cart back");
                prop_assert!(s.discounts.iter().flatten().all(|d| matches!(d.stage, RedemptionStage::Pending | RedemptionStage::Released)), "a cancelled order kept a redemption");
            }
            OrderStatus::Paid | OrderStatus::Fulfilled => {
                prop_assert!(s.lines.iter().all(|l| l.stage == LineStage::Committed));
                prop_assert_eq!(s.payment.status, PaymentStatus::Captured);
                prop_assert!(s.discounts.iter().flatten().all(|d| d.stage == RedemptionStage::Consumed), "a paid order did not consume its redemption");
            }
            OrderStatus::Refunded => prop_assert_eq!(s.payment.status, PaymentStatus::Refunded),
            other => prop_assert!(false, "unsettled status {:?}", other),
        }
        prop_assert_eq!(Order::replay(&log), s);
    }
}

#[test]
fn happy_path_reaches_paid_in_order() {
    let mut s = OrderState::default();
    let mut log = vec![];
    run(&mut s, &mut log, &OrderCommand::Place(placement()));
    let mut effects = vec![];
    while let Some(e) = next_effect(&s) {
        effects.push(e.clone());
        run(&mut s, &mut log, &outcome(&e, 2, false, 5));
    }
    assert_eq!(s.status, OrderStatus::Paid);
    let kinds: Vec<&str> = effects
        .iter()
        .map(|e| match e {
            Effect::LockCart { .. } => "lock",
            Effect::Reserve { .. } => "reserve",
            Effect::Authorize { .. } => "authorize",
            Effect::Capture { .. } => "capture",
            Effect::Commit { .. } => "commit",
            Effect::Price { .. } => "price",
            Effect::ReservePromotion { .. } => "reserve_promotion",
            Effect::ConsumePromotion { .. } => "consume_promotion",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "lock",
            "price",
            "reserve_promotion",
            "reserve",
            "reserve",
            "authorize",
            "capture",
            "commit",
            "commit",
            "consume_promotion"
        ]
    );
    // 2 lines: 1 x 100 and 2 x 100, the first 10 off.
    assert_eq!(
        (s.subtotal_minor(), s.discount_minor(), s.total_minor()),
        (300, 10, 290)
    );
    let statuses: Vec<_> = s.history.iter().map(|h| h.0).collect();
    assert_eq!(
        statuses,
        [
            OrderStatus::Pending,
            OrderStatus::Reserved,
            OrderStatus::Paid
        ]
    );
}

#[test]
fn decline_compensates_in_reverse() {
    let mut s = OrderState::default();
    let mut log = vec![];
    run(&mut s, &mut log, &OrderCommand::Place(placement()));
    let mut effects = vec![];
    while let Some(e) = next_effect(&s) {
        let fail = matches!(e, Effect::Authorize { .. });
        effects.push(e.clone());
        run(&mut s, &mut log, &outcome(&e, 1, fail, 5));
    }
    assert_eq!(s.status, OrderStatus::Cancelled);
    assert_eq!(
        s.failure.as_ref().unwrap().code,
        FailureCode::PaymentDeclined
    );
    assert!(matches!(effects[effects.len() - 2], Effect::Release { .. }));
    assert!(matches!(
        effects[effects.len() - 1],
        Effect::ReopenCart { .. }
    ));
}

#[test]
fn cancel_after_paid_is_rejected() {
    let mut s = OrderState::default();
    let mut log = vec![];
    run(&mut s, &mut log, &OrderCommand::Place(placement()));
    while let Some(e) = next_effect(&s) {
        run(&mut s, &mut log, &outcome(&e, 1, false, 5));
    }
    let err = Order::decide(&s, &OrderCommand::Cancel { at: 9 }).unwrap_err();
    assert_eq!(err.code, RejectionCode::InvalidTransition);
}

/// A `Place` of `base` as another request at `now` with fingerprint `fp` would send it.
fn retry(base: &OrderCommand, fp: [u8; 32], now: Millis) -> OrderCommand {
    let mut cmd = base.clone();
    if let OrderCommand::Place(p) | OrderCommand::PlaceVending { placement: p, .. } = &mut cmd {
        p.fingerprint = fp;
        p.placed_at = now;
        p.key_expires_at = now + 1_000_000;
        p.payment_method = "pm_another_token".into();
    }
    cmd
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// However far its saga got, a placed order answers a repeat `Place` by its key: the
    /// same request is a replay with no events, another body is `IdempotencyKeyReused`,
    /// and any request at or after `key_expires_at` is `IdempotencyKeyExpired`.
    #[test]
    fn a_placed_order_decides_a_repeat_place_by_its_key(
        vending_kind in any::<bool>(),
        steps in 0usize..12,
        fails in proptest::collection::vec(prop::bool::weighted(0.2), 12),
        other in any::<[u8; 32]>(),
        now in 1u64..2_000_000,
    ) {
        let place = if vending_kind { place_vending() } else { OrderCommand::Place(placement()) };
        let mut s = OrderState::default();
        let mut log = vec![];
        run(&mut s, &mut log, &place);
        for fail in fails.iter().take(steps) {
            let Some(e) = next_effect(&s) else { break };
            run(&mut s, &mut log, &outcome(&e, 1, *fail, 5));
        }
        let before = s.clone();
        let expires = placement().key_expires_at;
        let same = Order::decide(&s, &retry(&place, [7; 32], now));
        let different = Order::decide(&s, &retry(&place, other, now));
        if now >= expires {
            prop_assert_eq!(same.unwrap_err().code, RejectionCode::IdempotencyKeyExpired);
            prop_assert_eq!(different.unwrap_err().code, RejectionCode::IdempotencyKeyExpired);
        } else {
            prop_assert_eq!(same.unwrap(), vec![]);
            if other == [7; 32] {
                prop_assert_eq!(different.unwrap(), vec![]);
            } else {
                prop_assert_eq!(different.unwrap_err().code, RejectionCode::IdempotencyKeyReused);
            }
        }
        prop_assert_eq!(s, before, "deciding changes nothing");
    }
}

#[test]
fn a_first_place_keeps_the_fingerprint_and_the_key_expiry() {
    let p = placement();
    let events = Order::decide(&OrderState::default(), &OrderCommand::Place(p.clone())).unwrap();
    let s = Order::replay(&events);
    let kept = s.placement.expect("placed");
    assert_eq!(
        (kept.fingerprint, kept.key_expires_at),
        (p.fingerprint, p.key_expires_at)
    );
    // A cart order and a vending order under one id: the other kind is a different request.
    let err = Order::decide(&Order::replay(&events), &place_vending_with([8; 32])).unwrap_err();
    assert_eq!(err.code, RejectionCode::IdempotencyKeyReused);
}

fn place_vending_with(fp: [u8; 32]) -> OrderCommand {
    retry(&place_vending(), fp, 2)
}
