//! Reviews and their moderation: the bodies of `/v1/products/{sku}/reviews` and
//! `/v1/reviews*`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::domain::review::{ReviewState, ReviewStatus as DomainReviewStatus};

wire_enum! {
    ReviewStatus from DomainReviewStatus { Pending, Approved, Rejected }
}

/// `POST /v1/products/{sku}/reviews`: writes (or edits) the caller's review.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct WriteReview {
    #[schema(minimum = 1, maximum = 5, example = 5)]
    pub rating: u8,
    #[schema(example = "A good mug", max_length = 200)]
    pub title: String,
    #[serde(default)]
    #[schema(example = "Keeps tea hot.", max_length = 5000)]
    pub body: String,
}

/// `POST /v1/reviews/{id}/reject`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RejectReview {
    #[schema(example = "off topic", max_length = 500)]
    pub reason: String,
}

/// A review.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReviewView {
    /// `{sku}~{author}`: one review per shopper and product.
    pub id: String,
    pub sku: String,
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub status: ReviewStatus,
    /// Why it waits for moderation (`link`, `word:<w>`, `reported`).
    pub flags: Vec<String>,
    /// Why an operator rejected it.
    #[schema(required = true)]
    pub reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl ReviewView {
    /// The review `id` of state `s` (which exists).
    pub fn new(id: &str, s: &ReviewState) -> Option<Self> {
        let t = s.text.as_ref()?;
        Some(Self {
            id: id.to_owned(),
            sku: t.sku.to_string(),
            rating: t.rating,
            title: t.title.clone(),
            body: t.body.clone(),
            status: s.status.into(),
            flags: s.flags.clone(),
            reason: s.reason.clone(),
            created_at: rfc3339(s.created_at),
            updated_at: rfc3339(s.updated_at),
        })
    }
}

/// A product's approved reviews and its rating.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProductReviews {
    pub items: Vec<ReviewView>,
    /// The average of its approved reviews (two decimals); `null` with none.
    #[schema(required = true)]
    pub rating_average: Option<f64>,
    pub rating_count: u32,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A page of reviews waiting for moderation, oldest last.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReviewPage {
    pub items: Vec<ReviewView>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}
