//! The public events of users, stock and the webhook registry, beside the orders' (and carts') in
//! [`super::catalogue`]: pure functions of the entity's state before and after one
//! committed event (and the event, where the state alone cannot tell: an adjustment and
//! a sale both move `on_hand`).
//!
//! - `user.registered`: the user came to exist; `data` is `user_id`, `email`.
//! - `stock.adjusted`: an operator's adjustment; `data` is `sku`, `on_hand`, `available`,
//!   `delta`.
//! - `stock.low`: what is available fell from above `inventory.low_stock_threshold` to
//!   at or below it (by a sale, a reservation or an adjustment); `data` is `sku`,
//!   `on_hand`, `available`. A threshold of 0 turns it off.
//!
//! `cart.checked_out` is told from the order's creation (`super::catalogue`), so cart
//! changes, the most frequent writes, are never read by the projections.
//!
//! - `webhook.disabled`: the runtime disabled an endpoint that kept failing; `data` is
//!   `endpoint_id`, `reason`.
//!
//! - `review.submitted`, `review.approved`, `review.rejected`: a review was written or
//!   edited, or its moderation changed (a reported review going back to moderation is
//!   `review.submitted`); `data` is `review_id`, `sku`, `rating`.
//!
//! Machines are in [`super::catalogue_machines`].

use crate::domain::location::MAIN;
use serde_json::json;

use super::public::{EventType, PublicEvent, SCHEMA_VERSION};
use crate::domain::review::{ReviewEvent, ReviewState, ReviewStatus};
use crate::domain::stock::{StockEvent, StockState};
use crate::domain::user::UserState;
use crate::domain::webhook::WebhookEvent;
use crate::domain::Millis;

/// Where a committed event sits: its partition, its seq in the partition log, its time.
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub partition: u32,
    pub pseq: u64,
    pub at: Millis,
}

impl At {
    /// The public event of type `ty` with `data`, committed here.
    pub fn event(self, ty: EventType, data: serde_json::Value) -> PublicEvent {
        PublicEvent {
            id: PublicEvent::id_for(self.partition, self.pseq, ty),
            r#type: ty,
            at: self.at,
            schema_version: SCHEMA_VERSION,
            partition: self.partition,
            pseq: self.pseq,
            data,
        }
    }
}

/// `user.registered` when the user `id` came to exist.
pub fn user_events(at: At, id: &str, before: &UserState, after: &UserState) -> Vec<PublicEvent> {
    match (&before.email, &after.email) {
        (None, Some(email)) => vec![at.event(
            EventType::UserRegistered,
            json!({"user_id": id, "email": email}),
        )],
        _ => Vec::new(),
    }
}

/// `webhook.disabled` when the runtime disabled an endpoint that kept failing (an
/// operator's own changes to the registry are not events of the catalogue).
pub fn webhook_events(at: At, event: &WebhookEvent) -> Vec<PublicEvent> {
    match event {
        WebhookEvent::AutoDisabled { id, reason, .. } => vec![at.event(
            EventType::WebhookDisabled,
            json!({"endpoint_id": id, "reason": reason}),
        )],
        _ => Vec::new(),
    }
}

fn adjusted(at: At, sku: &str, after: &StockState, location: &str, delta: i64) -> PublicEvent {
    at.event(
        EventType::StockAdjusted,
        json!({
            "sku": sku,
            "on_hand": after.on_hand,
            "available": after.available(),
            "delta": delta,
            "location": location,
        }),
    )
}

/// `stock.adjusted` for an operator's adjustment of SKU `sku`, and `stock.low` when what
/// is available crossed `low` (a threshold of 0: never).
pub fn stock_events(
    at: At,
    sku: &str,
    before: &StockState,
    event: &StockEvent,
    after: &StockState,
    low: i64,
) -> Vec<PublicEvent> {
    let mut out: Vec<PublicEvent> = match event {
        StockEvent::Adjusted { delta, .. } => vec![adjusted(at, sku, after, MAIN, *delta)],
        StockEvent::AdjustedAt {
            location, delta, ..
        } => vec![adjusted(at, sku, after, location, *delta)],
        _ => Vec::new(),
    };
    if low > 0 && before.available() > low && after.available() <= low {
        out.push(at.event(
            EventType::StockLow,
            json!({"sku": sku, "on_hand": after.on_hand, "available": after.available()}),
        ));
    }
    out
}

/// The review event of review `id` after `event`: by the status it is in once the
/// review was written or its status changed; nothing for a report that changed nothing.
pub fn review_events(
    at: At,
    id: &str,
    before: &ReviewState,
    event: &ReviewEvent,
    after: &ReviewState,
) -> Vec<PublicEvent> {
    let Some(t) = &after.text else {
        return Vec::new();
    };
    let written = matches!(event, ReviewEvent::Written { .. });
    if !written && before.status == after.status {
        return Vec::new();
    }
    let ty = match after.status {
        ReviewStatus::Pending => EventType::ReviewSubmitted,
        ReviewStatus::Approved => EventType::ReviewApproved,
        ReviewStatus::Rejected => EventType::ReviewRejected,
    };
    vec![at.event(
        ty,
        json!({"review_id": id, "sku": t.sku.as_str(), "rating": t.rating}),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: At = At {
        partition: 3,
        pseq: 9,
        at: 1_000,
    };

    #[test]
    fn a_user_is_registered_once() {
        let none = UserState::default();
        let some = UserState {
            email: Some("ada@example.com".into()),
            ..UserState::default()
        };
        let evs = user_events(AT, "u1", &none, &some);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].r#type, EventType::UserRegistered);
        assert_eq!(evs[0].data["email"], "ada@example.com");
        assert_eq!(
            evs[0].id,
            PublicEvent::id_for(3, 9, EventType::UserRegistered)
        );
        assert!(user_events(AT, "u1", &some, &some).is_empty());
    }

    #[test]
    fn only_an_adjustment_is_stock_adjusted() {
        let after = StockState {
            on_hand: 7,
            reserved: 2,
            ..StockState::default()
        };
        let adj = StockEvent::Adjusted {
            delta: 5,
            reason: "restock".into(),
            by: "op".into(),
        };
        let evs = stock_events(AT, "MUG", &after, &adj, &after, 0);
        assert_eq!(evs.len(), 1);
        assert_eq!(
            evs[0].data,
            json!({"sku": "MUG", "on_hand": 7, "available": 5, "delta": 5, "location": "main"})
        );
        let at_store = StockEvent::AdjustedAt {
            location: "store-1".into(),
            delta: -2,
            reason: "broken".into(),
            by: "op".into(),
        };
        let evs = stock_events(AT, "MUG", &after, &at_store, &after, 0);
        assert_eq!(evs[0].data["location"], "store-1");
        assert_eq!(evs[0].data["delta"], -2);
        let reserved = StockEvent::Reserved {
            order_id: uuid::Uuid::nil(),
            quantity: 1,
            expires_at: 0,
        };
        assert!(stock_events(AT, "MUG", &after, &reserved, &after, 0).is_empty());
    }

    #[test]
    fn stock_is_low_once_when_it_crosses_the_threshold() {
        let st = |on_hand| StockState {
            on_hand,
            ..StockState::default()
        };
        let ev = StockEvent::Adjusted {
            delta: -1,
            reason: "count".into(),
            by: "op".into(),
        };
        let low = |b, a, t| {
            stock_events(AT, "MUG", &st(b), &ev, &st(a), t)
                .iter()
                .filter(|e| e.r#type == EventType::StockLow)
                .count()
        };
        assert_eq!(low(6, 5, 5), 1, "crossing to the threshold");
        assert_eq!(low(9, 0, 5), 1, "crossing past it");
        assert_eq!(low(5, 4, 5), 0, "already low");
        assert_eq!(low(7, 6, 5), 0, "still above");
        assert_eq!(low(6, 5, 0), 0, "threshold 0 is off");
    }
}
