//! Handoff: moving a partition's data from its owner to its next owner.
//!
//! The old owner, for each partition the map marks `moving` away from it:
//! 1. closes the partition's gate and waits for the requests inside to finish;
//! 2. stops the partition's entity actors (their state is already durable);
//! 3. streams the partition's storage ([`crate::store::Partition::stream`]: one key
//!    range holding its events, snapshots, index entries and log) in bounded chunks; the
//!    receiver ingests each chunk ([`crate::store::Partition::ingest`], durable before
//!    it acknowledges);
//! 4. proposes the epoch that names the new owner, and drops its own copy
//!    ([`crate::store::Partition::drop`]) once that epoch is committed.
//!
//! `handoff_concurrency` bounds the partitions in step 3 (streaming). A partition whose
//! data is stored on its new owner waits for its epoch in the *ready* set and frees its
//! slot, so the next partition streams while epochs are proposed. One proposal completes
//! every ready partition (`ClusterMap::complete` of all of them): a handoff that finds
//! its partition already completed by another's proposal goes straight to its drop.
//! Each chunk is encoded once; a retry resends the same bytes (ingest is idempotent:
//! the same keys with the same values).
//!
//! Nobody serves the partition from step 1 until the new epoch: requests are held and
//! retried by the router, then answered 503 with `Retry-After`. Activation stays lazy
//! on the new owner; only unsettled orders and live machines are resumed.

use super::map::{ClusterMap, Refusal};
use super::node::Cluster;
use super::wire::{self, HandoffChunk, Request, Response};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A handoff under way, for `GET /v1/cluster`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Progress {
    pub partition: u32,
    pub to: String,
    /// Records sent so far (the total once the last chunk is stored).
    pub records: usize,
    pub sent: usize,
    /// True while its chunks are being sent; false while it waits for its epoch.
    pub streaming: bool,
    #[serde(skip)]
    pub started: Option<Instant>,
    pub elapsed_ms: u64,
}

/// The stale copies this node still holds of partitions it handed off. A copy is
/// dropped only once this node has no handoff of its own in flight (a drained node: once
/// it left the map, and at the latest by its graceful shutdown): a drop rewrites the
/// partition's whole range through the writer thread, and while handoffs run that queue
/// also carries the acceptor's fsyncs of their epochs, which the drops would delay
/// (measured in `docs/BENCHMARKS.md`). Not durable: after a crash a copy stays until the
/// partition moves here again, when the first chunk clears it.
#[derive(Debug, Default)]
pub struct Drops {
    pub pending: std::collections::BTreeSet<u32>,
    /// The partitions being dropped now; a chunk for one is refused (and re-sent).
    pub dropping: std::collections::BTreeSet<u32>,
}

impl Cluster {
    /// Drops the pending stale copies while no handoff of this node runs or waits,
    /// skipping (and forgetting) any partition this node owns again or receives. Run by
    /// the handoff loop, and once more by a graceful shutdown (`App::shutdown`).
    pub async fn drop_stale(&self) {
        loop {
            let Some(map) = self.map() else { return };
            let me = self.name();
            let sending = !self.inner.handoffs.lock().is_empty()
                || map.moving.keys().any(|p| map.owners[*p as usize] == me);
            if sending {
                return;
            }
            let next = {
                let mut d = self.inner.drops.lock();
                let Some(p) = d.pending.pop_first() else {
                    return;
                };
                let ours =
                    map.owners[p as usize] == me || map.moving.get(&p).is_some_and(|to| to == me);
                if ours {
                    continue;
                }
                d.dropping.insert(p);
                p
            };
            let started = Instant::now();
            let result = self.inner.store.journal().partition(next).drop().await;
            self.inner.drops.lock().dropping.remove(&next);
            match result {
                Ok(n) => tracing::info!(
                    partition = next,
                    records = n,
                    ms = started.elapsed().as_millis() as u64,
                    "stale copy of a handed-off partition dropped"
                ),
                Err(e) => {
                    tracing::error!(partition = next, error = %e, "dropping the handed-off partition failed")
                }
            }
        }
    }

    pub(super) async fn handoff_loop(self) {
        let mut ticker = tokio::time::interval(Duration::from_millis(100));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A handoff that stops streaming wakes the loop, so its slot is reused at once.
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.inner.handoff_wake.notified() => {}
            }
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
                if running.values().filter(|r| r.streaming).count()
                    >= self.config().handoff_concurrency
                {
                    break;
                }
                running.insert(
                    *p,
                    Progress {
                        partition: *p,
                        to: to.clone(),
                        records: 0,
                        sent: 0,
                        streaming: true,
                        started: Some(Instant::now()),
                        elapsed_ms: 0,
                    },
                );
                let me = self.clone();
                let (p, to) = (*p, to.clone());
                tokio::spawn(async move { me.hand_off(p, to).await });
            }
            // A drained member leaves the map once it owns nothing; its stale copies are
            // dropped after (below, and by a graceful shutdown).
            let drained = map.members.get(&me).is_some_and(|m| m.leaving)
                && map.owned_by(&me).is_empty()
                && !map.moving.values().any(|to| *to == me);
            if drained && self.has_quorum() {
                match self.propose(|m| m.forget_left(&me)).await {
                    Ok(m) => tracing::info!(epoch = m.epoch, "left the cluster"),
                    Err(e) => tracing::warn!(error = %e, "leaving the cluster failed; retrying"),
                }
            }
            self.drop_stale().await;
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
        let frozen_at = Instant::now();
        if let Some(local) = self.inner.local.get() {
            local.drain(p).await;
        }
        let drained_at = Instant::now();
        let journal = self.inner.store.journal().clone();
        // Counted while streaming: no separate scan of the range.
        let mut total = 0usize;
        let epoch = self.epoch();
        let max_bytes = self.config().handoff_chunk_bytes;
        let timeout = Duration::from_millis(self.config().call_timeout_ms);
        // Chunk by chunk from a cursor: the partition is frozen, so its range is stable.
        let mut cursor: Option<Vec<u8>> = None;
        let mut seq = 0u32;
        loop {
            let records = match journal.partition(p).stream(cursor.as_deref(), max_bytes) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "reading the partition failed; retrying later");
                    self.end_handoff(p);
                    return;
                }
            };
            // An empty partition still sends one (empty) chunk, which clears the receiver.
            if records.is_empty() && seq > 0 {
                break;
            }
            let n = records.len();
            total += n;
            let last = records.last().map(|(k, _)| k.clone());
            // Encoded once; every attempt sends these bytes.
            let frame = wire::encode(Request::Handoff(HandoffChunk {
                partition: p,
                epoch,
                seq,
                records,
            }));
            if !self.send_chunk(&to, p, frame, timeout).await {
                tracing::warn!(partition = p, "handoff cancelled by a newer map");
                self.end_handoff(p);
                return;
            }
            if let Some(pr) = self.inner.handoffs.lock().get_mut(&p) {
                pr.sent += n;
            }
            match last {
                Some(k) => cursor = Some(k),
                None => break,
            }
            seq += 1;
        }
        let streamed_at = Instant::now();
        // Stored on the new owner: wait for the epoch in the ready set, and free the slot.
        self.inner.handoff_ready.lock().insert(p, to.clone());
        if let Some(pr) = self.inner.handoffs.lock().get_mut(&p) {
            pr.records = total;
            pr.streaming = false;
        }
        self.inner.handoff_wake.notify_one();
        // Name the new owner, with every other ready partition. Retried until committed,
        // or until a newer map cancels it, or another ready handoff's epoch completed it.
        loop {
            if !self.still_moving(p, &to) {
                break;
            }
            match self.propose(|m| self.complete_ready(m, p)).await {
                Ok(_) => break,
                Err(_) if !self.still_moving(p, &to) => break,
                Err(e) => {
                    tracing::debug!(partition = p, error = %e, "completing the handoff; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let moved = self
            .map()
            .is_some_and(|m| m.owners[p as usize] == to && !m.moving.contains_key(&p));
        let committed_at = Instant::now();
        if moved {
            // Ours is now a stale copy: dropped once this node sends nothing (`Drops`).
            self.inner.drops.lock().pending.insert(p);
            let secs = started.elapsed().as_secs_f64();
            metrics::histogram!("emporium_cluster_handoff_seconds").record(secs);
            metrics::counter!("emporium_cluster_handoff_records_total").increment(total as u64);
            let ms = |a: Instant, b: Instant| b.duration_since(a).as_millis() as u64;
            let now = Instant::now();
            tracing::info!(
                partition = p,
                to = %to,
                records = total,
                ms = ms(started, now),
                freeze_ms = ms(started, frozen_at),
                drain_ms = ms(frozen_at, drained_at),
                stream_ms = ms(drained_at, streamed_at),
                epoch_ms = ms(streamed_at, committed_at),
                "partition handed off"
            );
        }
        self.end_handoff(p);
    }

    /// The change that completes every ready partition still moving to the same node as
    /// it was streamed to, `p` among them.
    fn complete_ready(&self, m: &ClusterMap, p: u32) -> Result<ClusterMap, Refusal> {
        let parts = ready_parts(m, &self.inner.handoff_ready.lock());
        if !parts.contains(&p) {
            return Err(Refusal::Invalid(format!(
                "partition {p} is no longer moving"
            )));
        }
        if parts.len() > 1 {
            tracing::debug!(partitions = ?parts, "one epoch completes several handoffs");
        }
        m.complete(&parts)
    }

    fn end_handoff(&self, p: u32) {
        self.inner.handoff_ready.lock().remove(&p);
        self.inner.gates[p as usize]
            .frozen
            .store(false, Ordering::Release);
        self.inner.handoffs.lock().remove(&p);
        self.inner.handoff_wake.notify_one();
    }

    pub(super) fn partitions_len(&self) -> u32 {
        self.map().map(|m| m.partitions()).unwrap_or(1)
    }

    /// Sends one encoded chunk until the new owner stores it (the same bytes on every
    /// attempt); false if a newer map cancelled the handoff meanwhile.
    async fn send_chunk(
        &self,
        to: &str,
        partition: u32,
        frame: Vec<u8>,
        timeout: Duration,
    ) -> bool {
        loop {
            if !self.still_moving(partition, to) {
                return false;
            }
            match self.call_encoded(to, frame.clone(), timeout).await {
                Ok(Response::HandoffStored(Ok(()))) => return true,
                other => {
                    tracing::debug!(partition, ?other, "handoff chunk not stored; retrying");
                    if let Some(m) = self.map() {
                        let _ = self
                            .call(
                                to,
                                Request::Meta(super::paxos::MetaMsg::Commit { map: (*m).clone() }),
                                timeout,
                            )
                            .await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
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
        {
            let mut d = self.inner.drops.lock();
            if d.dropping.contains(&c.partition) {
                return Err(format!(
                    "partition {} is being dropped here; retry",
                    c.partition
                ));
            }
            // What is held here is cleared by the first chunk below, not by a late drop.
            d.pending.remove(&c.partition);
        }
        let journal = self.inner.store.journal();
        let partition = journal.partition(c.partition);
        if c.seq == 0 {
            // Whatever this node still holds of the partition is older: clear it.
            partition.drop().await.map_err(|e| e.to_string())?;
        }
        partition.ingest(c.records).await.map_err(|e| e.to_string())
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

/// The ready partitions (streamed, waiting for their epoch) that `m` still moves to the
/// node they were streamed to: the ones one epoch may complete.
pub(super) fn ready_parts(m: &ClusterMap, ready: &BTreeMap<u32, String>) -> Vec<u32> {
    ready
        .iter()
        .filter(|(p, to)| m.moving.get(p) == Some(to))
        .map(|(p, _)| *p)
        .collect()
}

#[cfg(test)]
#[path = "handoff_tests.rs"]
mod tests;
