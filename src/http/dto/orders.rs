//! Orders, their payment, vend, failure and history, and the page of a shopper's
//! orders: what checkout, the order routes, `GET /v1/me/orders` and the app purchase
//! answer with.

use super::carts::{Discount, LineItem};
use crate::clock::rfc3339;
use crate::domain::order::{
    vend_status, FailureCode as DomainFailureCode, OrderState, OrderStatus as DomainOrderStatus,
    PaymentStatus as DomainPaymentStatus, VendStatus as DomainVendStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

wire_enum! {
    OrderStatus from DomainOrderStatus { Pending, Reserved, Paid, Fulfilled, Cancelled, Refunded }
}

wire_enum! {
    PaymentStatus from DomainPaymentStatus { None, Authorized, Captured, Voided, Refunded, Failed }
}

wire_enum! {
    FailureCode from DomainFailureCode {
        OutOfStock, PaymentDeclined, PaymentError, Expired, CancelledByCustomer,
        CartUnavailable, VendFailed, VendTimeout, MachineOffline, CouponExpired,
        CouponExhausted, CouponNotApplicable, CouponLimitPerCustomer,
    }
}

wire_enum! {
    VendStatus from DomainVendStatus { Reserving, Dispensing, Vended, Failed, TimedOut, Cancelled }
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Cart,
    Vending,
}

/// The order's payment; the card itself is never kept.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct OrderPayment {
    pub status: PaymentStatus,
    /// The card's last four digits.
    pub last4: String,
}

/// The vend of an order of kind `vending`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct OrderVend {
    pub machine_id: String,
    pub slot: u32,
    /// After this the machine must not dispense; RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub deadline: String,
    pub status: VendStatus,
    /// The machine's id of the vend, once it dispensed.
    #[schema(required = true)]
    pub vend_id: Option<Uuid>,
}

/// Why an order was cancelled.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct OrderFailure {
    pub code: FailureCode,
    pub message: String,
}

/// A status the order reached, and when.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct OrderHistoryEntry {
    pub status: OrderStatus,
    /// RFC 3339 UTC with milliseconds.
    #[schema(format = DateTime)]
    pub at: String,
}

/// An order.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Order {
    pub id: Uuid,
    /// `cart` for a checkout, `vending` for an app purchase at a machine.
    pub kind: OrderKind,
    /// The cart checked out; `null` for a vending order.
    #[schema(required = true)]
    pub cart_id: Option<Uuid>,
    /// The machine, slot and vend of a vending order; `null` otherwise.
    #[schema(required = true)]
    pub vending: Option<OrderVend>,
    pub status: OrderStatus,
    pub items: Vec<LineItem>,
    /// The lines' value before discounts.
    pub subtotal_minor: i64,
    /// What the discounts take off.
    pub discount_minor: i64,
    /// What the order costs: the sum of its lines after discounts.
    pub total_minor: i64,
    /// The promotions the checkout priced the order with.
    pub discounts: Vec<Discount>,
    pub currency: String,
    pub email: String,
    pub payment: OrderPayment,
    /// Set when the order was cancelled; `null` otherwise.
    #[schema(required = true)]
    pub failure: Option<OrderFailure>,
    pub history: Vec<OrderHistoryEntry>,
}

impl Order {
    /// The order `id` of state `o` (which has been placed).
    pub fn new(id: Uuid, o: &OrderState) -> Self {
        let p = o.placement.as_ref();
        let items = o
            .lines
            .iter()
            .map(|l| LineItem {
                sku: l.sku.to_string(),
                quantity: l.quantity,
                unit_price_minor: l.unit_price_minor,
                line_total_minor: l.subtotal_minor(),
                discount_minor: l.discount_minor,
                allocations: l.allocations.iter().map(Into::into).collect(),
            })
            .collect();
        let discounts = o
            .discounts
            .iter()
            .flatten()
            .map(|d| Discount {
                promotion_id: d.discount.promotion_id.clone(),
                code: d.discount.code.clone(),
                amount_minor: d.discount.amount_minor,
            })
            .collect();
        let vending = o.vending.as_ref().map(|v| OrderVend {
            machine_id: v.machine_id.clone(),
            slot: v.slot,
            deadline: rfc3339(v.deadline),
            status: vend_status(o).unwrap_or(DomainVendStatus::Reserving).into(),
            vend_id: v.vend_id,
        });
        Self {
            id,
            kind: if o.vending.is_some() {
                OrderKind::Vending
            } else {
                OrderKind::Cart
            },
            cart_id: p.filter(|_| o.vending.is_none()).map(|p| p.cart_id),
            vending,
            status: o.status.into(),
            items,
            subtotal_minor: o.subtotal_minor(),
            discount_minor: o.discount_minor(),
            total_minor: o.total_minor(),
            discounts,
            currency: p.map(|p| p.currency.clone()).unwrap_or_default(),
            email: p.map(|p| p.email.clone()).unwrap_or_default(),
            payment: OrderPayment {
                status: o.payment.status.into(),
                last4: o.payment.last4.clone(),
            },
            failure: o.failure.as_ref().map(|f| OrderFailure {
                code: f.code.into(),
                message: f.message.clone(),
            }),
            history: o
                .history
                .iter()
                .map(|(s, at)| OrderHistoryEntry {
                    status: (*s).into(),
                    at: rfc3339(*at),
                })
                .collect(),
        }
    }
}

/// A page of the caller's orders, newest first.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}
