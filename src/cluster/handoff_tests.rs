//! Tests of handoff's pieces that need no cluster: which ready partitions one epoch
//! completes, and a chunk frame resent on a retry.

use super::ready_parts;
use crate::cluster::map::{ClusterMap, MemberInfo};
use crate::cluster::wire::{self, HandoffChunk, Request};
use crate::domain::cart::{Cart, CartEvent};
use crate::domain::EntityKind;
use crate::store::{Store, StoreOptions};
use std::collections::BTreeMap;

fn info(n: &str) -> MemberInfo {
    MemberInfo {
        addr: format!("{n}:1"),
        http_addr: String::new(),
        leaving: false,
    }
}

/// One epoch completes every ready partition still moving to the node it was streamed
/// to, and only those; partitions that are not ready keep moving.
#[test]
fn one_epoch_completes_every_ready_partition_and_only_those() {
    let m = ClusterMap::bootstrap("a", info("a"), 8)
        .join("b", info("b"))
        .unwrap();
    let moving: Vec<u32> = m.moving.keys().copied().collect();
    assert!(moving.len() >= 3, "{moving:?}");
    let (p1, p2, p3) = (moving[0], moving[1], moving[2]);
    let not_moving = (0..8).find(|p| !m.moving.contains_key(p)).unwrap();
    let ready = BTreeMap::from([
        (p1, "b".to_owned()),
        (p2, "b".to_owned()),
        // Streamed to another node than the map now names: not completed.
        (p3, "c".to_owned()),
        (not_moving, "b".to_owned()),
    ]);
    let parts = ready_parts(&m, &ready);
    assert_eq!(parts, vec![p1, p2]);
    let next = m.complete(&parts).unwrap();
    assert_eq!(next.epoch, m.epoch + 1);
    assert_eq!(next.owners[p1 as usize], "b");
    assert_eq!(next.owners[p2 as usize], "b");
    assert!(next.moving.contains_key(&p3));
    assert_eq!(next.moving.len(), m.moving.len() - 2);
    assert!(ready_parts(&next, &ready).is_empty());
}

/// A chunk is encoded once; a retry sends the same bytes, and the receiver that stores
/// them twice (its first ack was lost) holds the partition exactly as after one.
#[tokio::test]
async fn a_chunk_resent_on_a_retry_is_the_same_bytes_and_stores_once() {
    let opts = StoreOptions {
        cache_capacity_bytes: 16 << 20,
        group_commit_max_batch: 64,
        group_commit_queue: 64,
        partitions: 4,
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Store::open(a_dir.path(), &opts).unwrap();
    let b = Store::open(b_dir.path(), &opts).unwrap();
    let ja = a.journal();
    for i in 0..20 {
        ja.append::<Cart>(
            &format!("c{i}"),
            1,
            &[(1, CartEvent::Created { owner: None })],
            None,
            &[],
        )
        .await
        .unwrap();
    }
    let p = ja.partition_of(EntityKind::Cart, "c0");
    let records = ja.partition(p).stream(None, 1 << 20).unwrap();
    assert!(!records.is_empty());
    let frame = wire::encode(Request::Handoff(HandoffChunk {
        partition: p,
        epoch: 3,
        seq: 0,
        records: records.clone(),
    }));
    // What each attempt sends is this frame, cloned: the same bytes.
    let attempts = [frame.clone(), frame.clone()];
    assert!(attempts.iter().all(|f| *f == frame));
    for f in attempts {
        let Request::Handoff(chunk) = wire::decode::<Request>(&f).unwrap() else {
            panic!("not a handoff chunk");
        };
        assert_eq!(chunk.records, records);
        b.journal()
            .partition(p)
            .ingest(chunk.records)
            .await
            .unwrap();
    }
    let jb = b.journal();
    assert_eq!(jb.partition(p).stream(None, 1 << 20).unwrap(), records);
    assert_eq!(
        jb.partition(p).last_seq().unwrap(),
        ja.partition(p).last_seq().unwrap()
    );
    assert_eq!(jb.partition(p).len().unwrap(), records.len());
}
