//! A shopper's cart: lines priced at the time they were added, the coupon codes the
//! shopper entered, locked by a checkout.

use super::ids::{MAX_ADD_QUANTITY, MAX_CART_LINES, MAX_LINE_QUANTITY};

/// Most coupon codes one cart holds.
pub const MAX_COUPONS: usize = 5;
use super::{reject, Aggregate, EntityKind, Rejection, RejectionCode, Sku};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CartStatus {
    #[default]
    Open,
    CheckedOut,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub quantity: u32,
    pub unit_price_minor: i64,
}

impl CartLine {
    pub fn total_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartState {
    pub created: bool,
    /// The user who owns the cart; `None` for a guest cart.
    pub owner: Option<Uuid>,
    pub status: CartStatus,
    pub order_id: Option<Uuid>,
    pub lines: BTreeMap<Sku, CartLine>,
    /// Count of events applied: a client-visible version for optimistic checks.
    pub version: u64,
    /// Coupon codes entered (stored form, in the order entered); the edge checks that
    /// each applies before it is added, and a checkout prices the cart with them.
    pub coupons: Vec<String>,
}

impl CartState {
    /// The cart total, always derived from the lines.
    pub fn total_minor(&self) -> i64 {
        self.lines.values().map(CartLine::total_minor).sum()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CartCommand {
    Create {
        owner: Option<Uuid>,
    },
    /// A signed-in shopper takes over a guest cart (or re-claims their own).
    Claim {
        owner: Uuid,
    },
    /// Adds `quantity` (1..=100) at the product's current price.
    AddItem {
        sku: Sku,
        quantity: u32,
        unit_price_minor: i64,
    },
    /// Sets the quantity of a line (0 removes it).
    SetQuantity {
        sku: Sku,
        quantity: u32,
        unit_price_minor: i64,
    },
    RemoveItem {
        sku: Sku,
    },
    /// Checkout locks the cart to an order. Repeating it for the same order is a no-op.
    Lock {
        order_id: Uuid,
    },
    /// A failed checkout reopens the cart so the shopper can try again.
    Reopen {
        order_id: Uuid,
    },
    /// Enters a coupon code (stored form); a repeat is a no-op.
    AddCoupon {
        code: String,
    },
    RemoveCoupon {
        code: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartEvent {
    Created {
        owner: Option<Uuid>,
    },
    Claimed {
        owner: Uuid,
    },
    QuantitySet {
        sku: Sku,
        quantity: u32,
        unit_price_minor: i64,
    },
    ItemRemoved {
        sku: Sku,
    },
    Locked {
        order_id: Uuid,
    },
    Reopened {
        order_id: Uuid,
    },
    // Appended for coupons; earlier variants keep their codec positions.
    CouponAdded {
        code: String,
    },
    CouponRemoved {
        code: String,
    },
}

pub struct Cart;

fn open(state: &CartState) -> Result<(), Rejection> {
    if !state.created {
        return reject(RejectionCode::NotFound, "no such cart");
    }
    if state.status == CartStatus::CheckedOut {
        return reject(
            RejectionCode::CartCheckedOut,
            "the cart is checked out; it can no longer change",
        );
    }
    Ok(())
}

impl Aggregate for Cart {
    const KIND: EntityKind = EntityKind::Cart;
    type State = CartState;
    type Command = CartCommand;
    type Event = CartEvent;

    fn decide(state: &CartState, cmd: &CartCommand) -> Result<Vec<CartEvent>, Rejection> {
        use CartCommand as C;
        match cmd {
            C::Create { owner } => {
                if state.created {
                    Ok(vec![])
                } else {
                    Ok(vec![CartEvent::Created { owner: *owner }])
                }
            }
            C::Claim { owner } => {
                if !state.created {
                    return reject(RejectionCode::NotFound, "no such cart");
                }
                match state.owner {
                    Some(o) if o == *owner => Ok(vec![]),
                    Some(_) => reject(RejectionCode::NotFound, "no such cart"),
                    None => Ok(vec![CartEvent::Claimed { owner: *owner }]),
                }
            }
            C::AddItem {
                sku,
                quantity,
                unit_price_minor,
            } => {
                open(state)?;
                if !(1..=MAX_ADD_QUANTITY).contains(quantity) {
                    return reject(
                        RejectionCode::Validation,
                        format!("quantity must be between 1 and {MAX_ADD_QUANTITY}"),
                    );
                }
                let current = state.lines.get(sku).map_or(0, |l| l.quantity);
                if current + quantity > MAX_LINE_QUANTITY {
                    return reject(
                        RejectionCode::Validation,
                        format!("a line holds at most {MAX_LINE_QUANTITY} units"),
                    );
                }
                if current == 0 && state.lines.len() >= MAX_CART_LINES {
                    return reject(
                        RejectionCode::Validation,
                        format!("a cart holds at most {MAX_CART_LINES} lines"),
                    );
                }
                Ok(vec![CartEvent::QuantitySet {
                    sku: sku.clone(),
                    quantity: current + quantity,
                    unit_price_minor: *unit_price_minor,
                }])
            }
            C::SetQuantity {
                sku,
                quantity,
                unit_price_minor,
            } => {
                open(state)?;
                if *quantity > MAX_LINE_QUANTITY {
                    return reject(
                        RejectionCode::Validation,
                        format!("quantity must be between 0 and {MAX_LINE_QUANTITY}"),
                    );
                }
                let existing = state.lines.get(sku);
                match (existing, *quantity) {
                    (None, 0) => Ok(vec![]),
                    (Some(_), 0) => Ok(vec![CartEvent::ItemRemoved { sku: sku.clone() }]),
                    (None, _) if state.lines.len() >= MAX_CART_LINES => reject(
                        RejectionCode::Validation,
                        format!("a cart holds at most {MAX_CART_LINES} lines"),
                    ),
                    (_, q) => Ok(vec![CartEvent::QuantitySet {
                        sku: sku.clone(),
                        quantity: q,
                        unit_price_minor: *unit_price_minor,
                    }]),
                }
            }
            C::RemoveItem { sku } => {
                open(state)?;
                if state.lines.contains_key(sku) {
                    Ok(vec![CartEvent::ItemRemoved { sku: sku.clone() }])
                } else {
                    reject(RejectionCode::NotFound, "the cart has no line for that sku")
                }
            }
            C::Lock { order_id } => {
                if !state.created {
                    return reject(RejectionCode::NotFound, "no such cart");
                }
                match (state.status, state.order_id) {
                    (CartStatus::CheckedOut, Some(o)) if o == *order_id => Ok(vec![]),
                    (CartStatus::CheckedOut, _) => reject(
                        RejectionCode::CartCheckedOut,
                        "the cart is already checked out by another order",
                    ),
                    (CartStatus::Open, _) if state.lines.is_empty() => {
                        reject(RejectionCode::CartEmpty, "the cart is empty")
                    }
                    (CartStatus::Open, _) => Ok(vec![CartEvent::Locked {
                        order_id: *order_id,
                    }]),
                }
            }
            C::AddCoupon { code } => {
                open(state)?;
                if state.coupons.contains(code) {
                    return Ok(vec![]);
                }
                if state.coupons.len() >= MAX_COUPONS {
                    return reject(
                        RejectionCode::Validation,
                        format!("a cart holds at most {MAX_COUPONS} coupons"),
                    );
                }
                Ok(vec![CartEvent::CouponAdded { code: code.clone() }])
            }
            C::RemoveCoupon { code } => {
                open(state)?;
                if state.coupons.contains(code) {
                    Ok(vec![CartEvent::CouponRemoved { code: code.clone() }])
                } else {
                    reject(
                        RejectionCode::NotFound,
                        format!("the cart has no coupon {code}"),
                    )
                }
            }
            C::Reopen { order_id } => {
                if state.status == CartStatus::CheckedOut && state.order_id == Some(*order_id) {
                    Ok(vec![CartEvent::Reopened {
                        order_id: *order_id,
                    }])
                } else {
                    Ok(vec![])
                }
            }
        }
    }

    fn apply(state: &mut CartState, event: &CartEvent) {
        state.version += 1;
        match event {
            CartEvent::Created { owner } => {
                state.created = true;
                state.owner = *owner;
            }
            CartEvent::Claimed { owner } => state.owner = Some(*owner),
            CartEvent::QuantitySet {
                sku,
                quantity,
                unit_price_minor,
            } => {
                state.lines.insert(
                    sku.clone(),
                    CartLine {
                        quantity: *quantity,
                        unit_price_minor: *unit_price_minor,
                    },
                );
            }
            CartEvent::ItemRemoved { sku } => {
                state.lines.remove(sku);
            }
            CartEvent::Locked { order_id } => {
                state.status = CartStatus::CheckedOut;
                state.order_id = Some(*order_id);
            }
            CartEvent::Reopened { .. } => {
                state.status = CartStatus::Open;
                state.order_id = None;
            }
            CartEvent::CouponAdded { code } => state.coupons.push(code.clone()),
            CartEvent::CouponRemoved { code } => state.coupons.retain(|c| c != code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sku(i: u8) -> Sku {
        Sku::parse(&format!("S{i}")).unwrap()
    }

    fn command() -> impl Strategy<Value = CartCommand> {
        let order = (0u128..3).prop_map(Uuid::from_u128);
        prop_oneof![
            Just(CartCommand::Create { owner: None }),
            (0u128..2).prop_map(|o| CartCommand::Claim {
                owner: Uuid::from_u128(o)
            }),
            (0u8..4, 0u32..120, 0i64..5000).prop_map(|(s, q, p)| CartCommand::AddItem {
                sku: sku(s),
                quantity: q,
                unit_price_minor: p
            }),
            (0u8..4, 0u32..1100, 0i64..5000).prop_map(|(s, q, p)| CartCommand::SetQuantity {
                sku: sku(s),
                quantity: q,
                unit_price_minor: p
            }),
            (0u8..4).prop_map(|s| CartCommand::RemoveItem { sku: sku(s) }),
            order
                .clone()
                .prop_map(|o| CartCommand::Lock { order_id: o }),
            order.prop_map(|o| CartCommand::Reopen { order_id: o }),
            (0u8..7).prop_map(|c| CartCommand::AddCoupon {
                code: format!("C{c}")
            }),
            (0u8..7).prop_map(|c| CartCommand::RemoveCoupon {
                code: format!("C{c}")
            }),
        ]
    }

    proptest! {
        #[test]
        fn replay_rebuilds_state_and_total_is_sum_of_lines(cmds in proptest::collection::vec(command(), 0..60)) {
            let mut s = CartState::default();
            let mut log = vec![];
            for cmd in &cmds {
                let before = s.clone();
                match Cart::decide(&s, cmd) {
                    Ok(evs) => for e in evs { Cart::apply(&mut s, &e); log.push(e); },
                    Err(_) => prop_assert_eq!(&before, &s),
                }
                let sum: i64 = s.lines.values().map(|l| l.unit_price_minor * i64::from(l.quantity)).sum();
                prop_assert_eq!(s.total_minor(), sum);
                prop_assert!(s.lines.values().all(|l| l.quantity >= 1 && l.quantity <= MAX_LINE_QUANTITY));
                prop_assert_eq!(s.status == CartStatus::CheckedOut, s.order_id.is_some());
            }
            prop_assert_eq!(Cart::replay(&log), s);
        }

        #[test]
        fn a_checked_out_cart_never_changes_its_lines(cmds in proptest::collection::vec(command(), 0..40)) {
            let mut s = CartState::default();
            for cmd in &cmds {
                let locked = s.status == CartStatus::CheckedOut;
                let lines = s.lines.clone();
                let coupons = s.coupons.clone();
                if let Ok(evs) = Cart::decide(&s, cmd) { for e in evs { Cart::apply(&mut s, &e); } }
                if locked && s.status == CartStatus::CheckedOut {
                    prop_assert_eq!(&lines, &s.lines);
                    prop_assert_eq!(&coupons, &s.coupons);
                }
                prop_assert!(s.coupons.len() <= MAX_COUPONS);
            }
        }
    }

    #[test]
    fn lock_is_idempotent_and_exclusive() {
        let mut s = CartState::default();
        for cmd in [
            CartCommand::Create { owner: None },
            CartCommand::AddItem {
                sku: sku(1),
                quantity: 2,
                unit_price_minor: 150,
            },
        ] {
            for e in Cart::decide(&s, &cmd).unwrap() {
                Cart::apply(&mut s, &e);
            }
        }
        assert_eq!(s.total_minor(), 300);
        let a = Uuid::from_u128(1);
        for e in Cart::decide(&s, &CartCommand::Lock { order_id: a }).unwrap() {
            Cart::apply(&mut s, &e);
        }
        assert!(Cart::decide(&s, &CartCommand::Lock { order_id: a })
            .unwrap()
            .is_empty());
        let err = Cart::decide(
            &s,
            &CartCommand::Lock {
                order_id: Uuid::from_u128(2),
            },
        )
        .unwrap_err();
        assert_eq!(err.code, RejectionCode::CartCheckedOut);
    }
}
