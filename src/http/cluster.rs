//! Operator routes of the cluster: `GET /v1/cluster` (members, epoch, partitions per
//! node, handoffs), `POST /v1/cluster/leave` (drain this node), `POST
//! /v1/cluster/remove` (reassign a lost node's partitions), and the test-only
//! `POST /v1/cluster/fault` (present only with `cluster.fault_injection`).

use super::error::ApiError;
use super::extract::{admin, parse_json, staff};
use super::{json, route, run, with_app};
use crate::app::App;
use crate::auth::Principal;
use crate::cluster::detector::Health;
use crate::cluster::propose::ProposeError;
use crate::cluster::Cluster;
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Filter;

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
pub fn status(app: &App) -> serde_json::Value {
    let Some(c) = &app.cluster else {
        return json!({"enabled": false, "node": null, "members": [], "epoch": 0});
    };
    let map = c.map();
    let moving: Vec<_> = map
        .as_ref()
        .map(|m| {
            m.moving
                .iter()
                .map(|(p, to)| json!({"partition": p, "from": m.owners[*p as usize], "to": to}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "enabled": true,
        "node": c.name(),
        "epoch": c.epoch(),
        "quorum": c.has_quorum(),
        "partitions": map.as_ref().map(|m| m.partitions()).unwrap_or(0),
        "members": c.members(),
        "partitions_per_node": map.as_ref().map(|m| m.counts()).unwrap_or_default(),
        "moving": moving,
        "owners": map.as_ref().map(|m| m.owners.clone()).unwrap_or_default(),
        "handoffs": c.handoffs(),
    })
}

async fn get_status(app: App, p: Result<Principal, ApiError>) -> Result<Response, ApiError> {
    staff(&p?)?;
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

async fn leave(app: App, p: Result<Principal, ApiError>) -> Result<Response, ApiError> {
    admin(&p?)?;
    let c = cluster_of(&app)?;
    let me = c.name().to_owned();
    let m = c.propose(|m| m.leave(&me)).await.map_err(propose_error)?;
    tracing::warn!(node = %me, epoch = m.epoch, moving = m.moving.len(), "draining this node");
    Ok(json(
        StatusCode::ACCEPTED,
        &json!({"node": me, "epoch": m.epoch, "moving": m.moving.len(),
                "message": "draining: partitions are being handed off; the node leaves the map when it owns none"}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveBody {
    node: String,
    #[serde(default)]
    force: bool,
}

async fn remove(
    app: App,
    p: Result<Principal, ApiError>,
    body: Result<bytes::Bytes, ApiError>,
) -> Result<Response, ApiError> {
    admin(&p?)?;
    let b: RemoveBody = parse_json(&body?)?;
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
    Ok(json(
        StatusCode::OK,
        &json!({"removed": b.node, "epoch": m.epoch, "partitions_reassigned": lost,
                "warning": "the data of these partitions is lost unless restored from a backup"}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    blackhole: bool,
}

async fn fault(
    app: App,
    p: Result<Principal, ApiError>,
    body: Result<bytes::Bytes, ApiError>,
) -> Result<Response, ApiError> {
    admin(&p?)?;
    let c = cluster_of(&app)?;
    if !c.config().fault_injection {
        return Err(ApiError::not_found("no such route"));
    }
    let b: FaultBody = parse_json(&body?)?;
    c.fault().set_blackhole(b.blackhole);
    tracing::warn!(
        blackhole = b.blackhole,
        "fault injection: cluster traffic black hole"
    );
    Ok(json(StatusCode::OK, &json!({"blackhole": b.blackhole})))
}

/// The cluster routes, with their templates pushed onto `n`.
pub(super) fn routes(app: &App, n: &mut Vec<&'static str>) -> BoxedFilter<(Response,)> {
    use warp::path::end;
    use warp::{get, path, post};
    let limit = app.config.http.max_body_bytes;
    let who = || super::extract::principal(app.identity.clone());
    let body = move || super::extract::body_bytes(limit);
    let status = route!(
        n,
        app,
        "GET /v1/cluster",
        path!("v1" / "cluster").and(end()).and(get()).and(who()),
        |p, a| get_status(a, p)
    );
    let leave = route!(
        n,
        app,
        "POST /v1/cluster/leave",
        path!("v1" / "cluster" / "leave")
            .and(end())
            .and(post())
            .and(who()),
        |p, a| leave(a, p)
    );
    let remove = route!(
        n,
        app,
        "POST /v1/cluster/remove",
        path!("v1" / "cluster" / "remove")
            .and(end())
            .and(post())
            .and(who())
            .and(body()),
        |p, b, a| remove(a, p, b)
    );
    let fault = route!(
        n,
        app,
        "POST /v1/cluster/fault",
        path!("v1" / "cluster" / "fault")
            .and(end())
            .and(post())
            .and(who())
            .and(body()),
        |p, b, a| fault(a, p, b)
    );
    status
        .or(leave)
        .unify()
        .or(remove)
        .unify()
        .or(fault)
        .unify()
        .boxed()
}
