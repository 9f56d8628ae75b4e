//! Journal and group-commit tests on a temporary sled directory.

use super::*;
use crate::domain::cart::{Cart, CartCommand, CartEvent};
use crate::domain::{Aggregate, EntityKind, Sku};

fn opts() -> StoreOptions {
    StoreOptions {
        cache_capacity_bytes: 16 << 20,
        group_commit_max_batch: 1024,
        group_commit_queue: 1024,
        partitions: 64,
    }
}

fn add(q: u32) -> CartEvent {
    CartEvent::QuantitySet {
        sku: Sku::parse("A").unwrap(),
        quantity: q,
        unit_price_minor: 10,
    }
}

#[tokio::test]
async fn append_then_load_with_and_without_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let j = store.journal();
    j.append::<Cart>(
        "c1",
        1,
        &[(1, CartEvent::Created { owner: None }), (2, add(1))],
        None,
        &[],
    )
    .await
    .unwrap();
    let r = j.load::<Cart>("c1").unwrap();
    assert_eq!((r.seq, r.snapshot_seq, r.events_replayed), (2, 0, 2));
    // A snapshot at seq 3 covers everything; one more event comes after it.
    let mut state = r.state.clone();
    Cart::apply(&mut state, &add(2));
    j.append::<Cart>("c1", 3, &[(3, add(2))], Some(&state), &[])
        .await
        .unwrap();
    j.append::<Cart>("c1", 4, &[(4, add(5))], None, &[])
        .await
        .unwrap();
    let r = j.load::<Cart>("c1").unwrap();
    assert_eq!((r.seq, r.snapshot_seq, r.events_replayed), (4, 3, 1));
    assert_eq!(r.state.lines.values().next().unwrap().quantity, 5);
    assert_eq!(j.events::<Cart>("c1", 0, 100).unwrap().len(), 4);
    // Another entity of the same kind is independent.
    assert_eq!(j.load::<Cart>("c2").unwrap().seq, 0);
}

#[tokio::test]
async fn a_snapshot_that_does_not_decode_is_skipped_and_the_events_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let j = store.journal();
    j.append::<Cart>(
        "c1",
        1,
        &[(1, CartEvent::Created { owner: None }), (2, add(3))],
        None,
        &[],
    )
    .await
    .unwrap();
    // A snapshot in a shape this version cannot read, claiming to cover both events.
    j.put_raw_snapshot(EntityKind::Cart, "c1", &[codec::FORMAT_VERSION, 0xff, 0xff])
        .unwrap();
    let r = j.load::<Cart>("c1").unwrap();
    assert_eq!((r.seq, r.snapshot_seq, r.events_replayed), (2, 0, 2));
    assert_eq!(r.state.lines.values().next().unwrap().quantity, 3);
}

#[tokio::test]
async fn a_corrupt_record_makes_only_its_entity_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let j = store.journal();
    for id in ["good", "bad"] {
        j.append::<Cart>(id, 1, &[(1, CartEvent::Created { owner: None })], None, &[])
            .await
            .unwrap();
    }
    j.put_raw_event(
        EntityKind::Cart,
        "bad",
        2,
        &[codec::FORMAT_VERSION, 0xff, 0xff],
    )
    .unwrap();
    assert!(matches!(
        j.load::<Cart>("bad"),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(j.load::<Cart>("good").unwrap().state.created);
}

#[tokio::test]
async fn acknowledged_appends_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), &opts()).unwrap();
        let j = store.journal().clone();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let j = j.clone();
                tokio::spawn(async move {
                    j.append::<Cart>(
                        &format!("c{i}"),
                        1,
                        &[(1, CartEvent::Created { owner: None })],
                        None,
                        &[],
                    )
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
    // The flusher thread lets go of the database shortly after the last handle drops.
    let mut store = None;
    for _ in 0..100 {
        match Store::open(dir.path(), &opts()) {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let store = store.expect("the store reopens within 2 s");
    for i in 0..64 {
        assert!(
            store
                .journal()
                .load::<Cart>(&format!("c{i}"))
                .unwrap()
                .state
                .created
        );
    }
    let _ = Cart::decide(&Default::default(), &CartCommand::Create { owner: None });
}

#[tokio::test]
async fn indexes_put_and_remove_atomically_with_events() {
    use crate::domain::product::{Product, ProductEvent};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let j = store.journal();
    let archived = |by: &str| ProductEvent::Archived { by: by.into() };
    j.append::<Product>(
        "P-1",
        1,
        &[(1, archived("a"))],
        None,
        &[IndexOp::Put(Index::Products, "P-1".into())],
    )
    .await
    .unwrap();
    let keys: Vec<String> = j.index_keys(Index::Products).map(Result::unwrap).collect();
    assert_eq!(keys, ["P-1"]);
    j.append::<Product>(
        "P-1",
        2,
        &[(2, archived("b"))],
        None,
        &[IndexOp::Remove(Index::Products, "P-1".into())],
    )
    .await
    .unwrap();
    assert_eq!(j.index_keys(Index::Products).count(), 0);
}

#[tokio::test]
async fn a_kind_cannot_write_an_index_it_does_not_declare() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let err = store
        .journal()
        .append::<Cart>(
            "x",
            1,
            &[(1, CartEvent::Created { owner: None })],
            None,
            &[IndexOp::Put(Index::OpenOrders, "o1".into())],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UndeclaredIndex { .. }), "{err}");
    assert!(!store.journal().exists(EntityKind::Cart, "x").unwrap());
}

fn small_opts() -> StoreOptions {
    StoreOptions {
        partitions: 4,
        ..opts()
    }
}

/// Every committed event gets the next seq of its partition's log, assigned by the
/// writer thread: concurrent writers leave no gap and no repeat, and the numbering
/// continues after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_logs_are_gap_free_under_concurrent_writers_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let carts: Vec<String> = (0..24).map(|i| format!("c{i}")).collect();
    {
        let store = Store::open(dir.path(), &small_opts()).unwrap();
        let mut tasks = Vec::new();
        for id in carts.clone() {
            let j = store.journal().clone();
            tasks.push(tokio::spawn(async move {
                j.append::<Cart>(
                    &id,
                    1,
                    &[(1, CartEvent::Created { owner: None })],
                    None,
                    &[],
                )
                .await
                .unwrap();
                for q in 2..=5u64 {
                    j.append::<Cart>(&id, q, &[(q, add(q as u32))], None, &[])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let j = store.journal();
        let mut total = 0;
        for p in 0..4 {
            let log = j.partition(p).read_from(1, 10_000).unwrap();
            let seqs: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
            assert_eq!(
                seqs,
                (1..=log.len() as u64).collect::<Vec<_>>(),
                "partition {p}"
            );
            assert_eq!(j.partition(p).last_seq().unwrap(), log.len() as u64);
            // Each entity's events are in its own order, in its own partition.
            for id in &carts {
                let mine: Vec<u64> = log
                    .iter()
                    .filter(|(_, e)| &e.id == id)
                    .map(|(_, e)| e.seq)
                    .collect();
                if j.partition_of(EntityKind::Cart, id) == p {
                    assert_eq!(mine, [1, 2, 3, 4, 5], "{id}");
                } else {
                    assert!(mine.is_empty());
                }
            }
            total += log.len();
        }
        assert_eq!(total, carts.len() * 5);
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let store = Store::open(dir.path(), &small_opts()).unwrap();
    let j = store.journal();
    let p = j.partition_of(EntityKind::Cart, "c0");
    let before = j.partition(p).last_seq().unwrap();
    j.append::<Cart>("c0", 6, &[(6, add(9))], None, &[])
        .await
        .unwrap();
    let after = j.partition(p).read_from(before + 1, 10).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!((after[0].0, after[0].1.seq), (before + 1, 6));
}

/// A partition moves with exactly three verbs: stream on the old owner, ingest on the new
/// one, drop on the old one. Nothing of another partition moves or is dropped.
#[tokio::test]
async fn a_partition_streams_ingests_and_drops_as_one_range() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(a_dir.path(), &small_opts()).unwrap();
    let b = Store::open(b_dir.path(), &small_opts()).unwrap();
    let ja = a.journal();
    for i in 0..40 {
        let id = format!("c{i}");
        ja.append::<Cart>(
            &id,
            1,
            &[(1, CartEvent::Created { owner: None })],
            None,
            &[],
        )
        .await
        .unwrap();
        let mut state = ja.load::<Cart>(&id).unwrap().state;
        Cart::apply(&mut state, &add(i + 1));
        ja.append::<Cart>(&id, 2, &[(2, add(i + 1))], Some(&state), &[])
            .await
            .unwrap();
    }
    let p = ja.partition_of(EntityKind::Cart, "c0");
    let mine: Vec<String> = (0..40)
        .map(|i| format!("c{i}"))
        .filter(|id| ja.partition_of(EntityKind::Cart, id) == p)
        .collect();
    let others = 40 - mine.len();
    // Small chunks, from a cursor, as a handoff sends them.
    let mut cursor: Option<Vec<u8>> = None;
    let mut chunks = 0;
    loop {
        let chunk = ja.partition(p).stream(cursor.as_deref(), 200).unwrap();
        if chunk.is_empty() {
            break;
        }
        cursor = chunk.last().map(|(k, _)| k.clone());
        chunks += 1;
        b.journal().partition(p).ingest(chunk).await.unwrap();
    }
    assert!(chunks > 1, "the partition went in several chunks");
    let jb = b.journal();
    for id in &mine {
        let (ra, rb) = (ja.load::<Cart>(id).unwrap(), jb.load::<Cart>(id).unwrap());
        assert_eq!((rb.seq, rb.snapshot_seq), (ra.seq, ra.snapshot_seq));
        assert_eq!(rb.state.lines, ra.state.lines);
    }
    assert_eq!(
        jb.partition(p).last_seq().unwrap(),
        ja.partition(p).last_seq().unwrap()
    );
    // The new owner's log continues where the old one stopped.
    let last = jb.partition(p).last_seq().unwrap();
    jb.append::<Cart>(&mine[0], 3, &[(3, add(7))], None, &[])
        .await
        .unwrap();
    assert_eq!(jb.partition(p).last_seq().unwrap(), last + 1);
    // A record of another partition is refused, and nothing of that chunk is written.
    let foreign = ja.partition((p + 1) % 4).stream(None, 1 << 20).unwrap();
    let err = jb.partition(p).ingest(foreign).await.unwrap_err();
    assert!(matches!(err, StoreError::ForeignRecord { .. }), "{err}");
    // The old owner drops the range; its other partitions are intact.
    let removed = ja.partition(p).drop().await.unwrap();
    assert!(removed >= mine.len() * 3);
    assert!(ja.partition(p).is_empty().unwrap());
    assert_eq!(ja.load::<Cart>(&mine[0]).unwrap().seq, 0);
    let left = (0..40)
        .map(|i| format!("c{i}"))
        .filter(|id| ja.load::<Cart>(id).unwrap().seq == 2)
        .count();
    assert_eq!(left, others);
}

/// A record above sled's inline limit goes to its own blob file; the writer fsyncs that
/// file (and `blobs/`) in the same cycle, before the append returns, and it reads back
/// after a reopen. `docs/RELIABILITY.md` has the strace of the same write.
#[tokio::test]
async fn a_record_above_the_inline_limit_is_in_a_synced_blob_before_the_ack() {
    use crate::domain::product::{Product, ProductEvent, ProductSpec};
    let dir = tempfile::tempdir().unwrap();
    let big = ProductEvent::Updated {
        spec: ProductSpec {
            name: "big".into(),
            description: Some("d".repeat(300 << 10)),
            price_minor: 1,
            category: "c".into(),
            tags: vec![],
        },
        by: "test".into(),
    };
    {
        let store = Store::open(dir.path(), &opts()).unwrap();
        assert_eq!(store.blobs_synced(), 0);
        store
            .journal()
            .append::<Product>("P-BIG", 1, &[(1, big.clone())], None, &[])
            .await
            .unwrap();
        let blobs = std::fs::read_dir(dir.path().join("sled/blobs"))
            .unwrap()
            .count();
        assert!(blobs >= 1, "sled wrote the record to a blob file");
        assert!(
            store.blobs_synced() >= 1,
            "the writer fsync'd the blob before the append returned"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let store = Store::open(dir.path(), &opts()).unwrap();
    let events = store.journal().events::<Product>("P-BIG", 0, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].2 == big, "the large record reads back whole");
}

/// A record the codec would refuse to decode is refused on the way in, typed, and
/// nothing of that append reaches the journal.
#[tokio::test]
async fn a_record_above_the_store_limit_is_refused_before_the_journal() {
    use crate::domain::product::{Product, ProductEvent, ProductSpec};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let huge = ProductEvent::Updated {
        spec: ProductSpec {
            name: "huge".into(),
            description: Some("d".repeat(codec::MAX_RECORD_BYTES)),
            price_minor: 1,
            category: "c".into(),
            tags: vec![],
        },
        by: "test".into(),
    };
    let small = ProductEvent::Archived { by: "t".into() };
    let err = store
        .journal()
        .append::<Product>("P-HUGE", 1, &[(1, small), (2, huge)], None, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { .. }), "{err}");
    assert!(!store
        .journal()
        .exists(EntityKind::Product, "P-HUGE")
        .unwrap());
}
