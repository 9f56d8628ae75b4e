//! Vending machine routes: registration, secret rotation, listing, the full state, the
//! planogram and commands (operators), and the public slot view for shoppers. The app
//! purchase is in `super::vending`.
//!
//! A machine's secret is generated here, returned once (on registration or rotation),
//! and only its SHA-256 hex is stored (the gateway hashes a Hello's secret the same way).
//! No answer ever carries the stored hash.

use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use super::views::rfc3339;
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::machine::{
    slot_availability, Machine, MachineCommand, MachineInput, MachineState, SlotSpec,
};
use crate::domain::{RejectionCode, Sku};
use crate::router::RouteError;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
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

pub(super) fn command_view(id: &uuid::Uuid, r: &crate::domain::machine::CommandRecord) -> Value {
    let (kind, slot) = match &r.command {
        MachineCommand::SetPrice { slot, .. } => ("set_price", Some(*slot)),
        MachineCommand::LockSlot { slot, .. } => ("lock_slot", Some(*slot)),
        MachineCommand::UnlockSlot { slot } => ("unlock_slot", Some(*slot)),
        MachineCommand::Dispense { slot, .. } => ("dispense", Some(*slot)),
        MachineCommand::RequestAudit => ("request_audit", None),
    };
    json!({
        "command_id": id,
        "type": kind,
        "slot": slot,
        "status": r.status.as_str(),
        "attempts": r.attempts,
        "issued_at": rfc3339(r.issued_at),
        "sent_at": rfc3339(r.sent_at),
        "detail": r.detail,
    })
}

/// The operator's view of a machine: everything but the secret hash.
pub fn machine_view(id: &str, s: &MachineState) -> Value {
    let reg = s.registration.as_ref();
    let low = s.low_stock_slots();
    let slots: Vec<Value> = s
        .planogram
        .iter()
        .map(|(n, sl)| {
            json!({
                "slot": n,
                "sku": sl.sku,
                "price_minor": sl.price_minor,
                "capacity": sl.capacity,
                "level": sl.level,
                "locked": sl.locked,
                "available": s.available_units(*n),
            })
        })
        .collect();
    let alarms: Vec<Value> = s
        .alarms
        .iter()
        .map(|(code, a)| json!({"code": code, "severity": a.severity, "raised_at": rfc3339(a.raised_at)}))
        .collect();
    let per_slot: Vec<Value> = s
        .sales
        .per_slot
        .iter()
        .map(|(n, u)| json!({"slot": n, "units": u}))
        .collect();
    let pending: Vec<Value> = s
        .pending
        .iter()
        .map(|(id, r)| command_view(id, r))
        .collect();
    let recent: Vec<Value> = s
        .recent_commands
        .iter()
        .rev()
        .map(|(id, r)| command_view(id, r))
        .collect();
    let holds: Vec<Value> = s
        .holds
        .iter()
        .map(|(o, h)| json!({"order_id": o, "slot": h.slot, "deadline": rfc3339(h.deadline)}))
        .collect();
    json!({
        "id": id,
        "name": reg.map(|r| r.name.as_str()),
        "location": reg.map(|r| r.location.as_str()),
        "registered_at": reg.map(|r| rfc3339(r.registered_at)),
        "online": s.online,
        "last_seen": (s.last_seen > 0).then(|| rfc3339(s.last_seen)),
        "heartbeat_state": s.heartbeat,
        "temperature_dc": s.temperature_dc,
        "door_open": s.door_open,
        "alarms": alarms,
        "low_stock_threshold": s.low_stock_threshold,
        "low_stock_slots": low,
        "slots": slots,
        "sales": {
            "units": s.sales.units,
            "value_minor": s.sales.value_minor,
            "failed_vends": s.sales.failed_vends,
            "per_slot": per_slot,
        },
        "acked_seq": s.acked_seq,
        "pending_commands": pending,
        "recent_commands": recent,
        "app_holds": holds,
    })
}

fn with_secret(mut v: Value, secret: &str) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("secret".into(), Value::String(secret.to_owned()));
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfoBody {
    name: String,
    #[serde(default)]
    location: String,
}

/// `PUT /v1/machines/{id}`: registers (201, with the secret once) or renames (200).
pub async fn put_machine(app: App, id: String, b: InfoBody) -> Result<Response, ApiError> {
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
                let v = with_secret(machine_view(&id, &applied.state), &secret);
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
    Ok(json(StatusCode::OK, &machine_view(&id, &applied.state)))
}

/// `POST /v1/machines/{id}/secret`: a new secret, returned once.
pub async fn rotate_secret(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    registered(&app, &id).await?;
    let (secret, secret_hash) = new_secret();
    let applied = app
        .router
        .command::<Machine>(&id, MachineInput::RotateSecret { secret_hash })
        .await?;
    let v = with_secret(machine_view(&id, &applied.state), &secret);
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

/// Adds `"missing_partitions"` to a listing's body when the caller accepts a partial one.
pub(super) fn with_missing(mut body: Value, partial: bool, missing: &[u32]) -> Value {
    if partial {
        body["missing_partitions"] = json!(missing);
    }
    body
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

/// `GET /v1/machines`: registered machines of the whole cluster (at most
/// [`MAX_LISTED`] ids read per page), in id order; `next_cursor` continues.
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
            items.push(machine_view(&id, &s));
        }
    }
    let body = json!({ "items": items, "next_cursor": page.next_cursor });
    Ok(json(
        StatusCode::OK,
        &with_missing(body, partial, &page.missing_partitions),
    ))
}

/// `GET /v1/machines/{id}`: the machine's full state.
pub async fn get_machine(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let s = registered(&app, &id).await?;
    Ok(json(StatusCode::OK, &machine_view(&id, &s)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotBody {
    slot: u32,
    sku: String,
    price_minor: i64,
    capacity: u32,
    level: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanogramBody {
    slots: Vec<SlotBody>,
}

/// `PUT /v1/machines/{id}/planogram`: replaces the planogram.
pub async fn put_planogram(app: App, id: String, b: PlanogramBody) -> Result<Response, ApiError> {
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
    Ok(json(StatusCode::OK, &machine_view(&id, &applied.state)))
}

/// `GET /v1/machines/{id}/slots`: public; each slot's sku, price and availability.
pub async fn get_slots(app: App, id: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let s = registered(&app, &id).await?;
    let slots: Vec<Value> = slot_availability(&s)
        .into_iter()
        .map(|(slot, sku, price_minor, available)| {
            json!({"slot": slot, "sku": sku, "price_minor": price_minor, "available": available})
        })
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(slots)))
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
    put_machine
        .or(rotate)
        .or(list)
        .or(get_one)
        .or(planogram)
        .or(slots)
}
