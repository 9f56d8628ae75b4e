//! Pure domain logic: one module per entity, each a `decide`/`apply` pair with no IO,
//! no clock reads and no randomness. Time and ids are passed in by the caller.
//!
//! - [`ids`]: validated newtypes (`Sku`, `EntityKind`) and limits shared by the edge.
//! - [`index`]: the secondary indexes, each declared by the kind that writes it.
//! - [`product`]: the catalog entry.
//! - [`cart`]: a shopper's cart, locked by checkout.
//! - [`category`]: the category tree (parents, slugs, positions; descendants).
//! - [`stock`]: inventory for one SKU, with reservations that expire.
//! - [`stock_location`]: a SKU's units per location, allocation and transfers.
//! - [`location`]: the location book (stores, warehouses, trucks, machines; priorities).
//! - [`notification`]: a notification message (per event, channel, recipient): attempts,
//!   backoff, dead letter.
//! - [`order`]: the order and its checkout saga, which returns the next effect to run.
//! - [`order_promotions`]: an order's discounts and where each redemption stands.
//! - [`order_idempotency`]: `Idempotency-Key`s name orders (derived ids, fingerprints).
//! - [`payment`]: an order's payment: its intent and the idempotent outcome of each step.
//! - [`user`]: users (roles, profile, password hash) and the email claim.
//! - [`session`]: a refresh-token family, rotated on every use.
//! - [`machine`]: a vending machine: connectivity, planogram, sales, commands, app holds.
//! - [`webhook`]: the webhook endpoint registry (URLs, event types, signing keys).
//! - [`notification_template`]: the notification templates saved over the defaults.
//! - [`preferences`]: a shopper's notification preferences (channels, marketing opt-in,
//!   SMS phone, push subscriptions).
//! - [`promotion`]: the promotion book (conditions, actions, windows, coupon codes, limits).
//! - [`redemption`]: one promotion's redemption ledger (reservations with a deadline).
//! - [`review`]: a shopper's review of a product and its moderation.
//! - [`pricing`]: prices a cart against the book (discount lines, rounding, combining).

pub mod cart;
pub mod category;
pub mod ids;
pub mod index;
pub mod location;
pub mod machine;
pub mod notification;
pub mod notification_template;
pub mod order;
pub mod order_idempotency;
pub mod order_promotions;
pub mod order_vending;
pub mod payment;
pub mod preferences;
pub mod pricing;
pub mod product;
pub mod promotion;
pub mod redemption;
pub mod review;
pub mod session;
pub mod stock;
pub mod stock_location;
pub mod user;
pub mod webhook;

use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;

pub use ids::{EntityKind, LogId, Millis, Sku};
pub use index::Index;

/// An event-sourced entity: a pure state machine.
///
/// `decide` validates a command against the current state and returns the events it
/// produces (possibly none, for an idempotent repeat); `apply` folds one event into the
/// state and never fails.
pub trait Aggregate: Send + Sync + 'static {
    /// Which kind of entity this is; part of the journal key.
    const KIND: EntityKind;
    /// The indexes this kind writes ([`index`]); the journal refuses any other.
    const INDEXES: &'static [Index] = &[];
    type State: Default + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    type Command: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    type Event: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;

    fn decide(state: &Self::State, cmd: &Self::Command) -> Result<Vec<Self::Event>, Rejection>;
    fn apply(state: &mut Self::State, event: &Self::Event);

    /// Whether this entity may be passivated now. Entities with pending timers
    /// (reservations) or running sagas stay active.
    fn can_passivate(_state: &Self::State) -> bool {
        true
    }

    /// Rebuilds a state from a sequence of events.
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State {
        let mut state = Self::State::default();
        for e in events {
            Self::apply(&mut state, e);
        }
        state
    }
}

/// Why a command was refused. A rejection is a reply, not a failure: the actor stays up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
#[error("{code:?}: {message}")]
pub struct Rejection {
    pub code: RejectionCode,
    pub message: String,
}

impl Rejection {
    pub fn new(code: RejectionCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The business reasons a command can be refused. The HTTP edge maps each to a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionCode {
    NotFound,
    Validation,
    OutOfStock,
    InsufficientStock,
    CartCheckedOut,
    CartEmpty,
    InvalidTransition,
    ProductArchived,
    /// A unique value is already taken (the message names which).
    Conflict,
    /// A credential is not (or no longer) valid.
    Unauthorized,
    /// The change would make a stored record exceed the store's record limit.
    EntityTooLarge,
    /// An `Idempotency-Key` was reused with a different request.
    IdempotencyKeyReused,
    /// An `Idempotency-Key` no longer names this order (reused after its TTL), or was
    /// reused past the last generation.
    IdempotencyKeyExpired,
    /// A coupon's promotion has not started, has ended, or was ended.
    CouponExpired,
    /// A promotion's redemptions are all taken.
    CouponExhausted,
    /// The cart does not meet a coupon's conditions (or a better promotion excludes it).
    CouponNotApplicable,
    /// The customer redeemed the promotion as often as it allows.
    CouponLimitPerCustomer,
    /// A location that is closed cannot receive the units.
    LocationClosed,
}

impl RejectionCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Validation => "validation",
            Self::OutOfStock => "out_of_stock",
            Self::InsufficientStock => "insufficient_stock",
            Self::CartCheckedOut => "cart_checked_out",
            Self::CartEmpty => "cart_empty",
            Self::InvalidTransition => "invalid_transition",
            Self::ProductArchived => "product_archived",
            Self::Conflict => "conflict",
            Self::Unauthorized => "unauthorized",
            Self::EntityTooLarge => "entity_too_large",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::IdempotencyKeyExpired => "idempotency_key_expired",
            Self::CouponExpired => "coupon_expired",
            Self::CouponExhausted => "coupon_exhausted",
            Self::CouponNotApplicable => "coupon_not_applicable",
            Self::CouponLimitPerCustomer => "coupon_limit_per_customer",
            Self::LocationClosed => "location_closed",
        }
    }
}

pub(crate) fn reject<T>(code: RejectionCode, message: impl Into<String>) -> Result<T, Rejection> {
    Err(Rejection::new(code, message))
}
