//! Storage: the embedded sled database, its event journal, group commit and codec.
//!
//! - [`codec`]: serde + bincode with a version byte and a byte limit; the only place
//!   bytes are made.
//! - [`group_commit`]: one flusher thread, one fsync for many writers.
//! - [`blobs`]: fsyncs sled's large-record files before a cycle answers.
//! - [`health`]: fail-stop; the first storage error poisons the store.
//! - [`layout`]: the key layout: every record under its partition first.
//! - [`journal`]: events, snapshots and indexes of every entity.
//! - [`partition`]: the entity → partition hash that places every record.
//! - [`partition_store`]: one partition's storage and its verbs (stream, ingest, drop,
//!   read its log): what a handoff moves.
//! - [`migrate`]: the layout version, and the one-time migration from the first layout.
//! - [`Store`]: opens the database and hands out the journal and the node's own trees
//!   (the cluster acceptor).

pub mod blobs;
pub mod codec;
pub mod group_commit;
pub mod health;
pub mod journal;
pub mod layout;
pub mod migrate;
pub mod partition;
pub mod partition_store;

pub use group_commit::GroupCommit;
pub use health::StoreHealth;
pub use journal::{Index, IndexOp, Journal, Recovered, StoreError};
pub use partition_store::{Partition, ProjectedOp};

use std::path::Path;

/// The opened store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    journal: Journal,
    commit: GroupCommit,
}

/// Tuning knobs for the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub cache_capacity_bytes: u64,
    pub group_commit_max_batch: usize,
    pub group_commit_queue: usize,
    /// How many partitions keys are spread over (`cluster.partitions`); fixed for the
    /// life of a data directory.
    pub partitions: u32,
}

impl Store {
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(opts.cache_capacity_bytes)
            .mode(sled::Mode::HighThroughput)
            // Durability comes from our own group commit; no timer flushes.
            .flush_every_ms(None)
            .open()?;
        // sled keeps its log in one file, `<path>/db`; the writer fdatasyncs it, after
        // the blob files in `<path>/blobs/`.
        let sled_dir = dir.join("sled");
        let log = std::fs::File::open(sled_dir.join("db"))?;
        let tree = db.open_tree("journal")?;
        migrate::prepare(&db, &tree, opts.partitions, &sled_dir, &log)?;
        let commit = GroupCommit::start(
            db.clone(),
            tree.clone(),
            group_commit::LogFiles { log, sled_dir },
            opts.group_commit_max_batch,
            opts.group_commit_queue,
            StoreHealth::default(),
        );
        let journal = Journal::new(tree, commit.clone(), opts.partitions);
        Ok(Self {
            db,
            journal,
            commit,
        })
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// How many of sled's blob files the writer has fsync'd since the store opened.
    pub fn blobs_synced(&self) -> u64 {
        self.commit.blobs_synced()
    }

    /// Whether the store is still accepting writes (fail-stop).
    pub fn health(&self) -> &StoreHealth {
        self.commit.health()
    }

    /// Opens (or creates) a named tree for a component's own records.
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Waits until everything written so far is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        Ok(self.commit.durable().await?)
    }

    /// Whether the store holds no entity at all (for `--demo` seeding).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.journal_is_empty())
    }

    fn journal_is_empty(&self) -> bool {
        self.db
            .open_tree("journal")
            .map(|t| t.is_empty())
            .unwrap_or(false)
    }

    /// Flushes synchronously; used at shutdown. A failed store is not flushed: what it
    /// holds in memory after the fault must not reach the disk as if acknowledged.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        if let Some(reason) = self.health().reason() {
            return Err(group_commit::CommitError::Failed(reason).into());
        }
        self.db.flush()?;
        Ok(())
    }

    /// Whether a named tree exists (without creating it).
    pub fn has_tree(&self, name: &str) -> bool {
        self.db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == name.as_bytes())
    }

    /// Removes a named tree and everything in it; `false` if there was none. For trees a
    /// migration has emptied into the journal (the old payment ledger).
    pub fn drop_tree(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.db.drop_tree(name)?)
    }
}

#[cfg(test)]
mod tests;
