//! The router's deadline and admission rules against a real kind runtime and store:
//! a refused request queues nothing, a message dequeued late is dropped unapplied, a
//! timed-out command is never applied later, and a started one still gets its answer.

use super::{RouteError, Router};
use crate::actors::admission::Ticket;
use crate::actors::entity::EntityConfig;
use crate::actors::{Behavior, Effects, EntityMsg, NoBehavior};
use crate::clock::{Clock, ManualClock};
use crate::domain::cart::{Cart, CartCommand, CartEvent, CartState};
use crate::domain::Sku;
use crate::store::{Journal, Store, StoreOptions};
use crate::supervision::registry::{Live, Lookup};
use crate::supervision::{KindRuntime, RestartPolicy};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

struct Setup {
    router: Router,
    rt: Arc<KindRuntime<Cart>>,
    journal: Journal,
    _dir: tempfile::TempDir,
}

async fn setup(ask: Duration, max_pending: usize, behavior: Arc<dyn Behavior<Cart>>) -> Setup {
    setup_with(ask, max_pending, behavior, crate::clock::system()).await
}

async fn setup_with(
    ask: Duration,
    max_pending: usize,
    behavior: Arc<dyn Behavior<Cart>>,
    clock: Arc<dyn Clock>,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        &StoreOptions {
            cache_capacity_bytes: 8 << 20,
            group_commit_max_batch: 64,
            group_commit_queue: 1024,
            partitions: 64,
        },
    )
    .unwrap();
    let rt = KindRuntime::<Cart>::start(
        store.journal().clone(),
        behavior,
        EntityConfig {
            snapshot_every: 100,
            idle_timeout: Duration::from_secs(300),
            effect_retry: Duration::from_millis(100),
            clock,
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
    let router = Router::builder(ask)
        .with(rt.clone())
        .max_pending(max_pending)
        .build();
    Setup {
        router,
        rt,
        journal: store.journal().clone(),
        _dir: dir,
    }
}

fn add(sku: &str) -> CartCommand {
    CartCommand::AddItem {
        sku: Sku::parse(sku).unwrap(),
        quantity: 1,
        unit_price_minor: 100,
    }
}

fn skus(state: &CartState) -> Vec<String> {
    state.lines.keys().map(|s| s.as_str().to_owned()).collect()
}

impl Setup {
    async fn cart(&self) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.router
            .command::<Cart>(&id, CartCommand::Create { owner: None })
            .await
            .unwrap();
        id
    }

    fn live(&self, id: &str) -> Live<EntityMsg<Cart>> {
        match self.rt.registry.lookup(id) {
            Lookup::Ready(live) => live,
            _ => panic!("cart {id} is not active"),
        }
    }

    /// Polls (bounded) until the entity has no message in flight.
    async fn drained(&self, id: &str) {
        let live = self.live(id);
        for _ in 0..200 {
            if live.pending.count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{} messages still counted in flight", live.pending.count());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_at_max_pending_refuses_before_queueing() {
    let t = setup(Duration::from_secs(5), 2, Arc::new(NoBehavior)).await;
    let id = t.cart().await;
    // The actor answers before it uncounts the message: wait for it, or the creation
    // could still hold one of the two slots taken below.
    t.drained(&id).await;
    let live = t.live(&id);
    let held = [
        live.pending.try_admit(2).unwrap(),
        live.pending.try_admit(2).unwrap(),
    ];

    let refused = t.router.command::<Cart>(&id, add("A")).await;
    assert!(
        matches!(refused, Err(RouteError::Overloaded { retry_after }) if !retry_after.is_zero()),
        "{:?}",
        refused.err()
    );
    assert_eq!(
        live.pending.count(),
        2,
        "the refused request was not queued"
    );

    drop(held);
    let applied = t.router.command::<Cart>(&id, add("A")).await.unwrap();
    assert_eq!(skus(&applied.state), ["A"]);
    t.drained(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_dequeued_after_its_deadline_is_dropped_unapplied() {
    let t = setup(Duration::from_secs(5), 8, Arc::new(NoBehavior)).await;
    let id = t.cart().await;
    let live = t.live(&id);
    let guard = live.pending.try_admit(8).unwrap();
    let late = tokio::time::Instant::now() - Duration::from_millis(1);
    let (ticket, claim) = Ticket::new(late, guard);
    let (tx, rx) = tokio::sync::oneshot::channel();
    live.actor
        .send_message(EntityMsg::Command(add("A"), tx.into(), ticket))
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("the actor drops the message promptly");
    assert!(answer.is_err(), "an expired command gets no reply");
    assert!(claim.abandon(), "and is marked abandoned, not started");
    let state = t.router.get::<Cart>(&id).await.unwrap();
    assert!(state.lines.is_empty(), "it was not applied: {state:?}");
    t.drained(&id).await;
}

/// Blocks the first persisted `QuantitySet` of sku "SLOW" until released.
#[derive(Default)]
struct Gate {
    entered: AtomicBool,
    released: Mutex<bool>,
    cv: Condvar,
}

impl Behavior<Cart> for Gate {
    fn on_persisted(&self, _id: &str, events: &[CartEvent], _after: &CartState) {
        let slow = events
            .iter()
            .any(|e| matches!(e, CartEvent::QuantitySet { sku, .. } if sku.as_str() == "SLOW"));
        if !slow || self.entered.swap(true, Ordering::AcqRel) {
            return;
        }
        let released = self.released.lock().unwrap();
        // Bounded: a test that never releases still ends.
        let _ = self
            .cv
            .wait_timeout_while(released, Duration::from_secs(10), |r| !*r)
            .unwrap();
    }
}

impl Gate {
    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_command_is_never_applied_and_a_started_one_still_answers() {
    let gate = Arc::new(Gate::default());
    let t = setup(Duration::from_millis(300), 8, gate.clone()).await;
    let id = t.cart().await;

    let router = t.router.clone();
    let slow_id = id.clone();
    let slow = tokio::spawn(async move { router.command::<Cart>(&slow_id, add("SLOW")).await });
    for _ in 0..500 {
        if gate.entered.load(Ordering::Acquire) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        gate.entered.load(Ordering::Acquire),
        "the slow command started"
    );

    // Queued behind the blocked command past its deadline: abandoned, so 504.
    let queued = t.router.command::<Cart>(&id, add("LATE")).await;
    assert!(
        matches!(queued, Err(RouteError::Timeout)),
        "{:?}",
        queued.err()
    );

    // The slow command's own deadline has passed too, but it had started: its caller
    // waits for it and gets the applied answer, not a 504.
    gate.release();
    let applied = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("bounded")
        .unwrap()
        .expect("a started command answers past its deadline");
    assert_eq!(skus(&applied.state), ["SLOW"]);

    t.drained(&id).await;
    let state = t.router.get::<Cart>(&id).await.unwrap();
    assert_eq!(skus(&state), ["SLOW"], "the timed-out command was dropped");
}

/// While a cart holds a line "FWD", adds "GOT" to the cart `target` through the client
/// its effects are handed, notes the effect's clock, then removes "FWD".
struct Forward {
    target: Mutex<Option<String>>,
    seen_at: Mutex<Vec<u64>>,
}

impl Behavior<Cart> for Forward {
    fn next_effect(
        &self,
        _id: &str,
        state: &CartState,
        effects: &Effects,
    ) -> Option<BoxFuture<'static, Option<CartCommand>>> {
        let fwd = Sku::parse("FWD").unwrap();
        if !state.lines.contains_key(&fwd) {
            return None;
        }
        let target = self.target.lock().unwrap().clone()?;
        self.seen_at.lock().unwrap().push(effects.clock.now_ms());
        let client = effects.client.clone();
        Some(Box::pin(async move {
            client.command::<Cart>(&target, add("GOT")).await.ok()?;
            Some(CartCommand::RemoveItem { sku: fwd })
        }))
    }
}

/// One way to reach an entity: an effect reaches another entity through the client the
/// router bound to its kind at build (no router handed in late), and the shell and its
/// effects read the injected clock, so a test drives time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_effect_reaches_another_entity_through_the_bound_client_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(42_000));
    let forward = Arc::new(Forward {
        target: Mutex::new(None),
        seen_at: Mutex::new(vec![]),
    });
    let t = setup_with(Duration::from_secs(5), 8, forward.clone(), clock.clone()).await;
    let target = t.cart().await;
    *forward.target.lock().unwrap() = Some(target.clone());
    let source = t.cart().await;

    clock.advance(1_000);
    t.router.command::<Cart>(&source, add("FWD")).await.unwrap();
    let mut reached = false;
    for _ in 0..500 {
        let got = t.router.get::<Cart>(&target).await.unwrap();
        let done = t.router.get::<Cart>(&source).await.unwrap();
        if skus(&got) == ["GOT"] && done.lines.is_empty() {
            reached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(reached, "the effect reached the target and reported back");
    assert_eq!(*forward.seen_at.lock().unwrap(), [43_000]);

    // Every event is stamped by the injected clock, not the wall clock.
    let stamps = |id: &str| -> Vec<u64> {
        t.journal
            .events::<Cart>(id, 0, 100)
            .unwrap()
            .into_iter()
            .map(|(_, at, _)| at)
            .collect()
    };
    assert_eq!(stamps(&target), [42_000, 43_000], "created, then GOT");
    assert_eq!(
        stamps(&source),
        [42_000, 43_000, 43_000],
        "created, FWD, removed"
    );
}

/// Wants a timer at 50 s (manual time) until the cart holds "WOKE"; the timer adds it.
#[derive(Default)]
struct Alarm {
    woken_at: Mutex<Vec<u64>>,
}

impl Behavior<Cart> for Alarm {
    fn next_wakeup(&self, state: &CartState) -> Option<u64> {
        let woke = Sku::parse("WOKE").unwrap();
        (state.created && !state.lines.contains_key(&woke)).then_some(50_000)
    }
    fn on_wakeup(&self, _state: &CartState, now: u64) -> Option<CartCommand> {
        self.woken_at.lock().unwrap().push(now);
        Some(add("WOKE"))
    }
}

/// The shell's timers read the injected clock: a wake-up due at 50 s does not fire at
/// 42 s, and fires once the test moves the clock past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_timer_fires_when_the_injected_clock_reaches_it() {
    let clock = Arc::new(ManualClock::new(42_000));
    let alarm = Arc::new(Alarm::default());
    let t = setup_with(Duration::from_secs(5), 8, alarm.clone(), clock.clone()).await;
    let id = t.cart().await;
    t.router.command::<Cart>(&id, add("A")).await.unwrap();
    let state = t.router.get::<Cart>(&id).await.unwrap();
    assert_eq!(skus(&state), ["A"], "not woken at 42 s");

    clock.set(50_000);
    // A change re-reads the wake-up against the clock and brings the timer forward.
    t.router.command::<Cart>(&id, add("B")).await.unwrap();
    let mut woke = vec![];
    for _ in 0..300 {
        woke = skus(&t.router.get::<Cart>(&id).await.unwrap());
        if woke.contains(&"WOKE".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(woke, ["A", "B", "WOKE"]);
    assert_eq!(
        *alarm.woken_at.lock().unwrap(),
        [50_000],
        "the timer read the clock"
    );
}
