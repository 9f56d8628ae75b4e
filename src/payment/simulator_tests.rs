//! Tests of [`super`] (simulator.rs), kept beside it so the module stays readable: the
//! simulator against a real payment kind runtime, router and store.

use super::*;
use crate::actors::entity::EntityConfig;
use crate::actors::NoBehavior;
use crate::domain::payment::{PaymentEvent, PaymentStep};
use crate::router::Router;
use crate::store::{Store, StoreOptions};
use crate::supervision::{KindRuntime, RestartPolicy};
use uuid::Uuid;

/// A store, and a router serving the payment kind on it.
pub(crate) struct Rig {
    pub store: Store,
    pub router: Router,
    _dir: Option<tempfile::TempDir>,
}

impl Rig {
    /// A simulator bound to this rig's router, without latency.
    pub(crate) fn simulator(&self) -> Simulator {
        let sim = Simulator::new(Duration::ZERO);
        sim.bind_client(Arc::new(self.router.clone()));
        sim
    }
}

pub(crate) fn open_store(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        &StoreOptions {
            cache_capacity_bytes: 8 << 20,
            group_commit_max_batch: 64,
            group_commit_queue: 1024,
            partitions: 64,
        },
    )
    .unwrap()
}

/// A router with the payment kind over `store`.
pub(crate) async fn rig_on(store: Store) -> Rig {
    let rt = KindRuntime::<Payment>::start(
        store.journal().clone(),
        Arc::new(NoBehavior),
        EntityConfig {
            snapshot_every: 100,
            idle_timeout: Duration::from_secs(300),
            effect_retry: Duration::from_millis(100),
            clock: crate::clock::system(),
        },
        RestartPolicy {
            max_restarts: 3,
            window: Duration::from_secs(60),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            quarantine: Duration::from_secs(1),
        },
        None,
    )
    .await
    .unwrap();
    let router = Router::builder(Duration::from_secs(5)).with(rt).build();
    Rig {
        store,
        router,
        _dir: None,
    }
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut r = rig_on(open_store(dir.path())).await;
    r._dir = Some(dir);
    r
}

pub(crate) fn events_of(store: &Store, order: Uuid) -> Vec<PaymentEvent> {
    store
        .journal()
        .events::<Payment>(&order.to_string(), 0, 1000)
        .unwrap()
        .into_iter()
        .map(|(_, _, e)| e)
        .collect()
}

fn card(n: &str) -> CardDetails {
    CardDetails {
        card_number: n.into(),
        exp_month: 1,
        exp_year: 2031,
        cvc: "123".into(),
    }
}

fn key(order: Uuid, step: PaymentStep) -> PaymentKey {
    PaymentKey::new(order, step)
}

#[tokio::test]
async fn idempotent_authorize_capture_and_declines_live_in_the_orders_payment() {
    let r = rig().await;
    let sim = r.simulator();
    let order = Uuid::from_u128(1);
    let ok = sim
        .tokenize(&card("4242424242424242"), 2026, 11)
        .await
        .unwrap();
    assert_eq!(ok.last4, "4242");
    let auth = key(order, PaymentStep::Authorize);
    let a1 = sim
        .authorize(auth, ok.token.clone(), 500, "USD".into())
        .await
        .unwrap();
    let a2 = sim
        .authorize(auth, ok.token.clone(), 500, "USD".into())
        .await
        .unwrap();
    assert_eq!(a1, a2, "a repeated key replays the first outcome");
    assert_eq!(a1, intent_of(order));
    let cap = key(order, PaymentStep::Capture);
    sim.capture(cap, a1.clone(), 500).await.unwrap();
    sim.capture(cap, a1.clone(), 500).await.unwrap();
    sim.refund(key(order, PaymentStep::Refund), a1.clone(), 500)
        .await
        .unwrap();
    let state = r
        .store
        .journal()
        .load::<Payment>(&order.to_string())
        .unwrap()
        .state;
    assert_eq!(
        (state.intent.captured_minor, state.intent.refunded_minor),
        (500, 500)
    );
    let evs = events_of(&r.store, order);
    let n = |f: fn(&PaymentEvent) -> bool| evs.iter().filter(|e| f(e)).count();
    assert_eq!(n(|e| matches!(e, PaymentEvent::Authorized { .. })), 1);
    assert_eq!(n(|e| matches!(e, PaymentEvent::Captured { .. })), 1);
    assert_eq!(n(|e| matches!(e, PaymentEvent::Recorded { .. })), 3);

    let declined = Uuid::from_u128(2);
    let bad = sim
        .tokenize(&card("4000000000000002"), 2026, 11)
        .await
        .unwrap();
    let d = sim
        .authorize(
            key(declined, PaymentStep::Authorize),
            bad.token,
            100,
            "USD".into(),
        )
        .await;
    assert_eq!(
        d,
        Err(PaymentError::Declined {
            code: "card_declined".into()
        })
    );
    // A retryable error is not recorded: the order's payment stays empty.
    let flaky_order = Uuid::from_u128(3);
    let flaky = sim
        .tokenize(&card("4000000000000119"), 2026, 11)
        .await
        .unwrap();
    let e = sim
        .authorize(
            key(flaky_order, PaymentStep::Authorize),
            flaky.token,
            100,
            "USD".into(),
        )
        .await;
    assert!(matches!(e, Err(PaymentError::Retryable { .. })));
    assert!(events_of(&r.store, flaky_order).is_empty());
    // An intent the order's payment does not hold: invalid, and nothing recorded.
    let v = sim
        .void(
            key(Uuid::from_u128(4), PaymentStep::Void),
            "pi_missing".into(),
        )
        .await;
    assert!(matches!(v, Err(PaymentError::Invalid { .. })));
    assert!(events_of(&r.store, Uuid::from_u128(4)).is_empty());
    // No tree outside the journal.
    assert!(!r.store.has_tree(crate::payment::legacy::IDEMPOTENCY_TREE));
    assert!(!r.store.has_tree(crate::payment::legacy::METHODS_TREE));
}

#[tokio::test]
async fn an_expired_key_is_a_new_request_that_lands_on_the_same_intent() {
    let r = rig().await;
    // A TTL of zero: every call is a new request.
    let sim = r.simulator().with_ttl(Duration::ZERO);
    let order = Uuid::from_u128(7);
    let m = sim
        .tokenize(&card("4242424242424242"), 2026, 11)
        .await
        .unwrap();
    let auth = key(order, PaymentStep::Authorize);
    let first = sim
        .authorize(auth, m.token.clone(), 300, "USD".into())
        .await
        .unwrap();
    let again = sim
        .authorize(auth, m.token, 300, "USD".into())
        .await
        .unwrap();
    assert_eq!(first, again);
    let evs = events_of(&r.store, order);
    let holds = evs
        .iter()
        .filter(|e| matches!(e, PaymentEvent::Authorized { .. }))
        .count();
    let recorded = evs
        .iter()
        .filter(|e| matches!(e, PaymentEvent::Recorded { .. }))
        .count();
    assert_eq!(
        (holds, recorded),
        (1, 2),
        "one hold, recorded twice: {evs:?}"
    );
}

#[tokio::test]
async fn a_token_without_its_method_is_refused() {
    let r = rig().await;
    let sim = r.simulator();
    let order = Uuid::from_u128(8);
    let e = sim
        .authorize(
            key(order, PaymentStep::Authorize),
            format!("pm_{}", Uuid::new_v4().simple()),
            100,
            "USD".into(),
        )
        .await;
    assert!(matches!(e, Err(PaymentError::Invalid { .. })), "{e:?}");
    assert!(events_of(&r.store, order).is_empty());
}

#[tokio::test]
async fn an_unreachable_ledger_is_unavailable_not_a_failed_attempt() {
    // No router yet (the node is starting): the saga re-drives later with the same key.
    let sim = Simulator::new(Duration::ZERO);
    let m = sim
        .tokenize(&card("4242424242424242"), 2026, 11)
        .await
        .unwrap();
    let e = sim
        .authorize(
            key(Uuid::from_u128(9), PaymentStep::Authorize),
            m.token,
            100,
            "USD".into(),
        )
        .await;
    assert!(matches!(e, Err(PaymentError::Unavailable { .. })), "{e:?}");
}
