//! An order's discounts: the promotions its checkout priced it with, and where each
//! redemption stands in the promotion's ledger ([`super::redemption`]).
//!
//! The saga prices the order once its cart is locked (the `Price` effect reads the
//! promotion book fresh and the coupons on the locked cart), reserves one redemption per
//! discount before it reserves stock, consumes them after the payment is captured, and
//! releases them (reserved or consumed) when it compensates. A refused reservation
//! (`coupon_exhausted`, `coupon_limit_per_customer`) cancels the order with that code and
//! reopens the cart: the shopper was shown a price, and is never charged another.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::order::{Effect, FailureCode, OrderState, Placement};
use super::pricing::Discount;
use super::{RejectionCode, Sku};

/// One discount as the `Priced` event records it.
///
/// The codec is positional (bincode): this struct is the wire format of events on disk,
/// so it never changes; a new shape gets a new struct and a new event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedDiscount {
    pub promotion_id: String,
    pub code: Option<String>,
    pub amount_minor: i64,
    /// What it takes off each line.
    pub lines: Vec<(Sku, i64)>,
    /// The promotion's limits when the order was priced; its reservation holds them.
    pub usage_limit: Option<u32>,
    pub per_customer_limit: Option<u32>,
}

impl From<Discount> for PricedDiscount {
    fn from(d: Discount) -> Self {
        Self {
            promotion_id: d.promotion_id,
            code: d.code,
            amount_minor: d.amount_minor,
            lines: d.lines,
            usage_limit: d.usage_limit,
            per_customer_limit: d.per_customer_limit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedemptionStage {
    Pending,
    Reserved,
    Consumed,
    Released,
}

/// A discount of the order and its redemption's stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDiscount {
    pub discount: PricedDiscount,
    pub stage: RedemptionStage,
}

/// Who redeems: the shopper's user id, or a guest's email (lower case).
pub fn customer(p: &Placement) -> String {
    p.owner
        .map(|o| o.to_string())
        .unwrap_or_else(|| p.email.trim().to_lowercase())
}

/// The failure a refused coupon or redemption cancels an order with.
pub fn failure_of(code: RejectionCode) -> FailureCode {
    match code {
        RejectionCode::CouponExpired => FailureCode::CouponExpired,
        RejectionCode::CouponExhausted => FailureCode::CouponExhausted,
        RejectionCode::CouponLimitPerCustomer => FailureCode::CouponLimitPerCustomer,
        _ => FailureCode::CouponNotApplicable,
    }
}

fn find(s: &OrderState, stage: RedemptionStage) -> Option<&OrderDiscount> {
    s.discounts.iter().flatten().find(|d| d.stage == stage)
}

/// The forward step before stock is reserved: price the order, then reserve each
/// redemption. `None` once every discount is reserved (or the order predates pricing).
pub fn before_stock(s: &OrderState, p: &Placement) -> Option<Effect> {
    let untouched = s
        .lines
        .iter()
        .all(|l| l.stage == super::order::LineStage::Pending);
    if s.discounts.is_none() && untouched && !s.lines.is_empty() {
        return Some(Effect::Price {
            order_id: p.order_id,
            cart_id: p.cart_id,
            customer: customer(p),
            lines: s
                .lines
                .iter()
                .map(|l| (l.sku.clone(), l.quantity, l.unit_price_minor))
                .collect(),
        });
    }
    find(s, RedemptionStage::Pending).map(|d| Effect::ReservePromotion {
        promotion_id: d.discount.promotion_id.clone(),
        order_id: p.order_id,
        customer: customer(p),
        usage_limit: d.discount.usage_limit,
        per_customer_limit: d.discount.per_customer_limit,
        expires_at: p.expires_at,
    })
}

/// The step after the payment is captured and the stock committed: consume each
/// reservation.
pub fn after_capture(s: &OrderState, order_id: Uuid) -> Option<Effect> {
    find(s, RedemptionStage::Reserved).map(|d| Effect::ConsumePromotion {
        promotion_id: d.discount.promotion_id.clone(),
        order_id,
    })
}

/// The compensating step once the payment is undone: give each redemption back.
pub fn release(s: &OrderState, order_id: Uuid) -> Option<Effect> {
    s.discounts
        .iter()
        .flatten()
        .find(|d| {
            matches!(
                d.stage,
                RedemptionStage::Reserved | RedemptionStage::Consumed
            )
        })
        .map(|d| Effect::ReleasePromotion {
            promotion_id: d.discount.promotion_id.clone(),
            order_id,
        })
}

/// The stage of the order's discount of `promotion_id`.
pub fn stage(s: &OrderState, promotion_id: &str) -> Option<RedemptionStage> {
    s.discounts
        .iter()
        .flatten()
        .find(|d| d.discount.promotion_id == promotion_id)
        .map(|d| d.stage)
}

/// Records the pricing: the discounts, and what each line gets off.
pub fn apply_priced(s: &mut OrderState, discounts: &[PricedDiscount]) {
    for l in &mut s.lines {
        l.discount_minor = discounts
            .iter()
            .flat_map(|d| &d.lines)
            .filter(|(sku, _)| *sku == l.sku)
            .map(|(_, a)| *a)
            .sum();
    }
    s.discounts = Some(
        discounts
            .iter()
            .map(|d| OrderDiscount {
                discount: d.clone(),
                stage: RedemptionStage::Pending,
            })
            .collect(),
    );
}

pub fn set_stage(s: &mut OrderState, promotion_id: &str, stage: RedemptionStage) {
    if let Some(d) = s
        .discounts
        .iter_mut()
        .flatten()
        .find(|d| d.discount.promotion_id == promotion_id)
    {
        d.stage = stage;
    }
}
