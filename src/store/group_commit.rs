//! Group commit: one fsync for many writers.
//!
//! Writers apply their batch to sled (in memory), then wait here. A single flusher
//! thread takes every waiter queued so far, calls `Db::flush` once, and answers them
//! all. A waiter is only answered by a flush that started after its write, so an ack
//! always means "on disk". The queue is bounded: when it is full, writers wait.

use metrics::{counter, histogram};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the flusher thread. Cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::Sender<Waiter>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the store flush failed: {0}")]
    Flush(String),
    #[error("the store is closed")]
    Closed,
}

impl GroupCommit {
    /// Starts the flusher thread. `max_batch` bounds how many waiters one flush answers,
    /// and `queue` bounds how many may wait.
    pub fn start(db: sled::Db, max_batch: usize, queue: usize) -> Self {
        let (tx, mut rx) = mpsc::channel::<Waiter>(queue.max(1));
        std::thread::Builder::new()
            .name("emporium-flusher".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(max_batch);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < max_batch {
                        match rx.try_recv() {
                            Ok(w) => batch.push(w),
                            Err(_) => break,
                        }
                    }
                    let started = Instant::now();
                    let result = db.flush().map_err(|e| e.to_string());
                    histogram!("emporium_journal_flush_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                    histogram!("emporium_journal_fsync_batch_size").record(batch.len() as f64);
                    match &result {
                        Ok(bytes) => counter!("emporium_journal_bytes_written_total")
                            .increment(*bytes as u64),
                        Err(e) => {
                            counter!("emporium_journal_flush_errors_total").increment(1);
                            tracing::error!(error = %e, "store flush failed");
                        }
                    }
                    let answer = result.map(|_| ());
                    for w in batch.drain(..) {
                        let _ = w.send(answer.clone());
                    }
                }
            })
            .expect("spawn the flusher thread");
        Self { tx }
    }

    /// Waits until everything written before this call is on disk.
    pub async fn durable(&self) -> Result<(), CommitError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).await.map_err(|_| CommitError::Closed)?;
        rx.await
            .map_err(|_| CommitError::Closed)?
            .map_err(CommitError::Flush)
    }
}
