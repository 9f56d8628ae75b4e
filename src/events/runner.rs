//! The projection runner: each projection reads every partition log this node owns from
//! its stored offset, derives the public events of each entry ([`super::source`]), hands
//! them to its handler, and stores the new offset with the records the handler keeps,
//! in one durable write ([`crate::store::Partition::advance`]).
//!
//! Guarantees:
//! - **At least once.** The offset moves only after the handler took every event up to
//!   it; a crash before the write replays those entries. A handler that keys what it
//!   does on the event id gets effectively once. A projection's own records are written
//!   in the same batch as its offset, so they are exactly once.
//! - **In order per partition.** Entries of one partition are handled in log order; no
//!   order holds across partitions.
//! - **Offsets move with the partition.** The offset and the records are keys of the
//!   partition's range, so a handoff streams them with the rest. A step holds the
//!   partition's gate (`Cluster::read_guard`) from reading the offset to writing the
//!   new one, so a handoff waits for it and no step writes a partition that has left.
//! - **Bounded.** A step reads at most `projections.batch` entries; a failing handler is
//!   retried with a doubling wait up to `projections.retry_max_ms`, never in a loop; a
//!   storage error stops the projection (fail-stop), as the journal stops writes.
//!
//! One task runs every projection in turn, so a reset (requested by the admin route) is
//! applied by that task between steps and never races a step.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::handler::{EventHandler, HandlerError};
use super::source::Source;
use crate::app::config::ProjectionsConfig;
use crate::clock::now_ms;
use crate::store::layout::ProjectionOffset;
use crate::store::{Journal, StoreError};

/// Which partitions this node may project now, and the guard that keeps one here while
/// a step runs.
pub trait Ownership: Send + Sync + 'static {
    /// The partitions this node owns now.
    fn local(&self) -> Vec<u32>;
    /// Holds partition `p` here for one step: `None` if it is not owned, moving or
    /// fenced (the step is skipped and tried again later).
    fn hold(&self, p: u32) -> Option<Box<dyn Send>>;
}

/// A node that runs alone owns every partition, and nothing moves them.
pub struct Alone(pub u32);

impl Ownership for Alone {
    fn local(&self) -> Vec<u32> {
        (0..self.0).collect()
    }
    fn hold(&self, _p: u32) -> Option<Box<dyn Send>> {
        Some(Box::new(()))
    }
}

impl Ownership for crate::cluster::Cluster {
    fn local(&self) -> Vec<u32> {
        let Some(map) = self.map() else {
            return Vec::new();
        };
        (0..map.partitions())
            .filter(|p| map.owners[*p as usize] == self.name())
            .collect()
    }
    fn hold(&self, p: u32) -> Option<Box<dyn Send>> {
        self.read_guard(p).map(|g| Box::new(g) as Box<dyn Send>)
    }
}

/// What a projection is doing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum State {
    Running,
    /// A handler failed; the partition is retried after a wait.
    Retrying {
        error: String,
    },
    /// A reset was asked for and has not been applied yet.
    Resetting,
    /// The store refused a write: the projection stopped (fail-stop).
    Failed {
        error: String,
    },
}

/// One partition as a projection sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartitionLag {
    pub partition: u32,
    /// Every log entry up to this seq is handled.
    pub offset: u64,
    /// The last entry of the partition's log.
    pub last_seq: u64,
    /// How long the oldest unhandled entry has waited (0 when none waits).
    pub lag_ms: u64,
}

/// A projection's status, for `GET /v1/admin/projections`: one node's, or merged from
/// every node's ([`merge_status`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Status {
    pub name: String,
    pub state: State,
    /// Public events handled since this node started.
    pub events: u64,
    pub partitions: Vec<PartitionLag>,
}

/// Every node's statuses as one per projection: the partitions of all, the events
/// handled by all, and the most telling state (failed, then retrying, then resetting).
pub fn merge_status(parts: Vec<Vec<Status>>) -> Vec<Status> {
    let rank = |s: &State| match s {
        State::Running => 0,
        State::Resetting => 1,
        State::Retrying { .. } => 2,
        State::Failed { .. } => 3,
    };
    // In the order the nodes run them (every node runs the same projections).
    let mut out: Vec<Status> = Vec::new();
    for s in parts.into_iter().flatten() {
        match out.iter_mut().find(|m| m.name == s.name) {
            None => out.push(s),
            Some(m) => {
                m.events = m.events.saturating_add(s.events);
                if rank(&s.state) > rank(&m.state) {
                    m.state = s.state;
                }
                m.partitions.extend(s.partitions);
            }
        }
    }
    for s in &mut out {
        s.partitions.sort_by_key(|l| l.partition);
        s.partitions.dedup_by_key(|l| l.partition);
    }
    out
}

/// Why a reset was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResetError {
    #[error("no projection named {0}")]
    Unknown(String),
}

struct Entry {
    handler: Arc<dyn EventHandler>,
    state: State,
    events: u64,
    reset: bool,
    /// Per partition: the wait before the next try after a failure, and when it ends.
    backoff: BTreeMap<u32, (Duration, Instant)>,
}

/// The projections of this node and their runner.
pub struct Projections {
    journal: Journal,
    owner: Arc<dyn Ownership>,
    config: ProjectionsConfig,
    /// `inventory.low_stock_threshold`, for the sources' `stock.low`.
    low_stock: i64,
    entries: Mutex<Vec<Entry>>,
}

impl Projections {
    pub fn new(
        journal: Journal,
        owner: Arc<dyn Ownership>,
        config: ProjectionsConfig,
        low_stock: i64,
        handlers: Vec<Arc<dyn EventHandler>>,
    ) -> Arc<Self> {
        let entries = handlers
            .into_iter()
            .map(|handler| Entry {
                handler,
                state: State::Running,
                events: 0,
                reset: false,
                backoff: BTreeMap::new(),
            })
            .collect();
        Arc::new(Self {
            journal,
            owner,
            config,
            low_stock,
            entries: Mutex::new(entries),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the runner's task; it ends when the returned handle is aborted or the
    /// runtime stops.
    pub fn start(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut sources: Vec<Source> = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(this.config.poll_ms));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let n = this.lock().len();
                let low_stock = this.low_stock;
                sources.resize_with(n, || Source::new(low_stock));
                for (i, source) in sources.iter_mut().enumerate() {
                    this.run_one(i, source).await;
                }
            }
        })
    }

    /// Asks for projection `name` to be rebuilt from the start of every local log.
    pub fn reset(&self, name: &str) -> Result<(), ResetError> {
        let mut entries = self.lock();
        let e = entries
            .iter_mut()
            .find(|e| e.handler.name() == name)
            .ok_or_else(|| ResetError::Unknown(name.to_owned()))?;
        e.reset = true;
        if !matches!(e.state, State::Failed { .. }) {
            e.state = State::Resetting;
        }
        Ok(())
    }

    /// A page of the public event feed of the partitions this node owns
    /// ([`super::feed::page`]).
    pub fn feed(
        &self,
        cursor: &super::feed::Cursor,
        types: &[super::EventType],
        limit: usize,
    ) -> Result<super::feed::Page, StoreError> {
        super::feed::page(&self.journal, &self.owner.local(), cursor, types, limit)
    }

    /// Every projection with its offsets and lag in the partitions this node owns.
    pub fn status(&self) -> Result<Vec<Status>, StoreError> {
        self.status_in(&self.owner.local())
    }

    /// Every projection with its offsets and lag in `partitions` (those of them this
    /// node owns: one owner's part of the cluster-wide status), and this node's state.
    pub fn status_in(&self, partitions: &[u32]) -> Result<Vec<Status>, StoreError> {
        let names: Vec<(&'static str, State, u64)> = self
            .lock()
            .iter()
            .map(|e| (e.handler.name(), e.state.clone(), e.events))
            .collect();
        let now = now_ms();
        let local = partitions;
        let mut out = Vec::with_capacity(names.len());
        for (name, state, events) in names {
            let mut partitions = Vec::with_capacity(local.len());
            for &p in local {
                let part = self.journal.partition(p);
                let offset = part.offset(name)?.seq;
                let last_seq = part.last_seq()?;
                let lag_ms = match part.read_from(offset + 1, 1)?.first() {
                    Some((_, entry)) => now.saturating_sub(entry.at),
                    None => 0,
                };
                partitions.push(PartitionLag {
                    partition: p,
                    offset,
                    last_seq,
                    lag_ms,
                });
            }
            out.push(Status {
                name: name.to_owned(),
                state,
                events,
                partitions,
            });
        }
        Ok(out)
    }

    /// One pass of projection `i` over the local partitions.
    async fn run_one(&self, i: usize, source: &mut Source) {
        let (handler, reset) = {
            let mut entries = self.lock();
            let e = &mut entries[i];
            if matches!(e.state, State::Failed { .. }) {
                return;
            }
            (e.handler.clone(), std::mem::take(&mut e.reset))
        };
        if reset {
            *source = Source::new(self.low_stock);
            if let Err(e) = self.reset_local(handler.name()).await {
                self.fail(i, e.to_string());
                return;
            }
            self.lock()[i].state = State::Running;
        }
        let mut lag = 0u64;
        for p in self.owner.local() {
            let waiting = self.lock()[i]
                .backoff
                .get(&p)
                .is_some_and(|(_, until)| Instant::now() < *until);
            if waiting {
                continue;
            }
            match self.step(handler.as_ref(), source, p).await {
                Ok((n, left)) => {
                    lag += left;
                    let mut entries = self.lock();
                    let e = &mut entries[i];
                    e.events += n;
                    e.backoff.remove(&p);
                    if matches!(e.state, State::Retrying { .. }) && e.backoff.is_empty() {
                        e.state = State::Running;
                    }
                }
                Err(StepError::Handler(HandlerError::Storage(err))) => {
                    self.fail(i, err);
                    return;
                }
                // What came before the event is stored; the rest waits for the next pass.
                Err(StepError::Handler(HandlerError::NotYet)) => {}
                Err(StepError::Handler(err)) => self.back_off(i, p, err),
                Err(StepError::Store(err)) => {
                    self.fail(i, err.to_string());
                    return;
                }
            }
        }
        // Entries left after this pass (partitions waiting for a retry count 0 here).
        metrics::gauge!("emporium_projection_lag", "projection" => handler.name()).set(lag as f64);
    }

    /// Handles the next entries of partition `p` for `handler`: how many public events,
    /// and how many log entries are left after them.
    async fn step(
        &self,
        handler: &dyn EventHandler,
        source: &mut Source,
        p: u32,
    ) -> Result<(u64, u64), StepError> {
        let Some(_held) = self.owner.hold(p) else {
            return Ok((0, 0));
        };
        let name = handler.name();
        let part = self.journal.partition(p);
        let offset = part.offset(name)?;
        let last = part.last_seq()?;
        if last <= offset.seq {
            return Ok((0, 0));
        }
        let mut done = offset.seq;
        let mut records = Vec::new();
        let mut handled = 0u64;
        let mut failure = None;
        'entries: for (pseq, entry) in part.read_from(offset.seq + 1, self.config.batch)? {
            let events = source.derive(&self.journal, p, pseq, &entry)?;
            // An entry's records go in only once every event of it was taken.
            let mut of_entry = Vec::new();
            for ev in &events {
                match handler.handle(ev).await {
                    Ok(r) => of_entry.extend(r),
                    Err(e) => {
                        failure = Some(e);
                        break 'entries;
                    }
                }
            }
            records.extend(of_entry);
            handled += events.len() as u64;
            done = pseq;
        }
        if done > offset.seq {
            let next = ProjectionOffset {
                seq: done,
                at: now_ms(),
            };
            part.advance(name, next, records).await?;
            metrics::counter!("emporium_projection_events_total", "projection" => name)
                .increment(handled);
        }
        match failure {
            // The entries before the failing one are stored; the rest wait for the retry.
            Some(e) => Err(StepError::Handler(e)),
            None => Ok((handled, last.saturating_sub(done))),
        }
    }

    /// Forgets the projection's records and offsets in every local partition.
    async fn reset_local(&self, name: &str) -> Result<(), StoreError> {
        for p in self.owner.local() {
            // A partition that is moving is reset by its next owner's own reset, if asked;
            // here it is skipped rather than written after it left.
            let Some(_held) = self.owner.hold(p) else {
                continue;
            };
            self.journal.partition(p).reset(name).await?;
        }
        tracing::info!(
            projection = name,
            "projection reset; rebuilding from the start"
        );
        Ok(())
    }

    fn back_off(&self, i: usize, p: u32, err: HandlerError) {
        let mut entries = self.lock();
        let e = &mut entries[i];
        let first = Duration::from_millis(self.config.poll_ms);
        let max = Duration::from_millis(self.config.retry_max_ms);
        let wait = e.backoff.get(&p).map_or(first, |(w, _)| (*w * 2).min(max));
        e.backoff.insert(p, (wait, Instant::now() + wait));
        tracing::warn!(projection = e.handler.name(), partition = p, error = %err, retry_in_ms = wait.as_millis() as u64, "projection handler failed; retrying");
        e.state = State::Retrying {
            error: err.to_string(),
        };
    }

    fn fail(&self, i: usize, err: String) {
        let mut entries = self.lock();
        let e = &mut entries[i];
        tracing::error!(projection = e.handler.name(), error = %err, "projection stopped: the store refused a write");
        e.state = State::Failed { error: err };
    }
}

enum StepError {
    Handler(HandlerError),
    Store(StoreError),
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
