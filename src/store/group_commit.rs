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
//! Writes to other trees (idempotency keys, the payment ledger, the cluster acceptor)
//! are made by their owners and then wait on [`GroupCommit::durable`], which rides the
//! next cycle's flush. The queue is bounded: when it is full, writers wait.

use metrics::{counter, histogram};
use std::fs::File;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// One key of a journal write: a value to insert, or `None` to remove the key.
pub type Op = (Vec<u8>, Option<Vec<u8>>);

type Ack = oneshot::Sender<Result<(), String>>;

struct Write {
    ops: Vec<Op>,
    ack: Ack,
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Write>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the store flush failed: {0}")]
    Flush(String),
    #[error("the store is closed")]
    Closed,
}

impl GroupCommit {
    /// Starts the writer thread for `journal`. `log` is sled's log file, synced after
    /// every flush. `max_batch` bounds how many writers one cycle answers, and `queue`
    /// bounds how many may wait.
    pub fn start(
        db: sled::Db,
        journal: sled::Tree,
        log: File,
        max_batch: usize,
        queue: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Write>(queue.max(1));
        std::thread::Builder::new()
            .name("emporium-flusher".into())
            .spawn(move || writer(db, journal, log, rx, max_batch.max(1)))
            .expect("spawn the flusher thread");
        Self { tx }
    }

    /// Applies `ops` to the journal atomically and waits until they are on disk.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), CommitError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Write { ops, ack })
            .await
            .map_err(|_| CommitError::Closed)?;
        rx.await
            .map_err(|_| CommitError::Closed)?
            .map_err(CommitError::Flush)
    }

    /// Waits until everything written before this call (to any tree) is on disk.
    pub async fn durable(&self) -> Result<(), CommitError> {
        self.write(Vec::new()).await
    }
}

fn writer(
    db: sled::Db,
    journal: sled::Tree,
    log: File,
    mut rx: mpsc::Receiver<Write>,
    max_batch: usize,
) {
    let mut cycle: Vec<Write> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        cycle.push(first);
        while cycle.len() < max_batch {
            match rx.try_recv() {
                Ok(w) => cycle.push(w),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let mut batch = sled::Batch::default();
        let mut keys = 0usize;
        for w in &mut cycle {
            for (k, v) in w.ops.drain(..) {
                keys += 1;
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
        }
        let phase = |name: &'static str, since: Instant| {
            histogram!("emporium_journal_cycle_phase_seconds", "phase" => name)
                .record(since.elapsed().as_secs_f64());
        };
        let result = (if keys > 0 {
            let t = Instant::now();
            let applied = journal.apply_batch(batch);
            phase("apply", t);
            applied
        } else {
            Ok(())
        })
        .and_then(|()| {
            let t = Instant::now();
            let flushed = db.flush();
            phase("flush", t);
            flushed
        })
        .map_err(|e| e.to_string())
        .and_then(|bytes| {
            let t = Instant::now();
            let synced = log.sync_data();
            phase("fdatasync", t);
            synced
                .map(|()| bytes)
                .map_err(|e| format!("fdatasync of the sled log: {e}"))
        });
        histogram!("emporium_journal_flush_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        histogram!("emporium_journal_fsync_batch_size").record(cycle.len() as f64);
        match &result {
            Ok(bytes) => counter!("emporium_journal_bytes_written_total").increment(*bytes as u64),
            Err(e) => {
                counter!("emporium_journal_flush_errors_total").increment(1);
                tracing::error!(error = %e, "store flush failed");
            }
        }
        let answer = result.map(|_| ());
        for w in cycle.drain(..) {
            let _ = w.ack.send(answer.clone());
        }
    }
}
