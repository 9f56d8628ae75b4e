//! Fail-stop: the store's health, poisoned by the first flush or fsync error.
//!
//! After a failed `fdatasync` Linux may already have dropped the dirty pages it could not
//! write (PostgreSQL's "fsyncgate", 2018), and sled has applied the failed batch to its
//! in-memory tree. Nothing written after that point can be trusted to be on disk, so the
//! first error poisons the store for good: no later write is acknowledged, readiness
//! turns 503, `emporium_store_failed` is 1, and the process exits non-zero after its
//! shutdown grace, so its supervisor restarts it and recovery reads what is really on disk.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Shared by the writer thread (which poisons it) and everyone who must stop writing.
#[derive(Clone)]
pub struct StoreHealth {
    inner: Arc<Inner>,
}

struct Inner {
    failed: AtomicBool,
    reason: Mutex<Option<String>>,
    notify: watch::Sender<bool>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        metrics::gauge!("emporium_store_failed").set(0.0);
        Self {
            inner: Arc::new(Inner {
                failed: AtomicBool::new(false),
                reason: Mutex::new(None),
                notify: watch::channel(false).0,
            }),
        }
    }
}

impl StoreHealth {
    /// Whether the store has failed; once true, it stays true for this process.
    pub fn is_failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }

    /// Why it failed, if it did.
    pub fn reason(&self) -> Option<String> {
        self.inner.reason.lock().clone()
    }

    /// Poisons the store. Only the first reason is kept and logged.
    pub fn fail(&self, reason: &str) {
        let mut r = self.inner.reason.lock();
        if r.is_none() {
            *r = Some(reason.to_owned());
            self.inner.failed.store(true, Ordering::Release);
            metrics::gauge!("emporium_store_failed").set(1.0);
            tracing::error!(
                reason,
                "the store failed: no write is acknowledged from now on; the process exits after its shutdown grace"
            );
            self.inner.notify.send_replace(true);
        }
    }

    /// Resolves once the store has failed.
    pub async fn failed(&self) {
        let mut rx = self.inner.notify.subscribe();
        let _ = rx.wait_for(|f| *f).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_failure_sticks_and_wakes_waiters() {
        let h = StoreHealth::default();
        assert!(!h.is_failed());
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.failed().await }
        });
        h.fail("fdatasync: EIO");
        h.fail("a later error");
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert!(h.is_failed());
        assert_eq!(h.reason().as_deref(), Some("fdatasync: EIO"));
        // A waiter that arrives after the failure returns at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), h.failed())
            .await
            .expect("already failed");
    }
}
