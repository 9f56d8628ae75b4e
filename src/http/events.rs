//! Events out: `GET /v1/events` (an operator's consumer pulls the public event feed with
//! a cursor), `GET /v1/admin/projections` (each projection's offsets, lag and state) and
//! `POST /v1/admin/projections/{name}/reset` (rebuild one from the start).
//!
//! With `Accept: text/event-stream` the feed is streamed live ([`super::events_sse`]).
//!
//! The feed is the whole cluster's from any node: every partition's owner reads its part
//! and the parts merge ([`crate::events::feed::cluster_page`]); the cursor names each
//! partition's last log seq read, so it stays valid across a rebalance. The projections'
//! status is the answering node's (its runner and its partitions; `node` names it).

use super::dto::events::{Event, EventPage, ProjectionList, ProjectionState, ResetAccepted};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::events::feed::Cursor;
use crate::events::runner::{merge_status, Status};
use crate::events::EventType;
use crate::router::replay::{ReplayFailure, ReplayOp};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;

/// Most events one page of the feed answers.
pub const MAX_PAGE: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    after: Option<String>,
    types: Option<String>,
    limit: Option<String>,
    partial: Option<String>,
}

/// The public event feed of the whole cluster, oldest first across partitions and in
/// commit order within each. Operators and admins.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    security(("bearer" = [])),
    params(
        ("after" = Option<String>, Query, pattern = "^([0-9]{1,4}\\.[0-9]{1,20}(-[0-9]{1,4}\\.[0-9]{1,20})*)?$",
            description = "`next_cursor` of the previous page; absent for the start"),
        ("types" = Option<String>, Query, pattern = "^[a-z_]+\\.[a-z_]+(,[a-z_]+\\.[a-z_]+)*$",
            description = "comma-separated event types, e.g. `order.paid,order.cancelled`; all when absent"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "page size (default 100); the events of one committed change are never split, so a page may hold a few more"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
        ("Last-Event-ID" = Option<String>, Header, description = "with `Accept: text/event-stream`: the `id` of the last event seen, to resume after it (instead of `after`)"),
    ),
    responses(
        (status = 200, description = "a page of events; with `Accept: text/event-stream`, a live stream of them (server-sent events: `event: <type>`, `data: <Event>`, and `id: <cursor>` on the last event of each log entry, which `Last-Event-ID` resumes after)", body = EventPage),
        (status = 400, description = "`validation`: a bad `after`, `types` or `limit`, or an unknown query parameter", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 503, description = "`too_many_streams`: the node serves its maximum of live streams", body = ErrorBody),
    ))]
pub async fn list_events(
    app: App,
    q: FeedQuery,
    accept: Option<String>,
    last_event_id: Option<String>,
) -> Result<Response, ApiError> {
    let sse = super::events_sse::wants_sse(accept.as_deref());
    // A reconnecting EventSource names where it was with Last-Event-ID.
    let after = match (sse, last_event_id.as_deref()) {
        (true, Some(id)) => Some(id),
        _ => q.after.as_deref(),
    };
    let cursor = match after {
        None => Cursor::default(),
        Some(a) => Cursor::parse(a).ok_or_else(|| ApiError::validation("after is not a cursor"))?,
    };
    let types = match q.types.as_deref().filter(|t| !t.is_empty()) {
        None => Vec::new(),
        Some(t) => t
            .split(',')
            .map(|name| {
                EventType::parse(name.trim())
                    .ok_or_else(|| ApiError::validation(format!("unknown event type {name:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let limit = match q.limit.as_deref() {
        None | Some("") => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "limit must be an integer from 1 to {MAX_PAGE}"
                )))
            }
        },
    };
    let partial = super::machines::partial(q.partial.as_deref())?;
    if sse {
        return super::events_sse::stream(app, cursor, types);
    }
    let (page, missing) =
        crate::events::feed::cluster_page(&app.router, &cursor, &types, limit, partial).await?;
    let body = EventPage {
        items: page.events.into_iter().map(Event::from).collect(),
        next_cursor: page.cursor.encode(),
        missing_partitions: partial.then_some(missing),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Each projection with its offsets and lag in every partition of the cluster, its
/// events handled and its most telling state across the nodes. Operators and admins.
#[utoipa::path(get, path = "/v1/admin/projections", tag = "events",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the projections", body = ProjectionList),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list_projections(app: App) -> Result<Response, ApiError> {
    let (records, missing) = app.router.projection_records().await?;
    let parts = records
        .iter()
        .filter_map(|r| serde_json::from_slice::<Vec<Status>>(r).ok())
        .collect();
    let items = merge_status(parts).into_iter().map(Into::into).collect();
    let body = ProjectionList {
        node: app.cluster.as_ref().map(|c| c.name().to_owned()),
        items,
        missing_partitions: (!missing.is_empty()).then_some(missing),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Rebuilds a projection from the start of every log, on every node (each resets the
/// partitions it owns): its records and offsets are forgotten, then every entry is
/// handled again. Admins only.
#[utoipa::path(post, path = "/v1/admin/projections/{name}/reset", tag = "events",
    security(("bearer" = [])),
    params(("name" = String, Path, example = "feed", description = "the projection")),
    responses(
        (status = 202, description = "the reset is accepted", body = ResetAccepted),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not an admin", body = ErrorBody),
        (status = 404, description = "`not_found`: no such projection", body = ErrorBody),
        (status = 503, description = "`partition_unavailable`: a node could not be reached; the others reset (ask again)", body = ErrorBody),
    ))]
pub async fn reset_projection(app: App, name: String) -> Result<Response, ApiError> {
    if name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
    {
        return Err(ApiError::not_found(format!("no projection {name}")));
    }
    let op = ReplayOp::ResetProjection { name: name.clone() };
    match app.router.replay(op).await {
        Ok(_) => {
            let body = ResetAccepted {
                name,
                state: ProjectionState::Resetting,
            };
            Ok(json(StatusCode::ACCEPTED, &body))
        }
        Err(ReplayFailure::NotFound) => Err(ApiError::not_found(format!("no projection {name}"))),
        Err(e) => Err(e.into()),
    }
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let feed = route!(
        app,
        "GET /v1/events",
        path!("v1" / "events")
            .and(end())
            .and(get())
            .and(filters::staff(app))
            .and(warp::query::<FeedQuery>())
            .and(warp::header::optional::<String>("accept"))
            .and(warp::header::optional::<String>("last-event-id")),
        |_p, q, accept, last, a| list_events(a, q, accept, last)
    );
    let list = route!(
        app,
        "GET /v1/admin/projections",
        path!("v1" / "admin" / "projections")
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |_p, a| list_projections(a)
    );
    let reset = route!(
        app,
        "POST /v1/admin/projections/{name}/reset",
        path!("v1" / "admin" / "projections" / String / "reset")
            .and(end())
            .and(post())
            .and(filters::admin(app)),
        |name, _p, a| reset_projection(a, name)
    );
    feed.or(list).or(reset)
}
