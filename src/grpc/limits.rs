//! What a gRPC client may hold before it has proved who it is.
//!
//! - [`ConnLimits`]: open connections per IP address and in all, counted from accept to
//!   close; a connection past either cap is closed at accept, before any TLS or HTTP/2 work.
//! - [`StreamLimits`]: `MachineGateway.Session` streams open on this node (authenticated or
//!   not, against `grpc.max_sessions`) and those still waiting for their `Hello` to be
//!   verified (`grpc.max_pending_hellos`). A stream past either is refused
//!   `RESOURCE_EXHAUSTED` before it is read.
//!
//! Both hand out guards that give their slot back on drop, so no path can leak one.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// Why a connection was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnRefused {
    #[error("too many gRPC connections from this address")]
    PerIp,
    #[error("too many gRPC connections")]
    Total,
}

impl ConnRefused {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerIp => "per_ip",
            Self::Total => "total",
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Open connections, per IP and in all.
pub struct ConnLimits {
    counts: Mutex<Counts>,
    max_per_ip: usize,
    max_total: usize,
}

/// One admitted connection's slot.
pub struct ConnGuard {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
}

impl ConnLimits {
    pub fn new(max_per_ip: usize, max_total: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(Counts::default()),
            max_per_ip,
            max_total,
        })
    }

    /// Takes a slot for a connection from `ip`, or says which cap it is past.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, ConnRefused> {
        let mut c = self.counts.lock();
        if c.total >= self.max_total {
            return Err(ConnRefused::Total);
        }
        let n = c.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(ConnRefused::PerIp);
        }
        *n += 1;
        c.total += 1;
        // Set under the lock, so that sets land in the order the counts changed.
        metrics::gauge!("emporium_grpc_connections").set(c.total as f64);
        drop(c);
        Ok(ConnGuard {
            limits: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.counts.lock().per_ip.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.limits.counts.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
        metrics::gauge!("emporium_grpc_connections").set(c.total as f64);
    }
}

/// Session streams open on this node, and those whose `Hello` is not yet verified.
pub struct StreamLimits {
    open: AtomicUsize,
    max_open: usize,
    pending: Arc<Semaphore>,
}

/// One open stream's slot; held for the stream's whole life.
pub struct StreamGuard {
    limits: Arc<StreamLimits>,
}

impl StreamLimits {
    pub fn new(max_open: usize, max_pending: usize) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max_open,
            pending: Arc::new(Semaphore::new(max_pending)),
        })
    }

    /// A slot for a new stream, counted against `grpc.max_sessions` whether or not it ever
    /// authenticates.
    pub fn try_open(self: &Arc<Self>) -> Result<StreamGuard, Status> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        if before >= self.max_open {
            self.open.fetch_sub(1, Ordering::AcqRel);
            metrics::counter!("emporium_grpc_refused_total", "reason" => "max_sessions")
                .increment(1);
            return Err(Status::resource_exhausted(
                "too many machine sessions on this node",
            ));
        }
        // increment/decrement, not set: two streams ending at once would otherwise set
        // their counts out of order and leave the gauge stale (seen as a flaky test).
        metrics::gauge!("emporium_grpc_streams").increment(1.0);
        Ok(StreamGuard {
            limits: self.clone(),
        })
    }

    /// A slot while the stream's `Hello` is read and verified.
    pub fn try_pending(&self) -> Result<OwnedSemaphorePermit, Status> {
        self.pending.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("emporium_grpc_refused_total", "reason" => "pending_hellos")
                .increment(1);
            Status::resource_exhausted("too many sessions waiting for their Hello; retry")
        })
    }

    /// Streams open now (authenticated or not).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("emporium_grpc_streams").decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_ip_and_in_all_and_given_back_on_drop() {
        let l = ConnLimits::new(2, 3);
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let a1 = l.try_admit(a).unwrap();
        let _a2 = l.try_admit(a).unwrap();
        assert_eq!(l.try_admit(a).err(), Some(ConnRefused::PerIp));
        let _b1 = l.try_admit(b).unwrap();
        assert_eq!(l.try_admit(b).err(), Some(ConnRefused::Total));
        drop(a1);
        assert_eq!(l.open_from(a), 1);
        assert!(l.try_admit(b).is_ok(), "a slot came back");
    }

    #[test]
    fn streams_count_before_authentication_and_pending_hellos_are_bounded() {
        let l = StreamLimits::new(2, 1);
        let s1 = l.try_open().unwrap();
        let _s2 = l.try_open().unwrap();
        assert_eq!(
            l.try_open().err().map(|s| s.code()),
            Some(tonic::Code::ResourceExhausted)
        );
        drop(s1);
        assert_eq!(l.open(), 1);
        let p = l.try_pending().unwrap();
        assert_eq!(
            l.try_pending().err().map(|s| s.code()),
            Some(tonic::Code::ResourceExhausted)
        );
        drop(p);
        assert!(l.try_pending().is_ok());
    }
}
