//! The API's request and response types: each derives serde and `utoipa::ToSchema`, so
//! the handler that reads or answers it and the OpenAPI document describe one type.
//! Internal events and states are not the contract; these types are, and each response
//! type is built from domain state by its own constructor.
//!
//! - here: the error body every failure answers with, the SKU pattern, and
//!   [`wire_enum!`], a string enum mirroring a domain enum with its exhaustive `From`;
//! - [`identity`]: accounts, tokens, profiles and roles;
//! - [`catalog`]: products and stock;
//! - [`categories`]: the category tree;
//! - [`locations`]: stock locations and transfers between them;
//! - [`carts`]: carts, their lines, and the checkout request with its card;
//! - [`orders`]: orders, their payment, vend, failure and history, and their pages;
//! - [`audit`]: an entity's journalled events;
//! - [`machines`]: vending machines, planograms, commands, slots and the app purchase;
//! - [`cluster`]: members, partitions, handoffs and the operator actions;
//! - [`events`]: the public event feed and the projections' status;
//! - [`webhooks`]: webhook endpoints, their deliveries and the dead-letter queue;
//! - [`preferences`]: a shopper's notification preferences;
//! - [`promotions`]: promotions, their actions, conditions and redemptions;
//! - [`reviews`]: reviews, their moderation and a product's rating.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A public string enum (snake_case on the wire) mirroring a domain enum variant for
/// variant, with the `From` that maps the domain's value to it. The match is exhaustive,
/// so a new domain variant does not compile until the contract names it.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident from $domain:ident { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
            Clone, Copy, Debug, PartialEq, Eq,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $v),+
        }

        impl From<$domain> for $name {
            fn from(d: $domain) -> Self {
                match d {
                    $($domain::$v => Self::$v),+
                }
            }
        }
    };
}

pub mod audit;
pub mod carts;
pub mod catalog;
pub mod categories;
pub mod cluster;
pub mod events;
pub mod identity;
pub mod locations;
pub mod machines;
pub mod notifications;
pub mod orders;
pub mod preferences;
pub mod promotions;
pub mod reviews;
pub mod webhooks;

/// `missing_partitions` of a listing: present (possibly empty) only when the caller
/// asked for a partial answer.
pub fn missing(partial: bool, missing: &[u32]) -> Option<Vec<u32>> {
    partial.then(|| missing.to_vec())
}

/// The `Idempotency-Key` header of a keyed order request (checkout, machine purchase), as
/// `super::extract::idempotency_key` reads it.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// 1 to 255 visible ASCII characters; the same key with another body is 409
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 255, pattern = "^[!-~]{1,255}$")]
    pub key: String,
}

/// The 401 of a route for operators and admins.
pub const STAFF_401: &str = "`unauthorized`, `invalid_token` or `token_expired`";
/// The 403 of a route for operators and admins.
pub const STAFF_403: &str = "`forbidden`: not an operator or admin";

/// The `partial` parameter of every cluster-wide listing.
pub const PARTIAL: &str = "true: answer 200 with what could be read and name the partitions \
    that could not in `missing_partitions`; otherwise such partitions make the listing 503 \
    `partition_unavailable` whose error names them in `partitions`";

/// The pattern of a SKU, as `crate::domain::Sku::parse` accepts it.
pub const SKU_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// Every error answer: `{"error":{"code":"...","message":"..."}}`. [`super::error::ApiError`]
/// answers with this type.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[schema(
    as = Error,
    example = json!({"error": {"code": "not_found", "message": "no cart 6d3c..."}})
)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// A stable snake_case code, e.g. `validation`, `invalid_json`, `unauthorized`,
    /// `invalid_token`, `token_expired`, `forbidden`, `not_found`, `email_taken`,
    /// `cart_checked_out`, `idempotency_key_reused`, `idempotency_key_expired`,
    /// `payload_too_large`, `rate_limited`, `overloaded`, `timeout`.
    #[schema(pattern = "^[a-z0-9_]+$")]
    pub code: String,
    /// A human-readable explanation; not part of the contract.
    pub message: String,
    /// With 503 `partition_unavailable` from a listing: the partitions that could not
    /// answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<Vec<u32>>,
}
