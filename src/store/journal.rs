//! The event journal: per-entity event streams keyed by (kind, id, seq), snapshots, and
//! small secondary indexes, all in one sled tree so that one batch writes them atomically.
//!
//! Key layout (the first byte says which space):
//! - `E kind len id seq_be` : one event record, `EventRecord<E>`.
//! - `S kind len id`        : the latest snapshot of an entity, `SnapshotRecord<S>`.
//! - `I index len key`      : an index entry (for example, the orders that are not settled).

use super::codec::{self, CodecError};
use super::group_commit::{CommitError, GroupCommit};
use crate::domain::{Aggregate, EntityKind, Millis};
use metrics::counter;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct EventRecord<E> {
    pub at: Millis,
    pub event: E,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotRecord<S> {
    pub seq: u64,
    pub state: S,
}

/// Secondary indexes kept in the journal tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Orders whose saga has not settled; resumed at start-up.
    OpenOrders = 1,
    /// Every product sku, for rebuilding the catalog view.
    Products = 2,
    /// `user_id/inverted placement time/order_id`: a shopper's orders, newest first.
    UserOrders = 3,
    /// Every registered machine id, for listing machines.
    Machines = 4,
    /// Machines that must be active after a restart: online, or holding app units,
    /// pending commands or undelivered outcomes.
    LiveMachines = 5,
}

#[derive(Debug, Clone)]
pub enum IndexOp {
    Put(Index, String),
    Remove(Index, String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind}/{id} has a record that cannot be decoded at {at}: {source}")]
    Corrupt {
        kind: EntityKind,
        id: String,
        at: String,
        source: CodecError,
    },
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("store file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Commit(#[from] CommitError),
    #[error("entity id is too long ({0} bytes)")]
    IdTooLong(usize),
    /// A record would exceed [`codec::MAX_RECORD_BYTES`]: refused before the journal.
    #[error("{kind}/{id}: {source}")]
    TooLarge {
        kind: EntityKind,
        id: String,
        source: CodecError,
    },
}

/// An entity rebuilt from its snapshot and the events after it.
#[derive(Debug)]
pub struct Recovered<S> {
    pub state: S,
    /// The seq of the last event applied (0 when there are none).
    pub seq: u64,
    /// The seq the latest snapshot covers.
    pub snapshot_seq: u64,
    pub events_replayed: u64,
}

fn entity_prefix(space: u8, kind: EntityKind, id: &str) -> Result<Vec<u8>, StoreError> {
    let len = u8::try_from(id.len()).map_err(|_| StoreError::IdTooLong(id.len()))?;
    let mut k = Vec::with_capacity(3 + id.len() + 8);
    k.extend_from_slice(&[space, kind.byte(), len]);
    k.extend_from_slice(id.as_bytes());
    Ok(k)
}

fn event_key(kind: EntityKind, id: &str, seq: u64) -> Result<Vec<u8>, StoreError> {
    let mut k = entity_prefix(b'E', kind, id)?;
    k.extend_from_slice(&seq.to_be_bytes());
    Ok(k)
}

fn index_key(index: Index, key: &str) -> Vec<u8> {
    let mut k = vec![b'I', index as u8];
    k.extend_from_slice(key.as_bytes());
    k
}

/// The journal. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tree: sled::Tree,
    commit: GroupCommit,
}

impl Journal {
    pub fn new(tree: sled::Tree, commit: GroupCommit) -> Self {
        Self { tree, commit }
    }

    /// Rebuilds an entity: the latest snapshot, then every event after it.
    pub fn load<A: Aggregate>(&self, id: &str) -> Result<Recovered<A::State>, StoreError> {
        let corrupt = |at: String, source| {
            counter!("emporium_journal_decode_errors_total", "kind" => A::KIND.as_str())
                .increment(1);
            StoreError::Corrupt {
                kind: A::KIND,
                id: id.to_owned(),
                at,
                source,
            }
        };
        // A snapshot is a cache of the events, which are never deleted: one that does not
        // decode (written by a version whose state had another shape) is skipped, and the
        // entity is rebuilt from its events. Events themselves must always decode.
        let (mut state, snapshot_seq) = match self.tree.get(entity_prefix(b'S', A::KIND, id)?)? {
            Some(bytes) => match codec::decode::<SnapshotRecord<A::State>>(&bytes) {
                Ok(snap) => (snap.state, snap.seq),
                Err(error) => {
                    tracing::warn!(kind = %A::KIND, id, %error, "snapshot does not decode; replaying every event");
                    counter!("emporium_journal_snapshot_skipped_total", "kind" => A::KIND.as_str())
                        .increment(1);
                    (A::State::default(), 0)
                }
            },
            None => (A::State::default(), 0),
        };
        let mut seq = snapshot_seq;
        let mut replayed = 0;
        let start = event_key(A::KIND, id, snapshot_seq + 1)?;
        let end = event_key(A::KIND, id, u64::MAX)?;
        for item in self.tree.range(start..=end) {
            let (key, value) = item?;
            let at_seq = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"));
            let rec: EventRecord<A::Event> =
                codec::decode(&value).map_err(|e| corrupt(format!("seq {at_seq}"), e))?;
            A::apply(&mut state, &rec.event);
            seq = at_seq;
            replayed += 1;
        }
        Ok(Recovered {
            state,
            seq,
            snapshot_seq,
            events_replayed: replayed,
        })
    }

    /// Writes events `first_seq..` (and optionally a snapshot and index changes) in one
    /// atomic batch, then waits until they are on disk. Only then may the caller reply.
    pub async fn append<A: Aggregate>(
        &self,
        id: &str,
        first_seq: u64,
        events: &[(Millis, A::Event)],
        snapshot: Option<&A::State>,
        index_ops: &[IndexOp],
    ) -> Result<(), StoreError> {
        let too_large = |source| StoreError::TooLarge {
            kind: A::KIND,
            id: id.to_owned(),
            source,
        };
        let mut ops = Vec::with_capacity(events.len() + index_ops.len() + 1);
        let mut seq = first_seq;
        for (at, event) in events {
            let rec = EventRecord { at: *at, event };
            let bytes = codec::encode_bounded(&rec).map_err(too_large)?;
            ops.push((event_key(A::KIND, id, seq)?, Some(bytes)));
            seq += 1;
        }
        if let Some(state) = snapshot {
            let rec = SnapshotRecord {
                seq: seq - 1,
                state,
            };
            let bytes = codec::encode_bounded(&rec).map_err(too_large)?;
            ops.push((entity_prefix(b'S', A::KIND, id)?, Some(bytes)));
        }
        for op in index_ops {
            ops.push(match op {
                IndexOp::Put(ix, key) => (index_key(*ix, key), Some(Vec::new())),
                IndexOp::Remove(ix, key) => (index_key(*ix, key), None),
            });
        }
        // The writer thread applies them in one atomic batch with other writers' records.
        self.commit.write(ops).await?;
        Ok(())
    }

    /// Every key of an index.
    pub fn index_keys(
        &self,
        index: Index,
    ) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        self.tree.scan_prefix([b'I', index as u8]).map(|item| {
            let (k, _) = item?;
            Ok(String::from_utf8_lossy(&k[2..]).into_owned())
        })
    }

    /// Up to `limit` keys of `index` that start with `prefix`, after the key `after`
    /// (exclusive), in key order.
    pub fn index_page(
        &self,
        index: Index,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let full_prefix = index_key(index, prefix);
        let start = match after {
            Some(a) => {
                let mut k = index_key(index, a);
                k.push(0);
                k
            }
            None => full_prefix.clone(),
        };
        let mut out = Vec::new();
        for item in self.tree.range(start..) {
            let (k, _) = item?;
            if !k.starts_with(&full_prefix) || out.len() >= limit {
                break;
            }
            out.push(String::from_utf8_lossy(&k[2..]).into_owned());
        }
        Ok(out)
    }

    /// Whether an entity has any event.
    pub fn exists(&self, kind: EntityKind, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .tree
            .scan_prefix(entity_prefix(b'E', kind, id)?)
            .next()
            .is_some())
    }

    /// Every event of an entity, decoded, for the audit trail: `(seq, at, event)`.
    pub fn events<A: Aggregate>(
        &self,
        id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Millis, A::Event)>, StoreError> {
        let start = event_key(A::KIND, id, after_seq + 1)?;
        let end = event_key(A::KIND, id, u64::MAX)?;
        let mut out = vec![];
        for item in self.tree.range(start..=end).take(limit) {
            let (key, value) = item?;
            let seq = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"));
            let rec: EventRecord<A::Event> =
                codec::decode(&value).map_err(|source| StoreError::Corrupt {
                    kind: A::KIND,
                    id: id.to_owned(),
                    at: format!("seq {seq}"),
                    source,
                })?;
            out.push((seq, rec.at, rec.event));
        }
        Ok(out)
    }

    /// Test and repair hook: overwrite one raw event record.
    pub fn put_raw_event(
        &self,
        kind: EntityKind,
        id: &str,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.tree.insert(event_key(kind, id, seq)?, bytes)?;
        Ok(())
    }

    /// Test hook: writes raw bytes as an entity's snapshot (to simulate an old format).
    #[doc(hidden)]
    pub fn put_raw_snapshot(
        &self,
        kind: EntityKind,
        id: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.tree.insert(entity_prefix(b'S', kind, id)?, bytes)?;
        Ok(())
    }

    /// Waits until everything written so far is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        Ok(self.commit.durable().await?)
    }

    /// The raw tree, for moving whole partitions between nodes.
    pub fn raw(&self) -> &sled::Tree {
        &self.tree
    }

    /// The prefix of every record of one entity in `space` (`E` events, `S` snapshot).
    pub fn entity_prefix(space: u8, kind: EntityKind, id: &str) -> Result<Vec<u8>, StoreError> {
        entity_prefix(space, kind, id)
    }

    /// Like [`Journal::index_page`], counting only the keys `keep` selects (for example
    /// those of the partitions a node reads): up to `limit` of them, in key order.
    pub fn index_page_where(
        &self,
        index: Index,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let full_prefix = index_key(index, prefix);
        let start = match after {
            Some(a) => {
                let mut k = index_key(index, a);
                k.push(0);
                k
            }
            None => full_prefix.clone(),
        };
        let mut out = Vec::new();
        for item in self.tree.range(start..) {
            let (k, _) = item?;
            if !k.starts_with(&full_prefix) || out.len() >= limit {
                break;
            }
            let key = String::from_utf8_lossy(&k[2..]).into_owned();
            if keep(&key) {
                out.push(key);
            }
        }
        Ok(out)
    }
}

/// The entity a journal key belongs to: its own events and snapshot, and the index
/// entries that point at it.
pub fn entity_of_key(key: &[u8]) -> Option<(EntityKind, String)> {
    match key.first()? {
        b'E' | b'S' => {
            let kind = EntityKind::from_byte(*key.get(1)?)?;
            let len = usize::from(*key.get(2)?);
            let id = key.get(3..3 + len)?;
            Some((kind, String::from_utf8_lossy(id).into_owned()))
        }
        b'I' => {
            let rest = String::from_utf8_lossy(key.get(2..)?).into_owned();
            match *key.get(1)? {
                1 => Some((EntityKind::Order, rest)),
                2 => Some((EntityKind::Product, rest)),
                3 => rest
                    .rsplit('/')
                    .next()
                    .map(|o| (EntityKind::Order, o.to_owned())),
                4 | 5 => Some((EntityKind::Machine, rest)),
                _ => None,
            }
        }
        _ => None,
    }
}
