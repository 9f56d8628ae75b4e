//! The ratings projection: keeps each product's rating (count and sum of its approved
//! reviews) on the product entity. On every review event it counts the product's
//! approved reviews again from the review listing index (by-rating keys carry the
//! rating) and sets the product's rating to that count, so a repeated or reordered event
//! changes nothing: the product always ends at the index's truth. Reviews live in their
//! product's partition, so the count reads one partition's index and the product is
//! written by its own single writer.

use futures::future::BoxFuture;

use super::handler::{EventHandler, HandlerError};
use super::public::{EventType, PublicEvent};
use crate::domain::product::{Product, ProductCommand, Rating};
use crate::domain::review::rating_of_key;
use crate::domain::{RejectionCode, Sku};
use crate::router::{RouteError, Router};
use crate::store::partition_store::Record;

/// Reviews counted per listing page.
const PAGE: usize = 500;
/// Most approved reviews one product's count reads (a bound on one event's work).
pub const MAX_COUNTED: usize = 100_000;

pub struct Ratings {
    pub router: Router,
}

fn unavailable(e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Unavailable(format!("ratings: {e}"))
}

impl Ratings {
    /// The rating of `sku` as the review index holds it now.
    pub async fn count(&self, sku: &Sku) -> Result<Rating, HandlerError> {
        let prefix = format!("{sku}/r/");
        let mut rating = Rating::default();
        let mut cursor = None;
        loop {
            let page = self
                .router
                .list_reviews(&prefix, cursor, PAGE, false)
                .await
                .map_err(unavailable)?;
            for r in &page.rows {
                let full = format!("{prefix}{}", r.key);
                if let Some(stars) = rating_of_key(&full, sku) {
                    rating.count += 1;
                    rating.sum += u64::from(stars);
                }
            }
            match page.next_cursor {
                Some(c) if (rating.count as usize) < MAX_COUNTED => cursor = Some(c),
                _ => return Ok(rating),
            }
        }
    }
}

impl EventHandler for Ratings {
    fn name(&self) -> &'static str {
        "ratings"
    }

    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>> {
        Box::pin(async move {
            let review = matches!(
                ev.r#type,
                EventType::ReviewSubmitted | EventType::ReviewApproved | EventType::ReviewRejected
            );
            let sku = ev.data["sku"].as_str().and_then(|s| Sku::parse(s).ok());
            let (true, Some(sku)) = (review, sku) else {
                return Ok(Vec::new());
            };
            let rating = self.count(&sku).await?;
            match self
                .router
                .command::<Product>(sku.as_str(), ProductCommand::SetRating { rating })
                .await
            {
                // A review of a product that no longer exists has nothing to rate.
                Ok(_) => Ok(Vec::new()),
                Err(RouteError::Rejected(r)) if r.code == RejectionCode::NotFound => Ok(Vec::new()),
                Err(e) => Err(unavailable(e)),
            }
        })
    }
}
