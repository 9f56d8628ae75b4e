//! Carts, their lines, and the checkout request with its card: the bodies of
//! `/v1/carts*`.

use crate::domain::cart::{CartState, CartStatus as DomainCartStatus};
use crate::domain::pricing::{CouponRefusal, Priced};
use crate::payment::CardDetails;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

wire_enum! {
    CartStatus from DomainCartStatus { Open, CheckedOut }
}

/// One line of a cart or an order.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LineItem {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    #[schema(minimum = 0)]
    pub quantity: u32,
    /// The price per unit when the item was added.
    pub unit_price_minor: i64,
    /// Quantity times unit price, before discounts.
    pub line_total_minor: i64,
    /// What the promotions take off this line.
    pub discount_minor: i64,
    /// In an order, the locations its units are held at or were taken from (known once
    /// the line is reserved; empty at a vending machine, whose slot holds the unit).
    /// Always empty in a cart.
    pub allocations: Vec<super::catalog::AllocationView>,
}

/// What one promotion takes off.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Discount {
    pub promotion_id: String,
    /// The coupon code, or `null` for a promotion that applies by itself.
    #[schema(required = true)]
    pub code: Option<String>,
    pub amount_minor: i64,
}

/// Whether a coupon on the cart applies, or why not.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CouponStatus {
    Applied,
    Unknown,
    Expired,
    NotApplicable,
    Exhausted,
    LimitPerCustomer,
}

impl From<CouponRefusal> for CouponStatus {
    fn from(r: CouponRefusal) -> Self {
        match r {
            CouponRefusal::Unknown => Self::Unknown,
            CouponRefusal::Expired => Self::Expired,
            CouponRefusal::NotApplicable => Self::NotApplicable,
            CouponRefusal::Exhausted => Self::Exhausted,
            CouponRefusal::LimitPerCustomer => Self::LimitPerCustomer,
        }
    }
}

/// A coupon code entered on the cart. A checkout with one that does not apply is
/// cancelled with its code (remove it first).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct CartCoupon {
    pub code: String,
    pub status: CouponStatus,
}

/// `POST /v1/carts/{id}/coupons`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ApplyCoupon {
    #[schema(example = "SAVE10", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub code: String,
}

/// A cart.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Cart {
    pub id: Uuid,
    pub status: CartStatus,
    /// The order placed from this cart, once checked out.
    #[schema(required = true)]
    pub order_id: Option<Uuid>,
    pub items: Vec<LineItem>,
    /// The lines' value before discounts.
    pub subtotal_minor: i64,
    /// What the discounts take off.
    pub discount_minor: i64,
    /// What the cart costs now: the subtotal less the discounts.
    pub total_minor: i64,
    /// Each promotion that applies, and what it takes off.
    pub discounts: Vec<Discount>,
    pub coupons: Vec<CartCoupon>,
    pub currency: String,
    /// Count of changes applied to the cart.
    #[schema(minimum = 0)]
    pub version: u64,
}

impl Cart {
    /// The cart `id` of state `c`, priced as `priced` says.
    pub fn new(id: Uuid, c: &CartState, priced: &Priced, currency: &str) -> Self {
        let off = |sku: &crate::domain::Sku| -> i64 {
            priced
                .discounts
                .iter()
                .flat_map(|d| &d.lines)
                .filter(|(s, _)| s == sku)
                .map(|(_, a)| *a)
                .sum()
        };
        let items = c
            .lines
            .iter()
            .map(|(sku, l)| LineItem {
                allocations: Vec::new(),
                sku: sku.to_string(),
                quantity: l.quantity,
                unit_price_minor: l.unit_price_minor,
                line_total_minor: l.total_minor(),
                discount_minor: off(sku),
            })
            .collect();
        let coupons = c
            .coupons
            .iter()
            .map(|code| CartCoupon {
                code: code.clone(),
                status: priced
                    .refused
                    .iter()
                    .find(|(c, _)| c == code)
                    .map_or(CouponStatus::Applied, |(_, r)| (*r).into()),
            })
            .collect();
        Self {
            id,
            status: c.status.into(),
            order_id: c.order_id,
            items,
            subtotal_minor: priced.subtotal_minor,
            discount_minor: priced.discount_minor,
            total_minor: priced.total_minor,
            discounts: priced
                .discounts
                .iter()
                .map(|d| Discount {
                    promotion_id: d.promotion_id.clone(),
                    code: d.code.clone(),
                    amount_minor: d.amount_minor,
                })
                .collect(),
            coupons,
            currency: currency.to_owned(),
            version: c.version,
        }
    }
}

/// `POST /v1/carts/{id}/items`: adds units at the current price.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 100, example = 2)]
    pub quantity: u32,
}

/// `PUT /v1/carts/{id}/items/{sku}`: sets the line's quantity (0 removes it).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct SetItemQuantity {
    #[schema(minimum = 0, maximum = 1000, example = 3)]
    pub quantity: u32,
}

/// Card details; only the last four digits are kept.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct Card {
    /// 12 to 19 digits (spaces and dashes allowed), passing the Luhn check.
    #[schema(example = "4242 4242 4242 4242")]
    pub card_number: String,
    #[schema(minimum = 1, maximum = 12, example = 12)]
    pub exp_month: u32,
    /// Four digits, or two meaning 20YY; not in the past.
    #[schema(minimum = 0, example = 2030)]
    pub exp_year: u32,
    /// 3 or 4 digits.
    #[schema(example = "123")]
    pub cvc: String,
}

impl From<Card> for CardDetails {
    fn from(c: Card) -> Self {
        Self {
            card_number: c.card_number,
            exp_month: c.exp_month,
            exp_year: c.exp_year,
            cvc: c.cvc,
        }
    }
}

/// `POST /v1/carts/{id}/checkout`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub payment: Card,
}
