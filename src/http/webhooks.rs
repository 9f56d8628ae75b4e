//! Webhook endpoints (`/v1/webhooks`, operators and admins), their deliveries, and the
//! dead-letter queue (`/v1/admin/dlq`, replay one or all of an endpoint).
//!
//! Endpoints are one registry entity, reached through the router like every entity.
//! Deliveries and the DLQ are read from the partitions the answering node owns (like
//! `GET /v1/events`): in a cluster each node answers for its own partitions.

use serde::Deserialize;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::webhooks::{
    CreateWebhook, DeadLetter, DeadLetterPage, DeliveryList, DeliveryView, PatchWebhook,
    ReplayAccepted, WebhookList, WebhookView, WebhookWithSecret,
};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::extract::uuid;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::webhook::{
    Endpoint, EndpointPatch, WebhookCommand, Webhooks, MAX_EVENT_TYPES, REGISTRY_ID,
};
use crate::events::signing::SigningKey;
use crate::events::target::check_url;
use crate::events::webhooks::dlq::{decode_listed, is_dead_key, Listed};
use crate::events::EventType;
use crate::router::listing::{Row, RowData};
use crate::router::replay::ReplayOp;

/// Longest description.
pub const MAX_DESCRIPTION: usize = 500;
/// Most deliveries or dead letters one page answers.
pub const MAX_PAGE: usize = 200;

fn check_target(app: &App, url: &str) -> Result<String, ApiError> {
    check_url(url, app.config.webhooks.allow_private_targets)
        .map(|u| u.to_string())
        .map_err(|e| ApiError::validation(format!("url: {e}")))
}

fn check_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    if events.is_empty() || events.len() > MAX_EVENT_TYPES {
        return Err(ApiError::validation(format!(
            "events names 1 to {MAX_EVENT_TYPES} event types, or [\"*\"]"
        )));
    }
    if events.iter().any(|e| e == "*") {
        return if events.len() == 1 {
            Ok(events.to_vec())
        } else {
            Err(ApiError::validation("\"*\" stands alone in events"))
        };
    }
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let t = EventType::parse(e)
            .ok_or_else(|| ApiError::validation(format!("unknown event type {e:?}")))?;
        if !out.iter().any(|o: &String| o == t.as_str()) {
            out.push(t.as_str().to_owned());
        }
    }
    Ok(out)
}

fn check_description(d: Option<String>) -> Result<Option<String>, ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(ApiError::validation(format!(
            "description is at most {MAX_DESCRIPTION} characters"
        ))),
        d => Ok(d),
    }
}

async fn endpoint(app: &App, id: &str) -> Result<Endpoint, ApiError> {
    let id = uuid("webhook id", id)?;
    let reg = app.router.get::<Webhooks>(REGISTRY_ID).await?;
    reg.endpoints
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no webhook endpoint {id}")))
}

fn with_secret(e: &Endpoint) -> WebhookWithSecret {
    WebhookWithSecret {
        endpoint: e.into(),
        secret: SigningKey::from_bytes(e.key.clone()).to_secret(),
    }
}

/// Registers an endpoint; the answer carries its signing secret. Operators and admins.
#[utoipa::path(post, path = "/v1/webhooks", operation_id = "create_webhook", tag = "webhooks",
    security(("bearer" = [])),
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "the endpoint, with its secret", body = WebhookWithSecret),
        (status = 400, description = "`validation`: a refused URL, an unknown event type, too many endpoints; `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn create(app: App, b: CreateWebhook) -> Result<Response, ApiError> {
    let url = check_target(&app, &b.url)?;
    let events = check_events(&b.events)?;
    let description = check_description(b.description)?.unwrap_or_default();
    let key = SigningKey::generate(&mut rand::rng());
    let id = Uuid::new_v4();
    let cmd = WebhookCommand::Create {
        id,
        url,
        events,
        description,
        key: key.as_bytes().to_vec(),
        now: now_ms(),
    };
    let applied = app.router.command::<Webhooks>(REGISTRY_ID, cmd).await?;
    let e = applied
        .state
        .endpoints
        .get(&id)
        .ok_or_else(|| ApiError::internal("the endpoint was not created"))?;
    tracing::info!(endpoint = %id, url = %e.url, "webhook endpoint registered");
    Ok(json(StatusCode::CREATED, &with_secret(e)))
}

/// Every endpoint. Operators and admins.
#[utoipa::path(get, path = "/v1/webhooks", operation_id = "list_webhooks", tag = "webhooks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the endpoints", body = WebhookList),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list_all(app: App) -> Result<Response, ApiError> {
    let reg = app.router.get::<Webhooks>(REGISTRY_ID).await?;
    let items = reg.endpoints.values().map(WebhookView::from).collect();
    Ok(json(StatusCode::OK, &WebhookList { items }))
}

/// One endpoint. Operators and admins.
#[utoipa::path(get, path = "/v1/webhooks/{id}", operation_id = "get_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the endpoint")),
    responses(
        (status = 200, description = "the endpoint", body = WebhookView),
        (status = 400, description = "`validation`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_one(app: App, id: String) -> Result<Response, ApiError> {
    let e = endpoint(&app, &id).await?;
    Ok(json(StatusCode::OK, &WebhookView::from(&e)))
}

/// Changes an endpoint: its URL, events, description, or whether it is enabled.
/// Operators and admins.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", operation_id = "update_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the endpoint")),
    request_body = PatchWebhook,
    responses(
        (status = 200, description = "the endpoint", body = WebhookView),
        (status = 400, description = "`validation`, `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn update(app: App, id: String, b: PatchWebhook) -> Result<Response, ApiError> {
    let e = endpoint(&app, &id).await?;
    let patch = EndpointPatch {
        url: b
            .url
            .as_deref()
            .map(|u| check_target(&app, u))
            .transpose()?,
        events: b.events.as_deref().map(check_events).transpose()?,
        description: check_description(b.description)?,
        enabled: b.enabled,
    };
    let cmd = WebhookCommand::Update { id: e.id, patch };
    let applied = app.router.command::<Webhooks>(REGISTRY_ID, cmd).await?;
    let e = applied
        .state
        .endpoints
        .get(&e.id)
        .ok_or_else(|| ApiError::not_found(format!("no webhook endpoint {}", e.id)))?;
    Ok(json(StatusCode::OK, &WebhookView::from(e)))
}

/// Removes an endpoint; its queued deliveries are dropped. Operators and admins.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", operation_id = "delete_webhook", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the endpoint")),
    responses(
        (status = 204, description = "removed"),
        (status = 400, description = "`validation`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn remove(app: App, id: String) -> Result<Response, ApiError> {
    let e = endpoint(&app, &id).await?;
    app.router
        .command::<Webhooks>(REGISTRY_ID, WebhookCommand::Delete { id: e.id })
        .await?;
    tracing::info!(endpoint = %e.id, "webhook endpoint removed");
    let mut r = Response::new(Vec::new().into());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// A new signing secret; the old one keeps signing (as a second signature) for 24 h.
/// Operators and admins.
#[utoipa::path(post, path = "/v1/webhooks/{id}/secret", operation_id = "rotate_webhook_secret", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the endpoint")),
    responses(
        (status = 200, description = "the endpoint with its new secret", body = WebhookWithSecret),
        (status = 400, description = "`validation`: the id is not a UUID", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn rotate(app: App, id: String) -> Result<Response, ApiError> {
    let e = endpoint(&app, &id).await?;
    let key = SigningKey::generate(&mut rand::rng());
    let cmd = WebhookCommand::Rotate {
        id: e.id,
        key: key.as_bytes().to_vec(),
        now: now_ms(),
    };
    let applied = app.router.command::<Webhooks>(REGISTRY_ID, cmd).await?;
    let e = applied
        .state
        .endpoints
        .get(&e.id)
        .ok_or_else(|| ApiError::not_found(format!("no webhook endpoint {}", e.id)))?;
    Ok(json(StatusCode::OK, &with_secret(e)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    after: Option<String>,
    endpoint: Option<String>,
    limit: Option<String>,
    partial: Option<String>,
}

/// Listed webhook records from a listing's rows.
fn listed(rows: &[Row]) -> Vec<Listed> {
    rows.iter()
        .filter_map(|r| match &r.data {
            RowData::Record(b) => decode_listed(b),
            _ => None,
        })
        .collect()
}

fn limit(v: Option<&str>) -> Result<usize, ApiError> {
    super::extract::page_limit(v, 50, MAX_PAGE)
}

/// Every attempt of an endpoint's deliveries, from every partition's owner (status,
/// latency, response excerpt), the most recent first. Operators and admins.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", operation_id = "list_webhook_deliveries", tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the endpoint"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "most deliveries (default 50)"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
    ),
    responses(
        (status = 200, description = "the deliveries", body = DeliveryList),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn deliveries(app: App, id: String, q: PageQuery) -> Result<Response, ApiError> {
    if q.after.is_some() || q.endpoint.is_some() {
        return Err(ApiError::validation("only limit is a parameter here"));
    }
    let n = limit(q.limit.as_deref())?;
    let partial = super::machines::partial(q.partial.as_deref())?;
    let e = endpoint(&app, &id).await?;
    let page = app
        .router
        .list_endpoint_deliveries(e.id, n, partial)
        .await?;
    let items = listed(&page.rows).iter().map(DeliveryView::from).collect();
    let body = DeliveryList {
        items,
        missing_partitions: partial.then_some(page.missing_partitions),
    };
    Ok(json(StatusCode::OK, &body))
}

/// The dead-letter queue, from every partition's owner. Operators and admins.
#[utoipa::path(get, path = "/v1/admin/dlq", operation_id = "list_dead_letters", tag = "webhooks",
    security(("bearer" = [])),
    params(
        ("after" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("endpoint" = Option<Uuid>, Query, description = "only this endpoint's"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "page size (default 50)"),
        ("partial" = Option<bool>, Query, description = super::dto::PARTIAL),
    ),
    responses(
        (status = 200, description = "a page of dead letters", body = DeadLetterPage),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list_dead(app: App, q: PageQuery) -> Result<Response, ApiError> {
    let n = limit(q.limit.as_deref())?;
    let endpoint = q
        .endpoint
        .as_deref()
        .map(|e| uuid("endpoint", e))
        .transpose()?;
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    if after.is_some_and(|a| !is_dead_key(a)) {
        return Err(ApiError::validation("after is not a cursor"));
    }
    let partial = super::machines::partial(q.partial.as_deref())?;
    let page = app
        .router
        .list_dead_deliveries(endpoint, after.map(str::to_owned), n, partial)
        .await?;
    let body = DeadLetterPage {
        items: listed(&page.rows).iter().map(DeadLetter::from).collect(),
        next_cursor: page.next_cursor,
        missing_partitions: partial.then_some(page.missing_partitions),
    };
    Ok(json(StatusCode::OK, &body))
}

/// Queues a dead letter again, due at once. Operators and admins.
#[utoipa::path(post, path = "/v1/admin/dlq/{id}/replay", operation_id = "replay_dead_letter", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the dead letter's id")),
    responses(
        (status = 202, description = "queued again", body = ReplayAccepted),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no such dead letter", body = ErrorBody),
        (status = 503, description = "`partition_moving` or `partition_unavailable`: try again", body = ErrorBody),
    ))]
pub async fn replay_one(app: App, id: String) -> Result<Response, ApiError> {
    let Some((partition, _)) = crate::events::webhooks::parse_record_id(&id) else {
        return Err(ApiError::not_found(format!("no dead letter {id}")));
    };
    let replayed = app
        .router
        .replay(ReplayOp::Delivery { partition, id })
        .await?;
    Ok(json(StatusCode::ACCEPTED, &ReplayAccepted { replayed }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayQuery {
    endpoint: Option<String>,
}

/// Queues every dead letter of an endpoint again, on every node. Operators and admins.
#[utoipa::path(post, path = "/v1/admin/dlq/replay", operation_id = "replay_dead_letters", tag = "webhooks",
    security(("bearer" = [])),
    params(("endpoint" = Uuid, Query, description = "the endpoint")),
    responses(
        (status = 202, description = "queued again", body = ReplayAccepted),
        (status = 400, description = "`validation`: no or a bad endpoint", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn replay_all(app: App, q: ReplayQuery) -> Result<Response, ApiError> {
    let endpoint = uuid(
        "endpoint",
        q.endpoint
            .as_deref()
            .ok_or_else(|| ApiError::validation("endpoint is required"))?,
    )?;
    let replayed = app.router.replay(ReplayOp::Endpoint { endpoint }).await?;
    Ok(json(StatusCode::ACCEPTED, &ReplayAccepted { replayed }))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let staff = || filters::staff(app);
    let create = route!(
        app,
        "POST /v1/webhooks",
        path!("v1" / "webhooks")
            .and(end())
            .and(post())
            .and(staff())
            .and(filters::body(app)),
        |_p, b, a| create(a, b)
    );
    let list = route!(
        app,
        "GET /v1/webhooks",
        path!("v1" / "webhooks").and(end()).and(get()).and(staff()),
        |_p, a| list_all(a)
    );
    let get_one = route!(
        app,
        "GET /v1/webhooks/{id}",
        path!("v1" / "webhooks" / String)
            .and(end())
            .and(get())
            .and(staff()),
        |id, _p, a| get_one(a, id)
    );
    let patch = route!(
        app,
        "PATCH /v1/webhooks/{id}",
        path!("v1" / "webhooks" / String)
            .and(end())
            .and(warp::patch())
            .and(staff())
            .and(filters::body(app)),
        |id, _p, b, a| update(a, id, b)
    );
    let remove = route!(
        app,
        "DELETE /v1/webhooks/{id}",
        path!("v1" / "webhooks" / String)
            .and(end())
            .and(warp::delete())
            .and(staff()),
        |id, _p, a| remove(a, id)
    );
    let rotate = route!(
        app,
        "POST /v1/webhooks/{id}/secret",
        path!("v1" / "webhooks" / String / "secret")
            .and(end())
            .and(post())
            .and(staff()),
        |id, _p, a| rotate(a, id)
    );
    let deliveries = route!(
        app,
        "GET /v1/webhooks/{id}/deliveries",
        path!("v1" / "webhooks" / String / "deliveries")
            .and(end())
            .and(get())
            .and(staff())
            .and(warp::query::<PageQuery>()),
        |id, _p, q, a| deliveries(a, id, q)
    );
    let dead = route!(
        app,
        "GET /v1/admin/dlq",
        path!("v1" / "admin" / "dlq")
            .and(end())
            .and(get())
            .and(staff())
            .and(warp::query::<PageQuery>()),
        |_p, q, a| list_dead(a, q)
    );
    let replay_all = route!(
        app,
        "POST /v1/admin/dlq/replay",
        path!("v1" / "admin" / "dlq" / "replay")
            .and(end())
            .and(post())
            .and(staff())
            .and(warp::query::<ReplayQuery>()),
        |_p, q, a| replay_all(a, q)
    );
    let replay_one = route!(
        app,
        "POST /v1/admin/dlq/{id}/replay",
        path!("v1" / "admin" / "dlq" / String / "replay")
            .and(end())
            .and(post())
            .and(staff()),
        |id, _p, a| replay_one(a, id)
    );
    create
        .or(list)
        .or(get_one)
        .or(patch)
        .or(remove)
        .or(rotate)
        .or(deliveries)
        .or(dead)
        .or(replay_all)
        .or(replay_one)
}
