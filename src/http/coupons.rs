//! A cart's coupons: enter one (`POST /v1/carts/{id}/coupons`) and remove one
//! (`DELETE /v1/carts/{id}/coupons/{code}`). A coupon is added only when it applies to
//! the cart as it is now (its window, its conditions, its redemptions left, the
//! customer's limit, and no better promotion excluding it); the answer is the cart,
//! priced. Who may change a cart is decided as for its lines.

use warp::http::StatusCode;
use warp::reply::Response;

use super::carts::{accessible, priced};
use super::dto::carts::{ApplyCoupon, Cart as CartView};
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{uuid, Access};
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::actors::promotion_steps::{refusal_code, refusal_message};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::cart::{Cart, CartCommand, CartState};
use crate::domain::promotion::normalize_code;
use crate::domain::Rejection;
use uuid::Uuid;

fn code(s: &str) -> Result<String, ApiError> {
    normalize_code(s).map_err(|e| ApiError::validation(format!("code: {e}")))
}

async fn answer(app: &App, id: Uuid, c: &CartState) -> Result<Response, ApiError> {
    let p = priced(app, c).await?;
    Ok(json(
        StatusCode::OK,
        &CartView::new(id, c, &p, &app.config.shop.currency),
    ))
}

/// Enters a coupon code. Refused with the reason it does not apply.
#[utoipa::path(post, path = "/v1/carts/{id}/coupons", operation_id = "apply_coupon", tag = "carts",
    security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "the cart")),
    request_body = ApplyCoupon,
    responses(
        (status = 200, description = "the cart, priced with the coupon", body = CartView),
        (status = 400, description = "`validation` (not a code; too many coupons) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart, or no coupon with that code", body = ErrorBody),
        (status = 409, description = "`coupon_expired`, `coupon_exhausted`, `coupon_not_applicable`, `coupon_limit_per_customer`, or `cart_checked_out`", body = ErrorBody),
    ))]
pub async fn apply(
    app: App,
    id: String,
    p: Principal,
    b: ApplyCoupon,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let code = code(&b.code)?;
    let cart = accessible(&app, &p, id, Access::Write).await?;
    // The book itself, not the node's copy: a coupon just defined is usable at once.
    let (_, book) = app.promotions.refresh().await?;
    if book.by_code(&code).is_none() {
        return Err(ApiError::not_found(format!("no coupon {code}")));
    }
    let mut trial = cart.clone();
    if !trial.coupons.contains(&code) {
        trial.coupons.push(code.clone());
    }
    let quote = priced(&app, &trial).await?;
    if let Some((_, r)) = quote.refused.iter().find(|(c, _)| *c == code) {
        return Err(Rejection::new(refusal_code(*r), refusal_message(&code, *r)).into());
    }
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::AddCoupon { code })
        .await?;
    answer(&app, id, &applied.state).await
}

/// Removes a coupon code from the cart.
#[utoipa::path(delete, path = "/v1/carts/{id}/coupons/{code}", operation_id = "remove_coupon", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        ("code" = String, Path, pattern = "^[A-Za-z0-9_-]{1,32}$", description = "the coupon code"),
    ),
    responses(
        (status = 200, description = "the cart", body = CartView),
        (status = 400, description = "`validation`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart, or the cart has no such coupon", body = ErrorBody),
        (status = 409, description = "`cart_checked_out`", body = ErrorBody),
    ))]
pub async fn remove(
    app: App,
    id: String,
    code_s: String,
    p: Principal,
) -> Result<Response, ApiError> {
    let id = uuid("cart id", &id)?;
    let code = code(&code_s)?;
    accessible(&app, &p, id, Access::Write).await?;
    let applied = app
        .router
        .command::<Cart>(&id.to_string(), CartCommand::RemoveCoupon { code })
        .await?;
    answer(&app, id, &applied.state).await
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{delete, path, post};
    let who = || filters::principal(app);
    let apply_coupon = route!(
        app,
        "POST /v1/carts/{id}/coupons",
        path!("v1" / "carts" / String / "coupons")
            .and(end())
            .and(post())
            .and(who())
            .and(filters::small_body(app)),
        |id, p, b, a| apply(a, id, p, b)
    );
    let remove_coupon = route!(
        app,
        "DELETE /v1/carts/{id}/coupons/{code}",
        path!("v1" / "carts" / String / "coupons" / String)
            .and(end())
            .and(delete())
            .and(who()),
        |id, code, p, a| remove(a, id, code, p)
    );
    apply_coupon.or(remove_coupon)
}
