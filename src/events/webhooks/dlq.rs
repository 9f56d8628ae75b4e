//! Reading the delivery records of the partitions this node owns (an endpoint's
//! deliveries in every state, the dead-letter queue: each owner's part of the router's
//! cluster-wide listings, [`dead_in`] and [`of_endpoint_in`]) and replaying dead ones: a replay
//! moves the record back to the queue, due at once with its attempt count reset and its
//! history kept, in one durable write under the partition's gate.

use std::sync::Arc;

use uuid::Uuid;

use super::{endpoint_of, parse_record_id, record_id, Delivery, DeliveryState, DLQ, LOG, QUEUE};
use crate::events::runner::Ownership;
use crate::store::{codec, Journal, StoreError};

/// A record with its public id.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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

/// A listed record as a listing row carries it ([`crate::router::listing::RowData::Record`]).
pub fn encode_listed(l: &Listed) -> Vec<u8> {
    codec::encode(l)
}

/// A listing row's record.
pub fn decode_listed(b: &[u8]) -> Option<Listed> {
    codec::decode(b).ok()
}

/// A dead record's place in the cluster-wide DLQ listing: partition (8 hex digits),
/// then the hex key, so string order is partition order, then key order.
pub fn dead_key(p: u32, key: &[u8]) -> String {
    format!("{p:08x}.{}", hex::encode(key))
}

/// Whether `s` is a DLQ listing cursor ([`dead_key`]).
pub fn is_dead_key(s: &str) -> bool {
    s.split_once('.').is_some_and(|(p, k)| {
        p.len() == 8
            && u32::from_str_radix(p, 16).is_ok()
            && hex::decode(k).is_ok_and(|k| k.len() == 25)
    })
}

/// One owner's part of the DLQ listing: the first `limit` dead records of `partitions`
/// (of `endpoint`, or all) after listing key `after`, with their keys.
pub fn dead_in(
    journal: &Journal,
    partitions: &[u32],
    endpoint: Option<Uuid>,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Listed)>, StoreError> {
    let mut ps = partitions.to_vec();
    ps.sort_unstable();
    let mut out = Vec::new();
    for p in ps {
        let mut start = endpoint.map(|e| e.as_bytes().to_vec());
        if let Some(a) = after {
            let here = format!("{p:08x}");
            match a.get(..8).map(|ap| ap.cmp(here.as_str())) {
                // The cursor is in a later partition: this one was read.
                Some(std::cmp::Ordering::Greater) => continue,
                // In this one: from its key on (the key itself is skipped below).
                Some(std::cmp::Ordering::Equal) => {
                    start = a.get(9..).and_then(|k| hex::decode(k).ok());
                }
                _ => {}
            }
        }
        let rows = journal
            .partition(p)
            .projected(DLQ, start.as_deref(), limit + 1)?;
        for l in decoded(p, rows, endpoint) {
            let Some((_, k)) = parse_record_id(&l.id) else {
                continue;
            };
            let key = dead_key(p, &k);
            let kept = endpoint.is_none_or(|e| l.delivery.endpoint == e)
                && after.is_none_or(|a| key.as_str() > a);
            if kept {
                out.push((key, l));
            }
        }
        if out.len() > limit {
            break;
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// One owner's part of an endpoint's deliveries: up to `limit` of `partitions` (queued,
/// delivered and dead), the most recently attempted first, keyed so that string order
/// is that order.
pub fn of_endpoint_in(
    journal: &Journal,
    partitions: &[u32],
    endpoint: Uuid,
    limit: usize,
) -> Result<Vec<(String, Listed)>, StoreError> {
    let mut out = Vec::new();
    for p in partitions {
        let part = journal.partition(*p);
        for family in [QUEUE, LOG, DLQ] {
            let rows = part.projected(family, Some(endpoint.as_bytes()), limit)?;
            for l in decoded(*p, rows, Some(endpoint)) {
                let last = l.delivery.attempts.last().map_or(u64::MAX, |a| a.at);
                out.push((format!("{:016x}{}", u64::MAX - last, l.id), l));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.truncate(limit);
    Ok(out)
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

    /// Replays every dead record of `endpoint` here, once each; how many. The pass walks
    /// the DLQ forward with a cursor: a replayed record that fails and is dead again
    /// meanwhile is back at its own key, behind the cursor, so it is not replayed twice
    /// (restarting from the start each page once counted, and resent, such records
    /// again, without end against a target that refuses at once).
    pub async fn replay_endpoint(&self, endpoint: Uuid) -> Result<usize, ReplayError> {
        let mut n = 0;
        let mut after: Option<String> = None;
        loop {
            let (page, next) = self.dead(after.as_deref(), Some(endpoint), 256)?;
            for l in &page {
                match self.replay(&l.id).await {
                    Ok(()) => n += 1,
                    // Gone meanwhile (replayed by another request): nothing to do.
                    Err(ReplayError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match next {
                Some(c) => after = Some(c),
                None => return Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, StoreOptions};

    fn dead(endpoint: Uuid, n: u64) -> (Vec<u8>, Vec<u8>) {
        let mut k = endpoint.as_bytes().to_vec();
        k.extend_from_slice(&n.to_be_bytes());
        k.push(0);
        let d = Delivery {
            endpoint,
            event_id: format!("ev{n}"),
            event_type: "order.paid".into(),
            body: "{}".into(),
            state: DeliveryState::Dead,
            next_at: 0,
            tries: 1,
            attempts: Vec::new(),
        };
        (k, codec::encode(&d))
    }

    #[tokio::test]
    async fn the_dead_letters_page_across_partitions_once_each_and_by_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            &StoreOptions {
                cache_capacity_bytes: 8 << 20,
                group_commit_max_batch: 64,
                group_commit_queue: 64,
                partitions: 32,
            },
        )
        .unwrap();
        let j = store.journal().clone();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        // Partitions 3, 10 (two of each endpoint) and 17 (endpoint a only).
        for (p, recs) in [
            (3u32, vec![dead(a, 1), dead(b, 2)]),
            (10, vec![dead(a, 3), dead(a, 4), dead(b, 5), dead(b, 6)]),
            (17, vec![dead(a, 7)]),
        ] {
            let ops = recs.into_iter().map(|(k, v)| (DLQ, k, Some(v))).collect();
            j.partition(p).write_projected(ops).await.unwrap();
        }
        let every: Vec<u32> = (0..32).collect();
        // Pages of 2, as the router merges them: every record once, in partition order.
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        for _ in 0..10 {
            let page = dead_in(&j, &every, None, after.as_deref(), 2).unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|(k, _)| k.clone());
            seen.extend(page.into_iter().map(|(k, l)| (k, l.delivery.event_id)));
        }
        let events: Vec<&str> = seen.iter().map(|(_, e)| e.as_str()).collect();
        assert_eq!(events, ["ev1", "ev2", "ev3", "ev4", "ev5", "ev6", "ev7"]);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "keys ascend");
        assert!(seen.iter().all(|(k, _)| is_dead_key(k)), "{seen:?}");
        // One endpoint's, from a cursor inside partition 10.
        let only_a = dead_in(&j, &every, Some(a), None, 10).unwrap();
        let events: Vec<String> = only_a
            .iter()
            .map(|(_, l)| l.delivery.event_id.clone())
            .collect();
        assert_eq!(events, ["ev1", "ev3", "ev4", "ev7"]);
        let after_3 = dead_in(&j, &every, Some(a), Some(&only_a[1].0), 10).unwrap();
        let events: Vec<String> = after_3
            .iter()
            .map(|(_, l)| l.delivery.event_id.clone())
            .collect();
        assert_eq!(events, ["ev4", "ev7"]);
        // An owner asked for some partitions reads only those.
        let part: Vec<String> = dead_in(&j, &[10], None, None, 10)
            .unwrap()
            .into_iter()
            .map(|(_, l)| l.delivery.event_id)
            .collect();
        assert_eq!(part, ["ev3", "ev4", "ev5", "ev6"]);
    }
}
