//! Tests of [`super`] (simulator.rs), kept beside it so the module stays readable.

use super::*;
use crate::store::StoreOptions;

/// A simulator on a fresh store (keep the TempDir alive for the test).
fn simulator() -> (tempfile::TempDir, Store, Simulator) {
    simulator_with_ttl(DEFAULT_TTL)
}

fn simulator_with_ttl(ttl: Duration) -> (tempfile::TempDir, Store, Simulator) {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        cache_capacity_bytes: 8 << 20,
        group_commit_max_batch: 64,
        group_commit_queue: 64,
    };
    let store = Store::open(dir.path(), &opts).unwrap();
    let sim = Simulator::new(&store, Duration::ZERO)
        .unwrap()
        .with_ttl(ttl);
    (dir, store, sim)
}

fn created_at(tree: &sled::Tree, key: &str, method: bool) -> Option<Millis> {
    let bytes = tree.get(key).unwrap().expect("record");
    if method {
        decode_stamped::<StoredMethod>(&bytes).unwrap().1
    } else {
        decode_stamped::<StoredOutcome>(&bytes).unwrap().1
    }
}

#[tokio::test]
async fn the_sweep_removes_expired_records_keeps_fresh_ones_and_is_bounded() {
    let (_dir, _store, sim) = simulator_with_ttl(Duration::from_secs(60));
    let t0 = crate::clock::now_ms();
    let mut tokens = vec![];
    for i in 0..5 {
        let m = sim
            .tokenize(&card("4242424242424242"), 2026, 11)
            .await
            .unwrap();
        sim.authorize(format!("k{i}"), m.token.clone(), 100, "USD".into())
            .await
            .unwrap();
        tokens.push(m.token);
    }
    assert!(created_at(&sim.methods, &tokens[0], true).is_some_and(|t| t >= t0));
    assert!(created_at(&sim.keys, "k0", false).is_some_and(|t| t >= t0));
    // Fresh: nothing goes, however far the sweep looks.
    let s = sim.sweep(t0 + 30_000, 1000).await.unwrap();
    assert_eq!((s.scanned, s.removed, s.stamped), (10, 0, 0));
    // Expired: at most 3 per tree per cycle.
    let later = t0 + 120_000;
    let first = sim.sweep(later, 3).await.unwrap();
    assert_eq!((first.scanned, first.removed), (6, 6));
    assert_eq!((sim.methods.len(), sim.keys.len()), (2, 2));
    let second = sim.sweep(later, 3).await.unwrap();
    assert_eq!(second.removed, 4);
    assert_eq!((sim.methods.len(), sim.keys.len()), (0, 0));
    assert_eq!(sim.sweep(later, 3).await.unwrap(), Swept::default());
}

#[tokio::test]
async fn an_expired_key_is_a_new_request_and_old_records_are_stamped_by_the_sweep() {
    let (_dir, _store, sim) = simulator_with_ttl(Duration::from_secs(60));
    let now = crate::clock::now_ms();
    // An outcome stored two minutes ago has expired: not replayed.
    let outcome = StoredOutcome::Declined("card_declined".into());
    sim.keys
        .insert("old", encode_stamped(&outcome, now - 120_000))
        .unwrap();
    assert_eq!(sim.replay("old").unwrap(), None, "expired: a new request");
    sim.keys
        .insert("new", encode_stamped(&outcome, now))
        .unwrap();
    assert!(matches!(
        sim.replay("new").unwrap(),
        Some(Err(PaymentError::Declined { .. }))
    ));
    // Records from before records carried a time still decode and replay...
    sim.keys.insert("legacy", codec::encode(&outcome)).unwrap();
    let method = StoredMethod {
        last4: "4242".into(),
        decline: None,
        processing_error: false,
    };
    sim.methods
        .insert("pm_legacy", codec::encode(&method))
        .unwrap();
    assert!(sim.replay("legacy").unwrap().is_some());
    // ...and the sweep stamps them with its time, so they expire one TTL later.
    let s = sim.sweep(now, 100).await.unwrap();
    assert_eq!(
        (s.removed, s.stamped),
        (1, 2),
        "old removed; legacy stamped"
    );
    assert_eq!(created_at(&sim.keys, "legacy", false), Some(now));
    assert_eq!(created_at(&sim.methods, "pm_legacy", true), Some(now));
    assert!(sim.replay("legacy").unwrap().is_some());
    let s = sim.sweep(now + 60_000, 100).await.unwrap();
    assert_eq!(s.removed, 3, "legacy, pm_legacy and new");
    // A reused key after expiry runs again and is recorded afresh.
    let m = sim
        .tokenize(&card("4242424242424242"), 2026, 11)
        .await
        .unwrap();
    let a = sim
        .authorize("old".into(), m.token, 100, "USD".into())
        .await
        .unwrap();
    assert_eq!(a, intent_of("old"));
    assert!(created_at(&sim.keys, "old", false).is_some_and(|t| t >= now));
}

fn card(n: &str) -> CardDetails {
    CardDetails {
        card_number: n.into(),
        exp_month: 1,
        exp_year: 2031,
        cvc: "123".into(),
    }
}

#[tokio::test]
async fn idempotent_authorize_capture_and_declines() {
    let (_dir, store, sim) = simulator();
    let ok = sim
        .tokenize(&card("4242424242424242"), 2026, 11)
        .await
        .unwrap();
    assert_eq!(ok.last4, "4242");
    let a1 = sim
        .authorize("k1".into(), ok.token.clone(), 500, "USD".into())
        .await
        .unwrap();
    let a2 = sim
        .authorize("k1".into(), ok.token.clone(), 500, "USD".into())
        .await
        .unwrap();
    assert_eq!(a1, a2, "a repeated key replays the first outcome");
    sim.capture("c1".into(), a1.clone(), 500).await.unwrap();
    sim.capture("c1".into(), a1.clone(), 500).await.unwrap();
    let over = sim.capture("c2".into(), a1.clone(), 900).await;
    assert!(
        over.is_ok(),
        "a second capture of a captured intent is a no-op"
    );
    sim.refund("r1".into(), a1.clone(), 500).await.unwrap();
    let state = store.journal().load::<Payment>(&a1).unwrap().state;
    assert_eq!((state.captured_minor, state.refunded_minor), (500, 500));

    let bad = sim
        .tokenize(&card("4000000000000002"), 2026, 11)
        .await
        .unwrap();
    let d = sim
        .authorize("k2".into(), bad.token, 100, "USD".into())
        .await;
    assert_eq!(
        d,
        Err(PaymentError::Declined {
            code: "card_declined".into()
        })
    );
    let flaky = sim
        .tokenize(&card("4000000000000119"), 2026, 11)
        .await
        .unwrap();
    let e = sim
        .authorize("k3".into(), flaky.token, 100, "USD".into())
        .await;
    assert!(matches!(e, Err(PaymentError::Retryable { .. })));
    let v = sim.void("v1".into(), "pi_missing".into()).await;
    assert!(matches!(v, Err(PaymentError::Invalid { .. })));
}

#[tokio::test]
async fn a_crash_between_the_intent_and_its_key_record_replays_the_same_outcome() {
    let (_dir, _store, sim) = simulator();
    let ok = sim
        .tokenize(&card("4242424242424242"), 2026, 11)
        .await
        .unwrap();
    let bad = sim
        .tokenize(&card("4000000000009995"), 2026, 11)
        .await
        .unwrap();
    let first = sim
        .authorize("a".into(), ok.token.clone(), 700, "USD".into())
        .await
        .unwrap();
    let declined = sim
        .authorize("d".into(), bad.token.clone(), 700, "USD".into())
        .await;
    // The crash: the intents are on disk, the key records are not.
    sim.keys.remove("a").unwrap();
    sim.keys.remove("d").unwrap();
    let again = sim
        .authorize("a".into(), ok.token, 700, "USD".into())
        .await
        .unwrap();
    assert_eq!(again, first, "the retry lands on the same intent");
    sim.capture("c".into(), again, 700).await.unwrap();
    assert_eq!(
        sim.authorize("d".into(), bad.token, 700, "USD".into())
            .await,
        declined
    );
}
