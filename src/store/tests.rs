//! Journal and group-commit tests on a temporary sled directory.

use super::*;
use crate::domain::cart::{Cart, CartCommand, CartEvent};
use crate::domain::{Aggregate, EntityKind, Sku};

fn opts() -> StoreOptions {
    StoreOptions {
        cache_capacity_bytes: 16 << 20,
        group_commit_max_batch: 1024,
        group_commit_queue: 1024,
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
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    let j = store.journal();
    j.append::<Cart>(
        "x",
        1,
        &[(1, CartEvent::Created { owner: None })],
        None,
        &[IndexOp::Put(Index::OpenOrders, "o1".into())],
    )
    .await
    .unwrap();
    let keys: Vec<String> = j
        .index_keys(Index::OpenOrders)
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys, ["o1"]);
    j.append::<Cart>(
        "x",
        2,
        &[(2, add(1))],
        None,
        &[IndexOp::Remove(Index::OpenOrders, "o1".into())],
    )
    .await
    .unwrap();
    assert_eq!(j.index_keys(Index::OpenOrders).count(), 0);
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
