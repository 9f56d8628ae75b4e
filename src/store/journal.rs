//! The event journal: per-entity event streams, snapshots, small secondary indexes and
//! the partition logs, all in one sled tree so that one batch writes them atomically.
//!
//! Every key starts with the entity's partition ([`super::layout`]), so a partition's
//! records are one key range ([`super::partition_store::Partition`] moves it). Reads of
//! one entity go to its partition; index reads merge the partitions they are asked for.

use super::codec::{self, CodecError};
use super::group_commit::{CommitError, GroupCommit, LogAppend};
use super::layout::{self, LogEntry};
use super::partition::partition_of;
pub use crate::domain::Index;
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
    #[error(
        "partition {partition}'s log has an entry that cannot be decoded at seq {seq}: {source}"
    )]
    CorruptLog {
        partition: u32,
        seq: u64,
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
    /// A kind wrote an index it does not declare in [`Aggregate::INDEXES`] (a bug).
    #[error("{kind} does not declare the index {index:?}")]
    UndeclaredIndex { kind: EntityKind, index: Index },
    /// The data directory was written with another partition count.
    #[error("the data directory was written with {stored} partitions, but cluster.partitions is {configured}; a partition count cannot change under existing data")]
    PartitionsChanged { stored: u32, configured: u32 },
    /// The data directory's layout is newer than this build.
    #[error("the data directory has storage layout {0}, newer than this build reads ({1}); run a newer emporium")]
    LayoutTooNew(u32, u32),
    /// A handoff record that does not belong to the partition it was sent for.
    #[error("a record of partition {found:?} arrived for partition {expected}")]
    ForeignRecord { expected: u32, found: Option<u32> },
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

/// The journal. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tree: sled::Tree,
    commit: GroupCommit,
    partitions: u32,
}

impl Journal {
    pub fn new(tree: sled::Tree, commit: GroupCommit, partitions: u32) -> Self {
        Self {
            tree,
            commit,
            partitions: partitions.max(1),
        }
    }

    /// How many partitions the keys are spread over.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition of an entity.
    pub fn partition_of(&self, kind: EntityKind, id: &str) -> u32 {
        partition_of(kind, id, self.partitions)
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
        let p = self.partition_of(A::KIND, id);
        // A snapshot is a cache of the events, which are never deleted: one that does not
        // decode (written by a version whose state had another shape) is skipped, and the
        // entity is rebuilt from its events. Events themselves must always decode.
        let (mut state, snapshot_seq) = match self.tree.get(layout::snapshot_key(
            p,
            A::KIND,
            id,
        )?)? {
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
        let start = layout::event_key(p, A::KIND, id, snapshot_seq + 1)?;
        let end = layout::event_key(p, A::KIND, id, u64::MAX)?;
        for item in self.tree.range(start..=end) {
            let (key, value) = item?;
            let at_seq = layout::seq_of_event_key(&key);
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
    /// atomic batch, with one partition log entry per event, then waits until they are on
    /// disk. Only then may the caller reply. Index entries go to the entity's partition.
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
        let p = self.partition_of(A::KIND, id);
        let mut ops = Vec::with_capacity(events.len() + index_ops.len() + 1);
        let mut log = Vec::with_capacity(events.len());
        let mut seq = first_seq;
        for (at, event) in events {
            let rec = EventRecord { at: *at, event };
            let bytes = codec::encode_bounded(&rec).map_err(too_large)?;
            ops.push((layout::event_key(p, A::KIND, id, seq)?, Some(bytes)));
            log.push(LogAppend {
                partition: p,
                entry: LogEntry {
                    kind: A::KIND.byte(),
                    id: id.to_owned(),
                    seq,
                    at: *at,
                },
            });
            seq += 1;
        }
        if let Some(state) = snapshot {
            let rec = SnapshotRecord {
                seq: seq - 1,
                state,
            };
            let bytes = codec::encode_bounded(&rec).map_err(too_large)?;
            ops.push((layout::snapshot_key(p, A::KIND, id)?, Some(bytes)));
        }
        for op in index_ops {
            let (index, key) = match op {
                IndexOp::Put(ix, key) | IndexOp::Remove(ix, key) => (*ix, key),
            };
            if !A::INDEXES.contains(&index) {
                return Err(StoreError::UndeclaredIndex {
                    kind: A::KIND,
                    index,
                });
            }
            let k = layout::index_key(p, index, key.as_bytes());
            ops.push(match op {
                IndexOp::Put(..) => (k, Some(Vec::new())),
                IndexOp::Remove(..) => (k, None),
            });
        }
        // The writer thread applies them in one atomic batch with other writers' records,
        // and numbers the events in the partition's log.
        self.commit.write_logged(ops, log).await?;
        Ok(())
    }

    /// Every key of an index, partition by partition (each partition in key order).
    pub fn index_keys(
        &self,
        index: Index,
    ) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        (0..self.partitions).flat_map(move |p| {
            self.tree
                .scan_prefix(layout::index_prefix(p, index))
                .map(|item| {
                    let (k, _) = item?;
                    Ok(String::from_utf8_lossy(layout::index_entry_of(&k)).into_owned())
                })
        })
    }

    /// Up to `limit` keys of `index` that start with `prefix`, after the key `after`
    /// (exclusive), in key order, over every partition.
    pub fn index_page(
        &self,
        index: Index,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.index_page_in(0..self.partitions, index, prefix, after, limit)
    }

    /// [`Self::index_page`] over the given partitions only (a node answers for the
    /// partitions it owns; the asking node merges the answers).
    pub fn index_page_in(
        &self,
        partitions: impl IntoIterator<Item = u32>,
        index: Index,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = Vec::new();
        for p in partitions {
            if p >= self.partitions {
                continue;
            }
            let full_prefix = layout::index_key(p, index, prefix.as_bytes());
            let start = match after {
                Some(a) => {
                    let mut k = layout::index_key(p, index, a.as_bytes());
                    k.push(0);
                    k.max(full_prefix.clone())
                }
                None => full_prefix.clone(),
            };
            for item in self.tree.range(start..).take(limit) {
                let (k, _) = item?;
                if !k.starts_with(&full_prefix) {
                    break;
                }
                out.push(String::from_utf8_lossy(layout::index_entry_of(&k)).into_owned());
            }
        }
        out.sort_unstable();
        out.truncate(limit);
        Ok(out)
    }

    /// Whether an entity has any event.
    pub fn exists(&self, kind: EntityKind, id: &str) -> Result<bool, StoreError> {
        let p = self.partition_of(kind, id);
        Ok(self
            .tree
            .scan_prefix(layout::events_prefix(p, kind, id)?)
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
        let p = self.partition_of(A::KIND, id);
        let start = layout::event_key(p, A::KIND, id, after_seq + 1)?;
        let end = layout::event_key(p, A::KIND, id, u64::MAX)?;
        let mut out = vec![];
        for item in self.tree.range(start..=end).take(limit) {
            let (key, value) = item?;
            let seq = layout::seq_of_event_key(&key);
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

    /// Test and repair hook: overwrite one raw event record (outside the writer; the
    /// partition log is not touched).
    pub fn put_raw_event(
        &self,
        kind: EntityKind,
        id: &str,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let p = self.partition_of(kind, id);
        self.tree
            .insert(layout::event_key(p, kind, id, seq)?, bytes)?;
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
        let p = self.partition_of(kind, id);
        self.tree
            .insert(layout::snapshot_key(p, kind, id)?, bytes)?;
        Ok(())
    }

    /// The raw bytes of an entity's snapshot, if it has one (inspection and tests).
    pub fn snapshot_bytes(
        &self,
        kind: EntityKind,
        id: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let p = self.partition_of(kind, id);
        Ok(self
            .tree
            .get(layout::snapshot_key(p, kind, id)?)?
            .map(|v| v.to_vec()))
    }

    /// Waits until everything written so far is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        Ok(self.commit.durable().await?)
    }

    pub(super) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    pub(super) fn commit(&self) -> &GroupCommit {
        &self.commit
    }

    /// The id of every entity of `kind` that has events, each once, partition by
    /// partition (for one-time start-up migrations such as folding the old payment
    /// ledger into payments).
    pub fn entity_ids(
        &self,
        kind: EntityKind,
    ) -> impl Iterator<Item = Result<String, StoreError>> + '_ {
        let mut last: Option<String> = None;
        (0..self.partitions)
            .flat_map(move |p| {
                let mut prefix = layout::partition_start(p).to_vec();
                prefix.extend_from_slice(&[b'E', kind.byte()]);
                self.tree.scan_prefix(prefix)
            })
            .filter_map(move |item| match item {
                Err(e) => Some(Err(e.into())),
                Ok((k, _)) => {
                    let id = layout::id_of_entity_key(&k)?;
                    if last.as_deref() == Some(id) {
                        return None;
                    }
                    last = Some(id.to_owned());
                    Some(Ok(id.to_owned()))
                }
            })
    }
}
