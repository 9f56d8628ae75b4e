//! Products and stock: the bodies of `/v1/products*` and `/v1/inventory/*`.

use crate::domain::product::{ProductImage, ProductState};
use crate::domain::stock::StockState;
use crate::domain::stock_location::Allocation;
use crate::domain::Sku;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A product as shoppers see it.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
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
    /// The average of its approved reviews' ratings (two decimals); `null` with none.
    #[schema(required = true, minimum = 1, maximum = 5)]
    pub rating_average: Option<f64>,
    /// How many approved reviews it has.
    pub rating_count: u32,
    /// Its images, in the order added.
    pub images: Vec<ImageView>,
}

/// A product image.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ImageView {
    /// The SHA-256 of the image's bytes (also its `ETag`).
    pub id: String,
    /// Where it is served: stable, cacheable for a year.
    pub url: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
}

impl ImageView {
    pub fn new(sku: &Sku, i: &ProductImage) -> Self {
        Self {
            id: i.id.clone(),
            url: format!("/v1/products/{sku}/images/{}", i.id),
            content_type: i.content_type.clone(),
            width: i.width,
            height: i.height,
        }
    }
}

impl Product {
    /// The product `sku` of state `p` (which exists), priced in `currency`.
    pub fn new(sku: &Sku, p: &ProductState, currency: &str) -> Self {
        let s = p.spec.as_ref();
        Self {
            sku: sku.to_string(),
            name: s.map(|s| s.name.clone()).unwrap_or_default(),
            description: s.and_then(|s| s.description.clone()),
            price_minor: s.map_or(0, |s| s.price_minor),
            currency: currency.to_owned(),
            category: s.map(|s| s.category.clone()).unwrap_or_default(),
            tags: s.map(|s| s.tags.clone()).unwrap_or_default(),
            archived: p.archived,
            rating_average: p.rating.average(),
            rating_count: p.rating.count,
            images: p.images.iter().map(|i| ImageView::new(sku, i)).collect(),
        }
    }
}

/// `PUT /v1/products/{sku}`: creates the product (201) or replaces its spec (200).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
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
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ProductPage {
    pub items: Vec<Product>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// Stock of one SKU.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`.
    pub available: i64,
    /// The same per location (every location that holds or held units, by id).
    pub locations: Vec<LocationInventory>,
}

/// A SKU's units at one location.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct LocationInventory {
    #[schema(example = "main")]
    pub location: String,
    pub on_hand: i64,
    /// Held for orders and for transfers in transit from here.
    pub reserved: i64,
    pub available: i64,
}

/// Units of an order line held at, or taken from, one location.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AllocationView {
    #[schema(example = "main")]
    pub location: String,
    #[schema(minimum = 1)]
    pub quantity: i64,
}

impl From<&Allocation> for AllocationView {
    fn from(a: &Allocation) -> Self {
        Self {
            location: a.location.clone(),
            quantity: a.quantity,
        }
    }
}

impl Inventory {
    pub fn new(sku: &Sku, s: &StockState) -> Self {
        Self {
            sku: sku.to_string(),
            on_hand: s.on_hand,
            reserved: s.reserved,
            available: s.available(),
            locations: s
                .locations
                .iter()
                .map(|(location, l)| LocationInventory {
                    location: location.clone(),
                    on_hand: l.on_hand,
                    reserved: l.reserved,
                    available: l.available(),
                })
                .collect(),
        }
    }
}

/// `POST /v1/inventory/{sku}/adjustments`.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct InventoryAdjustment {
    /// Units to add (positive) or remove (negative); not zero, and on hand may not fall
    /// below what is reserved (409) nor exceed 1 000 000 000.
    #[schema(example = 25)]
    pub delta: i64,
    /// 1 to 200 characters.
    #[schema(example = "restock")]
    pub reason: String,
    /// The location the units are received at or written off from (a location of
    /// `/v1/locations`); absent: `main`.
    #[serde(default)]
    #[schema(example = "main", pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub location: Option<String>,
}
