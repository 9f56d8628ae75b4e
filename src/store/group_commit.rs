//! Group commit: the journal's single writer thread, one fsync for many writers.
//!
//! Writers hand their journal records to this thread and wait. Each cycle the thread
//! takes every write queued so far (up to `max_batch`), applies them to the journal
//! tree as **one** atomic sled batch, calls `Db::flush`, then `fdatasync`s sled's log
//! file, and only then answers them all. So an ack always means "on disk".
//!
//! Why one thread applies the writes, measured with `examples/`-style probes on this
//! machine kind (64 writers, 60-byte records, see `docs/BENCHMARKS.md`):
//! - sled seals and writes a whole log buffer (a `pwrite` plus `sync_file_range`) for
//!   every `apply_batch`, so a flush after N separate batches costs N buffer writes;
//!   merging a cycle's writes into one batch makes it one;
//! - writers that call `apply_batch` while a flush runs block their (tokio worker)
//!   thread; here no async thread touches the journal tree for a write.
//!
//! sled's own flush syncs with `sync_file_range`, which neither flushes the device's
//! write cache nor persists the file's size; the `fdatasync` after it does both.
//!
//! Every cycle also makes sled's blob files durable before the log ([`super::blobs`]).
//!
//! Fail-stop ([`super::health`]): the first apply, flush, blob-sync or `fdatasync` error
//! poisons the store. That cycle's writers get the error, and every later write is
//! refused at once without touching sled, so no write after the fault is acknowledged.
//!
//! The writer also numbers every committed event in its partition's log
//! ([`super::layout`]): a writer hands in, with its records, one [`LogAppend`] per event,
//! and the thread gives each the next seq of that partition and puts the log entry in
//! the same atomic batch. Only this thread assigns log seqs, so each partition's log is
//! gap-free and in commit order. A partition's records that arrive whole (a handoff's
//! ingest) or leave whole (its drop) reset the thread's idea of where that log ends.
//!
//! Writes to other trees (the cluster acceptor) are made by their owners and then wait
//! on [`GroupCommit::durable`], which rides the next cycle's flush. The queue is bounded:
//! when it is full, writers wait.

use super::blobs::BlobSync;
use super::health::StoreHealth;
use super::layout::{self, LogEntry};
use metrics::{counter, histogram};
use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// One key of a journal write: a value to insert, or `None` to remove the key.
pub type Op = (Vec<u8>, Option<Vec<u8>>);

type Ack = oneshot::Sender<Result<(), CommitError>>;

/// One event to number in its partition's log.
#[derive(Debug, Clone)]
pub struct LogAppend {
    pub partition: u32,
    pub entry: LogEntry,
}

struct Write {
    ops: Vec<Op>,
    log: Vec<LogAppend>,
    /// A partition whose records this write replaces wholesale (ingest or drop).
    reset: Option<u32>,
    ack: Ack,
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Write>,
    health: StoreHealth,
    blobs_synced: Arc<AtomicU64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// This write's own cycle failed to reach the disk.
    #[error("the store flush failed: {0}")]
    Flush(String),
    /// An earlier cycle failed; the store accepts no write until the process restarts.
    #[error("the store has failed and accepts no writes: {0}")]
    Failed(String),
    #[error("the store is closed")]
    Closed,
}

/// Where the writer thread finds sled's files.
pub struct LogFiles {
    /// sled's main log file (`<sled dir>/db`), `fdatasync`ed every cycle.
    pub log: File,
    /// sled's directory, holding `blobs/`.
    pub sled_dir: PathBuf,
}

impl GroupCommit {
    /// Starts the writer thread for `journal`. `log` is sled's log file, synced after
    /// every flush. `max_batch` bounds how many writers one cycle answers, and `queue`
    /// bounds how many may wait.
    pub fn start(
        db: sled::Db,
        journal: sled::Tree,
        files: LogFiles,
        max_batch: usize,
        queue: usize,
        health: StoreHealth,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Write>(queue.max(1));
        let writer_health = health.clone();
        let blobs_synced = Arc::new(AtomicU64::new(0));
        let counted = blobs_synced.clone();
        std::thread::Builder::new()
            .name("emporium-flusher".into())
            .spawn(move || {
                Writer {
                    db,
                    journal,
                    log: files.log,
                    blobs: BlobSync::new(files.sled_dir.clone()),
                    faults: Faults::new(&files.sled_dir),
                    health: writer_health,
                    blobs_synced: counted,
                    log_next: HashMap::new(),
                }
                .run(rx, max_batch.max(1))
            })
            .expect("spawn the flusher thread");
        Self {
            tx,
            health,
            blobs_synced,
        }
    }

    /// How many of sled's blob files the writer has fsync'd since the store opened.
    pub fn blobs_synced(&self) -> u64 {
        self.blobs_synced.load(Ordering::Relaxed)
    }

    /// The health this writer poisons on its first failure.
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    /// Applies `ops` to the journal atomically and waits until they are on disk.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), CommitError> {
        self.send(ops, Vec::new(), None).await
    }

    /// Applies `ops` and numbers `log` in their partitions' logs, in one atomic batch,
    /// and waits until they are on disk.
    pub async fn write_logged(&self, ops: Vec<Op>, log: Vec<LogAppend>) -> Result<(), CommitError> {
        self.send(ops, log, None).await
    }

    /// Applies raw records of `partition` (its own log entries included), as a handoff's
    /// ingest or drop does, and waits until they are on disk.
    pub async fn write_partition(&self, partition: u32, ops: Vec<Op>) -> Result<(), CommitError> {
        self.send(ops, Vec::new(), Some(partition)).await
    }

    async fn send(
        &self,
        ops: Vec<Op>,
        log: Vec<LogAppend>,
        reset: Option<u32>,
    ) -> Result<(), CommitError> {
        if let Some(reason) = self.health.reason() {
            return Err(CommitError::Failed(reason));
        }
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Write {
                ops,
                log,
                reset,
                ack,
            })
            .await
            .map_err(|_| CommitError::Closed)?;
        rx.await.map_err(|_| CommitError::Closed)?
    }

    /// Waits until everything written before this call (to any tree) is on disk.
    pub async fn durable(&self) -> Result<(), CommitError> {
        self.write(Vec::new()).await
    }
}

struct Writer {
    db: sled::Db,
    journal: sled::Tree,
    log: File,
    blobs: BlobSync,
    faults: Faults,
    health: StoreHealth,
    blobs_synced: Arc<AtomicU64>,
    /// The next log seq of each partition written since the store opened (read from
    /// the tree the first time a partition is written).
    log_next: HashMap<u32, u64>,
}

impl Writer {
    /// The next seq of partition `p`'s log, counted from the last entry in the tree.
    fn next_log_seq(&mut self, p: u32) -> Result<u64, String> {
        if let Some(next) = self.log_next.get_mut(&p) {
            let seq = *next;
            *next += 1;
            return Ok(seq);
        }
        let last = match self.journal.scan_prefix(layout::log_prefix(p)).next_back() {
            Some(item) => {
                let (k, _) = item.map_err(|e| format!("sled read of a partition log: {e}"))?;
                layout::log_seq_of(&k).unwrap_or(0)
            }
            None => 0,
        };
        self.log_next.insert(p, last + 2);
        Ok(last + 1)
    }

    fn run(mut self, mut rx: mpsc::Receiver<Write>, max_batch: usize) {
        let mut cycle: Vec<Write> = Vec::with_capacity(max_batch);
        while let Some(first) = rx.blocking_recv() {
            cycle.push(first);
            while cycle.len() < max_batch {
                match rx.try_recv() {
                    Ok(w) => cycle.push(w),
                    Err(_) => break,
                }
            }
            // Poisoned: refuse without touching sled, so nothing after the fault can
            // become durable and be mistaken for acknowledged.
            if let Some(reason) = self.health.reason() {
                for w in cycle.drain(..) {
                    let _ = w.ack.send(Err(CommitError::Failed(reason.clone())));
                }
                continue;
            }
            let started = Instant::now();
            let result = self.commit(&mut cycle);
            histogram!("emporium_journal_flush_duration_seconds")
                .record(started.elapsed().as_secs_f64());
            histogram!("emporium_journal_fsync_batch_size").record(cycle.len() as f64);
            let answer = match result {
                Ok(bytes) => {
                    counter!("emporium_journal_bytes_written_total").increment(bytes as u64);
                    Ok(())
                }
                Err(e) => {
                    counter!("emporium_journal_flush_errors_total").increment(1);
                    self.health.fail(&e);
                    Err(e)
                }
            };
            for w in cycle.drain(..) {
                let _ = w.ack.send(answer.clone().map_err(CommitError::Flush));
            }
        }
    }

    /// One cycle: one atomic batch, the flush, the new blob files, then the log.
    fn commit(&mut self, cycle: &mut [Write]) -> Result<usize, String> {
        let mut batch = sled::Batch::default();
        let mut keys = 0usize;
        for w in cycle.iter_mut() {
            if let Some(p) = w.reset {
                self.log_next.remove(&p);
            }
            for (k, v) in w.ops.drain(..) {
                keys += 1;
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            for append in std::mem::take(&mut w.log) {
                let seq = self.next_log_seq(append.partition)?;
                keys += 1;
                batch.insert(
                    layout::log_key(append.partition, seq),
                    super::codec::encode(&append.entry),
                );
            }
        }
        let phase = |name: &'static str, since: Instant| {
            histogram!("emporium_journal_cycle_phase_seconds", "phase" => name)
                .record(since.elapsed().as_secs_f64());
        };
        if keys > 0 {
            let t = Instant::now();
            self.journal
                .apply_batch(batch)
                .map_err(|e| format!("sled apply: {e}"))?;
            phase("apply", t);
        }
        let t = Instant::now();
        let bytes = self.db.flush().map_err(|e| format!("sled flush: {e}"))?;
        phase("flush", t);
        let t = Instant::now();
        let synced = self
            .blobs
            .sync_new()
            .map_err(|e| format!("fsync of sled's blob files: {e}"))?;
        self.blobs_synced
            .fetch_add(synced as u64, Ordering::Relaxed);
        phase("blobs", t);
        let t = Instant::now();
        self.faults
            .fdatasync()
            .and_then(|()| self.log.sync_data())
            .map_err(|e| format!("fdatasync of the sled log: {e}"))?;
        phase("fdatasync", t);
        Ok(bytes)
    }
}

/// The test-only fault hook: a file named `fail-next-fdatasync` in sled's directory makes
/// the next cycle's `fdatasync` fail (and is removed). Compiled only into debug builds or
/// with the `fault-injection` feature; release builds have no hook.
struct Faults {
    #[cfg(any(debug_assertions, feature = "fault-injection"))]
    trigger: PathBuf,
}

impl Faults {
    /// The trigger file's name inside sled's directory.
    #[cfg(any(debug_assertions, feature = "fault-injection"))]
    pub const TRIGGER: &'static str = "fail-next-fdatasync";

    fn new(_sled_dir: &std::path::Path) -> Self {
        Self {
            #[cfg(any(debug_assertions, feature = "fault-injection"))]
            trigger: _sled_dir.join(Self::TRIGGER),
        }
    }

    fn fdatasync(&self) -> std::io::Result<()> {
        #[cfg(any(debug_assertions, feature = "fault-injection"))]
        if std::fs::remove_file(&self.trigger).is_ok() {
            tracing::warn!("fault hook: failing this fdatasync");
            return Err(std::io::Error::other("injected fdatasync failure"));
        }
        Ok(())
    }
}
