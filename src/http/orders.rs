//! Order routes: read and cancel (the order's shopper, or a guest holding the id, or
//! staff), fulfil and refund (operators and admins).

use super::dto::orders::Order as OrderView;
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{may_use, uuid, Access};
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::domain::order::{Order, OrderCommand, OrderState};
use std::time::Duration;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

/// The order if it exists and `p` may see it; 404 otherwise.
async fn accessible(
    app: &App,
    p: &Principal,
    id: Uuid,
    access: Access,
) -> Result<OrderState, ApiError> {
    let o = app.router.get::<Order>(&id.to_string()).await?;
    match &o.placement {
        Some(pl) if may_use(p, pl.owner, app.identity.allow_guest_checkout, access) => Ok(o),
        _ => Err(ApiError::not_found(format!("no order {id}"))),
    }
}

/// An order. Someone else's order is 404.
#[utoipa::path(get, path = "/v1/orders/{id}", operation_id = "get_order", tag = "orders",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order", body = OrderView),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get(app: App, id: String, p: Principal) -> Result<Response, ApiError> {
    let id = uuid("order id", &id)?;
    let o = accessible(&app, &p, id, Access::Read).await?;
    Ok(json(StatusCode::OK, &OrderView::new(id, &o)))
}

/// Sends a command, then waits briefly for the saga it starts: 200 when settled, 202
/// while compensation or the refund is still running. Fulfil and refund are checked by
/// role before this, so they only need to see the order; a cancel changes it, so it
/// needs write access.
async fn command_and_wait(
    app: &App,
    p: &Principal,
    id: Uuid,
    cmd: OrderCommand,
) -> Result<Response, ApiError> {
    let access = if matches!(cmd, OrderCommand::Cancel { .. }) {
        Access::Write
    } else {
        Access::Read
    };
    accessible(app, p, id, access).await?;
    app.router.command::<Order>(&id.to_string(), cmd).await?;
    let wait = Duration::from_millis(app.config.checkout.wait_ms);
    match app
        .router
        .wait_settled::<Order>(&id.to_string(), wait)
        .await?
    {
        Some(o) => Ok(json(StatusCode::OK, &OrderView::new(id, &o))),
        None => Ok(json(
            StatusCode::ACCEPTED,
            &OrderView::new(id, &accessible(app, p, id, Access::Read).await?),
        )),
    }
}

/// Cancels an order that is not yet paid.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", operation_id = "cancel_order", tag = "orders",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order, settled", body = OrderView),
        (status = 202, description = "the order, compensation still running", body = OrderView),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ))]
pub async fn cancel(app: App, id: String, p: Principal) -> Result<Response, ApiError> {
    let id = uuid("order id", &id)?;
    command_and_wait(&app, &p, id, OrderCommand::Cancel { at: now_ms() }).await
}

/// An operator action on an order, recorded with who did it.
async fn staff_command(
    app: App,
    id: String,
    p: Principal,
    cmd: fn(u64, String) -> OrderCommand,
) -> Result<Response, ApiError> {
    let id = uuid("order id", &id)?;
    command_and_wait(&app, &p, id, cmd(now_ms(), p.actor())).await
}

/// Marks a paid order fulfilled. Operators and admins.
#[utoipa::path(post, path = "/v1/orders/{id}/fulfil", operation_id = "fulfil_order", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order", body = OrderView),
        (status = 202, description = "the order, still settling", body = OrderView),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ))]
pub async fn fulfil(app: App, id: String, p: Principal) -> Result<Response, ApiError> {
    staff_command(app, id, p, |at, by| OrderCommand::Fulfil { at, by }).await
}

/// Refunds a paid or fulfilled order. Operators and admins.
#[utoipa::path(post, path = "/v1/orders/{id}/refund", operation_id = "refund_order", tag = "orders",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the order")),
    responses(
        (status = 200, description = "the order, refunded", body = OrderView),
        (status = 202, description = "the order, refund still running", body = OrderView),
        (status = 400, description = "`validation`: not a UUID", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ))]
pub async fn refund(app: App, id: String, p: Principal) -> Result<Response, ApiError> {
    staff_command(app, id, p, |at, by| OrderCommand::RequestRefund { at, by }).await
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let get_order = route!(
        app,
        "GET /v1/orders/{id}",
        path!("v1" / "orders" / String)
            .and(end())
            .and(get())
            .and(filters::principal(app)),
        |id, p, a| self::get(a, id, p)
    );
    let cancel = route!(
        app,
        "POST /v1/orders/{id}/cancel",
        path!("v1" / "orders" / String / "cancel")
            .and(end())
            .and(post())
            .and(filters::principal(app)),
        |id, p, a| cancel(a, id, p)
    );
    let fulfil = route!(
        app,
        "POST /v1/orders/{id}/fulfil",
        path!("v1" / "orders" / String / "fulfil")
            .and(end())
            .and(post())
            .and(filters::staff(app)),
        |id, p, a| fulfil(a, id, p)
    );
    let refund = route!(
        app,
        "POST /v1/orders/{id}/refund",
        path!("v1" / "orders" / String / "refund")
            .and(end())
            .and(post())
            .and(filters::staff(app)),
        |id, p, a| refund(a, id, p)
    );
    get_order.or(cancel).or(fulfil).or(refund)
}
