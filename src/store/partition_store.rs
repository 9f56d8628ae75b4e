//! One partition's storage, as one verb set: what a vnode owns, and what a handoff moves.
//!
//! A partition is one contiguous key range of the journal tree ([`super::layout`]):
//! its entities' events and snapshots, the index entries they wrote, and its log. The
//! cluster moves a partition with exactly these calls: [`Partition::stream`] on the old
//! owner, [`Partition::ingest`] on the new one, then [`Partition::drop`] on the old one.
//! Ingest and drop go through the journal's writer thread like every other write, so
//! they are durable before they return and nothing else writes the journal tree.

use super::codec;
use super::journal::{Journal, StoreError};
use super::layout::{self, LogEntry, ProjectionOffset};

/// A raw record of a partition: its key and its value.
pub type Record = (Vec<u8>, Vec<u8>);

/// How many keys one drop cycle removes.
const DROP_BATCH: usize = 4096;

/// The first [`DROP_BATCH`] keys of `items`.
fn first_keys(
    items: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(items
        .take(DROP_BATCH)
        .map(|item| item.map(|(k, _)| k.to_vec()))
        .collect::<Result<_, _>>()?)
}

/// One write of [`Partition::write_projected`]: the projection's name, the record's key
/// inside it, and its new value (`None` removes it).
pub type ProjectedOp<'a> = (&'a str, Vec<u8>, Option<Vec<u8>>);

/// A handle on one partition's storage.
pub struct Partition<'a> {
    journal: &'a Journal,
    p: u32,
}

impl Journal {
    /// The storage of partition `p`.
    pub fn partition(&self, p: u32) -> Partition<'_> {
        Partition { journal: self, p }
    }
}

impl Partition<'_> {
    pub fn id(&self) -> u32 {
        self.p
    }

    fn range(&self) -> impl DoubleEndedIterator<Item = sled::Result<(sled::IVec, sled::IVec)>> {
        let (start, end) = layout::partition_range(self.p);
        self.journal.tree().range(start..end)
    }

    /// The seq of the last entry of the partition log (0 when it is empty).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        match self
            .journal
            .tree()
            .scan_prefix(layout::log_prefix(self.p))
            .next_back()
        {
            Some(item) => Ok(layout::log_seq_of(&item?.0).unwrap_or(0)),
            None => Ok(0),
        }
    }

    /// Up to `limit` entries of the partition log from `seq` (inclusive), in order.
    pub fn read_from(&self, seq: u64, limit: usize) -> Result<Vec<(u64, LogEntry)>, StoreError> {
        let start = layout::log_key(self.p, seq);
        let end = layout::log_key(self.p, u64::MAX);
        let mut out = Vec::new();
        for item in self.journal.tree().range(start..=end).take(limit) {
            let (k, v) = item?;
            let seq = layout::log_seq_of(&k).unwrap_or(0);
            let entry = codec::decode::<LogEntry>(&v).map_err(|source| StoreError::CorruptLog {
                partition: self.p,
                seq,
                source,
            })?;
            out.push((seq, entry));
        }
        Ok(out)
    }

    /// Where projection `name` is in this partition's log (seq 0 when it has not begun).
    pub fn offset(&self, name: &str) -> Result<ProjectionOffset, StoreError> {
        match self.journal.tree().get(layout::offset_key(self.p, name))? {
            Some(v) => codec::decode(&v).map_err(|source| StoreError::CorruptLog {
                partition: self.p,
                seq: 0,
                source,
            }),
            None => Ok(ProjectionOffset::default()),
        }
    }

    /// Stores projection `name`'s new offset together with the records it keeps for the
    /// entries up to it, in one atomic batch through the writer thread: durable before it
    /// returns, and a crash leaves either both or neither.
    pub async fn advance(
        &self,
        name: &str,
        offset: ProjectionOffset,
        records: Vec<Record>,
    ) -> Result<(), StoreError> {
        let mut ops: Vec<super::group_commit::Op> = records
            .into_iter()
            .map(|(k, v)| (layout::projected_key(self.p, name, &k), Some(v)))
            .collect();
        ops.push((
            layout::offset_key(self.p, name),
            Some(codec::encode(&offset)),
        ));
        self.journal.commit().write(ops).await?;
        Ok(())
    }

    /// Up to `limit` records projection `name` keeps here, after key `after` (their own
    /// keys, without the prefix), in key order.
    pub fn projected(
        &self,
        name: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let prefix = layout::projected_prefix(self.p, name);
        let start = match after {
            Some(a) => std::ops::Bound::Excluded(layout::projected_key(self.p, name, a)),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut out = Vec::new();
        for item in self
            .journal
            .tree()
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
            .take(limit)
        {
            let (k, v) = item?;
            match k.strip_prefix(prefix.as_slice()) {
                Some(own) => out.push((own.to_vec(), v.to_vec())),
                None => break,
            }
        }
        Ok(out)
    }

    /// One record projection `name` keeps here, by its own key.
    pub fn projected_get(&self, name: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let k = layout::projected_key(self.p, name, key);
        Ok(self.journal.tree().get(k)?.map(|v| v.to_vec()))
    }

    /// Writes (`Some`) or removes (`None`) records of projections here, each op naming
    /// its projection, in one atomic batch through the writer thread, durable before it
    /// returns: how a projection's worker moves a record between its families (a webhook
    /// delivery from the queue to the log) outside the runner's steps.
    pub async fn write_projected(&self, ops: Vec<ProjectedOp<'_>>) -> Result<(), StoreError> {
        let ops = ops
            .into_iter()
            .map(|(name, k, v)| (layout::projected_key(self.p, name, &k), v))
            .collect();
        self.journal.commit().write(ops).await?;
        Ok(())
    }

    /// Forgets projection `name` here: its records and its offset, durably, in bounded
    /// cycles, so that it rebuilds from the start of the log.
    pub async fn reset(&self, name: &str) -> Result<usize, StoreError> {
        let prefix = layout::projected_prefix(self.p, name);
        let tree = self.journal.tree();
        let removed = self
            .remove_all(|| first_keys(tree.scan_prefix(&prefix)), false)
            .await?;
        let offset = vec![(layout::offset_key(self.p, name), None)];
        self.journal.commit().write(offset).await?;
        Ok(removed)
    }

    /// Removes every key `next` yields until it yields none, [`DROP_BATCH`] per durable
    /// write through the writer thread; `whole` writes as a handoff's drop does (the
    /// writer then re-reads the partition's log position).
    async fn remove_all(
        &self,
        next: impl Fn() -> Result<Vec<Vec<u8>>, StoreError>,
        whole: bool,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let keys = next()?;
            if keys.is_empty() {
                return Ok(removed);
            }
            removed += keys.len();
            let ops = keys.into_iter().map(|k| (k, None)).collect();
            if whole {
                self.journal.commit().write_partition(self.p, ops).await?;
            } else {
                self.journal.commit().write(ops).await?;
            }
        }
    }

    /// The next chunk of the partition's records after key `after` (from the start when
    /// `None`), at most `max_bytes` of keys and values (one record at least). An empty
    /// chunk means the end. The caller keeps the last key as its cursor.
    pub fn stream(
        &self,
        after: Option<&[u8]>,
        max_bytes: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let (start, end) = layout::partition_range(self.p);
        let iter = match after {
            Some(k) => self.journal.tree().range::<&[u8], _>((
                std::ops::Bound::Excluded(k),
                std::ops::Bound::Excluded(end.as_slice()),
            )),
            None => self.journal.tree().range(start..end),
        };
        let mut out = Vec::new();
        let mut size = 0;
        for item in iter {
            let (k, v) = item?;
            let n = k.len() + v.len() + 16;
            if !out.is_empty() && size + n > max_bytes {
                break;
            }
            size += n;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// How many records the partition holds (a full scan of its range, no decoding).
    pub fn len(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.range() {
            item?;
            n += 1;
        }
        Ok(n)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.range().next().transpose()?.is_none())
    }

    /// Writes records streamed from the partition's previous owner, durably, through the
    /// writer thread. Every record must belong to this partition.
    pub async fn ingest(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let mut ops = Vec::with_capacity(records.len());
        for (k, v) in records {
            let found = layout::partition_of_key(&k);
            if found != Some(self.p) || k.len() <= layout::PARTITION_BYTES {
                return Err(StoreError::ForeignRecord {
                    expected: self.p,
                    found,
                });
            }
            ops.push((k, Some(v)));
        }
        self.journal.commit().write_partition(self.p, ops).await?;
        Ok(())
    }

    /// Removes every record of the partition, durably, through the writer thread, in
    /// bounded cycles. Returns how many records were removed.
    pub async fn drop(&self) -> Result<usize, StoreError> {
        let removed = self.remove_all(|| first_keys(self.range()), true).await?;
        // The reset is also needed when there was nothing to remove.
        self.journal
            .commit()
            .write_partition(self.p, Vec::new())
            .await?;
        Ok(removed)
    }
}
