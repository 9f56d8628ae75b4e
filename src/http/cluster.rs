//! Operator routes of the cluster: `GET /v1/cluster` (members, epoch, partitions per
//! node, handoffs), `POST /v1/cluster/leave` (drain this node), `POST
//! /v1/cluster/remove` (reassign a lost node's partitions), and the test-only
//! `POST /v1/cluster/fault` (present only with `cluster.fault_injection`).

use super::dto::cluster::{ClusterStatus, Draining, Fault, RemoveNode, Removed};
use super::dto::ErrorBody;
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::cluster::detector::Health;
use crate::cluster::propose::ProposeError;
use crate::cluster::Cluster;
use std::time::Duration;
use warp::http::StatusCode;
use warp::reply::Response;

const AUTH_401: &str = "`unauthorized`, `invalid_token` or `token_expired`";

fn cluster_of(app: &App) -> Result<&Cluster, ApiError> {
    app.cluster.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "cluster_disabled",
            "this node runs alone (cluster.enabled = false)",
        )
    })
}

/// The cluster as this node sees it.
pub fn status(app: &App) -> ClusterStatus {
    app.cluster
        .as_ref()
        .map_or_else(ClusterStatus::alone, ClusterStatus::new)
}

/// Members, health, epoch, partitions per node and handoffs.
#[utoipa::path(get, path = "/v1/cluster", operation_id = "cluster_status", tag = "cluster",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the cluster as this node sees it", body = ClusterStatus),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: operators and admins only", body = ErrorBody),
    ))]
pub async fn get_status(app: App) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &status(&app)))
}

fn propose_error(e: ProposeError) -> ApiError {
    match e {
        ProposeError::Refused(r) => {
            ApiError::new(StatusCode::CONFLICT, "cluster_refused", r.to_string())
        }
        ProposeError::NoQuorum => ApiError::unavailable(
            "no_quorum",
            "a majority of the members did not answer",
            Duration::from_secs(2),
        ),
        ProposeError::NotJoined => ApiError::unavailable(
            "cluster_joining",
            "this node has not joined its cluster yet",
            Duration::from_secs(1),
        ),
    }
}

/// Drains this node: its partitions are handed off, then it leaves the map.
#[utoipa::path(post, path = "/v1/cluster/leave", operation_id = "cluster_leave", tag = "cluster",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "draining started", body = Draining),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`cluster_disabled` or `cluster_refused` (a handoff is running, last member)", body = ErrorBody),
        (status = 503, description = "`no_quorum` or `cluster_joining`", body = ErrorBody),
    ))]
pub async fn leave(app: App) -> Result<Response, ApiError> {
    let c = cluster_of(&app)?;
    let me = c.name().to_owned();
    let m = c.propose(|m| m.leave(&me)).await.map_err(propose_error)?;
    tracing::warn!(node = %me, epoch = m.epoch, moving = m.moving.len(), "draining this node");
    let body = Draining {
        node: me,
        epoch: m.epoch,
        moving: m.moving.len() as u64,
        message:
            "draining: partitions are being handed off; the node leaves the map when it owns none"
                .into(),
    };
    Ok(json(StatusCode::ACCEPTED, &body))
}

/// Reassigns the partitions of a node that is down for good; their data is lost unless
/// restored from a backup.
#[utoipa::path(post, path = "/v1/cluster/remove", operation_id = "cluster_remove", tag = "cluster",
    security(("bearer" = [])),
    request_body = RemoveNode,
    responses(
        (status = 200, description = "removed; its partitions restart empty elsewhere", body = Removed),
        (status = 400, description = "`validation`: `force` missing, or this node", body = ErrorBody),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 409, description = "`node_not_down`, `cluster_refused` or `cluster_disabled`", body = ErrorBody),
        (status = 503, description = "`no_quorum`", body = ErrorBody),
    ))]
pub async fn remove(app: App, b: RemoveNode) -> Result<Response, ApiError> {
    let c = cluster_of(&app)?;
    if !b.force {
        return Err(ApiError::validation(
            "removing a node without handing off its partitions loses their data: pass \"force\": true to confirm, or drain it with leave",
        ));
    }
    if b.node == c.name() {
        return Err(ApiError::validation(
            "a node cannot remove itself; use leave",
        ));
    }
    if c.health(&b.node) != Health::Down {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "node_not_down",
            format!(
                "{} is not down; only a node that is down can be removed by force",
                b.node
            ),
        ));
    }
    let lost = c.map().map(|m| m.owned_by(&b.node).len()).unwrap_or(0);
    let m = c
        .propose(|m| m.remove_forced(&b.node))
        .await
        .map_err(propose_error)?;
    tracing::warn!(node = %b.node, epoch = m.epoch, partitions = lost, "node removed by force; its partitions restart empty");
    let body = Removed {
        removed: b.node,
        epoch: m.epoch,
        partitions_reassigned: lost as u64,
        warning: "the data of these partitions is lost unless restored from a backup".into(),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Test-only (`cluster.fault_injection`): black-holes this node's cluster traffic.
#[utoipa::path(post, path = "/v1/cluster/fault", operation_id = "cluster_fault", tag = "cluster",
    security(("bearer" = [])),
    request_body = Fault,
    responses(
        (status = 200, description = "the switch is set", body = Fault),
        (status = 401, description = AUTH_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: admins only", body = ErrorBody),
        (status = 404, description = "`not_found`: fault injection is off", body = ErrorBody),
        (status = 409, description = "`cluster_disabled`: this node runs alone", body = ErrorBody),
    ))]
pub async fn fault(
    app: App,
    body: Result<serde_json::Value, ApiError>,
) -> Result<Response, ApiError> {
    let c = cluster_of(&app)?;
    if !c.config().fault_injection {
        return Err(ApiError::not_found("no such route"));
    }
    let b: Fault =
        serde_json::from_value(body?).map_err(|e| ApiError::validation(e.to_string()))?;
    c.fault().set_blackhole(b.blackhole);
    tracing::warn!(
        blackhole = b.blackhole,
        "fault injection: cluster traffic black hole"
    );
    Ok(json(StatusCode::OK, &b))
}

/// The cluster routes.
pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let status = route!(
        app,
        "GET /v1/cluster",
        path!("v1" / "cluster")
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |_p, a| get_status(a)
    );
    let leave = route!(
        app,
        "POST /v1/cluster/leave",
        path!("v1" / "cluster" / "leave")
            .and(end())
            .and(post())
            .and(filters::admin(app)),
        |_p, a| leave(a)
    );
    let remove = route!(
        app,
        "POST /v1/cluster/remove",
        path!("v1" / "cluster" / "remove")
            .and(end())
            .and(post())
            .and(filters::admin(app))
            .and(filters::body(app)),
        |_p, b, a| remove(a, b)
    );
    // The body is judged after the fault-injection switch: without it the route is 404.
    let fault = route!(
        app,
        "POST /v1/cluster/fault",
        path!("v1" / "cluster" / "fault")
            .and(end())
            .and(post())
            .and(filters::admin(app))
            .and(filters::deferred_json(app.config.http.max_body_bytes)),
        |_p, b, a| fault(a, b)
    );
    status.or(leave).or(remove).or(fault)
}
