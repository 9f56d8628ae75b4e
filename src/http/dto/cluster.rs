//! The cluster as one node sees it, and the operator actions on it: the bodies of
//! `/v1/cluster*`.

use crate::cluster::handoff::Progress;
use crate::cluster::node::MemberView;
use crate::cluster::Cluster;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A member's health: `alive`, `suspect` or `down`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct ClusterMember {
    pub name: String,
    /// Cluster transport address.
    pub addr: String,
    pub http_addr: String,
    /// `alive`, `suspect` or `down`.
    pub status: String,
    pub leaving: bool,
    /// Since this node last heard from it; `null` for this node itself.
    #[schema(required = true)]
    pub last_seen_ms_ago: Option<u64>,
    pub partitions: u64,
}

impl From<MemberView> for ClusterMember {
    fn from(m: MemberView) -> Self {
        Self {
            name: m.name,
            addr: m.addr,
            http_addr: m.http_addr,
            status: m.status.to_owned(),
            leaving: m.leaving,
            last_seen_ms_ago: m.last_seen_ms_ago,
            partitions: m.partitions as u64,
        }
    }
}

/// A partition being handed off.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct MovingPartition {
    pub partition: u32,
    pub from: String,
    pub to: String,
}

/// A handoff this node is sending.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Handoff {
    pub partition: u32,
    pub to: String,
    /// Records sent so far (the total once the last chunk is stored).
    pub records: u64,
    pub sent: u64,
    /// True while its chunks are being sent; false while it waits for its epoch.
    pub streaming: bool,
    pub elapsed_ms: u64,
}

impl From<Progress> for Handoff {
    fn from(p: Progress) -> Self {
        Self {
            partition: p.partition,
            to: p.to,
            records: p.records as u64,
            sent: p.sent as u64,
            streaming: p.streaming,
            elapsed_ms: p.elapsed_ms,
        }
    }
}

/// `GET /v1/cluster`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct ClusterStatus {
    /// False on a node that runs alone; the other fields are then empty.
    pub enabled: bool,
    /// This node's name; `null` on a node that runs alone.
    #[schema(required = true)]
    pub node: Option<String>,
    pub epoch: u64,
    /// Whether the answering node hears a majority (it refuses writes without).
    pub quorum: bool,
    pub partitions: u32,
    pub members: Vec<ClusterMember>,
    pub partitions_per_node: BTreeMap<String, u64>,
    pub moving: Vec<MovingPartition>,
    pub handoffs: Vec<Handoff>,
    /// The owner of every partition, by partition number.
    pub owners: Vec<String>,
}

impl ClusterStatus {
    /// A node that runs alone.
    pub fn alone() -> Self {
        Self {
            enabled: false,
            node: None,
            epoch: 0,
            quorum: false,
            partitions: 0,
            members: Vec::new(),
            partitions_per_node: BTreeMap::new(),
            moving: Vec::new(),
            handoffs: Vec::new(),
            owners: Vec::new(),
        }
    }

    /// The cluster as `c` sees it now.
    pub fn new(c: &Cluster) -> Self {
        let map = c.map();
        let map = map.as_ref();
        Self {
            enabled: true,
            node: Some(c.name().to_owned()),
            epoch: c.epoch(),
            quorum: c.has_quorum(),
            partitions: map.map_or(0, |m| m.partitions()),
            members: c.members().into_iter().map(ClusterMember::from).collect(),
            partitions_per_node: map
                .map(|m| m.counts().into_iter().map(|(n, k)| (n, k as u64)).collect())
                .unwrap_or_default(),
            moving: map
                .map(|m| {
                    m.moving
                        .iter()
                        .map(|(p, to)| MovingPartition {
                            partition: *p,
                            from: m.owners[*p as usize].clone(),
                            to: to.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            handoffs: c.handoffs().into_iter().map(Handoff::from).collect(),
            owners: map.map(|m| m.owners.clone()).unwrap_or_default(),
        }
    }
}

/// `POST /v1/cluster/leave`: the drain has started.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Draining {
    pub node: String,
    /// The epoch of the map that marks the node leaving.
    pub epoch: u64,
    /// Partitions to hand off.
    pub moving: u64,
    pub message: String,
}

/// `POST /v1/cluster/remove`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RemoveNode {
    pub node: String,
    /// Must be true: the node's partitions restart empty elsewhere.
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/cluster/remove`: the node is out of the map.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct Removed {
    pub removed: String,
    pub epoch: u64,
    /// Partitions that restart empty on other nodes.
    pub partitions_reassigned: u64,
    pub warning: String,
}

/// `POST /v1/cluster/fault` (test-only): the switch, and its answer.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub blackhole: bool,
}
