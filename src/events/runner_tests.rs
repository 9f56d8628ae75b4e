//! The runner over a real store: offsets are durable and move only past what the
//! handler took, a failing handler is retried with backoff, and a reset rebuilds the
//! same records.

use super::*;
use crate::domain::user::{User, UserEvent};
use crate::events::feed::{Cursor, Feed};
use crate::events::PublicEvent;
use crate::store::partition_store::Record;
use crate::store::{Store, StoreOptions};
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicUsize, Ordering};

const PARTITIONS: u32 = 16;

fn store(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        &StoreOptions {
            cache_capacity_bytes: 16 << 20,
            group_commit_max_batch: 1024,
            group_commit_queue: 1024,
            partitions: PARTITIONS,
        },
    )
    .unwrap()
}

fn config() -> ProjectionsConfig {
    ProjectionsConfig {
        poll_ms: 10,
        batch: 3,
        retry_max_ms: 40,
    }
}

async fn register_one(store: &Store, id: &str, at: u64) {
    let ev = UserEvent::Registered {
        email: format!("{id}@example.com"),
        password_hash: "h".into(),
        at,
    };
    store
        .journal()
        .append::<User>(id, 1, &[(at, ev)], None, &[])
        .await
        .unwrap();
}

async fn register(store: &Store, n: usize) {
    for i in 0..n {
        register_one(store, &format!("user-{i}"), 1_000 + i as u64).await;
    }
}

/// Fails its first `fail` calls, then records every event id it is given.
struct Flaky {
    fail: AtomicUsize,
    seen: Mutex<Vec<String>>,
}

impl Flaky {
    fn new(fail: usize) -> Arc<Self> {
        Arc::new(Self {
            fail: AtomicUsize::new(fail),
            seen: Mutex::new(Vec::new()),
        })
    }
    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl EventHandler for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>> {
        Box::pin(async move {
            let left = self.fail.load(Ordering::SeqCst);
            if left > 0 {
                self.fail.store(left - 1, Ordering::SeqCst);
                return Err(HandlerError::Unavailable("the sink is down".into()));
            }
            self.seen.lock().unwrap().push(ev.id.clone());
            Ok(Vec::new())
        })
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn lag(p: &Projections, name: &str) -> u64 {
    let s = p.status().unwrap();
    let s = s.iter().find(|s| s.name == name).unwrap();
    s.partitions.iter().map(|l| l.last_seq - l.offset).sum()
}

#[tokio::test]
async fn a_failing_handler_is_retried_and_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    register(&store, 12).await;
    let flaky = Flaky::new(3);
    let p = Projections::new(
        store.journal().clone(),
        Arc::new(Alone(PARTITIONS)),
        config(),
        0,
        vec![flaky.clone()],
    );
    let task = p.start();
    until("every user event", || flaky.seen().len() >= 12).await;
    until("no lag", || lag(&p, "flaky") == 0).await;
    // The pass that stored the last offset marks the projection running just after
    // (under its lock, once the step returned): wait for that, bounded.
    until("running again", || {
        p.status().unwrap()[0].state == State::Running
    })
    .await;
    let mut seen = flaky.seen();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 12, "each event once: {seen:?}");
    let status = p.status().unwrap();
    assert_eq!(status[0].state, State::Running);
    assert_eq!(status[0].events, 12);
    task.abort();

    // A new runner over the same store starts from the stored offsets: nothing again,
    // and only the new event.
    register_one(&store, "user-late", 5_000).await;
    let again = Flaky::new(0);
    let p2 = Projections::new(
        store.journal().clone(),
        Arc::new(Alone(PARTITIONS)),
        config(),
        0,
        vec![again.clone()],
    );
    let task = p2.start();
    until("no lag after the restart", || lag(&p2, "flaky") == 0).await;
    let seen = again.seen();
    assert_eq!(
        seen.len(),
        1,
        "only the new event, not those before: {seen:?}"
    );
    assert!(!flaky.seen().contains(&seen[0]));
    task.abort();
}

#[tokio::test]
async fn records_are_written_with_the_offset_and_a_reset_rebuilds_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    register(&store, 9).await;
    let p = Projections::new(
        store.journal().clone(),
        Arc::new(Alone(PARTITIONS)),
        config(),
        0,
        vec![Arc::new(Feed)],
    );
    let task = p.start();
    until("the feed to catch up", || lag(&p, "feed") == 0).await;
    let all: Vec<u32> = (0..PARTITIONS).collect();
    let before = p.feed(&Cursor::default(), &[], 100).unwrap();
    assert_eq!(before.events.len(), 9);
    // Every stored offset covers exactly the records kept for it.
    for part in &all {
        let offset = store.journal().partition(*part).offset("feed").unwrap();
        let kept = store
            .journal()
            .partition(*part)
            .projected("feed", None, 100)
            .unwrap();
        assert_eq!(offset.seq as usize, kept.len(), "partition {part}");
    }
    p.reset("feed").unwrap();
    assert_eq!(p.status().unwrap()[0].state, State::Resetting);
    until("the reset to apply", || {
        p.status().unwrap()[0].state == State::Running && lag(&p, "feed") == 0
    })
    .await;
    let after = p.feed(&Cursor::default(), &[], 100).unwrap();
    assert_eq!(
        after.events, before.events,
        "a reset rebuilds the same feed"
    );
    assert_eq!(p.reset("nope"), Err(ResetError::Unknown("nope".into())));
    task.abort();
}

#[test]
fn statuses_of_every_node_merge_into_one_per_projection() {
    let lag = |partition, offset, last_seq| PartitionLag {
        partition,
        offset,
        last_seq,
        lag_ms: 0,
    };
    let node = |state: State, events, parts: Vec<PartitionLag>| {
        vec![Status {
            name: "feed".into(),
            state,
            events,
            partitions: parts,
        }]
    };
    let merged = merge_status(vec![
        node(State::Running, 5, vec![lag(3, 4, 4), lag(0, 1, 2)]),
        node(
            State::Retrying {
                error: "down".into(),
            },
            7,
            vec![lag(1, 0, 0)],
        ),
        node(State::Resetting, 1, vec![lag(2, 9, 9)]),
    ]);
    assert_eq!(merged.len(), 1);
    let m = &merged[0];
    assert_eq!(m.events, 13);
    assert!(matches!(m.state, State::Retrying { .. }), "{:?}", m.state);
    let ps: Vec<u32> = m.partitions.iter().map(|l| l.partition).collect();
    assert_eq!(ps, [0, 1, 2, 3]);
}
