//! Stock transfers between locations (`/v1/inventory/transfers`): an operator starts
//! one (its units are held at the source while in transit), then receives it at the
//! destination or cancels it. A destination closed by the time the units arrive refuses
//! them, and the units go back to the source (409 `location_closed`). The transfer lives
//! in its SKU's entity, with the units it moves, so no step can lose or double them.

use uuid::Uuid;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;

use super::dto::locations::{CreateTransfer, TransferView};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::extract::{sku, uuid};
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::location::{valid_location_id, Locations, BOOK_ID};
use crate::domain::product::Product;
use crate::domain::stock::{Stock, StockCommand, StockState};
use crate::domain::stock_location::{TransferFailure, TransferStatus};
use crate::domain::{Rejection, RejectionCode};

fn view(id: Uuid, sku: &str, s: &StockState) -> Result<TransferView, ApiError> {
    let t = s
        .transfers
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no transfer {id} of {sku}")))?;
    Ok(TransferView::new(id, sku, t))
}

fn location_field(field: &str, id: &str) -> Result<(), ApiError> {
    valid_location_id(id).map_err(|e| ApiError::validation(format!("{field}: {}", e.message)))
}

/// Starts a transfer: holds `quantity` at `from` until it is received at `to` or
/// cancelled. Operators and admins.
#[utoipa::path(post, path = "/v1/inventory/transfers", operation_id = "create_transfer", tag = "inventory",
    security(("bearer" = [])),
    request_body = CreateTransfer,
    responses(
        (status = 201, description = "in transit; `Location` names it", body = TransferView,
            headers(("Location" = String, description = "the transfer's URL"))),
        (status = 400, description = "`validation`: a bad SKU, location or quantity, an unknown location; `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no such product", body = ErrorBody),
        (status = 409, description = "`insufficient_stock` at the source; `location_closed`: the destination is closed; `conflict`: too many in transit", body = ErrorBody),
    ))]
pub async fn create(app: App, b: CreateTransfer) -> Result<Response, ApiError> {
    let sku = sku(&b.sku).map_err(|e| ApiError::validation(format!("sku: {}", e.message)))?;
    location_field("from", &b.from)?;
    location_field("to", &b.to)?;
    if !app.router.get::<Product>(sku.as_str()).await?.exists() {
        return Err(ApiError::not_found(format!("no product {sku}")));
    }
    let book = app.router.get::<Locations>(BOOK_ID).await?;
    for (field, id) in [("from", &b.from), ("to", &b.to)] {
        if book.get(id).is_none() {
            return Err(ApiError::validation(format!("{field}: no location {id}")));
        }
    }
    if !book.is_open(&b.to) {
        return Err(Rejection::new(
            RejectionCode::LocationClosed,
            format!("location {} is closed", b.to),
        )
        .into());
    }
    let id = Uuid::new_v4();
    let cmd = StockCommand::TransferOut {
        transfer_id: id,
        from: b.from,
        to: b.to,
        quantity: b.quantity,
        now: now_ms(),
    };
    let applied = app.router.command::<Stock>(sku.as_str(), cmd).await?;
    let mut r = json(
        StatusCode::CREATED,
        &view(id, sku.as_str(), &applied.state)?,
    );
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/inventory/{sku}/transfers/{id}")) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// A transfer. Operators and admins.
#[utoipa::path(get, path = "/v1/inventory/{sku}/transfers/{id}", operation_id = "get_transfer", tag = "inventory",
    security(("bearer" = [])),
    params(
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the SKU"),
        ("id" = Uuid, Path, description = "the transfer"),
    ),
    responses(
        (status = 200, description = "the transfer", body = TransferView),
        (status = 400, description = "`validation`: a bad SKU or id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(app: App, sku_s: String, id_s: String) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let id = uuid("transfer id", &id_s)?;
    let state = app.router.get::<Stock>(sku.as_str()).await?;
    Ok(json(StatusCode::OK, &view(id, sku.as_str(), &state)?))
}

/// Receives a transfer at its destination: its units leave the source and are on hand
/// there. A destination closed meanwhile refuses them: the transfer fails and the units
/// are available at the source again (409 `location_closed`). Operators and admins.
#[utoipa::path(post, path = "/v1/inventory/{sku}/transfers/{id}/receive", operation_id = "receive_transfer", tag = "inventory",
    security(("bearer" = [])),
    params(
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the SKU"),
        ("id" = Uuid, Path, description = "the transfer"),
    ),
    responses(
        (status = 200, description = "received (again: a repeat answers the same)", body = TransferView),
        (status = 400, description = "`validation`: a bad SKU or id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`location_closed`: the destination refused the units, now back at the source; `invalid_transition`: it had failed", body = ErrorBody),
    ))]
pub async fn receive(app: App, sku_s: String, id_s: String) -> Result<Response, ApiError> {
    end(app, sku_s, id_s, false).await
}

/// Cancels a transfer in transit: its units are available at the source again.
/// Operators and admins.
#[utoipa::path(post, path = "/v1/inventory/{sku}/transfers/{id}/cancel", operation_id = "cancel_transfer", tag = "inventory",
    security(("bearer" = [])),
    params(
        ("sku" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the SKU"),
        ("id" = Uuid, Path, description = "the transfer"),
    ),
    responses(
        (status = 200, description = "failed (`cancelled`), or as it had already failed", body = TransferView),
        (status = 400, description = "`validation`: a bad SKU or id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`: it was already received", body = ErrorBody),
    ))]
pub async fn cancel(app: App, sku_s: String, id_s: String) -> Result<Response, ApiError> {
    end(app, sku_s, id_s, true).await
}

async fn end(app: App, sku_s: String, id_s: String, cancel: bool) -> Result<Response, ApiError> {
    let sku = sku(&sku_s)?;
    let id = uuid("transfer id", &id_s)?;
    let failure = if cancel {
        Some(TransferFailure::Cancelled)
    } else {
        let state = app.router.get::<Stock>(sku.as_str()).await?;
        let to = view(id, sku.as_str(), &state)?.to;
        let book = app.router.get::<Locations>(BOOK_ID).await?;
        (!book.is_open(&to)).then_some(TransferFailure::DestinationClosed)
    };
    let cmd = StockCommand::TransferEnd {
        transfer_id: id,
        failure,
        now: now_ms(),
    };
    let applied = app.router.command::<Stock>(sku.as_str(), cmd).await?;
    let v = view(id, sku.as_str(), &applied.state)?;
    let refused = applied.state.transfers.get(&id).is_some_and(|t| {
        t.status == TransferStatus::Failed && t.failure == Some(TransferFailure::DestinationClosed)
    });
    if !cancel && refused {
        return Err(Rejection::new(
            RejectionCode::LocationClosed,
            format!(
                "location {} is closed; the {} units are available at {} again",
                v.to, v.quantity, v.from
            ),
        )
        .into());
    }
    Ok(json(StatusCode::OK, &v))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let create_transfer = route!(
        app,
        "POST /v1/inventory/transfers",
        path!("v1" / "inventory" / "transfers")
            .and(end())
            .and(post())
            .and(filters::staff(app))
            .and(filters::small_body(app)),
        |_p, b, a| create(a, b)
    );
    let get_transfer = route!(
        app,
        "GET /v1/inventory/{sku}/transfers/{id}",
        path!("v1" / "inventory" / String / "transfers" / String)
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |sku, id, _p, a| self::get(a, sku, id)
    );
    let receive_transfer = route!(
        app,
        "POST /v1/inventory/{sku}/transfers/{id}/receive",
        path!("v1" / "inventory" / String / "transfers" / String / "receive")
            .and(end())
            .and(post())
            .and(filters::staff(app)),
        |sku, id, _p, a| receive(a, sku, id)
    );
    let cancel_transfer = route!(
        app,
        "POST /v1/inventory/{sku}/transfers/{id}/cancel",
        path!("v1" / "inventory" / String / "transfers" / String / "cancel")
            .and(end())
            .and(post())
            .and(filters::staff(app)),
        |sku, id, _p, a| cancel(a, sku, id)
    );
    create_transfer
        .or(get_transfer)
        .or(receive_transfer)
        .or(cancel_transfer)
}
