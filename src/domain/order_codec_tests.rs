//! Order events on disk: events written by older builds still decode, and still apply.
//!
//! The codec is positional, so an event's wire format is its variant index and the exact
//! shape of its fields. [`v254d909`] mirrors `OrderEvent` as commit 254d909 (before keyed
//! idempotency) defined it; its bytes are what an existing data directory holds.

use super::*;
use crate::domain::order_idempotency::{key_use, KeyUse};
use crate::store::codec;
use crate::store::journal::EventRecord;

/// `OrderEvent` and the payloads that changed since, exactly as at commit 254d909.
/// Test-only, serialize-only: it writes the bytes an old build wrote.
mod v254d909 {
    use crate::domain::order::Failure;
    use crate::domain::{Millis, Sku};
    use serde::Serialize;
    use uuid::Uuid;

    #[derive(Serialize)]
    pub struct Placement {
        pub order_id: Uuid,
        pub cart_id: Uuid,
        pub owner: Option<Uuid>,
        pub email: String,
        pub currency: String,
        pub payment_method: String,
        pub last4: String,
        pub placed_at: Millis,
        pub expires_at: Millis,
    }

    #[derive(Serialize)]
    pub struct VendingPlacement {
        pub machine_id: String,
        pub slot: u32,
        pub sku: Sku,
        pub price_minor: i64,
        pub deadline: Millis,
    }

    #[derive(Serialize)]
    pub enum OrderEvent {
        Placed(Placement),
        CartLocked {
            lines: Vec<(Sku, u32, i64)>,
        },
        LineReserved {
            sku: Sku,
        },
        AllReserved {
            at: Millis,
        },
        PaymentAuthorized {
            authorization: String,
        },
        PaymentCaptured,
        LineCommitted {
            sku: Sku,
        },
        Paid {
            at: Millis,
        },
        CompensationStarted {
            failure: Failure,
        },
        LineReleased {
            sku: Sku,
        },
        LineReturned {
            sku: Sku,
        },
        PaymentVoided,
        PaymentRefunded,
        PaymentFailed,
        CartReopened,
        Cancelled {
            failure: Failure,
            at: Millis,
        },
        Fulfilled {
            at: Millis,
            by: String,
        },
        RefundRequested {
            by: String,
        },
        Refunded {
            at: Millis,
        },
        VendingPlaced {
            placement: Placement,
            vending: VendingPlacement,
        },
        DispenseSent,
        Vended {
            vend_id: Uuid,
        },
    }

    #[derive(Serialize)]
    pub struct EventRecord {
        pub at: Millis,
        pub event: OrderEvent,
    }
}

fn old_placement(cart_id: Uuid, owner: Option<Uuid>) -> v254d909::Placement {
    v254d909::Placement {
        order_id: Uuid::from_u128(42),
        cart_id,
        owner,
        email: "a@b.c".into(),
        currency: "USD".into(),
        payment_method: "pm_x".into(),
        last4: "4242".into(),
        placed_at: 10,
        expires_at: 1_000,
    }
}

fn legacy_placement(cart_id: Uuid, owner: Option<Uuid>) -> LegacyPlacement {
    let o = old_placement(cart_id, owner);
    LegacyPlacement {
        order_id: o.order_id,
        cart_id: o.cart_id,
        owner: o.owner,
        email: o.email,
        currency: o.currency,
        payment_method: o.payment_method,
        last4: o.last4,
        placed_at: o.placed_at,
        expires_at: o.expires_at,
    }
}

fn old_vending() -> v254d909::VendingPlacement {
    v254d909::VendingPlacement {
        machine_id: "vm-1".into(),
        slot: 3,
        sku: Sku::parse("S0").unwrap(),
        price_minor: 250,
        deadline: 500,
    }
}

fn vending() -> VendingPlacement {
    let v = old_vending();
    VendingPlacement {
        machine_id: v.machine_id,
        slot: v.slot,
        sku: v.sku,
        price_minor: v.price_minor,
        deadline: v.deadline,
    }
}

fn old_record(at: Millis, event: v254d909::OrderEvent) -> Vec<u8> {
    codec::encode(&v254d909::EventRecord { at, event })
}

fn decode(bytes: &[u8]) -> EventRecord<OrderEvent> {
    codec::decode::<EventRecord<OrderEvent>>(bytes).expect("an old build's event decodes")
}

/// The placement an old order is applied with: no fingerprint, its key expired at placement.
fn upgraded(cart_id: Uuid, owner: Option<Uuid>) -> Placement {
    Placement {
        order_id: Uuid::from_u128(42),
        cart_id,
        owner,
        email: "a@b.c".into(),
        currency: "USD".into(),
        payment_method: "pm_x".into(),
        last4: "4242".into(),
        placed_at: 10,
        expires_at: 1_000,
        fingerprint: [0; 32],
        key_expires_at: 10,
    }
}

#[test]
fn an_old_builds_placed_event_decodes_and_applies_as_a_placed_order() {
    let owner = Some(Uuid::from_u128(5));
    let bytes = old_record(
        10,
        v254d909::OrderEvent::Placed(old_placement(Uuid::from_u128(7), owner)),
    );
    let rec = decode(&bytes);
    assert_eq!(rec.at, 10);
    assert_eq!(
        rec.event,
        OrderEvent::Placed(legacy_placement(Uuid::from_u128(7), owner))
    );
    let s = Order::replay(std::slice::from_ref(&rec.event));
    assert_eq!(s.placement, Some(upgraded(Uuid::from_u128(7), owner)));
    assert_eq!(s.status, OrderStatus::Pending);
    assert_eq!(s.kind(), "cart");
    assert_eq!(
        (s.payment.method.as_str(), s.payment.last4.as_str()),
        ("pm_x", "4242")
    );
    assert_eq!(s.history, vec![(OrderStatus::Pending, 10)]);
    assert_eq!(
        next_effect(&s),
        Some(Effect::LockCart {
            cart_id: Uuid::from_u128(7),
            order_id: Uuid::from_u128(42),
        }),
        "the saga of an old order resumes"
    );
}

#[test]
fn an_old_builds_vending_placed_event_decodes_and_applies_as_a_vending_order() {
    let bytes = old_record(
        10,
        v254d909::OrderEvent::VendingPlaced {
            placement: old_placement(Uuid::nil(), None),
            vending: old_vending(),
        },
    );
    let rec = decode(&bytes);
    assert_eq!(
        rec.event,
        OrderEvent::VendingPlaced {
            placement: legacy_placement(Uuid::nil(), None),
            vending: vending(),
        }
    );
    let s = Order::replay(std::slice::from_ref(&rec.event));
    assert_eq!(s.placement, Some(upgraded(Uuid::nil(), None)));
    assert_eq!(s.kind(), "vending");
    assert_eq!(s.vending, Some(VendingOrder::new(vending())));
    assert_eq!(s.lines.len(), 1);
    assert_eq!(s.lines[0].unit_price_minor, 250);
}

/// Every variant an old build wrote decodes, at its old position, to its counterpart.
#[test]
fn every_old_event_variant_decodes_to_its_counterpart() {
    use v254d909::OrderEvent as Old;
    let sku = || Sku::parse("S1").unwrap();
    let failure = || Failure {
        code: FailureCode::OutOfStock,
        message: "none".into(),
    };
    let pairs: Vec<(Old, OrderEvent)> = vec![
        (
            Old::Placed(old_placement(Uuid::from_u128(7), None)),
            OrderEvent::Placed(legacy_placement(Uuid::from_u128(7), None)),
        ),
        (
            Old::CartLocked {
                lines: vec![(sku(), 2, 100)],
            },
            OrderEvent::CartLocked {
                lines: vec![(sku(), 2, 100)],
            },
        ),
        (
            Old::LineReserved { sku: sku() },
            OrderEvent::LineReserved { sku: sku() },
        ),
        (
            Old::AllReserved { at: 3 },
            OrderEvent::AllReserved { at: 3 },
        ),
        (
            Old::PaymentAuthorized {
                authorization: "pi_1".into(),
            },
            OrderEvent::PaymentAuthorized {
                authorization: "pi_1".into(),
            },
        ),
        (Old::PaymentCaptured, OrderEvent::PaymentCaptured),
        (
            Old::LineCommitted { sku: sku() },
            OrderEvent::LineCommitted { sku: sku() },
        ),
        (Old::Paid { at: 4 }, OrderEvent::Paid { at: 4 }),
        (
            Old::CompensationStarted { failure: failure() },
            OrderEvent::CompensationStarted { failure: failure() },
        ),
        (
            Old::LineReleased { sku: sku() },
            OrderEvent::LineReleased { sku: sku() },
        ),
        (
            Old::LineReturned { sku: sku() },
            OrderEvent::LineReturned { sku: sku() },
        ),
        (Old::PaymentVoided, OrderEvent::PaymentVoided),
        (Old::PaymentRefunded, OrderEvent::PaymentRefunded),
        (Old::PaymentFailed, OrderEvent::PaymentFailed),
        (Old::CartReopened, OrderEvent::CartReopened),
        (
            Old::Cancelled {
                failure: failure(),
                at: 5,
            },
            OrderEvent::Cancelled {
                failure: failure(),
                at: 5,
            },
        ),
        (
            Old::Fulfilled {
                at: 6,
                by: "staff".into(),
            },
            OrderEvent::Fulfilled {
                at: 6,
                by: "staff".into(),
            },
        ),
        (
            Old::RefundRequested { by: "staff".into() },
            OrderEvent::RefundRequested { by: "staff".into() },
        ),
        (Old::Refunded { at: 7 }, OrderEvent::Refunded { at: 7 }),
        (
            Old::VendingPlaced {
                placement: old_placement(Uuid::nil(), None),
                vending: old_vending(),
            },
            OrderEvent::VendingPlaced {
                placement: legacy_placement(Uuid::nil(), None),
                vending: vending(),
            },
        ),
        (Old::DispenseSent, OrderEvent::DispenseSent),
        (
            Old::Vended {
                vend_id: Uuid::from_u128(9),
            },
            OrderEvent::Vended {
                vend_id: Uuid::from_u128(9),
            },
        ),
    ];
    for (i, (old, new)) in pairs.into_iter().enumerate() {
        let bytes = old_record(i as Millis, old);
        let rec = decode(&bytes);
        assert_eq!((rec.at, rec.event), (i as Millis, new), "variant {i}");
    }
}

/// The bytes of an old `Placed` record, frozen: independent of any type in this crate,
/// so a change to `LegacyPlacement` or to the variant order of `OrderEvent` fails here.
/// Laid out by hand (bincode standard config: varint integers, length-prefixed bytes).
const OLD_PLACED_RECORD_HEX: &str = concat!(
    "01",                                   // format version 1
    "0a",                                   // at = 10
    "00",                                   // variant 0: Placed
    "100000000000000000000000000000002a",   // order_id (16 bytes, length-prefixed)
    "1000000000000000000000000000000007",   // cart_id
    "011000000000000000000000000000000005", // owner = Some(..)
    "056140622e63",                         // email
    "03555344",                             // currency
    "04706d5f78",                           // payment_method
    "0434323432",                           // last4
    "0a",                                   // placed_at = 10
    "fbe803",                               // expires_at = 1000 (varint u16)
);

#[test]
fn a_frozen_old_placed_record_still_decodes() {
    let owner = Some(Uuid::from_u128(5));
    let bytes = old_record(
        10,
        v254d909::OrderEvent::Placed(old_placement(Uuid::from_u128(7), owner)),
    );
    assert_eq!(hex(&bytes), OLD_PLACED_RECORD_HEX, "the old wire format");
    let fixture = unhex(OLD_PLACED_RECORD_HEX);
    let rec = decode(&fixture);
    assert_eq!(
        rec.event,
        OrderEvent::Placed(legacy_placement(Uuid::from_u128(7), owner))
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An old order's key is expired: a `Place` reaching it is never a replay, nor a 409.
#[test]
fn an_old_order_answers_any_place_as_an_expired_key() {
    let legacy = legacy_placement(Uuid::from_u128(7), None);
    let s = Order::replay(&[OrderEvent::Placed(legacy.clone())]);
    let placed = s.placement.clone().unwrap();
    for fp in [[0; 32], [7; 32]] {
        for now in [legacy.placed_at, legacy.placed_at + 1, u64::MAX] {
            assert_eq!(key_use(&placed, &fp, now), KeyUse::Expired, "{now}");
        }
    }
    let retry = Placement {
        fingerprint: [7; 32],
        placed_at: 20,
        key_expires_at: 20 + 86_400_000,
        ..placed
    };
    let err = Order::decide(&s, &OrderCommand::Place(retry)).unwrap_err();
    assert_eq!(err.code, RejectionCode::IdempotencyKeyExpired);
}

fn keyed_placement(cart_id: Uuid) -> Placement {
    Placement {
        fingerprint: [7; 32],
        key_expires_at: 86_400_010,
        ..legacy_placement(cart_id, Some(Uuid::from_u128(5))).upgrade()
    }
}

#[test]
fn a_place_emits_placed_keyed_and_it_round_trips() {
    let p = keyed_placement(Uuid::from_u128(7));
    let events = Order::decide(&OrderState::default(), &OrderCommand::Place(p.clone())).unwrap();
    assert_eq!(events, vec![OrderEvent::PlacedKeyed(p.clone())]);
    let bytes = codec::encode(&EventRecord {
        at: 10,
        event: events[0].clone(),
    });
    let rec = decode(&bytes);
    assert_eq!((rec.at, &rec.event), (10, &events[0]));
    assert_eq!(Order::replay(&[rec.event]).placement, Some(p));
}

#[test]
fn a_place_vending_emits_vending_placed_keyed_and_it_round_trips() {
    let p = keyed_placement(Uuid::nil());
    let cmd = OrderCommand::PlaceVending {
        placement: p.clone(),
        vending: vending(),
    };
    let events = Order::decide(&OrderState::default(), &cmd).unwrap();
    let expected = OrderEvent::VendingPlacedKeyed {
        placement: p.clone(),
        vending: vending(),
    };
    assert_eq!(events, vec![expected.clone()]);
    let rec = decode(&codec::encode(&EventRecord {
        at: 10,
        event: expected.clone(),
    }));
    assert_eq!(rec.event, expected);
    let s = Order::replay(&[rec.event]);
    assert_eq!(s.placement, Some(p));
    assert_eq!(s.vending, Some(VendingOrder::new(vending())));
    // The keyed order applies exactly as its legacy counterpart, bar the placement.
    let legacy = Order::replay(&[OrderEvent::VendingPlaced {
        placement: legacy_placement(Uuid::nil(), Some(Uuid::from_u128(5))),
        vending: vending(),
    }]);
    assert_eq!(
        OrderState {
            placement: None,
            ..s
        },
        OrderState {
            placement: None,
            ..legacy
        }
    );
}
