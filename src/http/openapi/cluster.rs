//! The cluster routes in the OpenAPI document (mirroring `crate::http::cluster`).
#![allow(dead_code)]

use super::schemas::ErrorBody;
use serde::Deserialize;
use utoipa::ToSchema;

const AUTH_401: &str = "`unauthorized`, `invalid_token` or `token_expired`";

/// A member as the answering node sees it.
#[derive(Deserialize, ToSchema)]
pub struct ClusterMember {
    pub name: String,
    /// Cluster transport address.
    pub addr: String,
    pub http_addr: String,
    /// `alive`, `suspect` or `down`.
    pub status: String,
    pub leaving: bool,
    pub last_seen_ms_ago: Option<u64>,
    pub partitions: u64,
}

/// A partition being handed off.
#[derive(Deserialize, ToSchema)]
pub struct MovingPartition {
    pub partition: u32,
    pub from: String,
    pub to: String,
}

/// `GET /v1/cluster`.
#[derive(Deserialize, ToSchema)]
pub struct ClusterStatus {
    /// False on a node that runs alone; the other fields are then empty.
    pub enabled: bool,
    pub node: Option<String>,
    pub epoch: u64,
    /// Whether the answering node hears a majority (it refuses writes without).
    pub quorum: bool,
    pub partitions: u32,
    pub members: Vec<ClusterMember>,
    pub partitions_per_node: std::collections::BTreeMap<String, u64>,
    pub moving: Vec<MovingPartition>,
    /// Handoffs this node is sending: `{partition, to, records, sent, elapsed_ms}`.
    pub handoffs: Vec<serde_json::Value>,
    /// The owner of every partition, by partition number.
    pub owners: Vec<String>,
}

/// `POST /v1/cluster/remove`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveNode {
    pub node: String,
    /// Must be true: the node's partitions restart empty elsewhere.
    pub force: bool,
}

/// `POST /v1/cluster/fault` (test-only).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub blackhole: bool,
}

/// Members, health, epoch, partitions per node and handoffs.
#[utoipa::path(get, path = "/v1/cluster", tag = "cluster",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the cluster as this node sees it", body = ClusterStatus),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: operators and admins only", body = ErrorBody),
    ))]
pub fn cluster_status() {}

/// Drains this node: its partitions are handed off, then it leaves the map.
#[utoipa::path(post, path = "/v1/cluster/leave", tag = "cluster",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "draining started"),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`cluster_disabled` or `cluster_refused` (a handoff is running, last member)", body = ErrorBody),
        (status = 503, description = "`no_quorum` or `cluster_joining`", body = ErrorBody),
    ))]
pub fn cluster_leave() {}

/// Reassigns the partitions of a node that is down for good; their data is lost unless
/// restored from a backup.
#[utoipa::path(post, path = "/v1/cluster/remove", tag = "cluster",
    security(("bearer" = [])),
    request_body = RemoveNode,
    responses(
        (status = 200, description = "removed; its partitions restart empty elsewhere"),
        (status = 400, description = "`validation`: `force` missing, or this node", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`node_not_down`, `cluster_refused` or `cluster_disabled`", body = ErrorBody),
        (status = 503, description = "`no_quorum`", body = ErrorBody),
    ))]
pub fn cluster_remove() {}

/// Test-only (`cluster.fault_injection`): black-holes this node's cluster traffic.
#[utoipa::path(post, path = "/v1/cluster/fault", tag = "cluster",
    security(("bearer" = [])),
    request_body = Fault,
    responses(
        (status = 200, description = "the switch is set"),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`: fault injection is off", body = ErrorBody),
    ))]
pub fn cluster_fault() {}
