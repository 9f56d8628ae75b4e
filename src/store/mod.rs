//! Storage: the embedded sled database, its event journal, group commit and codec.
//!
//! - [`codec`]: serde + bincode with a version byte; the only place bytes are made.
//! - [`group_commit`]: one flusher thread, one fsync for many writers.
//! - [`journal`]: events, snapshots and indexes of every entity.
//! - [`Store`]: opens the database and hands out the journal and the other trees
//!   (idempotency records, the payment gateway ledger).

pub mod codec;
pub mod group_commit;
pub mod journal;

pub use group_commit::GroupCommit;
pub use journal::{Index, IndexOp, Journal, Recovered, StoreError};

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
        // sled keeps its log in one file, `<path>/db`; the writer fdatasyncs it.
        let log = std::fs::File::open(dir.join("sled").join("db"))?;
        let tree = db.open_tree("journal")?;
        let commit = GroupCommit::start(
            db.clone(),
            tree.clone(),
            log,
            opts.group_commit_max_batch,
            opts.group_commit_queue,
        );
        let journal = Journal::new(tree, commit.clone());
        Ok(Self {
            db,
            journal,
            commit,
        })
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
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

    /// Flushes synchronously; used at shutdown.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
