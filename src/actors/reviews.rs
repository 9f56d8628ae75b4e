//! The review's behavior: its listing index entries (a product's approved reviews by time
//! and by rating, and the moderation queue), written in the same batch as its events.

use super::behavior::Behavior;
use crate::domain::review::{index_keys, Review, ReviewEvent, ReviewState};
use crate::store::{Index, IndexOp};

pub struct ReviewBehavior;

impl Behavior<Review> for ReviewBehavior {
    fn index_ops(&self, _id: &str, events: &[ReviewEvent], after: &ReviewState) -> Vec<IndexOp> {
        if events.is_empty() {
            return vec![];
        }
        let (live, stale) = index_keys(after);
        stale
            .into_iter()
            .map(|k| IndexOp::Remove(Index::Reviews, k))
            .chain(live.into_iter().map(|k| IndexOp::Put(Index::Reviews, k)))
            .collect()
    }
}
