//! Handoff: moving a partition's data from its owner to its next owner.
//!
//! The old owner, for each partition the map marks `moving` away from it:
//! 1. closes the partition's gate and waits for the requests inside to finish;
//! 2. stops the partition's entity actors (their state is already durable);
//! 3. streams the partition's records (events, snapshots and index entries, the orders'
//!    payments among them) in bounded chunks; the receiver writes each chunk and makes
//!    it durable before it acknowledges;
//! 4. proposes the epoch that names the new owner, and deletes its own copy once that
//!    epoch is committed.
//!
//! Nobody serves the partition from step 1 until the new epoch: requests are held and
//! retried by the router, then answered 503 with `Retry-After`. Activation stays lazy
//! on the new owner; only unsettled orders and live machines are resumed.

use super::node::Cluster;
use super::partition_of;
use super::wire::{HandoffChunk, Request, Response};
use crate::domain::EntityKind;
use crate::store::journal::entity_of_key;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOURNAL: &str = "journal";

/// A handoff under way, for `GET /v1/cluster`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    pub partition: u32,
    pub to: String,
    pub records: usize,
    pub sent: usize,
    #[serde(skip)]
    pub started: Option<Instant>,
    pub elapsed_ms: u64,
}

type Record = (String, Vec<u8>, Vec<u8>);

impl Cluster {
    pub(super) async fn handoff_loop(self) {
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(map) = self.map() else { continue };
            let me = self.name().to_owned();
            for (p, to) in &map.moving {
                if map.owners[*p as usize] != me {
                    continue;
                }
                let mut running = self.inner.handoffs.lock();
                if running.contains_key(p) {
                    continue;
                }
                if running.len() >= self.config().handoff_concurrency {
                    break;
                }
                running.insert(
                    *p,
                    Progress {
                        partition: *p,
                        to: to.clone(),
                        records: 0,
                        sent: 0,
                        started: Some(Instant::now()),
                        elapsed_ms: 0,
                    },
                );
                let me = self.clone();
                let (p, to) = (*p, to.clone());
                tokio::spawn(async move { me.hand_off(p, to).await });
            }
            // A drained member leaves the map once it owns nothing.
            let drained = map.members.get(&me).is_some_and(|m| m.leaving)
                && map.owned_by(&me).is_empty()
                && !map.moving.values().any(|to| *to == me);
            if drained && self.has_quorum() {
                match self.propose(|m| m.forget_left(&me)).await {
                    Ok(m) => tracing::info!(epoch = m.epoch, "left the cluster"),
                    Err(e) => tracing::warn!(error = %e, "leaving the cluster failed; retrying"),
                }
            }
        }
    }

    fn still_moving(&self, p: u32, to: &str) -> bool {
        self.map()
            .is_some_and(|m| m.moving.get(&p).map(String::as_str) == Some(to))
    }

    async fn hand_off(self, p: u32, to: String) {
        let started = Instant::now();
        let gate = &self.inner.gates[p as usize];
        gate.frozen.store(true, Ordering::Release);
        // Requests already past the gate finish (they are bounded by their deadlines).
        let wait_until = Instant::now() + Duration::from_secs(30);
        while gate.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let parts = self.partitions_len();
        if let Some(local) = self.inner.local.get() {
            let owned = Arc::new(move |k: EntityKind, id: &str| partition_of(k, id, parts) == p);
            local.drain(owned).await;
        }
        let records = match self.collect(p) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(partition = p, error = %e, "reading the partition failed; retrying later");
                self.end_handoff(p);
                return;
            }
        };
        let total = records.len();
        if let Some(pr) = self.inner.handoffs.lock().get_mut(&p) {
            pr.records = total;
        }
        let epoch = self.epoch();
        let chunks = chunk(&records, self.config().handoff_chunk_bytes);
        let timeout = Duration::from_millis(self.config().call_timeout_ms);
        for (seq, c) in chunks.into_iter().enumerate() {
            let n = c.len();
            loop {
                if !self.still_moving(p, &to) {
                    tracing::warn!(partition = p, "handoff cancelled by a newer map");
                    self.end_handoff(p);
                    return;
                }
                let req = Request::Handoff(HandoffChunk {
                    partition: p,
                    epoch,
                    seq: seq as u32,
                    records: c.clone(),
                });
                match self.call(&to, req, timeout).await {
                    Ok(Response::HandoffStored(Ok(()))) => break,
                    other => {
                        tracing::debug!(
                            partition = p,
                            ?other,
                            "handoff chunk not stored; retrying"
                        );
                        if let Some(m) = self.map() {
                            let _ = self
                                .call(
                                    &to,
                                    Request::Meta(super::paxos::MetaMsg::Commit {
                                        map: (*m).clone(),
                                    }),
                                    timeout,
                                )
                                .await;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            if let Some(pr) = self.inner.handoffs.lock().get_mut(&p) {
                pr.sent += n;
            }
        }
        // Name the new owner. Retried until committed, or until a newer map cancels it.
        loop {
            if !self.still_moving(p, &to) {
                break;
            }
            let target = to.clone();
            match self
                .propose(|m| {
                    if m.moving.get(&p) == Some(&target) {
                        m.complete(&[p])
                    } else {
                        Err(super::map::Refusal::Invalid("no longer moving".into()))
                    }
                })
                .await
            {
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(partition = p, error = %e, "completing the handoff; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let moved = self
            .map()
            .is_some_and(|m| m.owners[p as usize] == to && !m.moving.contains_key(&p));
        if moved {
            // Ours is now a stale copy: delete it.
            let _ = self.delete(&records);
            let secs = started.elapsed().as_secs_f64();
            metrics::histogram!("emporium_cluster_handoff_seconds").record(secs);
            metrics::counter!("emporium_cluster_handoff_records_total").increment(total as u64);
            tracing::info!(partition = p, to = %to, records = total, ms = started.elapsed().as_millis() as u64, "partition handed off");
        }
        self.end_handoff(p);
    }

    fn end_handoff(&self, p: u32) {
        self.inner.gates[p as usize]
            .frozen
            .store(false, Ordering::Release);
        self.inner.handoffs.lock().remove(&p);
    }

    pub(super) fn partitions_len(&self) -> u32 {
        self.map().map(|m| m.partitions()).unwrap_or(1)
    }

    /// Every record of partition `p` on this node.
    fn collect(&self, p: u32) -> Result<Vec<Record>, crate::store::StoreError> {
        let parts = self.partitions_len();
        let journal = self.inner.store.journal().raw().clone();
        let mut out = Vec::new();
        for item in journal.iter() {
            let (k, v) = item?;
            let Some((kind, id)) = entity_of_key(&k) else {
                continue;
            };
            // A payment's partition is its order's.
            if partition_of(kind, &id, parts) != p {
                continue;
            }
            out.push((JOURNAL.to_owned(), k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn delete(&self, records: &[Record]) -> Result<(), crate::store::StoreError> {
        for (tree, key, _) in records {
            self.inner.store.tree(tree)?.remove(key)?;
        }
        Ok(())
    }

    /// Stores a chunk of a partition moving here, durably, before acknowledging it.
    pub(super) async fn receive_chunk(&self, c: HandoffChunk) -> Result<(), String> {
        let map = self.map().ok_or("this node has no map yet")?;
        if map.moving.get(&c.partition).map(String::as_str) != Some(self.name()) {
            return Err(format!(
                "partition {} is not moving here at epoch {}",
                c.partition, map.epoch
            ));
        }
        if c.seq == 0 {
            // Whatever this node still holds of the partition is older: clear it.
            let stale = self.collect(c.partition).map_err(|e| e.to_string())?;
            self.delete(&stale).map_err(|e| e.to_string())?;
        }
        for (tree, key, value) in &c.records {
            if tree != JOURNAL {
                return Err(format!("unknown tree {tree}"));
            }
            self.inner
                .store
                .tree(tree)
                .and_then(|t| Ok(t.insert(key, value.as_slice())?))
                .map_err(|e| e.to_string())?;
        }
        self.inner.store.durable().await.map_err(|e| e.to_string())
    }

    /// Handoffs under way on this node.
    pub fn handoffs(&self) -> Vec<Progress> {
        self.inner
            .handoffs
            .lock()
            .values()
            .cloned()
            .map(|mut p| {
                p.elapsed_ms = p
                    .started
                    .map(|s| s.elapsed().as_millis() as u64)
                    .unwrap_or(0);
                p
            })
            .collect()
    }
}

/// Splits records into chunks of at most `max` bytes (one record at least).
fn chunk(records: &[Record], max: usize) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = vec![Vec::new()];
    let mut size = 0;
    for r in records {
        let n = r.1.len() + r.2.len() + 16;
        if size + n > max && !out.last().is_some_and(Vec::is_empty) {
            out.push(Vec::new());
            size = 0;
        }
        size += n;
        out.last_mut().expect("never empty").push(r.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bounded_and_keep_order() {
        let recs: Vec<Record> = (0..100u8)
            .map(|i| ("journal".to_owned(), vec![i], vec![0; 100]))
            .collect();
        let c = chunk(&recs, 1024);
        assert!(c.len() > 1);
        assert!(c
            .iter()
            .all(|x| x.iter().map(|r| r.1.len() + r.2.len() + 16).sum::<usize>() <= 1024));
        let flat: Vec<u8> = c.into_iter().flatten().map(|r| r.1[0]).collect();
        assert_eq!(flat, (0..100).collect::<Vec<_>>());
        // An empty partition still sends one (empty) chunk, which clears the receiver.
        assert_eq!(chunk(&[], 1024).len(), 1);
    }
}
