//! The storage layout's version, and the one-time migration from the first layout.
//!
//! The `meta` tree records the layout ([`LAYOUT`]) and the partition count the journal's
//! keys were made with. [`prepare`] runs when the store opens, before the writer thread
//! starts:
//! - a layout newer than this build, or another partition count, refuses to open;
//! - a journal with keys of the first layout (`E|S|I kind ...`, no partition in front)
//!   is migrated: every record is re-keyed under its entity's partition, every event
//!   gets an entry in its partition's log, and each batch removes the old keys it
//!   re-keyed in the same atomic sled batch, so a crash in the middle leaves every record
//!   in exactly one layout and the next start continues. The layout is marked only after
//!   the last batch is on disk. A log line says how many records moved and how long it
//!   took; a progress bar shows on a terminal for large stores.
//!
//! Migrated events enter their partition's log entity by entity (each entity's events
//! in order), not interleaved by time: the first layout kept no commit order across
//! entities.
//!
//! `emporium migrate --data-dir DIR` runs the same migration offline.

use super::blobs::BlobSync;
use super::codec;
use super::journal::StoreError;
use super::layout::{self, LogEntry};
use super::partition::partition_of;
use crate::domain::{EntityKind, Index, Millis};
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::time::Instant;

/// The storage layout this build writes: 2 = partition-first keys with partition logs.
pub const LAYOUT: u32 = 2;

/// How many old records one migration batch moves.
const BATCH: usize = 8192;

/// Stores at least this large show a progress bar (on a terminal).
const PROGRESS_FROM: usize = 20_000;

/// What [`prepare`] found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Records moved from the first layout (0 when there was nothing to migrate).
    pub migrated: usize,
    /// Keys of the first layout that name no entity, left where they were.
    pub skipped: usize,
}

fn meta_u32(meta: &sled::Tree, key: &str) -> Result<Option<u32>, StoreError> {
    Ok(meta
        .get(key)?
        .and_then(|v| <[u8; 4]>::try_from(v.as_ref()).ok())
        .map(u32::from_be_bytes))
}

/// Checks the layout and partition count, migrating a first-layout journal.
pub fn prepare(
    db: &sled::Db,
    journal: &sled::Tree,
    partitions: u32,
    sled_dir: &Path,
    log: &File,
) -> Result<Prepared, StoreError> {
    let meta = db.open_tree("meta")?;
    if let Some(layout) = meta_u32(&meta, "layout")? {
        if layout > LAYOUT {
            return Err(StoreError::LayoutTooNew(layout, LAYOUT));
        }
        let stored = meta_u32(&meta, "partitions")?.unwrap_or(partitions);
        if stored != partitions {
            return Err(StoreError::PartitionsChanged {
                stored,
                configured: partitions,
            });
        }
        if layout == LAYOUT {
            return Ok(Prepared::default());
        }
    }
    let prepared = migrate_first_layout(journal, partitions)?;
    meta.insert("partitions", &partitions.to_be_bytes())?;
    meta.insert("layout", &LAYOUT.to_be_bytes())?;
    db.flush()?;
    BlobSync::new(sled_dir.to_path_buf()).sync_new()?;
    log.sync_data()?;
    Ok(prepared)
}

/// The first layout's keys: everything that does not start with a zero byte.
fn old_keys(journal: &sled::Tree) -> impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
    journal.range([1u8].as_slice()..)
}

fn migrate_first_layout(journal: &sled::Tree, partitions: u32) -> Result<Prepared, StoreError> {
    let mut prepared = Prepared::default();
    if old_keys(journal).next().is_none() {
        return Ok(prepared);
    }
    let started = Instant::now();
    let total = old_keys(journal).count();
    tracing::info!(
        records = total,
        partitions,
        "migrating the data directory to storage layout {LAYOUT} (partition-first keys); this runs once"
    );
    let bar = if total >= PROGRESS_FROM {
        indicatif::ProgressBar::new(total as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "migrating the store {bar:40} {pos}/{len} records ({eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut log_next: HashMap<u32, u64> = HashMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page: Vec<(sled::IVec, sled::IVec)> = match &after {
            Some(k) => journal
                .range::<&[u8], _>((
                    std::ops::Bound::Excluded(k.as_slice()),
                    std::ops::Bound::Unbounded,
                ))
                .take(BATCH)
                .collect::<Result<_, _>>()?,
            None => old_keys(journal).take(BATCH).collect::<Result<_, _>>()?,
        };
        if page.is_empty() {
            break;
        }
        after = page.last().map(|(k, _)| k.to_vec());
        let mut batch = sled::Batch::default();
        for (k, v) in &page {
            let Some(new) = rekey(k, partitions) else {
                prepared.skipped += 1;
                tracing::warn!(key = %hex::encode(k), "a key of the old layout names no entity; left in place");
                continue;
            };
            if let Some((kind, id, seq)) = new.event {
                let next = match log_next.get_mut(&new.partition) {
                    Some(n) => n,
                    None => {
                        let last = last_log_seq(journal, new.partition)?;
                        log_next.entry(new.partition).or_insert(last + 1)
                    }
                };
                let entry = LogEntry {
                    kind: kind.byte(),
                    id,
                    seq,
                    at: event_time(v),
                };
                batch.insert(layout::log_key(new.partition, *next), codec::encode(&entry));
                *next += 1;
            }
            batch.insert(new.key, v.clone());
            batch.remove(k.clone());
            prepared.migrated += 1;
        }
        journal.apply_batch(batch)?;
        bar.inc(page.len() as u64);
    }
    bar.finish_and_clear();
    tracing::info!(
        migrated = prepared.migrated,
        skipped = prepared.skipped,
        ms = started.elapsed().as_millis() as u64,
        "storage layout {LAYOUT} migration done"
    );
    Ok(prepared)
}

fn last_log_seq(journal: &sled::Tree, p: u32) -> Result<u64, StoreError> {
    Ok(
        match journal.scan_prefix(layout::log_prefix(p)).next_back() {
            Some(item) => layout::log_seq_of(&item?.0).unwrap_or(0),
            None => 0,
        },
    )
}

/// The `at` of an `EventRecord` (its first field), whatever its event type.
fn event_time(value: &[u8]) -> Millis {
    codec::decode_prefix::<Millis>(value).unwrap_or(0)
}

struct NewKey {
    partition: u32,
    key: Vec<u8>,
    /// For an event: its entity and seq, for the partition log.
    event: Option<(EntityKind, String, u64)>,
}

/// The key of the first layout's record `key` in this layout. The first layout put the
/// kind and id in event and snapshot keys, and encoded the owning entity in each index's
/// key (the index knew its kind): only this migration still knows that mapping.
fn rekey(key: &[u8], partitions: u32) -> Option<NewKey> {
    match key.first()? {
        b'E' | b'S' => {
            let kind = EntityKind::from_byte(*key.get(1)?)?;
            let len = usize::from(*key.get(2)?);
            let id = std::str::from_utf8(key.get(3..3 + len)?).ok()?;
            let p = partition_of(kind, id, partitions);
            if key[0] == b'S' {
                if key.len() != 3 + len {
                    return None;
                }
                return Some(NewKey {
                    partition: p,
                    key: layout::snapshot_key(p, kind, id).ok()?,
                    event: None,
                });
            }
            let seq = u64::from_be_bytes(key.get(3 + len..)?.try_into().ok()?);
            Some(NewKey {
                partition: p,
                key: layout::event_key(p, kind, id, seq).ok()?,
                event: Some((kind, id.to_owned(), seq)),
            })
        }
        b'I' => {
            let rest = key.get(2..)?;
            let text = std::str::from_utf8(rest).ok()?;
            let (index, kind, owner) = match *key.get(1)? {
                1 => (Index::OpenOrders, EntityKind::Order, text),
                2 => (Index::Products, EntityKind::Product, text),
                3 => (
                    Index::UserOrders,
                    EntityKind::Order,
                    text.rsplit('/').next()?,
                ),
                4 => (Index::Machines, EntityKind::Machine, text),
                5 => (Index::LiveMachines, EntityKind::Machine, text),
                _ => return None,
            };
            let p = partition_of(kind, owner, partitions);
            Some(NewKey {
                partition: p,
                key: layout::index_key(p, index, rest),
                event: None,
            })
        }
        _ => None,
    }
}

/// `emporium migrate`: opens the store in `dir` (which migrates it) and reports.
pub fn run_offline(dir: &Path, partitions: u32) -> Result<Prepared, StoreError> {
    let sled_dir = dir.join("sled");
    let db = sled::Config::new()
        .path(&sled_dir)
        .flush_every_ms(None)
        .open()?;
    let log = File::open(sled_dir.join("db"))?;
    let journal = db.open_tree("journal")?;
    prepare(&db, &journal, partitions, &sled_dir, &log)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old_event_key(kind: EntityKind, id: &str, seq: u64) -> Vec<u8> {
        let mut k = vec![b'E', kind.byte(), id.len() as u8];
        k.extend_from_slice(id.as_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    #[test]
    fn the_first_layout_is_rekeyed_under_partitions_with_a_log() {
        let dir = tempfile::tempdir().unwrap();
        let sled_dir = dir.path().join("sled");
        let db = sled::Config::new().path(&sled_dir).open().unwrap();
        let journal = db.open_tree("journal").unwrap();
        let rec = |at: Millis| codec::encode(&(at, 7u8));
        journal
            .insert(old_event_key(EntityKind::Cart, "c1", 1), rec(10))
            .unwrap();
        journal
            .insert(old_event_key(EntityKind::Cart, "c1", 2), rec(11))
            .unwrap();
        journal
            .insert(old_event_key(EntityKind::Order, "o1", 1), rec(12))
            .unwrap();
        journal.insert(b"S\x02\x02c1", rec(0)).unwrap();
        journal.insert(b"I\x03user-1/0099/o1", vec![]).unwrap();
        journal.insert(b"I\x09nothing", vec![]).unwrap();
        db.flush().unwrap();
        let log = File::open(sled_dir.join("db")).unwrap();

        let done = prepare(&db, &journal, 16, &sled_dir, &log).unwrap();
        assert_eq!(
            done,
            Prepared {
                migrated: 5,
                skipped: 1
            }
        );
        let pc = partition_of(EntityKind::Cart, "c1", 16);
        let po = partition_of(EntityKind::Order, "o1", 16);
        assert!(journal
            .get(layout::event_key(pc, EntityKind::Cart, "c1", 2).unwrap())
            .unwrap()
            .is_some());
        assert!(journal
            .get(layout::index_key(po, Index::UserOrders, b"user-1/0099/o1"))
            .unwrap()
            .is_some());
        // Each event is in its partition's log, in order, with its time.
        let entry = |p, seq| {
            codec::decode::<LogEntry>(&journal.get(layout::log_key(p, seq)).unwrap().unwrap())
                .unwrap()
        };
        if pc != po {
            assert_eq!((entry(pc, 1).seq, entry(pc, 1).at), (1, 10));
            assert_eq!((entry(pc, 2).seq, entry(pc, 2).at), (2, 11));
            assert_eq!((entry(po, 1).id.as_str(), entry(po, 1).at), ("o1", 12));
        }
        // Only the key that names nothing is left of the old layout.
        assert_eq!(old_keys(&journal).count(), 1);
        // Opening again does nothing; another partition count is refused.
        assert_eq!(
            prepare(&db, &journal, 16, &sled_dir, &log).unwrap(),
            Prepared::default()
        );
        assert!(matches!(
            prepare(&db, &journal, 32, &sled_dir, &log),
            Err(StoreError::PartitionsChanged {
                stored: 16,
                configured: 32
            })
        ));
    }
}
