//! The per-IP connection cap (`http.max_connections_per_ip`): open connections counted
//! by client IP (IPv6 by its /64, as the rate limits key it), so one address cannot hold
//! the global slots. A slot is given back when its guard drops.

use super::rate_limit::ip_key;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Open connections by IP key.
#[derive(Debug)]
pub struct PerIp {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of one IP; dropping it gives the slot back.
#[derive(Debug)]
pub struct IpSlot {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap: cap.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `ip`, or `None` when it already has `cap` open connections.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = ip_key(ip);
        let mut open = self.open.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: self.clone(),
            key,
        })
    }

    /// Open connections of `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.open.lock().get(&ip_key(ip)).copied().unwrap_or(0)
    }

    /// IPs with at least one open connection.
    pub fn ips(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_per_ip_and_slots_come_back() {
        let t = PerIp::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = t.try_acquire(a).unwrap();
        let _s2 = t.try_acquire(a).unwrap();
        assert!(t.try_acquire(a).is_none());
        let _other = t.try_acquire(b).expect("another IP has its own slots");
        drop(s1);
        assert_eq!(t.open(a), 1);
        let _s3 = t.try_acquire(a).expect("a slot came back");
        assert_eq!(t.ips(), 2);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_empty_entries_go() {
        let t = PerIp::new(1);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::2".parse().unwrap();
        let s = t.try_acquire(a).unwrap();
        assert!(t.try_acquire(b).is_none());
        drop(s);
        assert_eq!(t.ips(), 0);
    }
}
