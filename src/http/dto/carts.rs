//! Carts, their lines, and the checkout request with its card: the bodies of
//! `/v1/carts*`.

use crate::domain::cart::{CartState, CartStatus as DomainCartStatus};
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
    pub line_total_minor: i64,
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
    pub total_minor: i64,
    pub currency: String,
    /// Count of changes applied to the cart.
    #[schema(minimum = 0)]
    pub version: u64,
}

impl Cart {
    pub fn new(id: Uuid, c: &CartState, currency: &str) -> Self {
        let items = c
            .lines
            .iter()
            .map(|(sku, l)| LineItem {
                sku: sku.to_string(),
                quantity: l.quantity,
                unit_price_minor: l.unit_price_minor,
                line_total_minor: l.total_minor(),
            })
            .collect();
        Self {
            id,
            status: c.status.into(),
            order_id: c.order_id,
            items,
            total_minor: c.total_minor(),
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
