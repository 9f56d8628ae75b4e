//! `POST /v1/carts/{id}/checkout`: places an order and waits briefly for its saga.
//!
//! Idempotency follows Stripe, with the order as the record: the `Idempotency-Key` names
//! the order (its id is derived from the cart and the key, see [`super::idempotency`]).
//! A repeat with the same body answers with that order; a different body is 409
//! `idempotency_key_reused`; a key reused after `checkout.idempotency_ttl_s` is a new
//! request. Requests rejected by validation before anything executes place nothing.

use super::carts::accessible;
use super::dto::carts::CheckoutRequest;
use super::dto::orders::Order as OrderView;
use super::dto::{ErrorBody, IdempotencyKey};
use super::error::ApiError;
use super::extract::{email as parse_email, uuid, Access};
use super::filters;
use super::idempotency::{place_keyed, Keyed};
use super::routes::{route, Routes};
use crate::app::App;
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::domain::cart::CartStatus;
use crate::domain::order::{OrderCommand, Placement};
use crate::payment::CardDetails;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

/// Places an order from the cart and waits briefly for payment. Idempotent by key: a
/// repeat with the same key and body replays the first answer.
#[utoipa::path(post, path = "/v1/carts/{id}/checkout", tag = "carts",
    security((), ("bearer" = [])),
    params(
        ("id" = Uuid, Path, description = "the cart"),
        IdempotencyKey,
    ),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "the order, settled (paid or cancelled)", body = OrderView, links(
            ("GetOrder" = (operation_id = "get_order", parameters(("id" = "$response.body#/id")))),
            ("CancelOrder" = (operation_id = "cancel_order", parameters(("id" = "$response.body#/id")))),
            ("FulfilOrder" = (operation_id = "fulfil_order", parameters(("id" = "$response.body#/id")))),
            ("RefundOrder" = (operation_id = "refund_order", parameters(("id" = "$response.body#/id")))),
        )),
        (status = 202, description = "the order, still being processed", body = OrderView),
        (status = 400, description = "`validation` (body, card, or a missing or bad `Idempotency-Key`) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such cart", body = ErrorBody),
        (status = 409, description = "`cart_empty`, `cart_checked_out`, `idempotency_key_reused` or `idempotency_key_expired` (reused past its last generation)", body = ErrorBody),
    ))]
pub async fn checkout(
    app: App,
    cart: String,
    p: Principal,
    key: Result<String, ApiError>,
    value: Result<serde_json::Value, ApiError>,
) -> Result<Response, ApiError> {
    let cart_id = uuid("cart id", &cart)?;
    // Only someone who may use the cart may check it out, or replay its checkout.
    accessible(&app, &p, cart_id, Access::Write).await?;
    // The key and the body are judged only now, after the access check.
    let key = key?;
    let value = value?;
    let keyed = Keyed::new(&app, format!("cart:{cart_id}"), key, &value, now_ms());
    let prepare = async {
        let body: CheckoutRequest =
            serde_json::from_value(value).map_err(|e| ApiError::validation(e.to_string()))?;
        let email = parse_email(&body.email)?;
        let cart_state = accessible(&app, &p, cart_id, Access::Write).await?;
        if cart_state.status == CartStatus::CheckedOut {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "cart_checked_out",
                "the cart is already checked out",
            ));
        }
        if cart_state.lines.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "cart_empty",
                "the cart is empty",
            ));
        }
        let now = keyed.now;
        let (y, m) = crate::clock::year_month(now);
        let method = app
            .gateway
            .tokenize(&CardDetails::from(body.payment), y, m)
            .await
            .map_err(|e| ApiError::validation(format!("payment: {e}")))?;
        // Durable: the order's placement append also flushes the card token.
        Ok(OrderCommand::Place(Placement {
            order_id: Uuid::nil(),
            cart_id,
            owner: cart_state.owner,
            email,
            currency: app.config.shop.currency.clone(),
            payment_method: method.token,
            last4: method.last4,
            placed_at: now,
            expires_at: now + app.config.checkout.reservation_ttl_ms,
            fingerprint: keyed.fingerprint,
            key_expires_at: keyed.key_expires_at,
        }))
    };
    place_keyed(&app, &keyed, prepare).await
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{path, post};
    route!(
        app,
        "POST /v1/carts/{id}/checkout",
        path!("v1" / "carts" / String / "checkout")
            .and(end())
            .and(post())
            .and(filters::principal(app))
            .and(super::extract::idempotency_key())
            .and(filters::deferred_json(app.config.http.max_body_bytes)),
        |id, p, key, b, a| checkout(a, id, p, key, b)
    )
}
