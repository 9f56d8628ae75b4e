//! Restock visits (`POST /v1/machines/{id}/restock-visits`): a driver fills a machine's
//! slots from a truck. Each SKU's units move from the truck's location to the machine's
//! (its id) in the SKU's entity, with the machine's own count of that SKU recorded
//! against the ledger's; the machine's slot levels stay what the machine reports. A SKU
//! the truck cannot cover refuses the visit, and the SKUs already moved are taken back,
//! so a visit moves all of its units or none.

use std::collections::BTreeMap;

use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::locations::{RestockLine, RestockVisit, RestockVisitView};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::machines::{machine_id, registered};
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::location::{LocationKind, Locations, BOOK_ID};
use crate::domain::stock::{Stock, StockCommand};
use crate::domain::Sku;
use crate::events::machine_stock::machine_location;

/// Most slots one visit fills.
const MAX_SLOTS: usize = 64;

/// The transfer id of a visit's move of `sku`: derived, so each SKU's move is its own.
fn move_id(visit: Uuid, sku: &Sku) -> Uuid {
    use sha2::{Digest, Sha256};
    let h = Sha256::new()
        .chain_update(visit.as_bytes())
        .chain_update(sku.as_str().as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

struct Line {
    slots: Vec<u32>,
    quantity: i64,
    reported: i64,
}

/// Records a restock visit. Operators and admins.
#[utoipa::path(post, path = "/v1/machines/{id}/restock-visits", operation_id = "create_restock_visit", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the machine")),
    request_body = RestockVisit,
    responses(
        (status = 201, description = "the visit: units moved per SKU, and the machine's count against the ledger's", body = RestockVisitView),
        (status = 400, description = "`validation`: no such slot, a slot twice, over capacity, not a truck; `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no such machine", body = ErrorBody),
        (status = 409, description = "`insufficient_stock`: the truck does not hold the units (nothing moved)", body = ErrorBody),
    ))]
pub async fn create(app: App, id: String, b: RestockVisit) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let machine = registered(&app, &id).await?;
    if b.slots.is_empty() || b.slots.len() > MAX_SLOTS {
        return Err(ApiError::validation(format!(
            "slots: 1 to {MAX_SLOTS} slots"
        )));
    }
    let book = app.router.get::<Locations>(BOOK_ID).await?;
    match book.get(&b.truck) {
        Some(l) if l.kind == LocationKind::Truck => {}
        Some(_) => {
            return Err(ApiError::validation(format!(
                "truck: {} is not a truck",
                b.truck
            )))
        }
        None => {
            return Err(ApiError::validation(format!(
                "truck: no location {}",
                b.truck
            )))
        }
    }
    let mut lines: BTreeMap<Sku, Line> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for s in &b.slots {
        let Some(slot) = machine.planogram.get(&s.slot) else {
            return Err(ApiError::validation(format!("slots: no slot {}", s.slot)));
        };
        if !seen.insert(s.slot) {
            return Err(ApiError::validation(format!(
                "slots: slot {} twice",
                s.slot
            )));
        }
        if s.quantity == 0 || slot.level.saturating_add(s.quantity) > slot.capacity {
            return Err(ApiError::validation(format!(
                "slots: slot {} holds {} of {}; 1 to {} more fit",
                s.slot,
                slot.level,
                slot.capacity,
                slot.capacity - slot.level
            )));
        }
        let line = lines.entry(slot.sku.clone()).or_insert(Line {
            slots: Vec::new(),
            quantity: 0,
            reported: 0,
        });
        line.slots.push(s.slot);
        line.quantity += i64::from(s.quantity);
    }
    for (sku, line) in lines.iter_mut() {
        line.reported = machine
            .planogram
            .values()
            .filter(|sl| &sl.sku == sku)
            .map(|sl| i64::from(sl.level))
            .sum();
    }
    let visit = Uuid::new_v4();
    let location = machine_location(&id);
    let now = now_ms();
    let mut moved: Vec<Sku> = Vec::new();
    let mut out = Vec::new();
    for (sku, line) in &lines {
        let cmd = StockCommand::Restock {
            visit_id: move_id(visit, sku),
            from: b.truck.clone(),
            to: location.clone(),
            quantity: line.quantity,
            reported: line.reported,
            now,
        };
        match app.router.command::<Stock>(sku.as_str(), cmd).await {
            Ok(applied) => {
                moved.push(sku.clone());
                let after = applied.state.at(&location).on_hand;
                let ledger_before = after - line.quantity;
                out.push(RestockLine {
                    sku: sku.to_string(),
                    slots: line.slots.clone(),
                    quantity: line.quantity,
                    machine_reported: line.reported,
                    ledger_before,
                    difference: line.reported - ledger_before,
                });
            }
            Err(e) => {
                undo(&app, visit, &moved).await;
                return Err(e.into());
            }
        }
    }
    let view = RestockVisitView {
        id: visit,
        machine_id: id,
        truck: b.truck,
        location,
        lines: out,
    };
    Ok(json(StatusCode::CREATED, &view))
}

/// Takes back the moves of a visit that failed on a later SKU. An undo that fails is
/// logged with what it left: the units are then at the machine's location, and a
/// transfer or an adjustment puts them right.
async fn undo(app: &App, visit: Uuid, moved: &[Sku]) {
    for sku in moved {
        let cmd = StockCommand::RestockUndo {
            visit_id: move_id(visit, sku),
            now: now_ms(),
        };
        if let Err(error) = app.router.command::<Stock>(sku.as_str(), cmd).await {
            tracing::error!(%visit, %sku, %error, "a failed restock visit's move was not taken back");
        }
    }
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{path, post};
    route!(
        app,
        "POST /v1/machines/{id}/restock-visits",
        path!("v1" / "machines" / String / "restock-visits")
            .and(end())
            .and(post())
            .and(filters::staff(app))
            .and(filters::small_body(app)),
        |id, _p, b, a| create(a, id, b)
    )
}
