//! The catalog entry for one SKU: name, price, category, tags and whether it is archived.

use super::{reject, Aggregate, EntityKind, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};

/// The validated content of a product, as given by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductSpec {
    pub name: String,
    pub description: Option<String>,
    pub price_minor: i64,
    pub category: String,
    pub tags: Vec<String>,
}

/// Largest price accepted, in minor units (10 billion major units).
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000_000;

impl ProductSpec {
    /// Checks every field and says which one is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err("name must be 1 to 200 characters".into());
        }
        if let Some(d) = &self.description {
            if d.chars().count() > 4000 {
                return Err("description must be at most 4000 characters".into());
            }
        }
        if !(0..=MAX_PRICE_MINOR).contains(&self.price_minor) {
            return Err(format!(
                "price_minor must be between 0 and {MAX_PRICE_MINOR}"
            ));
        }
        let c = self.category.trim();
        if c.is_empty() || c.chars().count() > 64 {
            return Err("category must be 1 to 64 characters".into());
        }
        if self.tags.len() > 20 {
            return Err("at most 20 tags".into());
        }
        if self
            .tags
            .iter()
            .any(|t| t.trim().is_empty() || t.chars().count() > 32)
        {
            return Err("each tag must be 1 to 32 characters".into());
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductState {
    pub spec: Option<ProductSpec>,
    pub archived: bool,
    /// Its approved reviews' count and rating sum, as the ratings projection last
    /// counted them.
    pub rating: Rating,
    /// Its images, in the order added (at most [`MAX_IMAGES`]).
    pub images: Vec<ProductImage>,
}

/// Most images one product has.
pub const MAX_IMAGES: usize = 20;

/// An image of a product, stored under its id (the SHA-256 of its bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductImage {
    pub id: String,
    pub content_type: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// A product's approved reviews: how many, and their ratings' sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub count: u32,
    pub sum: u64,
}

impl Rating {
    /// The average rating, to two decimals; `None` with no review.
    pub fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum as f64 * 100.0 / f64::from(self.count)).round() / 100.0)
    }
}

impl ProductState {
    pub fn exists(&self) -> bool {
        self.spec.is_some()
    }
    /// Whether shoppers may add it to a cart.
    pub fn purchasable(&self) -> bool {
        self.exists() && !self.archived
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ProductCommand {
    /// Create or replace the product. Upserting an archived product restores it.
    /// `by` is who did it, for the audit trail.
    Upsert {
        spec: ProductSpec,
        by: String,
    },
    Archive {
        by: String,
    },
    /// The ratings projection's count of the product's approved reviews.
    SetRating {
        rating: Rating,
    },
    /// Adds an image (already stored); a no-op for one it has.
    AddImage {
        image: ProductImage,
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProductEvent {
    Created { spec: ProductSpec, by: String },
    Updated { spec: ProductSpec, by: String },
    Archived { by: String },
    // Appended for reviews.
    RatingSet { rating: Rating },
    ImageAdded { image: ProductImage, by: String },
}

pub struct Product;

impl Aggregate for Product {
    const KIND: EntityKind = EntityKind::Product;
    const INDEXES: &'static [crate::domain::Index] = &[super::Index::Products];
    type State = ProductState;
    type Command = ProductCommand;
    type Event = ProductEvent;

    fn decide(state: &ProductState, cmd: &ProductCommand) -> Result<Vec<ProductEvent>, Rejection> {
        match cmd {
            ProductCommand::Upsert { spec, by } => {
                if let Err(m) = spec.validate() {
                    return reject(RejectionCode::Validation, m);
                }
                match &state.spec {
                    None => Ok(vec![ProductEvent::Created {
                        spec: spec.clone(),
                        by: by.clone(),
                    }]),
                    Some(old) if old == spec && !state.archived => Ok(vec![]),
                    Some(_) => Ok(vec![ProductEvent::Updated {
                        spec: spec.clone(),
                        by: by.clone(),
                    }]),
                }
            }
            ProductCommand::Archive { by } => match (&state.spec, state.archived) {
                (None, _) => reject(RejectionCode::NotFound, "no such product"),
                (Some(_), true) => Ok(vec![]),
                (Some(_), false) => Ok(vec![ProductEvent::Archived { by: by.clone() }]),
            },
            ProductCommand::AddImage { image, by } => match &state.spec {
                None => reject(RejectionCode::NotFound, "no such product"),
                Some(_) if state.images.iter().any(|i| i.id == image.id) => Ok(vec![]),
                Some(_) if state.images.len() >= MAX_IMAGES => reject(
                    RejectionCode::Validation,
                    format!("a product has at most {MAX_IMAGES} images"),
                ),
                Some(_) => Ok(vec![ProductEvent::ImageAdded {
                    image: image.clone(),
                    by: by.clone(),
                }]),
            },
            ProductCommand::SetRating { rating } => match &state.spec {
                None => reject(RejectionCode::NotFound, "no such product"),
                Some(_) if state.rating == *rating => Ok(vec![]),
                Some(_) => Ok(vec![ProductEvent::RatingSet { rating: *rating }]),
            },
        }
    }

    fn apply(state: &mut ProductState, event: &ProductEvent) {
        match event {
            ProductEvent::Created { spec: s, .. } | ProductEvent::Updated { spec: s, .. } => {
                state.spec = Some(s.clone());
                state.archived = false;
            }
            ProductEvent::Archived { .. } => state.archived = true,
            ProductEvent::RatingSet { rating } => state.rating = *rating,
            ProductEvent::ImageAdded { image, .. } => state.images.push(image.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(price: i64) -> ProductSpec {
        ProductSpec {
            name: "Mug".into(),
            description: None,
            price_minor: price,
            category: "kitchen".into(),
            tags: vec![],
        }
    }

    #[test]
    fn create_then_update_then_archive() {
        let mut s = ProductState::default();
        let ev = Product::decide(
            &s,
            &ProductCommand::Upsert {
                spec: spec(100),
                by: "op".into(),
            },
        )
        .unwrap();
        assert!(matches!(ev[..], [ProductEvent::Created { .. }]));
        Product::apply(&mut s, &ev[0]);
        assert!(Product::decide(
            &s,
            &ProductCommand::Upsert {
                spec: spec(100),
                by: "op".into()
            }
        )
        .unwrap()
        .is_empty());
        let ev = Product::decide(&s, &ProductCommand::Archive { by: "op".into() }).unwrap();
        Product::apply(&mut s, &ev[0]);
        assert!(!s.purchasable());
        let err = Product::decide(
            &ProductState::default(),
            &ProductCommand::Archive { by: "op".into() },
        )
        .unwrap_err();
        assert_eq!(err.code, RejectionCode::NotFound);
    }

    proptest! {
        #[test]
        fn replay_rebuilds_state(prices in proptest::collection::vec(-5i64..1000, 0..20), archive_at in 0usize..20) {
            let mut s = ProductState::default();
            let mut log = vec![];
            for (i, p) in prices.iter().enumerate() {
                let cmd = if i == archive_at { ProductCommand::Archive { by: "op".into() } } else { ProductCommand::Upsert { spec: spec(*p), by: "op".into() } };
                if let Ok(evs) = Product::decide(&s, &cmd) {
                    for e in evs { Product::apply(&mut s, &e); log.push(e); }
                }
                prop_assert!(s.spec.as_ref().is_none_or(|sp| sp.price_minor >= 0));
            }
            prop_assert_eq!(Product::replay(&log), s);
        }
    }
}
