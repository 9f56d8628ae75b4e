//! `POST /v1/carts/{id}/checkout`: places an order and waits briefly for its saga.
//!
//! Idempotency follows Stripe: the key is claimed atomically with a fingerprint of the
//! request (cart id and body). A repeat with the same fingerprint joins the same order;
//! a different one is 409 `idempotency_key_reused`. Once the saga is settled the exact
//! response (status and body) is stored and every later repeat replays it byte for byte.
//! Requests rejected by validation before anything executes store nothing.

use super::carts::accessible;
use super::error::ApiError;
use super::extract::{email as parse_email, parse_json, uuid, Access};
use super::views;
use crate::actors::entity::now_ms;
use crate::app::App;
use crate::auth::Principal;
use crate::domain::cart::CartStatus;
use crate::domain::order::{Order, OrderCommand, Placement};
use crate::payment::CardDetails;
use crate::store::codec;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::time::Duration;
use uuid::Uuid;
use warp::http::{header, StatusCode};
use warp::reply::Response;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    email: String,
    payment: CardDetails,
}

#[derive(Debug, Serialize, Deserialize)]
enum IdemRecord {
    Started {
        fingerprint: [u8; 32],
        order_id: Uuid,
    },
    Done {
        fingerprint: [u8; 32],
        status: u16,
        body: Vec<u8>,
    },
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        "idempotent-replayed",
        header::HeaderValue::from_static("true"),
    );
    r
}

pub async fn checkout(
    app: App,
    cart: String,
    p: Result<Principal, ApiError>,
    key: Result<String, ApiError>,
    body: Result<bytes::Bytes, ApiError>,
) -> Result<Response, ApiError> {
    let p = p?;
    let cart_id = uuid("cart id", &cart)?;
    // Only someone who may use the cart may check it out, or replay its checkout.
    accessible(&app, &p, cart_id, Access::Write).await?;
    let key = key?;
    let raw = body?;
    let value: serde_json::Value = parse_json(&raw)?;
    let fingerprint = fingerprint(cart_id.as_bytes(), &value);
    let tree = app.store.tree(IDEMPOTENCY_TREE)?;
    let order_id = match lookup(&tree, &key, fingerprint)? {
        Prior::Replay(r) => return Ok(r),
        Prior::Started(o) => o,
        Prior::None => {
            let body: CheckoutBody =
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
            let now = now_ms();
            let (y, m) = views::year_month(now);
            let method = app
                .gateway
                .tokenize(&body.payment, y, m)
                .await
                .map_err(|e| ApiError::validation(format!("payment: {e}")))?;
            let new_id = Uuid::new_v4();
            if let Some(r) = claim(&app, &tree, &key, fingerprint, new_id).await? {
                return Ok(r);
            }
            let ttl = app.config.checkout.reservation_ttl_ms;
            let placement = Placement {
                order_id: new_id,
                cart_id,
                owner: cart_state.owner,
                email,
                currency: app.config.shop.currency.clone(),
                payment_method: method.token,
                last4: method.last4,
                placed_at: now,
                expires_at: now + ttl,
            };
            // Durable: this append's fsync also covers the key claim and the card token.
            app.router
                .command::<Order>(&new_id.to_string(), OrderCommand::Place(placement))
                .await?;
            new_id
        }
    };
    respond(&app, &tree, &key, fingerprint, order_id).await
}

/// The sled tree of idempotency records (checkouts and vending purchases).
pub(super) const IDEMPOTENCY_TREE: &str = "checkout_idempotency";

/// What a key already stands for.
pub(super) enum Prior {
    /// Settled: the stored answer, byte for byte.
    Replay(Response),
    /// Claimed by a request whose order is still running.
    Started(Uuid),
    /// Unused.
    None,
}

fn key_reused() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request",
    )
}

/// The fingerprint of a request: its target and its body.
pub(super) fn fingerprint(scope: &[u8], body: &serde_json::Value) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    h.update(scope);
    h.update(body.to_string().as_bytes());
    h.finalize().into()
}

/// What `key` stands for; 409 `idempotency_key_reused` if it was used for another request.
pub(super) fn lookup(
    tree: &sled::Tree,
    key: &str,
    fingerprint: [u8; 32],
) -> Result<Prior, ApiError> {
    let Some(bytes) = tree.get(key).map_err(crate::store::StoreError::from)? else {
        return Ok(Prior::None);
    };
    match codec::decode::<IdemRecord>(&bytes).map_err(|e| ApiError::internal(e.to_string()))? {
        IdemRecord::Done { fingerprint: f, .. } | IdemRecord::Started { fingerprint: f, .. }
            if f != fingerprint =>
        {
            Err(key_reused())
        }
        IdemRecord::Done { status, body, .. } => Ok(Prior::Replay(replay(status, body))),
        IdemRecord::Started { order_id, .. } => Ok(Prior::Started(order_id)),
    }
}

/// Claims `key` for `order_id` atomically. `Some(answer)` when a concurrent twin won the
/// claim: the answer is the winner's order (or 409 if the twin's body differed).
pub(super) async fn claim(
    app: &App,
    tree: &sled::Tree,
    key: &str,
    fingerprint: [u8; 32],
    order_id: Uuid,
) -> Result<Option<Response>, ApiError> {
    let started = codec::encode(&IdemRecord::Started {
        fingerprint,
        order_id,
    });
    match tree
        .compare_and_swap(key, None as Option<&[u8]>, Some(started))
        .map_err(crate::store::StoreError::from)?
    {
        Ok(()) => Ok(None),
        Err(_) => match lookup(tree, key, fingerprint)? {
            Prior::Replay(r) => Ok(Some(r)),
            Prior::Started(winner) => Ok(Some(respond(app, tree, key, fingerprint, winner).await?)),
            Prior::None => Err(ApiError::internal("idempotency record vanished")),
        },
    }
}

/// Waits for the saga briefly; 201 once settled (and stored for replay), else 202.
pub(super) async fn respond(
    app: &App,
    tree: &sled::Tree,
    key: &str,
    fingerprint: [u8; 32],
    order_id: Uuid,
) -> Result<Response, ApiError> {
    let wait = Duration::from_millis(app.config.checkout.wait_ms);
    let (status, state) = match app
        .router
        .wait_settled::<Order>(&order_id.to_string(), wait)
        .await?
    {
        Some(s) => (StatusCode::CREATED, s),
        None => (
            StatusCode::ACCEPTED,
            app.router.get::<Order>(&order_id.to_string()).await?,
        ),
    };
    let body = serde_json::to_vec(&views::order(order_id, &state))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if status == StatusCode::CREATED {
        let done = codec::encode(&IdemRecord::Done {
            fingerprint,
            status: status.as_u16(),
            body: body.clone(),
        });
        tree.insert(key, done)
            .map_err(crate::store::StoreError::from)?;
        app.store.durable().await?;
    }
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
