//! Operator routes over the journal: an entity's events as an audit trail.

use super::error::ApiError;
use super::extract::{sku, staff, uuid};
use super::{json, views};
use crate::app::App;
use crate::auth::Principal;
use crate::domain::cart::Cart;
use crate::domain::machine::Machine;
use crate::domain::order::Order;
use crate::domain::payment::Payment;
use crate::domain::product::Product;
use crate::domain::stock::Stock;
use crate::domain::user::User;
use crate::domain::{Aggregate, EntityKind};
use serde::Deserialize;
use serde_json::{json, Value};
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

fn events<A: Aggregate>(app: &App, id: &str, q: &EventsQuery) -> Result<Vec<Value>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 10_000);
    let evs = app
        .store
        .journal()
        .events::<A>(id, q.after_seq.unwrap_or(0), limit)
        .map_err(|e| match e {
            crate::store::StoreError::Corrupt { .. } => ApiError::unavailable(
                "entity_corrupt",
                e.to_string(),
                std::time::Duration::from_secs(30),
            ),
            other => other.into(),
        })?;
    Ok(evs
        .into_iter()
        .map(|(seq, at, e)| {
            let (ty, mut data) = split_variant(serde_json::to_value(&e).unwrap_or(Value::Null));
            redact(&mut data);
            json!({"seq": seq, "at": views::rfc3339(at), "type": ty, "data": data})
        })
        .collect())
}

pub async fn entity_events(
    app: App,
    kind: String,
    id: String,
    p: Result<Principal, ApiError>,
    q: EventsQuery,
) -> Result<Response, ApiError> {
    staff(&p?)?;
    let kind = EntityKind::parse(&kind).ok_or_else(|| {
        ApiError::validation(
            "kind must be one of product, cart, sku, inventory, order, payment, user, machine",
        )
    })?;
    let list = match kind {
        EntityKind::Product => events::<Product>(&app, sku(&id)?.as_str(), &q)?,
        EntityKind::Sku => events::<Stock>(&app, sku(&id)?.as_str(), &q)?,
        EntityKind::Cart => events::<Cart>(&app, &uuid("cart id", &id)?.to_string(), &q)?,
        EntityKind::Order => events::<Order>(&app, &uuid("order id", &id)?.to_string(), &q)?,
        EntityKind::Payment => events::<Payment>(&app, &id, &q)?,
        EntityKind::User => events::<User>(&app, &uuid("user id", &id)?.to_string(), &q)?,
        // LowStock, sales, commands and alarms; the secret hash is redacted.
        EntityKind::Machine => events::<Machine>(&app, &super::machines::machine_id(&id)?, &q)?,
        // Email claims are keyed by a hash and sessions hold token hashes: not exposed.
        EntityKind::Email | EntityKind::Session => {
            return Err(ApiError::validation(format!(
                "{kind} entities are not readable through this route"
            )))
        }
    };
    if list.is_empty() && q.after_seq.unwrap_or(0) == 0 {
        return Err(ApiError::not_found(format!("no {kind} {id}")));
    }
    Ok(json(
        StatusCode::OK,
        &json!({"kind": kind, "id": id, "events": list}),
    ))
}
