//! Operator routes over the journal: an entity's events as an audit trail, read on
//! the entity's owner through the router (like any other entity read).

use super::dto::audit::{EntityEvent, EntityEvents, EntityKind as EntityKindParam};
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{sku, uuid};
use super::filters;
use super::json;
use super::routes::{route, Routes};
use crate::app::App;
use crate::clock::rfc3339;
use crate::domain::EntityKind;
use serde::Deserialize;
use serde_json::Value;
use warp::http::StatusCode;
use warp::reply::Response;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    after_seq: Option<u64>,
    limit: Option<usize>,
}

/// `{"Variant": data}` or `"Variant"` (serde's external tagging) as `(type, data)`.
fn split_variant(v: Value) -> (String, Value) {
    match v {
        Value::String(s) => (s, Value::Null),
        Value::Object(m) if m.len() == 1 => {
            let (k, v) = m.into_iter().next().expect("one entry");
            (k, v)
        }
        other => ("Event".into(), other),
    }
}

/// Fields that never leave the server, even to operators: credential hashes.
const SECRET_FIELDS: &[&str] = &["password_hash", "token_hash", "secret_hash"];

fn redact(v: &mut Value) {
    if let Value::Object(m) = v {
        for f in SECRET_FIELDS {
            if let Some(x) = m.get_mut(*f) {
                *x = Value::String("[redacted]".into());
            }
        }
    }
}

async fn events(
    app: &App,
    kind: EntityKind,
    id: &str,
    q: &EventsQuery,
) -> Result<Vec<EntityEvent>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let evs = app
        .router
        .entity_events(kind, id, q.after_seq.unwrap_or(0), limit)
        .await?;
    Ok(evs
        .into_iter()
        .map(|e| {
            let value = serde_json::from_str(&e.json).unwrap_or(Value::Null);
            let (ty, mut data) = split_variant(value);
            redact(&mut data);
            EntityEvent {
                seq: e.seq,
                at: rfc3339(e.at),
                event_type: ty,
                data,
            }
        })
        .collect())
}

/// An entity's journalled events: the audit trail. Operators and admins.
#[utoipa::path(get, path = "/v1/admin/entities/{kind}/{id}/events", tag = "admin",
    security(("bearer" = [])),
    params(
        ("kind" = EntityKindParam, Path, description = "the entity kind"),
        ("id" = String, Path, description = "a SKU for `product` and `sku`/`inventory`, a UUID for `cart`, `order` and `user`, a machine id for `machine`"),
        ("after_seq" = Option<u64>, Query, minimum = 0, description = "only events after this sequence number"),
        ("limit" = Option<u32>, Query, minimum = 0, description = "most events to return (default 1000, at most 10000; a page also stops after about 2 MiB of events: page on with `after_seq`)"),
    ),
    responses(
        (status = 200, description = "the events", body = EntityEvents),
        (status = 400, description = "`validation`: an unknown kind, a bad id, or a bad query", body = ErrorBody),
        (status = 401, description = "`unauthorized`, `invalid_token` or `token_expired`", body = ErrorBody),
        (status = 403, description = "`forbidden`: not an operator or admin", body = ErrorBody),
        (status = 404, description = "`not_found`: the entity has no events", body = ErrorBody),
    ))]
pub async fn entity_events(
    app: App,
    kind: String,
    id: String,
    q: EventsQuery,
) -> Result<Response, ApiError> {
    let kind = EntityKind::parse(&kind).ok_or_else(|| {
        ApiError::validation(
            "kind must be one of product, cart, sku, inventory, order, payment, user, machine",
        )
    })?;
    let id_key = match kind {
        EntityKind::Product | EntityKind::Sku => sku(&id)?.as_str().to_owned(),
        EntityKind::Cart => uuid("cart id", &id)?.to_string(),
        EntityKind::Order => uuid("order id", &id)?.to_string(),
        EntityKind::Payment => id.clone(),
        EntityKind::User => uuid("user id", &id)?.to_string(),
        // LowStock, sales, commands and alarms; the secret hash is redacted.
        EntityKind::Machine => super::machines::machine_id(&id)?,
        // Email claims are keyed by a hash, sessions hold token hashes and the webhook
        // registry signing keys: not exposed. Templates have their own route.
        EntityKind::Email
        | EntityKind::Session
        | EntityKind::Webhook
        | EntityKind::NotificationTemplate
        | EntityKind::Preferences
        | EntityKind::Promotion
        | EntityKind::Redemption
        | EntityKind::Category
        | EntityKind::Review
        | EntityKind::Location => {
            return Err(ApiError::validation(format!(
                "{kind} entities are not readable through this route"
            )))
        }
    };
    let list = events(&app, kind, &id_key, &q).await?;
    if list.is_empty() && q.after_seq.unwrap_or(0) == 0 {
        return Err(ApiError::not_found(format!("no {kind} {id}")));
    }
    let body = EntityEvents {
        kind: kind.to_string(),
        id,
        events: list,
    };
    Ok(json(StatusCode::OK, &body))
}

pub fn routes(app: &App) -> Routes {
    use warp::path::end;
    use warp::{get, path, put};
    let events = route!(
        app,
        "GET /v1/admin/entities/{kind}/{id}/events",
        path!("v1" / "admin" / "entities" / String / String / "events")
            .and(end())
            .and(get())
            .and(filters::staff(app))
            .and(warp::query::<EventsQuery>()),
        |kind, id, _p, q, a| entity_events(a, kind, id, q)
    );
    let set_roles = route!(
        app,
        "PUT /v1/admin/users/{user_id}/roles",
        path!("v1" / "admin" / "users" / String / "roles")
            .and(end())
            .and(put())
            .and(filters::admin(app))
            .and(filters::small_body(app)),
        |id, p, b, a| super::auth::set_roles(a, id, p, b)
    );
    events.or(set_roles)
}
