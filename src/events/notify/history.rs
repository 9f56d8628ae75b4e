//! The messages of the partitions this node owns: each owner's part of the cluster-wide
//! `GET /v1/admin/notifications` and `GET /v1/me/notifications` ([`page_in`], run by the
//! router's listing fan-out), and the replay of a dead message (on the node that owns
//! it). Reads are bounded ([`SCAN`] records per family and partition).

use std::sync::Arc;

use super::{done_key, id_of, queue_key, Stored, DLQ, LOG, QUEUE};
use crate::clock::now_ms;
use crate::domain::notification::{
    apply, decide, listing_key, MessageCommand, MessageFilter, MessageState, MessageStatus,
};
use crate::events::runner::Ownership;
use crate::store::{codec, Journal, StoreError};

/// Most records one listing reads per family and partition.
pub const SCAN: usize = 10_000;

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead message with that id on this node")]
    NotFound,
    #[error("the message's partition is moving; try again")]
    Moving,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first `limit` messages of `partitions` that `f` keeps after listing key `after`,
/// in listing order (newest first, [`listing_key`]), each with its key: one owner's part
/// of a cluster-wide listing (`Router::list_notifications`).
pub fn page_in(
    journal: &Journal,
    partitions: &[u32],
    f: &MessageFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, MessageState)>, StoreError> {
    let families: &[&str] = match f.status {
        Some(MessageStatus::Pending) => &[QUEUE],
        Some(MessageStatus::Sent) => &[LOG],
        Some(MessageStatus::Dead) => &[DLQ],
        Some(MessageStatus::Absent) => &[],
        None => &[QUEUE, LOG, DLQ],
    };
    let mut out = Vec::new();
    for p in partitions {
        let part = journal.partition(*p);
        for family in families {
            for (_, v) in part.projected(family, None, SCAN)? {
                let Some(s) = decode(&v).filter(|s| f.keeps(&s.message)) else {
                    continue;
                };
                let key = listing_key(&s.message);
                if after.is_none_or(|a| key.as_str() > a) {
                    out.push((key, s.message));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.truncate(limit);
    Ok(out)
}

/// The node's notification records.
pub struct Notifications {
    journal: Journal,
    owner: Arc<dyn Ownership>,
}

fn decode(v: &[u8]) -> Option<Stored> {
    codec::decode(v).ok()
}

impl Notifications {
    pub fn new(journal: Journal, owner: Arc<dyn Ownership>) -> Arc<Self> {
        Arc::new(Self { journal, owner })
    }

    /// Puts dead message `id` back in its partition's queue, due now, for one more round
    /// of attempts.
    pub async fn replay(&self, id: &str) -> Result<(), ReplayError> {
        for p in self.owner.local() {
            let part = self.journal.partition(p);
            let found = part
                .projected(DLQ, None, SCAN)?
                .into_iter()
                .find(|(k, _)| id_of(k) == Some(id));
            let Some((k, _)) = found else { continue };
            let _held = self.owner.hold(p).ok_or(ReplayError::Moving)?;
            // Re-read under the gate: the record may have moved since the scan.
            let Some(mut s) = part.projected_get(DLQ, &k)?.as_deref().and_then(decode) else {
                return Err(ReplayError::NotFound);
            };
            let now = now_ms();
            let events = decide(&s.message, &MessageCommand::Replay { now })
                .map_err(|_| ReplayError::NotFound)?;
            for e in &events {
                apply(&mut s.message, e);
            }
            debug_assert_eq!(k, done_key(s.pseq, &s.message.id));
            let q = queue_key(s.message.due_at, &s.message.id);
            part.write_projected(vec![(DLQ, k, None), (QUEUE, q, Some(codec::encode(&s)))])
                .await?;
            return Ok(());
        }
        Err(ReplayError::NotFound)
    }
}
