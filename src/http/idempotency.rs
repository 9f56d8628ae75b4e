//! Keyed order requests (checkout, vending purchase): the `Idempotency-Key` names the
//! order, so the order entity is the idempotency record (see
//! [`crate::domain::order_idempotency`]). The edge keeps nothing of its own.
//!
//! A request with a key:
//! 1. Looks up the key's orders, generation by generation: the first unplaced one is
//!    free; a placed one with the same fingerprint is answered (a replay, with the
//!    header `idempotent-replayed: true`); another fingerprint is 409
//!    `idempotency_key_reused`; an expired one is skipped. Past the last generation: 409
//!    `idempotency_key_expired`.
//! 2. For a free generation, validates the request and tokenizes the card (a replay needs
//!    neither: the order has its token). If that fails, a twin may have placed the order
//!    meanwhile (and checked the cart out): the generation is looked at again first.
//! 3. Sends `Place` to that order. The order decides: placed (new), no events (a racing
//!    twin placed the same request first: a replay), or rejected. Only a durable
//!    placement is ever answered 201/202; any failure is answered as it is and nothing is
//!    stored, so a retry places the order.
//!
//! The answer waits briefly for the saga: 201 once settled, else 202; an order that is not
//! placed is never answered with a 2xx.

use super::dto::orders::Order as OrderView;
use super::error::ApiError;
use crate::app::App;
use crate::domain::order::{Order, OrderCommand};
use crate::domain::order_idempotency::{
    fingerprint, key_use, keyed_order_id, Fingerprint, KeyUse, MAX_GENERATIONS,
};
use crate::domain::{Millis, Rejection, RejectionCode};
use crate::router::RouteError;
use std::future::Future;
use std::time::Duration;
use uuid::Uuid;
use warp::http::{header, StatusCode};
use warp::reply::Response;

/// One keyed request: what the key is private to, the key, the request's fingerprint and
/// its time.
pub(super) struct Keyed {
    scope: String,
    key: String,
    pub fingerprint: Fingerprint,
    pub now: Millis,
    /// Until when the key names the order this request places.
    pub key_expires_at: Millis,
}

/// What the key's orders say about this request.
enum Found {
    /// An order placed by this same request.
    Placed(Uuid),
    /// The first generation with no order yet.
    Free(u32),
}

impl Keyed {
    /// A request under `key` within `scope` with `body`, at `now`.
    pub fn new(
        app: &App,
        scope: String,
        key: String,
        body: &serde_json::Value,
        now: Millis,
    ) -> Self {
        let ttl_ms = app.config.checkout.idempotency_ttl_s.saturating_mul(1000);
        Self {
            // serde_json's maps are ordered by key: the text is canonical.
            fingerprint: fingerprint(scope.as_bytes(), &body.to_string()),
            scope,
            key,
            now,
            key_expires_at: now.saturating_add(ttl_ms),
        }
    }

    fn order_id(&self, generation: u32) -> Uuid {
        keyed_order_id(&self.scope, &self.key, generation)
    }

    /// The first generation from `from` on that is free or placed by this request.
    async fn find(&self, app: &App, from: u32) -> Result<Found, ApiError> {
        for generation in from..MAX_GENERATIONS {
            let id = self.order_id(generation);
            let state = app.router.get::<Order>(&id.to_string()).await?;
            let Some(placed) = &state.placement else {
                return Ok(Found::Free(generation));
            };
            match key_use(placed, &self.fingerprint, self.now) {
                KeyUse::Replay => return Ok(Found::Placed(id)),
                KeyUse::Reused => {
                    return Err(Rejection::new(
                        RejectionCode::IdempotencyKeyReused,
                        "this Idempotency-Key was used with a different request",
                    )
                    .into())
                }
                KeyUse::Expired => {}
            }
        }
        Err(Rejection::new(
            RejectionCode::IdempotencyKeyExpired,
            format!(
                "this Idempotency-Key has named {MAX_GENERATIONS} orders already; use a new key"
            ),
        )
        .into())
    }
}

/// Runs a keyed request: answers the order the key names for it, or runs `prepare`
/// (validation, card token) and places the order it builds. `prepare` builds the command
/// with any order id: the order id of the generation is set here.
pub(super) async fn place_keyed(
    app: &App,
    keyed: &Keyed,
    prepare: impl Future<Output = Result<OrderCommand, ApiError>>,
) -> Result<Response, ApiError> {
    let mut generation = match keyed.find(app, 0).await? {
        Found::Placed(id) => return answer(app, id, true).await,
        Found::Free(generation) => generation,
    };
    let cmd = match prepare.await {
        Ok(cmd) => cmd,
        // A twin may have placed this order meanwhile (checking the cart out, taking the
        // last unit): its order is this request's answer.
        Err(e) => {
            return match keyed.find(app, generation).await? {
                Found::Placed(id) => answer(app, id, true).await,
                Found::Free(_) => Err(e),
            }
        }
    };
    // Bounded: every turn moves to a later generation, and `find` stops at the last.
    loop {
        let id = keyed.order_id(generation);
        match app
            .router
            .command::<Order>(&id.to_string(), with_order_id(cmd.clone(), id))
            .await
        {
            // No events: a twin placed the same request first.
            Ok(applied) => return answer(app, id, applied.events.is_empty()).await,
            // Placed by an earlier request whose key has expired since: a new request.
            Err(RouteError::Rejected(r)) if r.code == RejectionCode::IdempotencyKeyExpired => {
                generation = match keyed.find(app, generation + 1).await? {
                    Found::Placed(id) => return answer(app, id, true).await,
                    Found::Free(generation) => generation,
                };
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn with_order_id(mut cmd: OrderCommand, id: Uuid) -> OrderCommand {
    if let OrderCommand::Place(p) | OrderCommand::PlaceVending { placement: p, .. } = &mut cmd {
        p.order_id = id;
    }
    cmd
}

/// Waits for the saga briefly: 201 once settled, else 202. An order that is not placed
/// is never answered 2xx.
pub(crate) async fn answer(
    app: &App,
    order_id: Uuid,
    replayed: bool,
) -> Result<Response, ApiError> {
    let id = order_id.to_string();
    let wait = Duration::from_millis(app.config.checkout.wait_ms);
    let (status, state) = match app.router.wait_settled::<Order>(&id, wait).await? {
        Some(s) => (StatusCode::CREATED, s),
        None => (StatusCode::ACCEPTED, app.router.get::<Order>(&id).await?),
    };
    if state.placement.is_none() {
        return Err(ApiError::internal(format!(
            "order {order_id} is not placed"
        )));
    }
    let body = serde_json::to_vec(&OrderView::new(order_id, &state))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            header::HeaderValue::from_static("true"),
        );
    }
    Ok(r)
}
