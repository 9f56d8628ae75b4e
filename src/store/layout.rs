//! The journal's key layout: every record of an entity is keyed under its partition
//! first, so one partition's whole state is one contiguous key range.
//!
//! ```text
//! p_be32 'E' kind len id seq_be   one event of an entity          EventRecord<E>
//! p_be32 'I' index key            an index entry (opaque bytes)   empty
//! p_be32 'L' pseq_be              the partition log: one per event LogEntry
//! p_be32 'S' kind len id          the latest snapshot of an entity SnapshotRecord<S>
//! p_be32 'O' len name              a projection's offset in the log ProjectionOffset
//! p_be32 'P' len name key          a record a projection keeps       opaque bytes
//! ```
//!
//! A projection's offset and records are in the partition whose log it read, so they
//! move with the partition on handoff like everything else in its range.
//!
//! `p` is [`super::partition::partition_of`] of the entity that writes the record (an
//! index entry lives in the partition of the entity whose append wrote it). Partitions
//! are below 4096, so every key of this layout starts with a zero byte; keys of the
//! first layout (`E`, `S`, `I` first) never fall inside a partition's range, which is
//! how [`super::migrate`] tells the layouts apart.

use super::journal::StoreError;
use crate::domain::{EntityKind, Index, Millis};
use serde::{Deserialize, Serialize};

/// The number of bytes of the partition prefix.
pub const PARTITION_BYTES: usize = 4;

const EVENT: u8 = b'E';
const INDEX: u8 = b'I';
const LOG: u8 = b'L';
const SNAPSHOT: u8 = b'S';
const OFFSET: u8 = b'O';
const PROJECTED: u8 = b'P';

/// How far a projection has read a partition's log: every entry up to `seq` is handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionOffset {
    pub seq: u64,
    /// When the offset was stored.
    pub at: Millis,
}

/// One entry of a partition log: which event of which entity was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The entity kind's journal byte ([`EntityKind::byte`]).
    pub kind: u8,
    pub id: String,
    /// The event's seq in the entity's own stream.
    pub seq: u64,
    /// When the event was decided.
    pub at: Millis,
}

impl LogEntry {
    pub fn kind(&self) -> Option<EntityKind> {
        EntityKind::from_byte(self.kind)
    }
}

/// The first key of partition `p`.
pub fn partition_start(p: u32) -> [u8; PARTITION_BYTES] {
    p.to_be_bytes()
}

/// The key range `[start, end)` of partition `p`.
pub fn partition_range(p: u32) -> (Vec<u8>, Vec<u8>) {
    (
        partition_start(p).to_vec(),
        u64::from(p + 1).to_be_bytes()[4..].to_vec(),
    )
}

/// The partition a key of this layout belongs to.
pub fn partition_of_key(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(
        key.get(..PARTITION_BYTES)?.try_into().ok()?,
    ))
}

fn entity_prefix(p: u32, space: u8, kind: EntityKind, id: &str) -> Result<Vec<u8>, StoreError> {
    let len = u8::try_from(id.len()).map_err(|_| StoreError::IdTooLong(id.len()))?;
    let mut k = Vec::with_capacity(PARTITION_BYTES + 3 + id.len() + 8);
    k.extend_from_slice(&partition_start(p));
    k.extend_from_slice(&[space, kind.byte(), len]);
    k.extend_from_slice(id.as_bytes());
    Ok(k)
}

/// The prefix of every event of an entity.
pub fn events_prefix(p: u32, kind: EntityKind, id: &str) -> Result<Vec<u8>, StoreError> {
    entity_prefix(p, EVENT, kind, id)
}

/// The key of one event.
pub fn event_key(p: u32, kind: EntityKind, id: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
    let mut k = events_prefix(p, kind, id)?;
    k.extend_from_slice(&seq.to_be_bytes());
    Ok(k)
}

/// The seq at the end of an event key.
pub fn seq_of_event_key(key: &[u8]) -> u64 {
    let at = key.len().saturating_sub(8);
    key.get(at..)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// The id in an event or snapshot key.
pub fn id_of_entity_key(key: &[u8]) -> Option<&str> {
    let len = usize::from(*key.get(PARTITION_BYTES + 2)?);
    let start = PARTITION_BYTES + 3;
    std::str::from_utf8(key.get(start..start + len)?).ok()
}

/// The key of an entity's snapshot.
pub fn snapshot_key(p: u32, kind: EntityKind, id: &str) -> Result<Vec<u8>, StoreError> {
    entity_prefix(p, SNAPSHOT, kind, id)
}

/// The prefix of one index inside partition `p`.
pub fn index_prefix(p: u32, index: Index) -> Vec<u8> {
    let mut k = Vec::with_capacity(PARTITION_BYTES + 2);
    k.extend_from_slice(&partition_start(p));
    k.extend_from_slice(&[INDEX, index.byte()]);
    k
}

/// The key of one index entry.
pub fn index_key(p: u32, index: Index, key: &[u8]) -> Vec<u8> {
    let mut k = index_prefix(p, index);
    k.extend_from_slice(key);
    k
}

/// The index key of an index entry's key (what follows the index prefix).
pub fn index_entry_of(key: &[u8]) -> &[u8] {
    key.get(PARTITION_BYTES + 2..).unwrap_or_default()
}

/// The prefix of partition `p`'s log.
pub fn log_prefix(p: u32) -> Vec<u8> {
    let mut k = partition_start(p).to_vec();
    k.push(LOG);
    k
}

/// The key of entry `pseq` of partition `p`'s log.
pub fn log_key(p: u32, pseq: u64) -> Vec<u8> {
    let mut k = log_prefix(p);
    k.extend_from_slice(&pseq.to_be_bytes());
    k
}

fn named(p: u32, space: u8, name: &str) -> Vec<u8> {
    debug_assert!(name.len() < 256, "projection names are short");
    let mut k = partition_start(p).to_vec();
    k.push(space);
    k.push(name.len() as u8);
    k.extend_from_slice(name.as_bytes());
    k
}

/// The key of projection `name`'s offset in partition `p`.
pub fn offset_key(p: u32, name: &str) -> Vec<u8> {
    named(p, OFFSET, name)
}

/// The prefix of every record projection `name` keeps in partition `p`.
pub fn projected_prefix(p: u32, name: &str) -> Vec<u8> {
    named(p, PROJECTED, name)
}

/// The key of one record projection `name` keeps in partition `p`.
pub fn projected_key(p: u32, name: &str, key: &[u8]) -> Vec<u8> {
    let mut k = projected_prefix(p, name);
    k.extend_from_slice(key);
    k
}

/// Whether `key` is an entry of a partition log (and which seq).
pub fn log_seq_of(key: &[u8]) -> Option<u64> {
    if key.len() != PARTITION_BYTES + 1 + 8 || key[PARTITION_BYTES] != LOG {
        return None;
    }
    Some(seq_of_event_key(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_range_holds_exactly_its_keys() {
        for p in [0u32, 1, 63, 4095] {
            let (start, end) = partition_range(p);
            let keys = [
                event_key(p, EntityKind::Cart, "c", 1).unwrap(),
                event_key(p, EntityKind::Cart, &"x".repeat(255), u64::MAX).unwrap(),
                snapshot_key(p, EntityKind::Order, "o").unwrap(),
                index_key(p, Index::UserOrders, &[0xff; 40]),
                log_key(p, u64::MAX),
                offset_key(p, "feed"),
                projected_key(p, "feed", &[0xff; 9]),
            ];
            for k in &keys {
                assert!(k.as_slice() >= start.as_slice() && k.as_slice() < end.as_slice());
                assert_eq!(partition_of_key(k), Some(p));
                assert_eq!(k[0], 0, "every key of this layout starts with 0");
            }
            let next = event_key(p + 1, EntityKind::Cart, "c", 0).unwrap();
            assert!(next.as_slice() >= end.as_slice());
        }
    }

    #[test]
    fn log_keys_are_recognised_and_ordered() {
        assert_eq!(log_seq_of(&log_key(7, 42)), Some(42));
        assert_eq!(
            log_seq_of(&event_key(7, EntityKind::Cart, "c", 1).unwrap()),
            None
        );
        assert!(log_key(7, 9) < log_key(7, 10));
        assert!(log_key(7, u64::MAX) < log_key(8, 0));
    }
}
