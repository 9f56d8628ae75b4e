//! The internal-to-public mapping: which public events one committed domain event gives
//! rise to. It is a pure function of the entity's state before and after the event (and
//! the log position the event was committed at), so a projection that replays a
//! partition's log derives the same events with the same ids every time.
//!
//! Here: orders (`order.created`, `order.paid`, `order.cancelled` with its
//! `failure_code`, `order.fulfilled`, `order.refunded`). Users, stock and carts are in
//! [`super::catalogue_kinds`]; machines are not mapped yet.

use serde_json::{json, Value};

use super::public::{EventType, PublicEvent};
use crate::domain::order::{OrderState, OrderStatus};
use crate::domain::Millis;

/// The public event types an order's transition from `before` to `after` produces, in
/// order. Empty when nothing public changed (a line reserved, a payment authorised).
pub fn order_types(before: &OrderState, after: &OrderState) -> Vec<EventType> {
    let mut out = Vec::new();
    if before.placement.is_none() && after.placement.is_some() {
        out.push(EventType::OrderCreated);
        // A cart order is its cart's checkout: told here, from the order's log entry, so
        // the projections need not read every cart change to find the one that matters.
        if after.vending.is_none() {
            out.push(EventType::CartCheckedOut);
        }
    }
    if before.status != after.status {
        match after.status {
            OrderStatus::Paid => out.push(EventType::OrderPaid),
            OrderStatus::Fulfilled => out.push(EventType::OrderFulfilled),
            OrderStatus::Cancelled => out.push(EventType::OrderCancelled),
            OrderStatus::Refunded => out.push(EventType::OrderRefunded),
            OrderStatus::Pending | OrderStatus::Reserved => {}
        }
    }
    out
}

/// The documented `data` of an order event (see [`super::public`]).
pub fn order_data(ty: EventType, s: &OrderState) -> Value {
    let p = s.placement.as_ref();
    let items: Vec<Value> = s
        .lines
        .iter()
        .map(|l| {
            json!({
                "sku": l.sku.as_str(),
                "quantity": l.quantity,
                "unit_price_minor": l.unit_price_minor,
            })
        })
        .collect();
    let mut data = json!({
        "order_id": p.map(|p| p.order_id.to_string()).unwrap_or_default(),
        "status": s.status.as_str(),
        "total_minor": s.total_minor(),
        "currency": p.map(|p| p.currency.clone()).unwrap_or_default(),
        "email": p.map(|p| p.email.clone()).unwrap_or_default(),
        "items": items,
        "channel": if s.vending.is_some() { "vending" } else { "web" },
    });
    if let Some(v) = &s.vending {
        data["machine_id"] = json!(v.machine_id);
    }
    if let Some(owner) = p.and_then(|p| p.owner) {
        data["user_id"] = json!(owner.to_string());
    }
    if ty == EventType::OrderCancelled {
        data["failure_code"] = json!(s.failure.as_ref().map(|f| f.code.as_str()));
    }
    data
}

/// The `data` of `cart.checked_out`: `cart_id`, `order_id`.
pub fn checked_out_data(s: &OrderState) -> Value {
    let p = s.placement.as_ref();
    json!({
        "cart_id": p.map(|p| p.cart_id.to_string()).unwrap_or_default(),
        "order_id": p.map(|p| p.order_id.to_string()).unwrap_or_default(),
    })
}

/// The public events of the order event committed at `(partition, pseq)` at time `at`.
pub fn order_events(
    partition: u32,
    pseq: u64,
    at: Millis,
    before: &OrderState,
    after: &OrderState,
) -> Vec<PublicEvent> {
    let at = super::catalogue_kinds::At {
        partition,
        pseq,
        at,
    };
    order_types(before, after)
        .into_iter()
        .map(|ty| match ty {
            EventType::CartCheckedOut => at.event(ty, checked_out_data(after)),
            _ => at.event(ty, order_data(ty, after)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::{Failure, FailureCode};
    use proptest::prelude::*;

    fn status() -> impl Strategy<Value = OrderStatus> {
        prop_oneof![
            Just(OrderStatus::Pending),
            Just(OrderStatus::Reserved),
            Just(OrderStatus::Paid),
            Just(OrderStatus::Fulfilled),
            Just(OrderStatus::Cancelled),
            Just(OrderStatus::Refunded),
        ]
    }

    fn with_status(st: OrderStatus) -> OrderState {
        OrderState {
            status: st,
            ..OrderState::default()
        }
    }

    proptest! {
        /// The mapping is deterministic, every id is stable and distinct, and a
        /// transition that changes nothing public produces nothing.
        #[test]
        fn mapping_is_deterministic_and_ids_are_distinct(
            a in status(), b in status(), p in 0u32..4096, seq in any::<u64>(), at in any::<u64>()
        ) {
            let (before, after) = (with_status(a), with_status(b));
            let one = order_events(p, seq, at, &before, &after);
            prop_assert_eq!(&one, &order_events(p, seq, at, &before, &after));
            let mut ids: Vec<_> = one.iter().map(|e| e.id.clone()).collect();
            ids.dedup();
            prop_assert_eq!(ids.len(), one.len());
            if a == b {
                prop_assert!(one.is_empty());
            }
            for e in &one {
                prop_assert_eq!(e.partition, p);
                prop_assert_eq!(e.pseq, seq);
                prop_assert_eq!(e.data["status"].as_str(), Some(b.as_str()));
            }
        }

        /// Exactly one event per public status a transition enters, never one for an
        /// internal step (pending, reserved).
        #[test]
        fn one_event_per_public_status_entered(a in status(), b in status()) {
            let types = order_types(&with_status(a), &with_status(b));
            let expected = match (a == b, b) {
                (true, _) | (_, OrderStatus::Pending) | (_, OrderStatus::Reserved) => vec![],
                (_, OrderStatus::Paid) => vec![EventType::OrderPaid],
                (_, OrderStatus::Fulfilled) => vec![EventType::OrderFulfilled],
                (_, OrderStatus::Cancelled) => vec![EventType::OrderCancelled],
                (_, OrderStatus::Refunded) => vec![EventType::OrderRefunded],
            };
            prop_assert_eq!(types, expected);
        }
    }

    #[test]
    fn a_placed_cart_order_is_created_and_checks_its_cart_out_a_vending_one_only_created() {
        let placed = |vending: bool| {
            let mut s = OrderState {
                placement: Some(crate::domain::order::Placement {
                    order_id: uuid::Uuid::from_u128(1),
                    cart_id: uuid::Uuid::from_u128(2),
                    owner: None,
                    email: "ada@example.com".into(),
                    currency: "EUR".into(),
                    payment_method: "tok".into(),
                    last4: "4242".into(),
                    placed_at: 1,
                    expires_at: 2,
                    fingerprint: [0; 32],
                    key_expires_at: 3,
                }),
                ..OrderState::default()
            };
            if vending {
                s.vending = Some(crate::domain::order::VendingOrder {
                    machine_id: "vm-1".into(),
                    slot: 1,
                    deadline: 9,
                    state: crate::domain::order::VendState::Reserving,
                    vend_id: None,
                });
            }
            s
        };
        let none = OrderState::default();
        let evs = order_events(5, 6, 7, &none, &placed(false));
        let types: Vec<EventType> = evs.iter().map(|e| e.r#type).collect();
        assert_eq!(types, [EventType::OrderCreated, EventType::CartCheckedOut]);
        assert_eq!(
            evs[1].data,
            json!({"cart_id": uuid::Uuid::from_u128(2).to_string(), "order_id": uuid::Uuid::from_u128(1).to_string()})
        );
        assert_ne!(evs[0].id, evs[1].id);
        let types: Vec<EventType> = order_events(5, 6, 7, &none, &placed(true))
            .iter()
            .map(|e| e.r#type)
            .collect();
        assert_eq!(types, [EventType::OrderCreated]);
    }

    #[test]
    fn a_cancellation_carries_its_failure_code() {
        let after = OrderState {
            status: OrderStatus::Cancelled,
            failure: Some(Failure {
                code: FailureCode::PaymentDeclined,
                message: "no".into(),
            }),
            ..OrderState::default()
        };
        let evs = order_events(1, 2, 3, &with_status(OrderStatus::Reserved), &after);
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].r#type, EventType::OrderCancelled);
        assert_eq!(evs[0].data["failure_code"], "payment_declined");
        assert_eq!(evs[0].data["channel"], "web");
        for k in [
            "order_id",
            "status",
            "total_minor",
            "currency",
            "email",
            "items",
        ] {
            assert!(evs[0].data.get(k).is_some(), "missing {k}");
        }
    }
}
