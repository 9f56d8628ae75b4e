//! The JSON shapes of the API as OpenAPI schemas.
//!
//! These types are never built or parsed by the server: the handlers read bodies into
//! their own structs and answer with the JSON of [`crate::http::views`]. Each type here
//! mirrors one of those shapes field for field (names, types, nullability, the
//! `deny_unknown_fields` of request bodies), so that `utoipa` can describe it. Money is
//! always an integer number of minor units (`*_minor`), statuses are string enums.
#![allow(dead_code)]

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::http::dto::SKU_PATTERN;

pub use crate::http::dto::ErrorBody;

// ---------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------

/// `POST /v1/auth/register` and `POST /v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Matched case-insensitively and trimmed.
    #[schema(example = "ada@example.com", format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 128 characters, not equal to the email (checked at registration).
    #[schema(example = "correct horse battery", min_length = 10, max_length = 128)]
    pub password: String,
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registered {
    pub user_id: Uuid,
}

/// An access token (a JWT) and an opaque refresh token, rotated on every use.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    /// Lifetime of the access token in seconds.
    #[schema(minimum = 0)]
    pub expires_in: u64,
    pub token_type: TokenType,
}

#[derive(Deserialize, ToSchema)]
pub enum TokenType {
    Bearer,
}

/// `POST /v1/auth/refresh` and `POST /v1/auth/logout`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Shopper,
    Operator,
    Admin,
}

/// A user's profile.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub user_id: Uuid,
    pub email: String,
    pub roles: Vec<Role>,
    /// `null` until set.
    #[schema(required = true)]
    pub name: Option<String>,
    /// `null` until set.
    #[schema(required = true)]
    pub phone: Option<String>,
}

/// `PATCH /v1/me`: the fields to change; an absent field stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 1 to 100 characters after trimming.
    #[schema(example = "Ada Lovelace")]
    pub name: Option<String>,
    /// 5 to 20 characters: digits, spaces, `( ) -` and a leading `+`.
    #[schema(example = "+44 20 7946 0958")]
    pub phone: Option<String>,
}

/// `PUT /v1/admin/users/{user_id}/roles`: the user's new set of roles.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesUpdate {
    pub roles: Vec<Role>,
}

// ---------------------------------------------------------------------------------------
// Catalog and inventory
// ---------------------------------------------------------------------------------------

/// A product as shoppers see it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Product {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    pub name: String,
    #[schema(required = true)]
    pub description: Option<String>,
    /// The price in minor units of `currency`.
    #[schema(minimum = 0)]
    pub price_minor: i64,
    /// The shop's currency, e.g. `EUR`.
    pub currency: String,
    pub category: String,
    pub tags: Vec<String>,
    pub archived: bool,
}

/// `PUT /v1/products/{sku}`: creates the product (201) or replaces its spec (200).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// 1 to 200 characters after trimming.
    #[schema(example = "Blue Mug")]
    pub name: String,
    /// At most 4000 characters; empty means none.
    pub description: Option<String>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64, example = 1299)]
    pub price_minor: i64,
    /// 1 to 64 characters after trimming.
    #[schema(example = "kitchen")]
    pub category: String,
    /// At most 20 tags of 1 to 32 characters.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A page of products, ordered by SKU.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(default)]
    pub missing_partitions: Option<Vec<u32>>,
}

/// Stock of one SKU.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
}

/// `POST /v1/inventory/{sku}/adjustments`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryAdjustment {
    /// Units to add (positive) or remove (negative); not zero, and on hand may not fall
    /// below what is reserved (409) nor exceed 1 000 000 000.
    #[schema(example = 25)]
    pub delta: i64,
    /// 1 to 200 characters.
    #[schema(example = "restock")]
    pub reason: String,
}

// ---------------------------------------------------------------------------------------
// Carts and orders
// ---------------------------------------------------------------------------------------

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CartStatus {
    Open,
    CheckedOut,
}

/// One line of a cart or an order.
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
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

/// `POST /v1/carts/{id}/items`: adds units at the current price.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$", example = "MUG-BLUE")]
    pub sku: String,
    #[schema(minimum = 1, maximum = 100, example = 2)]
    pub quantity: u32,
}

/// `PUT /v1/carts/{id}/items/{sku}`: sets the line's quantity (0 removes it).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetItemQuantity {
    #[schema(minimum = 0, maximum = 1000, example = 3)]
    pub quantity: u32,
}

/// Card details; only the last four digits are kept.
#[derive(Deserialize, ToSchema)]
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

/// `POST /v1/carts/{id}/checkout`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    pub payment: Card,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Reserved,
    Paid,
    Fulfilled,
    Cancelled,
    Refunded,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    None,
    Authorized,
    Captured,
    Voided,
    Refunded,
    Failed,
}

/// The order's payment; the card itself is never kept.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPayment {
    pub status: PaymentStatus,
    /// The card's last four digits.
    pub last4: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    OutOfStock,
    PaymentDeclined,
    PaymentError,
    Expired,
    CancelledByCustomer,
    CartUnavailable,
    VendFailed,
    VendTimeout,
    MachineOffline,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Cart,
    Vending,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VendStatus {
    Reserving,
    Dispensing,
    Vended,
    Failed,
    TimedOut,
    Cancelled,
}

/// The vend of an order of kind `vending`.
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderFailure {
    pub code: FailureCode,
    pub message: String,
}

/// A status the order reached, and when.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderHistoryEntry {
    pub status: OrderStatus,
    /// RFC 3339 UTC with milliseconds.
    #[schema(format = DateTime)]
    pub at: String,
}

/// An order.
#[derive(Deserialize, ToSchema)]
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
    pub total_minor: i64,
    pub currency: String,
    pub email: String,
    pub payment: OrderPayment,
    /// Set when the order was cancelled; `null` otherwise.
    #[schema(required = true)]
    pub failure: Option<OrderFailure>,
    pub history: Vec<OrderHistoryEntry>,
}

/// A page of the caller's orders, newest first.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPage {
    pub items: Vec<Order>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(default)]
    pub missing_partitions: Option<Vec<u32>>,
}

// ---------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------

/// The kinds of entity whose events can be read. `inventory` is an alias of `sku`.
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityEvents {
    /// The entity kind (`inventory` is reported as `sku`).
    pub kind: String,
    pub id: String,
    pub events: Vec<EntityEvent>,
}
