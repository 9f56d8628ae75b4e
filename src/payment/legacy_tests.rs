//! Tests of [`super`] (legacy.rs): a store written the previous build's way (its
//! `pi_…` intents in the journal, its ledger and methods trees beside it) is folded into
//! payment entities, and an order in flight at the upgrade is not charged twice.

use super::*;
use crate::domain::payment::{IntentStatus, PaymentStep};
use crate::payment::simulator::intent_of;
use crate::payment::simulator::tests::{events_of, open_store, rig_on};
use crate::payment::{PaymentGateway, PaymentKey};
use serde::Serialize;

#[derive(Serialize)]
struct OldStamped<'a> {
    value: &'a Outcome,
    created_at: Millis,
}

/// Writes what the previous build wrote for an order: its intent's events, and its
/// ledger records (`None` time: a record from before records carried one).
async fn old_order(
    store: &Store,
    order: Uuid,
    intent: &[PaymentEvent],
    ledger: &[(PaymentStep, Outcome, Option<Millis>)],
) {
    // The order itself (only its presence in the journal matters to the fold).
    for seq in [1, 2] {
        store
            .journal()
            .put_raw_event(EntityKind::Order, &order.to_string(), seq, b"order")
            .unwrap();
    }
    if !intent.is_empty() {
        let stamped: Vec<_> = intent.iter().map(|e| (1, e.clone())).collect();
        store
            .journal()
            .append::<Payment>(&intent_of(order), 1, &stamped, None, &[])
            .await
            .unwrap();
    }
    let tree = store.tree(IDEMPOTENCY_TREE).unwrap();
    for (step, outcome, at) in ledger {
        let key = PaymentKey::new(order, *step).to_string();
        let bytes = match at {
            Some(t) => codec::encode(&OldStamped {
                value: outcome,
                created_at: *t,
            }),
            None => codec::encode(outcome),
        };
        tree.insert(key, bytes).unwrap();
    }
}

fn authorized() -> PaymentEvent {
    PaymentEvent::Authorized {
        amount_minor: 700,
        last4: "4242".into(),
    }
}

#[tokio::test]
async fn the_old_ledger_is_folded_once_and_an_order_in_flight_is_not_charged_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let now = crate::clock::now_ms();
    // Authorized, waiting for its capture.
    let held = Uuid::from_u128(10);
    old_order(
        &store,
        held,
        &[authorized()],
        &[(
            PaymentStep::Authorize,
            Outcome::Ok(intent_of(held)),
            Some(now - 1_000),
        )],
    )
    .await;
    // Captured; its ledger records from before records carried a time.
    let paid = Uuid::from_u128(11);
    old_order(
        &store,
        paid,
        &[authorized(), PaymentEvent::Captured { amount_minor: 700 }],
        &[
            (PaymentStep::Authorize, Outcome::Ok(intent_of(paid)), None),
            (PaymentStep::Capture, Outcome::Ok(intent_of(paid)), None),
        ],
    )
    .await;
    // Crashed between its intent and its key record: the intent alone.
    let crashed = Uuid::from_u128(12);
    old_order(&store, crashed, &[authorized()], &[]).await;
    // Declined.
    let declined = Uuid::from_u128(13);
    old_order(
        &store,
        declined,
        &[PaymentEvent::Declined {
            last4: "0002".into(),
            code: "card_declined".into(),
        }],
        &[(
            PaymentStep::Authorize,
            Outcome::Declined("card_declined".into()),
            Some(now),
        )],
    )
    .await;
    // An order that never reached its payment, a stray key, and a method record.
    let unpaid = Uuid::from_u128(14);
    old_order(&store, unpaid, &[], &[]).await;
    let ledger = store.tree(IDEMPOTENCY_TREE).unwrap();
    ledger
        .insert("k1", codec::encode(&Outcome::Ok("x".into())))
        .unwrap();
    store
        .tree(METHODS_TREE)
        .unwrap()
        .insert("pm_old", b"m".to_vec())
        .unwrap();
    drop(ledger);

    let folded = fold(&store, now).await.unwrap();
    assert_eq!(
        folded,
        Folded {
            adopted: 4,
            ledger_records: 5
        }
    );
    assert!(!store.has_tree(IDEMPOTENCY_TREE) && !store.has_tree(METHODS_TREE));
    assert!(events_of(&store, unpaid).is_empty());
    let state = |o: Uuid| {
        store
            .journal()
            .load::<Payment>(&o.to_string())
            .unwrap()
            .state
    };
    assert_eq!(state(held).intent.status, IntentStatus::RequiresCapture);
    assert_eq!(state(held).intent_id, Some(intent_of(held)));
    assert_eq!(state(paid).outcomes[&PaymentStep::Capture].at, now);
    assert_eq!(state(crashed).outcomes.len(), 0);
    // Once: a second start finds nothing to fold and changes nothing.
    assert_eq!(fold(&store, now).await.unwrap(), Folded::default());
    assert_eq!(events_of(&store, held).len(), 1);

    // The sagas resume on the new build: nothing is held or captured twice.
    let r = rig_on(store.clone()).await;
    let sim = r.simulator();
    let key = PaymentKey::new;
    let card = crate::payment::CardDetails {
        card_number: "4242424242424242".into(),
        exp_month: 1,
        exp_year: 2031,
        cvc: "123".into(),
    };
    let token = || async { sim.tokenize(&card, 2026, 11).await.unwrap().token };
    sim.capture(key(held, PaymentStep::Capture), intent_of(held), 700)
        .await
        .unwrap();
    sim.capture(key(paid, PaymentStep::Capture), intent_of(paid), 700)
        .await
        .unwrap();
    let again = sim
        .authorize(
            key(crashed, PaymentStep::Authorize),
            token().await,
            700,
            "USD".into(),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        intent_of(crashed),
        "the retry lands on the old intent"
    );
    let d = sim
        .authorize(
            key(declined, PaymentStep::Authorize),
            token().await,
            700,
            "USD".into(),
        )
        .await;
    assert_eq!(
        d,
        Err(crate::payment::PaymentError::Declined {
            code: "card_declined".into()
        })
    );
    let count = |o: Uuid, f: fn(&PaymentEvent) -> bool| {
        events_of(&store, o).iter().filter(|e| f(e)).count()
    };
    let captured = |e: &PaymentEvent| matches!(e, PaymentEvent::Captured { .. });
    let held_again = |e: &PaymentEvent| matches!(e, PaymentEvent::Authorized { .. });
    assert_eq!(count(held, captured), 1, "captured once, on the new build");
    assert_eq!(
        count(paid, captured),
        0,
        "already captured before the upgrade"
    );
    assert_eq!(count(crashed, held_again), 0, "no second hold");
    assert_eq!(state(held).intent.status, IntentStatus::Succeeded);
}
