//! Promotions and coupons: the bodies of `/v1/promotions*`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::domain::promotion::{Action as DomainAction, Promotion as DomainPromotion, Window};

/// What a promotion takes off.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A percentage of each line the conditions select (half-to-even per line).
    PercentOff {
        #[schema(minimum = 1, maximum = 100, example = 10)]
        percent: u32,
    },
    /// A fixed amount, shared between the selected lines by value.
    AmountOff {
        #[schema(minimum = 1, example = 500)]
        amount_minor: i64,
    },
    /// For every `buy_quantity` of `buy_sku`, `get_quantity` of `get_sku` free.
    BuyXGetY {
        buy_sku: String,
        #[schema(minimum = 1, maximum = 100)]
        buy_quantity: u32,
        get_sku: String,
        #[schema(minimum = 1, maximum = 100)]
        get_quantity: u32,
    },
    /// Up to `quantity` units of `sku` in the cart free.
    FreeItem {
        sku: String,
        #[schema(minimum = 1, maximum = 100)]
        quantity: u32,
    },
}

impl From<&DomainAction> for Action {
    fn from(a: &DomainAction) -> Self {
        match a {
            DomainAction::PercentOff { percent } => Self::PercentOff { percent: *percent },
            DomainAction::AmountOff { amount_minor } => Self::AmountOff {
                amount_minor: *amount_minor,
            },
            DomainAction::BuyXGetY {
                buy_sku,
                buy_quantity,
                get_sku,
                get_quantity,
            } => Self::BuyXGetY {
                buy_sku: buy_sku.to_string(),
                buy_quantity: *buy_quantity,
                get_sku: get_sku.to_string(),
                get_quantity: *get_quantity,
            },
            DomainAction::FreeItem { sku, quantity } => Self::FreeItem {
                sku: sku.to_string(),
                quantity: *quantity,
            },
        }
    }
}

/// When a promotion applies; an empty list selects every line.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// The cart's subtotal before discounts must reach this.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub min_subtotal_minor: i64,
    /// The cart must hold one of these SKUs (and the discount applies to them).
    #[serde(default)]
    #[schema(max_items = 20)]
    pub skus: Vec<String>,
    /// ... or a product of one of these categories.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub categories: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `PUT /v1/promotions/{id}`: creates or replaces a promotion.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PutPromotion {
    #[schema(example = "Ten percent off")]
    pub name: String,
    /// The campaign it belongs to, for reports.
    #[serde(default)]
    #[schema(example = "spring-2027")]
    pub campaign: Option<String>,
    pub action: Action,
    #[serde(default)]
    pub conditions: Conditions,
    /// A coupon code (case does not matter; stored upper case). Absent: the promotion
    /// applies by itself to every cart that meets its conditions.
    #[serde(default)]
    #[schema(example = "SAVE10", pattern = "^[A-Za-z0-9_-]{1,32}$")]
    pub code: Option<String>,
    /// Most orders that may redeem it.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub usage_limit: Option<u32>,
    /// Most orders one customer may redeem it in.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub per_customer_limit: Option<u32>,
    /// RFC 3339; absent: from now.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    /// RFC 3339; absent: until it is ended.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    /// Whether it applies together with other promotions (default true).
    #[serde(default = "yes")]
    pub combines: bool,
}

#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PromotionStatus {
    Scheduled,
    Active,
    Ended,
}

/// A promotion and its redemptions.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub campaign: Option<String>,
    pub action: Action,
    pub conditions: Conditions,
    #[schema(required = true)]
    pub code: Option<String>,
    #[schema(required = true)]
    pub usage_limit: Option<u32>,
    #[schema(required = true)]
    pub per_customer_limit: Option<u32>,
    #[schema(required = true, format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(required = true, format = DateTime)]
    pub ends_at: Option<String>,
    pub combines: bool,
    pub status: PromotionStatus,
    /// Orders that redeemed it (paid, and not cancelled since).
    pub redemptions: u32,
    /// Checkouts holding a redemption now.
    pub reserved: u32,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(required = true, format = DateTime)]
    pub ended_at: Option<String>,
}

impl Promotion {
    /// `p` at `now`, with `redemptions` consumed and `reserved` held.
    pub fn new(p: &DomainPromotion, now: u64, redemptions: u32, reserved: u32) -> Self {
        let d = &p.def;
        Self {
            id: p.id.clone(),
            name: d.name.clone(),
            campaign: d.campaign.clone(),
            action: (&d.action).into(),
            conditions: Conditions {
                min_subtotal_minor: d.conditions.min_subtotal_minor,
                skus: d.conditions.skus.iter().map(ToString::to_string).collect(),
                categories: d.conditions.categories.clone(),
            },
            code: d.code.clone(),
            usage_limit: d.usage_limit,
            per_customer_limit: d.per_customer_limit,
            starts_at: d.starts_at.map(rfc3339),
            ends_at: d.ends_at.map(rfc3339),
            combines: d.combines,
            status: match p.window(now) {
                Window::NotStarted => PromotionStatus::Scheduled,
                Window::Open => PromotionStatus::Active,
                Window::Over => PromotionStatus::Ended,
            },
            redemptions,
            reserved,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
            ended_at: p.ended_at.map(rfc3339),
        }
    }
}

/// Every promotion, by id.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PromotionList {
    pub items: Vec<Promotion>,
}
