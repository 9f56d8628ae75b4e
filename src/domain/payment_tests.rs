//! Tests of [`super`] (payment.rs): the intent's money rules and the idempotency of its
//! steps, as properties over random call sequences with random clocks and TTLs.

use super::*;
use proptest::prelude::*;

const INTENT: &str = "pi_test";

fn op() -> impl Strategy<Value = PaymentOp> {
    let auth = prop_oneof![Just(INTENT.to_owned()), Just("pi_other".to_owned())];
    prop_oneof![
        (-5i64..1000, prop::bool::ANY).prop_map(|(a, d)| PaymentOp::Authorize {
            intent_id: INTENT.into(),
            amount_minor: a,
            last4: "4242".into(),
            decline: d.then(|| "card_declined".into())
        }),
        (auth.clone(), 0i64..1200).prop_map(|(authorization, a)| PaymentOp::Capture {
            authorization,
            amount_minor: a
        }),
        auth.clone()
            .prop_map(|authorization| PaymentOp::Void { authorization }),
        (auth, 0i64..1200).prop_map(|(authorization, a)| PaymentOp::Refund {
            authorization,
            amount_minor: a
        }),
    ]
}

/// A call with a clock step (0..300 ms after the previous one) and a TTL of 0..500 ms.
fn call() -> impl Strategy<Value = (PaymentOp, Millis, Millis)> {
    (op(), 0u64..300, 0u64..500)
}

fn run(s: &mut PaymentState, cmd: &PaymentCommand, log: &mut Vec<PaymentEvent>) -> bool {
    match Payment::decide(s, cmd) {
        Ok(events) => {
            for e in events {
                Payment::apply(s, &e);
                log.push(e);
            }
            true
        }
        Err(_) => false,
    }
}

proptest! {
    #[test]
    fn never_captures_or_refunds_more_than_authorized_nor_holds_twice(
        calls in proptest::collection::vec(call(), 0..40)
    ) {
        let mut s = PaymentState::default();
        let mut log = vec![];
        let mut now = 1_000;
        for (op, step, ttl_ms) in calls {
            now += step;
            run(&mut s, &PaymentCommand::Call { op, now, ttl_ms }, &mut log);
            prop_assert!(s.intent.captured_minor <= s.intent.amount_minor);
            prop_assert!(s.intent.refunded_minor <= s.intent.captured_minor);
            prop_assert!(s.outcomes.len() <= PaymentStep::ALL.len());
        }
        let holds = log.iter().filter(|e| matches!(e, PaymentEvent::Authorized { .. } | PaymentEvent::Declined { .. })).count();
        prop_assert!(holds <= 1, "one hold at most, whatever expired: {log:?}");
        let captures = log.iter().filter(|e| matches!(e, PaymentEvent::Captured { .. })).count();
        prop_assert!(captures <= 1, "one capture at most: {log:?}");
        prop_assert_eq!(Payment::replay(&log), s);
    }

    /// A step's first final outcome is replayed, unchanged and without events, until its
    /// TTL has passed; then the call is a new request and is recorded afresh.
    #[test]
    fn a_recorded_outcome_is_replayed_within_its_ttl_and_only_then(
        before in proptest::collection::vec(call(), 0..10),
        op in op(),
        ttl_ms in 1u64..10_000,
        later in 0u64..20_000,
    ) {
        let mut s = PaymentState::default();
        let mut log = vec![];
        let mut now = 1_000;
        for (op, step, ttl_ms) in before {
            now += step;
            run(&mut s, &PaymentCommand::Call { op, now, ttl_ms }, &mut log);
        }
        now += 1_000_000; // whatever was recorded before has expired
        let step = op.step();
        if !run(&mut s, &PaymentCommand::Call { op: op.clone(), now, ttl_ms }, &mut log) {
            // Addressed to an intent the payment does not hold: rejected, not recorded.
            prop_assert!(s.outcomes.get(&step).is_none_or(|r| r.at < now));
            return Ok(());
        }
        let first = s.outcomes.get(&step).cloned().expect("recorded");
        prop_assert_eq!(first.at, now);
        let again = Payment::decide(&s, &PaymentCommand::Call { op, now: now + later, ttl_ms }).unwrap();
        if later < ttl_ms {
            prop_assert!(again.is_empty(), "replayed: {again:?}");
        } else {
            let recorded = again.iter().any(|e| matches!(e, PaymentEvent::Recorded { at, .. } if *at == now + later));
            prop_assert!(recorded, "a new request: {again:?}");
        }
    }
}

fn authorize(decline: Option<&str>) -> PaymentCommand {
    PaymentCommand::Call {
        op: PaymentOp::Authorize {
            intent_id: INTENT.into(),
            amount_minor: 500,
            last4: "4242".into(),
            decline: decline.map(str::to_owned),
        },
        now: 10,
        ttl_ms: 1_000,
    }
}

#[test]
fn a_decline_is_a_recorded_outcome_and_an_unknown_intent_is_not_recorded() {
    let mut s = PaymentState::default();
    let mut log = vec![];
    assert!(run(&mut s, &authorize(Some("card_declined")), &mut log));
    assert_eq!(
        s.outcome(PaymentStep::Authorize),
        Some(&Outcome::Declined("card_declined".into()))
    );
    let capture = PaymentCommand::Call {
        op: PaymentOp::Capture {
            authorization: "pi_elsewhere".into(),
            amount_minor: 1,
        },
        now: 20,
        ttl_ms: 1_000,
    };
    let r = Payment::decide(&s, &capture).unwrap_err();
    assert_eq!(r.code, RejectionCode::NotFound);
    // The intent refuses a capture of a declined payment: final, recorded.
    let capture = PaymentCommand::Call {
        op: PaymentOp::Capture {
            authorization: INTENT.into(),
            amount_minor: 1,
        },
        now: 20,
        ttl_ms: 1_000,
    };
    assert!(run(&mut s, &capture, &mut log));
    assert!(matches!(
        s.outcome(PaymentStep::Capture),
        Some(Outcome::Invalid(_))
    ));
}

#[test]
fn adopting_takes_over_an_empty_payment_only() {
    let intent = IntentState {
        status: IntentStatus::RequiresCapture,
        amount_minor: 700,
        last4: "4242".into(),
        ..Default::default()
    };
    let adopt = PaymentCommand::Adopt {
        intent_id: Some(INTENT.into()),
        intent: intent.clone(),
        outcomes: vec![(
            PaymentStep::Authorize,
            Recorded {
                outcome: Outcome::Ok(INTENT.into()),
                at: 5,
            },
        )],
    };
    let mut s = PaymentState::default();
    let mut log = vec![];
    assert!(run(&mut s, &adopt, &mut log));
    assert_eq!(s.intent, intent);
    assert_eq!(Payment::decide(&s, &adopt).unwrap(), vec![]);
    // The adopted authorization replays; no second hold.
    assert_eq!(Payment::decide(&s, &authorize(None)).unwrap(), vec![]);
}
