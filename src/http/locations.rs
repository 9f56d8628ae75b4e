//! Stock locations (`/v1/locations`): stores, warehouses, trucks and machine locations,
//! with the priority a checkout draws from them in. Operators and admins write and read
//! them. The locations are one entity, reached through the router; each SKU keeps its
//! own units per location (`GET /v1/inventory/{sku}`).

use warp::http::StatusCode;
use warp::reply::Response;

use super::dto::locations::{LocationList, LocationView, PutLocation};
use super::dto::{ErrorBody, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::now_ms;
use crate::domain::location::{LocationCommand, Locations, BOOK_ID};

/// Creates (201) or replaces (200) a location. Operators and admins.
#[utoipa::path(put, path = "/v1/locations/{id}", operation_id = "put_location", tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "riverside", description = "the location")),
    request_body = PutLocation,
    responses(
        (status = 200, description = "the location, replaced", body = LocationView),
        (status = 201, description = "the location, created", body = LocationView),
        (status = 400, description = "`validation`: a bad id or name, too many locations; `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn put(app: App, id: String, b: PutLocation) -> Result<Response, ApiError> {
    let existed = app
        .router
        .get::<Locations>(BOOK_ID)
        .await?
        .locations
        .contains_key(&id);
    let cmd = LocationCommand::Put {
        id: id.clone(),
        kind: b.kind.into(),
        name: b.name,
        priority: b.priority,
        open: b.open,
        now: now_ms(),
    };
    let applied = app.router.command::<Locations>(BOOK_ID, cmd).await?;
    let l = applied
        .state
        .get(&id)
        .ok_or_else(|| ApiError::internal("a location just put is not in the book"))?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &LocationView::new(&id, &l)))
}

/// Every location (`main` always among them) and the order a checkout draws from.
/// Operators and admins.
#[utoipa::path(get, path = "/v1/locations", operation_id = "list_locations", tag = "inventory",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the locations", body = LocationList),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
    ))]
pub async fn list(app: App) -> Result<Response, ApiError> {
    let book = app.router.get::<Locations>(BOOK_ID).await?;
    let items = book
        .all()
        .iter()
        .map(|(id, l)| LocationView::new(id, l))
        .collect();
    let draw_order = book.draw_order();
    Ok(json(StatusCode::OK, &LocationList { items, draw_order }))
}

/// One location. Operators and admins.
#[utoipa::path(get, path = "/v1/locations/{id}", operation_id = "get_location", tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the location")),
    responses(
        (status = 200, description = "the location", body = LocationView),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(app: App, id: String) -> Result<Response, ApiError> {
    let book = app.router.get::<Locations>(BOOK_ID).await?;
    let l = book
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no location {id}")))?;
    Ok(json(StatusCode::OK, &LocationView::new(&id, &l)))
}

/// Closes a location: a checkout no longer draws from it and a transfer into it fails;
/// its units stay (adjust or transfer them out). `PUT` with `"open": true` reopens it.
/// Operators and admins.
#[utoipa::path(delete, path = "/v1/locations/{id}", operation_id = "close_location", tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", description = "the location")),
    responses(
        (status = 204, description = "closed"),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn close(app: App, id: String) -> Result<Response, ApiError> {
    let cmd = LocationCommand::Close { id, now: now_ms() };
    app.router.command::<Locations>(BOOK_ID, cmd).await?;
    use warp::Reply as _;
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{delete, get, path, put};
    let put_location = route!(
        app,
        "PUT /v1/locations/{id}",
        path!("v1" / "locations" / String)
            .and(end())
            .and(put())
            .and(filters::staff(app))
            .and(filters::small_body(app)),
        |id, _p, b, a| self::put(a, id, b)
    );
    let list_locations = route!(
        app,
        "GET /v1/locations",
        path!("v1" / "locations")
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |_p, a| list(a)
    );
    let get_location = route!(
        app,
        "GET /v1/locations/{id}",
        path!("v1" / "locations" / String)
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |id, _p, a| self::get(a, id)
    );
    let close_location = route!(
        app,
        "DELETE /v1/locations/{id}",
        path!("v1" / "locations" / String)
            .and(end())
            .and(delete())
            .and(filters::staff(app)),
        |id, _p, a| close(a, id)
    );
    put_location
        .or(list_locations)
        .or(get_location)
        .or(close_location)
}
