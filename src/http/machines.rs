//! Vending machine routes: registration, secret rotation, listing, the full state, the
//! planogram and commands (operators), and the public slot view for shoppers. The app
//! purchase is in `super::vending`.
//!
//! A machine's secret is generated here, returned once (on registration or rotation),
//! and only its SHA-256 hex is stored (the gateway hashes a Hello's secret the same way).
//! No answer ever carries the stored hash.

use super::dto::machines::{
    Machine as MachineView, MachineInfo, MachineList, MachineWithSecret, Picklist, Planogram,
    SlotOffer,
};
use super::dto::{missing, ErrorBody, PARTIAL, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::machine::{Machine, MachineInput, MachineState, SlotSpec};
use crate::domain::{RejectionCode, Sku};
use crate::router::RouteError;
use futures::StreamExt;
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::Response;

/// Most machines one `GET /v1/machines` reads.
pub const MAX_LISTED: usize = 1000;

/// A machine id: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn machine_id(s: &str) -> Result<String, ApiError> {
    crate::domain::machine::valid_machine_id(s)
        .map(|()| s.to_owned())
        .map_err(|r| ApiError::validation(r.message))
}

/// A new random secret (32 bytes, hex) and its SHA-256 hex.
fn new_secret() -> (String, String) {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    let secret = hex::encode(b);
    let hash = crate::grpc::gateway::secret_hash(&secret);
    (secret, hash)
}

pub(super) fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no machine {id}"))
}

/// The registered machine's state, or 404.
pub(super) async fn registered(app: &App, id: &str) -> Result<MachineState, ApiError> {
    let s = app.router.get::<Machine>(id).await?;
    if s.registration.is_none() {
        return Err(not_found(id));
    }
    Ok(s)
}

/// Registers a machine (201, with its secret, once) or updates its name and location (200).
#[utoipa::path(put, path = "/v1/machines/{id}", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the machine")),
    request_body = MachineInfo,
    responses(
        (status = 200, description = "the machine, updated", body = MachineView),
        (status = 201, description = "the machine, registered, with its secret", body = MachineWithSecret),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn put_machine(app: App, id: String, b: MachineInfo) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let current = app.router.get::<Machine>(&id).await?;
    if current.registration.is_none() {
        let (secret, secret_hash) = new_secret();
        let reg = MachineInput::Register {
            name: b.name.clone(),
            location: b.location.clone(),
            secret_hash,
            low_stock_threshold: app.config.vending.low_stock_threshold,
            at: now_ms(),
        };
        match app.router.command::<Machine>(&id, reg).await {
            Ok(applied) => {
                let v = MachineWithSecret {
                    machine: MachineView::new(&id, &applied.state),
                    secret,
                };
                return Ok(json(StatusCode::CREATED, &v));
            }
            // Registered by a concurrent request meanwhile: update it instead.
            Err(RouteError::Rejected(r)) if r.code == RejectionCode::Conflict => {}
            Err(e) => return Err(e.into()),
        }
    }
    let update = MachineInput::UpdateInfo {
        name: b.name,
        location: b.location,
    };
    let applied = app.router.command::<Machine>(&id, update).await?;
    Ok(json(StatusCode::OK, &MachineView::new(&id, &applied.state)))
}

/// Issues a new secret for the machine; the old one stops working for new sessions.
#[utoipa::path(post, path = "/v1/machines/{id}/secret", operation_id = "rotate_machine_secret", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the machine with its new secret", body = MachineWithSecret),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn rotate_secret(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    registered(&app, &id).await?;
    let (secret, secret_hash) = new_secret();
    let applied = app
        .router
        .command::<Machine>(&id, MachineInput::RotateSecret { secret_hash })
        .await?;
    let v = MachineWithSecret {
        machine: MachineView::new(&id, &applied.state),
        secret,
    };
    Ok(json(StatusCode::OK, &v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    online: Option<String>,
    alarm: Option<String>,
    low_stock: Option<String>,
    cursor: Option<String>,
    partial: Option<String>,
}

/// `?partial=true`: a listing answers 200 without the partitions that cannot answer,
/// and names them in `missing_partitions`; otherwise they make it 503.
pub(super) fn partial(v: Option<&str>) -> Result<bool, ApiError> {
    Ok(flag("partial", v)?.unwrap_or(false))
}

fn flag(name: &str, v: Option<&str>) -> Result<Option<bool>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(ApiError::validation(format!(
            "{name} must be true or false"
        ))),
    }
}

/// Registered machines of the whole cluster (at most 1000 read a page), in id order,
/// filtered by connectivity, alarms and low stock.
#[utoipa::path(get, path = "/v1/machines", tag = "machines",
    security(("bearer" = [])),
    params(
        ("online" = Option<bool>, Query, description = "only machines online (true) or offline (false)"),
        ("alarm" = Option<bool>, Query, description = "only machines with (true) or without (false) open alarms"),
        ("low_stock" = Option<bool>, Query, description = "only machines with (true) or without (false) low-stock slots"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("partial" = Option<bool>, Query, description = PARTIAL),
    ),
    responses(
        (status = 200, description = "the machines", body = MachineList),
        (status = 400, description = "`validation`: a filter that is not true or false", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list_machines(app: App, q: ListQuery) -> Result<Response, ApiError> {
    let online = flag("online", q.online.as_deref())?;
    let alarm = flag("alarm", q.alarm.as_deref())?;
    let low_stock = flag("low_stock", q.low_stock.as_deref())?;
    let partial = partial(q.partial.as_deref())?;
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(machine_id(c).map_err(|_| ApiError::validation("cursor is not valid"))?),
        None => None,
    };
    let page = app
        .router
        .list_machines(cursor, MAX_LISTED, partial)
        .await?;
    let router = app.router.clone();
    let states: Vec<(String, Result<MachineState, RouteError>)> =
        futures::stream::iter(page.rows.into_iter().map(|r| r.key))
            .map(|id| {
                let router = router.clone();
                async move {
                    let s = router.get::<Machine>(&id).await;
                    (id, s)
                }
            })
            .buffered(16)
            .collect()
            .await;
    let mut items = Vec::new();
    for (id, s) in states {
        let s = s?;
        let keep = s.registration.is_some()
            && online.is_none_or(|o| s.online == o)
            && alarm.is_none_or(|a| s.alarms.is_empty() != a)
            && low_stock.is_none_or(|l| s.low_stock_slots().is_empty() != l);
        if keep {
            items.push(MachineView::new(&id, &s));
        }
    }
    let body = MachineList {
        items,
        next_cursor: page.next_cursor,
        missing_partitions: missing(partial, &page.missing_partitions),
    };
    Ok(json(StatusCode::OK, &body))
}

/// A machine's full state.
#[utoipa::path(get, path = "/v1/machines/{id}", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the machine", body = MachineView),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_machine(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let s = registered(&app, &id).await?;
    Ok(json(StatusCode::OK, &MachineView::new(&id, &s)))
}

/// Replaces the planogram.
#[utoipa::path(put, path = "/v1/machines/{id}/planogram", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    request_body = Planogram,
    responses(
        (status = 200, description = "the machine", body = MachineView),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: a removed slot holds units for app orders", body = ErrorBody),
    ))]
pub async fn put_planogram(app: App, id: String, b: Planogram) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let slots = b
        .slots
        .into_iter()
        .map(|s| {
            let sku = Sku::parse(&s.sku)
                .map_err(|e| ApiError::validation(format!("slot {}: {e}", s.slot)))?;
            Ok(SlotSpec {
                slot: s.slot,
                sku,
                price_minor: s.price_minor,
                capacity: s.capacity,
                level: s.level,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let applied = app
        .router
        .command::<Machine>(&id, MachineInput::SetPlanogram { slots })
        .await
        .map_err(|e| match e {
            RouteError::Rejected(r) if r.code == RejectionCode::NotFound => not_found(&id),
            e => e.into(),
        })?;
    Ok(json(StatusCode::OK, &MachineView::new(&id, &applied.state)))
}

/// The machine's slots for shoppers: SKU, price and availability. Public.
#[utoipa::path(get, path = "/v1/machines/{id}/slots", operation_id = "get_machine_slots", tag = "machines",
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the slots", body = Vec<SlotOffer>),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_slots(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let s = registered(&app, &id).await?;
    Ok(json(StatusCode::OK, &SlotOffer::all(&s)))
}

/// What a restock visit must bring: capacity minus level for each slot short of it.
/// Operators and admins.
#[utoipa::path(get, path = "/v1/machines/{id}/picklist", operation_id = "get_machine_picklist", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    responses(
        (status = 200, description = "the picklist", body = Picklist),
        (status = 400, description = "`validation`: a bad machine id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_picklist(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let s = registered(&app, &id).await?;
    Ok(json(StatusCode::OK, &Picklist::new(&id, &s)))
}

/// The machine routes (the command and purchase routes are in [`super::vending`]).
pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post, put};
    let staff = || filters::staff(app);
    let put_machine = route!(
        app,
        "PUT /v1/machines/{id}",
        path!("v1" / "machines" / String)
            .and(end())
            .and(put())
            .and(staff())
            .and(filters::body(app)),
        |id, _p, b, a| put_machine(a, id, b)
    );
    let rotate = route!(
        app,
        "POST /v1/machines/{id}/secret",
        path!("v1" / "machines" / String / "secret")
            .and(end())
            .and(post())
            .and(staff()),
        |id, _p, a| rotate_secret(a, id)
    );
    let list = route!(
        app,
        "GET /v1/machines",
        path!("v1" / "machines")
            .and(end())
            .and(get())
            .and(staff())
            .and(warp::query::<ListQuery>()),
        |_p, q, a| list_machines(a, q)
    );
    let get_one = route!(
        app,
        "GET /v1/machines/{id}",
        path!("v1" / "machines" / String)
            .and(end())
            .and(get())
            .and(staff()),
        |id, _p, a| get_machine(a, id)
    );
    let planogram = route!(
        app,
        "PUT /v1/machines/{id}/planogram",
        path!("v1" / "machines" / String / "planogram")
            .and(end())
            .and(put())
            .and(staff())
            .and(filters::body(app)),
        |id, _p, b, a| put_planogram(a, id, b)
    );
    let slots = route!(
        app,
        "GET /v1/machines/{id}/slots",
        path!("v1" / "machines" / String / "slots")
            .and(end())
            .and(get()),
        |id, a| get_slots(a, id)
    );
    let picklist = route!(
        app,
        "GET /v1/machines/{id}/picklist",
        path!("v1" / "machines" / String / "picklist")
            .and(end())
            .and(get())
            .and(staff()),
        |id, _p, a| get_picklist(a, id)
    );
    put_machine
        .or(picklist)
        .or(rotate)
        .or(list)
        .or(get_one)
        .or(planogram)
        .or(slots)
}
