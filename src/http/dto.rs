//! Shapes shared by several resources: the error body every failure answers with, and
//! the SKU pattern. A resource's own request and response types live beside its
//! handlers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
