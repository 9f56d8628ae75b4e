//! Reading the delivery records of the partitions this node owns (an endpoint's
//! deliveries in every state, the dead-letter queue) and replaying dead ones: a replay
//! moves the record back to the queue, due at once with its attempt count reset and its
//! history kept, in one durable write under the partition's gate.

use std::sync::Arc;

use uuid::Uuid;

use super::{endpoint_of, parse_record_id, record_id, Delivery, DeliveryState, DLQ, LOG, QUEUE};
use crate::events::runner::Ownership;
use crate::store::{codec, Journal, StoreError};

/// A record with its public id.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub delivery: Delivery,
}

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead-lettered delivery {0}")]
    NotFound(String),
    #[error("the partition of {0} is moving; try again")]
    Moving(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The delivery records of this node's partitions.
pub struct Deliveries {
    journal: Journal,
    owner: Arc<dyn Ownership>,
    replays: tokio::sync::Mutex<()>,
}

fn decoded(p: u32, records: Vec<(Vec<u8>, Vec<u8>)>, endpoint: Option<Uuid>) -> Vec<Listed> {
    records
        .into_iter()
        .take_while(|(k, _)| endpoint.is_none() || endpoint_of(k) == endpoint)
        .filter_map(|(k, v)| {
            let delivery: Delivery = codec::decode(&v).ok()?;
            Some(Listed {
                id: record_id(p, &k),
                delivery,
            })
        })
        .collect()
}

impl Deliveries {
    pub fn new(journal: Journal, owner: Arc<dyn Ownership>) -> Arc<Self> {
        Arc::new(Self {
            journal,
            owner,
            replays: tokio::sync::Mutex::new(()),
        })
    }

    fn local(&self) -> Vec<u32> {
        let mut l = self.owner.local();
        l.sort_unstable();
        l
    }

    /// Up to `limit` deliveries of `endpoint` (queued, delivered and dead), the most
    /// recently attempted first.
    pub fn of_endpoint(&self, endpoint: Uuid, limit: usize) -> Result<Vec<Listed>, StoreError> {
        let mut out = Vec::new();
        for p in self.local() {
            let part = self.journal.partition(p);
            for family in [QUEUE, LOG, DLQ] {
                let rows = part.projected(family, Some(endpoint.as_bytes()), limit)?;
                out.extend(decoded(p, rows, Some(endpoint)));
            }
        }
        let last = |l: &Listed| l.delivery.attempts.last().map_or(u64::MAX, |a| a.at);
        out.sort_by_key(|l| std::cmp::Reverse(last(l)));
        out.truncate(limit);
        Ok(out)
    }

    /// A page of the dead-letter queue after record `after` (an id from an earlier
    /// page), optionally of one endpoint: the items and the next cursor (`None` at the
    /// end).
    pub fn dead(
        &self,
        after: Option<&str>,
        endpoint: Option<Uuid>,
        limit: usize,
    ) -> Result<(Vec<Listed>, Option<String>), StoreError> {
        let from = after.and_then(parse_record_id);
        let mut out: Vec<Listed> = Vec::new();
        for p in self.local() {
            let start: Option<Vec<u8>> = match &from {
                Some((fp, _)) if p < *fp => continue,
                Some((fp, k)) if p == *fp => Some(k.clone()),
                _ => endpoint.map(|e| e.as_bytes().to_vec()),
            };
            let part = self.journal.partition(p);
            let rows = part.projected(DLQ, start.as_deref(), limit + 1 - out.len().min(limit))?;
            out.extend(
                decoded(p, rows, None)
                    .into_iter()
                    .filter(|l| endpoint.is_none_or(|e| l.delivery.endpoint == e)),
            );
            if out.len() > limit {
                break;
            }
        }
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|l| l.id.clone())
        } else {
            None
        };
        Ok((out, next))
    }

    /// Moves dead record `id` back to the queue.
    pub async fn replay(&self, id: &str) -> Result<(), ReplayError> {
        let (p, key) = parse_record_id(id).ok_or_else(|| ReplayError::NotFound(id.into()))?;
        if !self.owner.local().contains(&p) {
            return Err(ReplayError::NotFound(id.into()));
        }
        let _one = self.replays.lock().await;
        let Some(_held) = self.owner.hold(p) else {
            return Err(ReplayError::Moving(id.into()));
        };
        let part = self.journal.partition(p);
        let Some(mut d) = part
            .projected_get(DLQ, &key)?
            .and_then(|v| codec::decode::<Delivery>(&v).ok())
        else {
            return Err(ReplayError::NotFound(id.into()));
        };
        d.state = DeliveryState::Pending;
        d.tries = 0;
        d.next_at = 0;
        part.write_projected(vec![
            (DLQ, key.clone(), None),
            (QUEUE, key, Some(codec::encode(&d))),
        ])
        .await?;
        metrics::gauge!("emporium_webhook_dlq_depth").decrement(1.0);
        Ok(())
    }

    /// Replays every dead record of `endpoint` here; how many.
    pub async fn replay_endpoint(&self, endpoint: Uuid) -> Result<usize, ReplayError> {
        let mut n = 0;
        loop {
            let (page, _) = self.dead(None, Some(endpoint), 256)?;
            if page.is_empty() {
                return Ok(n);
            }
            for l in page {
                match self.replay(&l.id).await {
                    Ok(()) => n += 1,
                    // Gone meanwhile (replayed by another request): nothing to do.
                    Err(ReplayError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}
