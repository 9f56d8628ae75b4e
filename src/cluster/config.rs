//! `[cluster]`: whether this node is part of a cluster, how it is reached, whom it joins,
//! and the timing of failure detection and handoff.

use crate::app::config::Secret;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Off: a single node that owns every entity (no cluster port is opened).
    pub enabled: bool,
    /// This node's stable name; its identity in the partition map.
    pub node_name: String,
    /// Where the cluster transport listens (port 0 picks a free port; the bound address
    /// is written to `<data_dir>/cluster.addr`).
    pub listen_addr: String,
    /// The address peers dial; empty means the bound listen address.
    pub advertise_addr: String,
    /// The HTTP address operators use for this node; empty means the bound HTTP address.
    pub advertise_http_addr: String,
    /// Cluster addresses of existing members. A node with no committed map joins
    /// through them; with none, it founds a new cluster.
    pub seeds: Vec<String>,
    /// Shared secret of the cluster's cookie authentication. Prefer the environment
    /// (`EMPORIUM_CLUSTER_COOKIE`) or `cookie_file`; it is never logged.
    pub cookie: Secret,
    pub cookie_file: Option<PathBuf>,
    /// Partitions of the keyspace; fixed when the cluster is founded.
    pub partitions: u32,
    pub heartbeat_interval_ms: u64,
    /// Silent this long, a member is down (suspect at half of it).
    pub failure_timeout_ms: u64,
    /// Deadline of a cross-node call that is not an entity request (heartbeats use the
    /// heartbeat interval).
    pub call_timeout_ms: u64,
    /// Partitions handed off at once by this node.
    pub handoff_concurrency: usize,
    /// Largest handoff chunk, in bytes of records.
    pub handoff_chunk_bytes: usize,
    /// Forwarded requests this node serves at once; past it, 503.
    pub max_inbound: usize,
    /// Test-only: enables `POST /v1/cluster/fault`, which black-holes this node's
    /// cluster traffic. Never enable it in production.
    pub fault_injection: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node_name: String::new(),
            listen_addr: "127.0.0.1:7400".into(),
            advertise_addr: String::new(),
            advertise_http_addr: String::new(),
            seeds: Vec::new(),
            cookie: Secret::default(),
            cookie_file: None,
            partitions: 64,
            heartbeat_interval_ms: 250,
            failure_timeout_ms: 1500,
            call_timeout_ms: 3000,
            handoff_concurrency: 2,
            handoff_chunk_bytes: 256 * 1024,
            max_inbound: 1024,
            fault_injection: false,
        }
    }
}

impl ClusterConfig {
    /// Checks the values and resolves the cookie (environment, then file, then the value).
    pub fn resolve(&mut self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if let Ok(c) = std::env::var("EMPORIUM_CLUSTER_COOKIE") {
            self.cookie = Secret(c);
        } else if let Some(f) = &self.cookie_file {
            // The cookie is a secret like `jwt.key`: a file group or others may read is
            // refused with the `chmod` that fixes it.
            let c = crate::app::secrets::read_secret_file(f)
                .map_err(|e| format!("cluster.cookie_file: {e}"))?
                .ok_or_else(|| format!("cluster.cookie_file {}: does not exist", f.display()))?;
            self.cookie = Secret(c.trim().to_owned());
        }
        if self.cookie.0.len() < 16 {
            return Err("cluster.cookie must be set (EMPORIUM_CLUSTER_COOKIE, cluster.cookie_file or cluster.cookie) and at least 16 characters".into());
        }
        let valid_name = !self.node_name.is_empty()
            && self.node_name.len() <= 64
            && self
                .node_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err("cluster.node_name must be 1-64 characters of [A-Za-z0-9_-]".into());
        }
        if self.listen_addr.parse::<std::net::SocketAddr>().is_err() {
            return Err("cluster.listen_addr must be IP:PORT".into());
        }
        if self.partitions == 0 || self.partitions > 4096 {
            return Err("cluster.partitions must be 1..=4096".into());
        }
        if self.heartbeat_interval_ms == 0
            || self.failure_timeout_ms < 2 * self.heartbeat_interval_ms
        {
            return Err(
                "cluster.failure_timeout_ms must be at least twice cluster.heartbeat_interval_ms"
                    .into(),
            );
        }
        if self.handoff_concurrency == 0
            || self.handoff_chunk_bytes < 1024
            || self.handoff_chunk_bytes > crate::store::codec::MAX_CHUNK_BYTES
            || self.max_inbound == 0
        {
            return Err(format!(
                "cluster.handoff_concurrency and max_inbound must be positive, and handoff_chunk_bytes 1024..={}",
                crate::store::codec::MAX_CHUNK_BYTES
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_cookie_file_open_to_group_or_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cookie");
        crate::app::secrets::write_private(&f, "a-cluster-cookie-of-enough-length\n").unwrap();
        let cfg = |file: &std::path::Path| ClusterConfig {
            enabled: true,
            node_name: "n1".into(),
            cookie_file: Some(file.to_owned()),
            ..ClusterConfig::default()
        };
        let mut ok = cfg(&f);
        if std::env::var_os("EMPORIUM_CLUSTER_COOKIE").is_none() {
            ok.resolve().expect("an owner-only cookie file is read");
            assert_eq!(ok.cookie.0, "a-cluster-cookie-of-enough-length");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = cfg(&f).resolve().unwrap_err();
            assert!(e.contains(&format!("chmod 600 {}", f.display())), "{e}");
            let e = cfg(&dir.path().join("none")).resolve().unwrap_err();
            assert!(e.contains("does not exist"), "{e}");
        }
    }
}
