//! Operator commands to a machine, and the shopper's app purchase from a machine slot.
//!
//! - `POST /v1/machines/{id}/commands`: issues `set_price`, `lock_slot`, `unlock_slot` or
//!   `request_audit`; answers 202 with the command and its delivery status (`sent` until
//!   the machine acks it; re-sent with the same id until then).
//! - `GET /v1/machines/{id}/commands/{command_id}`: that command's delivery status.
//! - `POST /v1/machines/{id}/purchase`: places an order of kind `vending` for one unit of a
//!   slot. An offline machine is 409 `machine_offline` at once, before any order or charge.
//!   Idempotent by `Idempotency-Key` like checkout (the key names the order, see
//!   [`super::idempotency`]); the key is private to the machine and the buyer (the user, or
//!   "a guest": guests share one scope per machine, so their keys must be unguessable, and
//!   a guest retry with another body is 409). The answer follows the order contract (201
//!   once settled, else 202 while the machine dispenses).

use super::dto::machines::{CommandRequest, MachineCommand as CommandView, PurchaseRequest};
use super::dto::orders::Order as OrderView;
use super::dto::{ErrorBody, IdempotencyKey, STAFF_401, STAFF_403};
use super::error::ApiError;
use super::extract::{email as parse_email, uuid};
use super::filters;
use super::idempotency::{place_keyed, Keyed};
use super::json;
use super::machines::{machine_id, not_found, registered};
use super::routes::{route, Routes};
use crate::app::App;
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::domain::machine::{Machine, MachineCommand, MachineInput};
use crate::domain::order::{OrderCommand, Placement, VendingPlacement};
use crate::domain::user::User;
use crate::payment::CardDetails;
use uuid::Uuid;
use warp::http::StatusCode;
use warp::reply::Response;

/// Sends a command to the machine; it is re-sent with the same id until acked.
#[utoipa::path(post, path = "/v1/machines/{id}/commands", operation_id = "issue_machine_command", tag = "machines",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "the machine")),
    request_body = CommandRequest,
    responses(
        (status = 202, description = "the command and its delivery status", body = CommandView),
        (status = 400, description = "`validation` or `invalid_json`", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`: no such machine or slot", body = ErrorBody),
        (status = 409, description = "`conflict`: too many commands pending", body = ErrorBody),
    ))]
pub async fn issue_command(app: App, id: String, b: CommandRequest) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let command = MachineCommand::from(b);
    registered(&app, &id).await?;
    let command_id = Uuid::new_v4();
    let applied = app
        .router
        .command::<Machine>(
            &id,
            MachineInput::IssueCommand {
                command_id,
                command,
                at: now_ms(),
            },
        )
        .await?;
    let rec = applied
        .state
        .command(&command_id)
        .ok_or_else(|| ApiError::internal("issued command missing from state"))?;
    Ok(json(
        StatusCode::ACCEPTED,
        &CommandView::new(command_id, rec),
    ))
}

/// A command's delivery status.
#[utoipa::path(get, path = "/v1/machines/{id}/commands/{command_id}", operation_id = "get_machine_command", tag = "machines",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "the machine"),
        ("command_id" = Uuid, Path, description = "the command"),
    ),
    responses(
        (status = 200, description = "the command", body = CommandView),
        (status = 400, description = "`validation`: a bad id", body = ErrorBody),
        (status = 401, description = STAFF_401, body = ErrorBody),
        (status = 403, description = STAFF_403, body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ))]
pub async fn get_command(app: App, id: String, command: String) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    let command_id = uuid("command id", &command)?;
    let s = registered(&app, &id).await?;
    let rec = s
        .command(&command_id)
        .ok_or_else(|| ApiError::not_found(format!("no command {command_id} at machine {id}")))?;
    Ok(json(StatusCode::OK, &CommandView::new(command_id, rec)))
}

fn conflict(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, message)
}

/// Buys one unit from a slot: an order of kind `vending`. The machine dispenses it; the
/// payment is captured only when the machine reports the vend, and voided otherwise.
#[utoipa::path(post, path = "/v1/machines/{id}/purchase", operation_id = "purchase_from_machine", tag = "machines",
    security((), ("bearer" = [])),
    params(
        ("id" = String, Path, description = "the machine"),
        IdempotencyKey,
    ),
    request_body = PurchaseRequest,
    responses(
        (status = 201, description = "the order, settled (fulfilled or cancelled)", body = OrderView),
        (status = 202, description = "the order, while the machine dispenses", body = OrderView),
        (status = 400, description = "`validation` (body, card, or a missing or bad `Idempotency-Key`) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "`unauthorized` (guest purchases are off), `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such machine or slot", body = ErrorBody),
        (status = 409, description = "`machine_offline` (nothing charged), `slot_locked`, `out_of_stock`, `idempotency_key_reused` or `idempotency_key_expired` (reused past its last generation)", body = ErrorBody),
    ))]
pub async fn purchase(
    app: App,
    id: String,
    p: Principal,
    key: Result<String, ApiError>,
    value: Result<serde_json::Value, ApiError>,
) -> Result<Response, ApiError> {
    let id = machine_id(&id)?;
    if p == Principal::Anonymous && !app.identity.allow_guest_checkout {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in to buy (guest checkout is off)",
        ));
    }
    // The key and the body are judged only now, after the guest check.
    let key = key?;
    let value = value?;
    let buyer = match &p {
        Principal::User { id: user, .. } => format!("user:{user}"),
        Principal::Anonymous => "guest".to_owned(),
        Principal::Bootstrap => "bootstrap".to_owned(),
    };
    let keyed = Keyed::new(&app, format!("machine:{id}:{buyer}"), key, &value, now_ms());
    let prepare = async {
        let b: PurchaseRequest =
            serde_json::from_value(value).map_err(|e| ApiError::validation(e.to_string()))?;
        let email = match (&b.email, p.user_id()) {
            (Some(e), _) => parse_email(e)?,
            (None, Some(user)) => app
                .router
                .get::<User>(&user.to_string())
                .await?
                .email
                .unwrap_or_default(),
            (None, None) => String::new(),
        };
        let machine = registered(&app, &id).await.map_err(|_| not_found(&id))?;
        if !machine.online {
            return Err(conflict(
                "machine_offline",
                format!("machine {id} is offline; nothing was charged"),
            ));
        }
        let slot = machine
            .planogram
            .get(&b.slot)
            .ok_or_else(|| ApiError::not_found(format!("machine {id} has no slot {}", b.slot)))?;
        if slot.locked {
            return Err(conflict(
                "slot_locked",
                format!("slot {} is locked", b.slot),
            ));
        }
        if machine.available_units(b.slot) == 0 {
            return Err(conflict(
                "out_of_stock",
                format!("slot {} has no units available", b.slot),
            ));
        }
        let now = keyed.now;
        let (y, m) = crate::clock::year_month(now);
        let method = app
            .gateway
            .tokenize(&CardDetails::from(b.payment), y, m)
            .await
            .map_err(|e| ApiError::validation(format!("payment: {e}")))?;
        let placement = Placement {
            order_id: Uuid::nil(),
            cart_id: Uuid::nil(),
            owner: p.user_id(),
            email,
            currency: app.config.shop.currency.clone(),
            payment_method: method.token,
            last4: method.last4,
            placed_at: now,
            expires_at: now + app.config.checkout.reservation_ttl_ms,
            fingerprint: keyed.fingerprint,
            key_expires_at: keyed.key_expires_at,
        };
        let vending = VendingPlacement {
            machine_id: id.clone(),
            slot: b.slot,
            sku: slot.sku.clone(),
            price_minor: slot.price_minor,
            deadline: now + app.config.vending.dispense_timeout_ms,
        };
        Ok(OrderCommand::PlaceVending { placement, vending })
    };
    place_keyed(&app, &keyed, prepare).await
}

/// The operator's command routes and the shopper's purchase.
pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, post};
    let commands = route!(
        app,
        "POST /v1/machines/{id}/commands",
        path!("v1" / "machines" / String / "commands")
            .and(end())
            .and(post())
            .and(filters::staff(app))
            .and(filters::body(app)),
        |id, _p, b, a| issue_command(a, id, b)
    );
    let command = route!(
        app,
        "GET /v1/machines/{id}/commands/{command_id}",
        path!("v1" / "machines" / String / "commands" / String)
            .and(end())
            .and(get())
            .and(filters::staff(app)),
        |id, c, _p, a| get_command(a, id, c)
    );
    let purchase = route!(
        app,
        "POST /v1/machines/{id}/purchase",
        path!("v1" / "machines" / String / "purchase")
            .and(end())
            .and(post())
            .and(filters::principal(app))
            .and(super::extract::idempotency_key())
            .and(filters::deferred_json(app.config.http.max_body_bytes)),
        |id, p, k, b, a| purchase(a, id, p, k, b)
    );
    commands.or(command).or(purchase)
}
