//! The public event catalogue: the versioned events that leave the process (webhooks,
//! `GET /v1/events`, notifications). Internal domain events are not the contract; these
//! are. A public event is derived from one committed entry of a partition log, so its id
//! is stable across retries, restarts and handoffs.
//!
//! `data` shapes, per type (every field always present unless marked optional):
//! - `order.*`: `order_id`, `status`, `total_minor`, `currency`, `email`, `items`
//!   (`[{sku, quantity, unit_price_minor}]`), `channel` (`web` | `vending`),
//!   `machine_id` (optional), and for `order.cancelled` a `failure_code`.
//! - `stock.adjusted`, `stock.low`: `sku`, `on_hand`, `available`, and `delta` (adjusted).
//! - `cart.checked_out`: `cart_id`, `order_id` (told from the order's creation).
//! - `user.registered`: `user_id`, `email`.
//! - `machine.*`: `machine_id`, and `slot`/`sku`/`level` (low stock), `alarm`/`severity`
//!   (alarm), `vend_id`/`slot`/`sku`/`price_minor`/`order_id` (vend).
//! - `webhook.disabled`: `endpoint_id`, `reason` (the runtime disabled an
//!   endpoint that kept failing for `webhooks.disable_after_s`).

use serde::{Deserialize, Serialize};

use crate::domain::Millis;

/// The schema version of every event type's `data` in this release.
pub const SCHEMA_VERSION: u32 = 1;

/// A public event type. The wire name (`order.paid`) is the contract.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum EventType {
    #[serde(rename = "order.created")]
    OrderCreated,
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.cancelled")]
    OrderCancelled,
    #[serde(rename = "order.fulfilled")]
    OrderFulfilled,
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "stock.adjusted")]
    StockAdjusted,
    #[serde(rename = "stock.low")]
    StockLow,
    #[serde(rename = "cart.checked_out")]
    CartCheckedOut,
    #[serde(rename = "user.registered")]
    UserRegistered,
    #[serde(rename = "machine.online")]
    MachineOnline,
    #[serde(rename = "machine.offline")]
    MachineOffline,
    #[serde(rename = "machine.alarm")]
    MachineAlarm,
    #[serde(rename = "machine.low_stock")]
    MachineLowStock,
    #[serde(rename = "machine.vend")]
    MachineVend,
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
    #[serde(rename = "review.submitted")]
    ReviewSubmitted,
    #[serde(rename = "review.approved")]
    ReviewApproved,
    #[serde(rename = "review.rejected")]
    ReviewRejected,
}

impl EventType {
    /// Every type, in catalogue order.
    pub const ALL: [EventType; 18] = [
        EventType::OrderCreated,
        EventType::OrderPaid,
        EventType::OrderCancelled,
        EventType::OrderFulfilled,
        EventType::OrderRefunded,
        EventType::StockAdjusted,
        EventType::StockLow,
        EventType::CartCheckedOut,
        EventType::UserRegistered,
        EventType::MachineOnline,
        EventType::MachineOffline,
        EventType::MachineAlarm,
        EventType::MachineLowStock,
        EventType::MachineVend,
        EventType::WebhookDisabled,
        EventType::ReviewSubmitted,
        EventType::ReviewApproved,
        EventType::ReviewRejected,
    ];

    /// The wire name, such as `order.paid`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderCreated => "order.created",
            EventType::OrderPaid => "order.paid",
            EventType::OrderCancelled => "order.cancelled",
            EventType::OrderFulfilled => "order.fulfilled",
            EventType::OrderRefunded => "order.refunded",
            EventType::StockAdjusted => "stock.adjusted",
            EventType::StockLow => "stock.low",
            EventType::CartCheckedOut => "cart.checked_out",
            EventType::UserRegistered => "user.registered",
            EventType::MachineOnline => "machine.online",
            EventType::MachineOffline => "machine.offline",
            EventType::MachineAlarm => "machine.alarm",
            EventType::MachineLowStock => "machine.low_stock",
            EventType::MachineVend => "machine.vend",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::ReviewSubmitted => "review.submitted",
            EventType::ReviewApproved => "review.approved",
            EventType::ReviewRejected => "review.rejected",
        }
    }

    /// The type of a wire name; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<EventType> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One public event. `id` is derived from `(partition, pseq, type)` of the log entry it
/// came from, so every redelivery of it carries the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicEvent {
    pub id: String,
    pub r#type: EventType,
    /// When the underlying domain event was decided (ms since the Unix epoch, UTC).
    pub at: Millis,
    pub schema_version: u32,
    /// The partition whose log holds the source entry, and its seq there: the order of
    /// events is guaranteed per partition only.
    pub partition: u32,
    pub pseq: u64,
    pub data: serde_json::Value,
}

impl PublicEvent {
    /// The stable id of the event of type `ty` derived from entry `pseq` of partition `p`.
    pub fn id_for(p: u32, pseq: u64, ty: EventType) -> String {
        format!("evt_{p:04}_{pseq:012}_{}", ty.as_str().replace('.', "_"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_its_wire_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        assert_eq!(EventType::parse("order.nope"), None);
    }

    #[test]
    fn ids_are_stable_and_distinct_per_type() {
        let a = PublicEvent::id_for(3, 17, EventType::OrderPaid);
        assert_eq!(a, PublicEvent::id_for(3, 17, EventType::OrderPaid));
        assert_ne!(a, PublicEvent::id_for(3, 17, EventType::OrderCreated));
        assert_ne!(a, PublicEvent::id_for(4, 17, EventType::OrderPaid));
    }
}
