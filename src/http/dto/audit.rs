//! An entity's journalled events, as `GET /v1/admin/entities/{kind}/{id}/events`
//! answers them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kinds of entity whose events can be read. `inventory` is an alias of `sku`.
// Documentation only: the path segment is parsed by `domain::EntityKind::parse`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Product,
    Cart,
    Sku,
    Inventory,
    Order,
    Payment,
    User,
    Machine,
}

/// One journalled event.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct EntityEvent {
    #[schema(minimum = 1)]
    pub seq: u64,
    #[schema(format = DateTime)]
    pub at: String,
    /// The event's variant, e.g. `Created`, `ItemAdded`, `RolesChanged`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event's fields (any JSON; `null` for events without fields). Operator and
    /// admin actions carry `by`, the actor's user id or `bootstrap-admin`.
    pub data: serde_json::Value,
}

/// An entity's events in order.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct EntityEvents {
    /// The entity kind (`inventory` is reported as `sku`).
    pub kind: String,
    pub id: String,
    pub events: Vec<EntityEvent>,
}
