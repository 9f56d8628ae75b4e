//! This node's view of the cluster: the committed map (durable in the `cluster` tree),
//! the Paxos acceptor, member health and quorum, and the per-partition gates the router
//! consults before it lets a request reach an entity.
//!
//! The gate of a partition this node owns is closed (the request is held, then answered
//! 503 with `Retry-After`) while the partition is in handoff, while it is fenced after a
//! forced reassignment, and, for writes, while this node cannot hear a majority of the
//! members at its epoch (`no_quorum`). Requests pass the gate by holding a guard; a
//! handoff closes the gate and waits for the guards to drop before it moves anything.

use super::config::ClusterConfig;
use super::detector::{Detector, Health};
use super::map::{ClusterMap, MemberInfo};
use super::partition_of;
use super::paxos::{Acceptor, MetaMsg, MetaReply};
use super::transport::FaultSwitch;
use crate::domain::EntityKind;
use crate::router::UnavailableKind;
use crate::store::Store;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const ACCEPTOR_KEY: &[u8] = b"acceptor";
/// The most partitions a cluster may have (`cluster.partitions` is checked against it).
pub const MAX_PARTITIONS: u32 = 4096;

/// What the local side of the application does for the cluster: run forwarded entity
/// requests, stop a partition's actors, and react to partitions gained or lost.
pub trait Local: Send + Sync + 'static {
    fn entity(
        &self,
        kind: EntityKind,
        id: String,
        op: super::wire::EntityOp,
        timeout: Duration,
    ) -> futures::future::BoxFuture<'static, Result<Vec<u8>, super::wire::RemoteError>>;
    /// Stops every live entity actor of partition `partition`, and waits.
    fn drain(&self, partition: u32) -> futures::future::BoxFuture<'static, ()>;
    /// Partitions now owned here (resume their sagas and views) or no longer (evict).
    fn partitions_changed(&self, gained: Vec<u32>, lost: Vec<u32>);
    /// Reads a listing or a journal over those of `partitions` this node owns.
    fn partition_read(
        &self,
        read: crate::router::listing::PartitionRead,
        partitions: Vec<u32>,
        timeout: Duration,
    ) -> futures::future::BoxFuture<
        'static,
        Result<crate::router::listing::PartitionReply, crate::router::listing::ReadFailure>,
    >;
    /// Replays dead letters of the partitions this node owns.
    fn replay(
        &self,
        op: crate::router::replay::ReplayOp,
        timeout: Duration,
    ) -> futures::future::BoxFuture<'static, Result<u32, crate::router::replay::ReplayFailure>>;
    /// Hands a command to a machine session on this node, if it has one.
    fn push_machine(
        &self,
        machine_id: &str,
        command_id: uuid::Uuid,
        command: &crate::domain::machine::MachineCommand,
    ) -> bool;
}

/// The gate of one partition.
#[derive(Default)]
pub struct Gate {
    /// Closed for a handoff.
    pub frozen: AtomicBool,
    pub in_flight: AtomicUsize,
    /// Milliseconds since start before which a force-reassigned partition is not served.
    pub serve_after: AtomicU64,
}

/// Where a request for an entity goes.
pub enum Placement {
    /// This node owns it; the guard keeps the partition's gate counted.
    Local(GateGuard),
    Remote {
        node: String,
        epoch: u64,
    },
    /// Try again shortly (a handoff is moving the partition).
    Hold {
        detail: String,
    },
    /// Answer 503 now.
    Refuse {
        kind: UnavailableKind,
        detail: String,
        retry_after: Duration,
    },
}

pub struct GateGuard(Option<Arc<Inner>>, usize);

tokio::task_local! {
    /// The gate the current task holds as a side effect in flight: (cluster, partition).
    static EFFECT_GATE: (usize, usize);
}

/// A partition's gate held by a side effect (a saga step) for as long as it runs: a
/// handoff waits for it before it stops the partition's actors and streams the
/// partition. The effect's own requests to entities of the same partition pass the
/// frozen gate (they are part of what the handoff waits for); every other request is
/// held as usual.
pub struct EffectGuard {
    _guard: GateGuard,
    held: (usize, usize),
}

impl EffectGuard {
    /// Runs `effect` inside the gate; the gate is released when it finishes.
    pub async fn run<F: std::future::Future>(self, effect: F) -> F::Output {
        let out = EFFECT_GATE.scope(self.held, effect).await;
        drop(self);
        out
    }
}

/// Why an effect was not let in (the actors' own type: they decide what a deferral means).
pub use crate::actors::client::Deferred as EffectRefused;

impl Drop for GateGuard {
    fn drop(&mut self) {
        if let Some(inner) = &self.0 {
            inner.gates[self.1].in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A member's health as this node sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberView {
    pub name: String,
    pub addr: String,
    pub http_addr: String,
    pub status: &'static str,
    pub leaving: bool,
    pub last_seen_ms_ago: Option<u64>,
    pub partitions: usize,
}

/// This node in the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub name: String,
    pub cfg: ClusterConfig,
    pub info: RwLock<MemberInfo>,
    pub store: Store,
    pub tree: sled::Tree,
    /// `None` until this node founds or joins a cluster.
    pub acceptor: tokio::sync::Mutex<Option<Acceptor>>,
    pub map: RwLock<Option<Arc<ClusterMap>>>,
    pub detector: Mutex<Detector>,
    /// The epoch each peer last answered a heartbeat with.
    pub peer_epochs: Mutex<BTreeMap<String, u64>>,
    pub quorum: AtomicBool,
    pub gates: Vec<Gate>,
    pub fault: Arc<FaultSwitch>,
    pub local: OnceLock<Arc<dyn Local>>,
    pub server: OnceLock<ractor::ActorRef<ractor_cluster::NodeServerMessage>>,
    pub handoffs: Mutex<BTreeMap<u32, super::handoff::Progress>>,
    /// Streamed handoffs waiting for their epoch: partition → its new owner.
    pub handoff_ready: Mutex<BTreeMap<u32, String>>,
    /// Stale copies of partitions handed off, dropped once this node sends nothing.
    pub drops: Mutex<super::handoff::Drops>,
    pub handoff_wake: tokio::sync::Notify,
    /// Wakes the membership loop at once (a map with a new member: dial it now, not at
    /// the next heartbeat).
    pub membership_wake: tokio::sync::Notify,
    pub inbound: Arc<tokio::sync::Semaphore>,
    pub proposing: tokio::sync::Mutex<u64>,
    pub started: Instant,
}

impl Cluster {
    /// Opens this node's cluster state from the store (nothing is started yet).
    pub fn open(cfg: ClusterConfig, store: &Store) -> Result<Self, crate::store::StoreError> {
        let tree = store.tree("cluster")?;
        let acceptor: Option<Acceptor> = match tree.get(ACCEPTOR_KEY)? {
            Some(b) => Some(crate::store::codec::decode(&b).map_err(|e| {
                crate::store::StoreError::Sled(sled::Error::Unsupported(format!(
                    "the cluster map does not decode: {e}"
                )))
            })?),
            None => None,
        };
        let fail = cfg.failure_timeout_ms;
        let inner = Inner {
            name: cfg.node_name.clone(),
            info: RwLock::new(MemberInfo {
                addr: String::new(),
                http_addr: String::new(),
                leaving: false,
            }),
            store: store.clone(),
            tree,
            map: RwLock::new(acceptor.as_ref().map(|a| Arc::new(a.committed.clone()))),
            acceptor: tokio::sync::Mutex::new(acceptor),
            detector: Mutex::new(Detector::new(fail / 2, fail)),
            peer_epochs: Mutex::new(BTreeMap::new()),
            quorum: AtomicBool::new(false),
            // One gate per possible partition: a joining node learns the count later.
            gates: (0..MAX_PARTITIONS).map(|_| Gate::default()).collect(),
            fault: Arc::new(FaultSwitch::default()),
            local: OnceLock::new(),
            server: OnceLock::new(),
            handoffs: Mutex::new(BTreeMap::new()),
            handoff_ready: Mutex::new(BTreeMap::new()),
            drops: Mutex::new(Default::default()),
            handoff_wake: tokio::sync::Notify::new(),
            membership_wake: tokio::sync::Notify::new(),
            inbound: Arc::new(tokio::sync::Semaphore::new(cfg.max_inbound)),
            proposing: tokio::sync::Mutex::new(0),
            started: Instant::now(),
            cfg,
        };
        let c = Self {
            inner: Arc::new(inner),
        };
        c.watch_members();
        Ok(c)
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.cfg
    }

    pub fn fault(&self) -> &Arc<FaultSwitch> {
        &self.inner.fault
    }

    pub fn set_local(&self, local: Arc<dyn Local>) {
        let _ = self.inner.local.set(local);
    }

    pub fn map(&self) -> Option<Arc<ClusterMap>> {
        self.inner.map.read().clone()
    }

    pub fn epoch(&self) -> u64 {
        self.map().map(|m| m.epoch).unwrap_or(0)
    }

    pub fn has_quorum(&self) -> bool {
        self.inner.quorum.load(Ordering::Acquire)
    }

    pub(super) fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }

    pub fn health(&self, node: &str) -> Health {
        if node == self.inner.name {
            return Health::Alive;
        }
        self.inner
            .detector
            .lock()
            .members()
            .get(node)
            .map(|m| m.health)
            .unwrap_or(Health::Down)
    }

    /// Where a request for `(kind, id)` goes now.
    pub fn place(&self, kind: EntityKind, id: &str, write: bool) -> Placement {
        let Some(map) = self.map() else {
            return Placement::Refuse {
                kind: UnavailableKind::ClusterJoining,
                detail: "this node has not joined its cluster yet".into(),
                retry_after: Duration::from_secs(1),
            };
        };
        let p = partition_of(kind, id, map.partitions()) as usize;
        let owner = &map.owners[p];
        if owner != &self.inner.name {
            if self.health(owner) == Health::Down {
                return Placement::Refuse {
                    kind: UnavailableKind::PartitionUnavailable,
                    detail: format!("partition {p} is owned by {owner}, which is down"),
                    retry_after: Duration::from_secs(2),
                };
            }
            return Placement::Remote {
                node: owner.clone(),
                epoch: map.epoch,
            };
        }
        let gate = &self.inner.gates[p];
        gate.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = GateGuard(Some(self.inner.clone()), p);
        let effect_inside = EFFECT_GATE
            .try_with(|held| *held == (self.gate_id(), p))
            .unwrap_or(false);
        if !effect_inside
            && (gate.frozen.load(Ordering::Acquire) || map.moving.contains_key(&(p as u32)))
        {
            return Placement::Hold {
                detail: format!("partition {p} is being handed off"),
            };
        }
        if gate.serve_after.load(Ordering::Acquire) > self.now_ms() {
            return Placement::Refuse {
                kind: UnavailableKind::PartitionUnavailable,
                detail: format!("partition {p} was reassigned and is fenced briefly"),
                retry_after: Duration::from_secs(1),
            };
        }
        if write && !self.has_quorum() {
            return Placement::Refuse {
                kind: UnavailableKind::NoQuorum,
                detail: "this node cannot reach a majority of the cluster".into(),
                retry_after: Duration::from_secs(2),
            };
        }
        Placement::Local(guard)
    }

    /// Enters the gate of `(kind, id)`'s partition for a side effect of that entity:
    /// counted in flight until the guard drops, and refused (the effect is retried, on
    /// whichever node owns the partition then) once the partition is frozen or moving, or
    /// if this node does not own it.
    pub fn enter(&self, kind: EntityKind, id: &str) -> Result<EffectGuard, EffectRefused> {
        let map = self.map().ok_or(EffectRefused::NoMap)?;
        let p = partition_of(kind, id, map.partitions()) as usize;
        if map.owners[p] != self.inner.name {
            return Err(EffectRefused::NotOwner(p as u32));
        }
        let gate = &self.inner.gates[p];
        // Counted before the frozen flag is read, and a handoff sets the flag before it
        // reads the count: with both sides sequentially consistent, one sees the other.
        gate.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = GateGuard(Some(self.inner.clone()), p);
        if gate.frozen.load(Ordering::SeqCst) || map.moving.contains_key(&(p as u32)) {
            return Err(EffectRefused::Moving(p as u32));
        }
        Ok(EffectGuard {
            _guard: guard,
            held: (self.gate_id(), p),
        })
    }

    /// Tells this node's gates from another `Cluster`'s in the same process (tests).
    fn gate_id(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    /// A guard for reading partition `p` here: `None` unless this node owns it at its
    /// epoch and it is neither being handed off nor fenced. While the guard lives, no
    /// handoff moves the partition.
    pub fn read_guard(&self, p: u32) -> Option<GateGuard> {
        let map = self.map()?;
        if map.owners.get(p as usize) != Some(&self.inner.name) {
            return None;
        }
        let gate = &self.inner.gates[p as usize];
        gate.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = GateGuard(Some(self.inner.clone()), p as usize);
        let moving = gate.frozen.load(Ordering::SeqCst) || map.moving.contains_key(&p);
        let fenced = gate.serve_after.load(Ordering::SeqCst) > self.now_ms();
        (!moving && !fenced).then_some(guard)
    }

    /// Whether this node owns `(kind, id)` now (for recovery at start-up).
    pub fn owns(&self, kind: EntityKind, id: &str) -> bool {
        self.map().is_some_and(|m| {
            m.owners[partition_of(kind, id, m.partitions()) as usize] == self.inner.name
        })
    }

    pub fn partition_of(&self, kind: EntityKind, id: &str) -> u32 {
        partition_of(kind, id, self.partitions_len())
    }

    /// Handles a Paxos message as an acceptor, persisting before it replies.
    pub(super) async fn on_meta(&self, msg: MetaMsg) -> MetaReply {
        let mut guard = self.inner.acceptor.lock().await;
        let Some(acc) = guard.as_mut() else {
            if let MetaMsg::Commit { map } = msg {
                // The store keys records by partition: a cluster with another partition
                // count would put them in the wrong ranges. Refuse to join it.
                let ours = self.inner.store.journal().partitions();
                if map.partitions() != ours {
                    tracing::error!(
                        cluster = map.partitions(),
                        ours,
                        "refusing a cluster map with another partition count than this data directory; set cluster.partitions to the cluster's"
                    );
                    return MetaReply::Behind { epoch: 0 };
                }
                // A node that has not joined yet learns its first map this way too.
                let fresh = Acceptor::new(map);
                return match self.persist(&fresh).await {
                    Ok(()) => {
                        let committed = fresh.committed.clone();
                        *guard = Some(fresh);
                        drop(guard);
                        self.installed(None, committed);
                        MetaReply::Committed
                    }
                    Err(_) => MetaReply::Behind { epoch: 0 },
                };
            }
            return MetaReply::Behind { epoch: 0 };
        };
        let before = acc.committed.clone();
        let mut next = acc.clone();
        let (reply, changed) = next.handle(msg);
        if changed {
            if let Err(e) = self.persist(&next).await {
                tracing::error!(error = %e, "cannot persist the cluster acceptor");
                return MetaReply::Behind {
                    epoch: before.epoch,
                };
            }
            *acc = next;
            if acc.committed.epoch != before.epoch {
                let committed = acc.committed.clone();
                drop(guard);
                self.installed(Some(before), committed);
            }
        }
        reply
    }

    /// Adopts a committed map (learned from a peer, or chosen by our proposal).
    pub async fn adopt(&self, map: ClusterMap) {
        if map.epoch > self.epoch() {
            let _ = self.on_meta(MetaMsg::Commit { map }).await;
        }
    }

    async fn persist(&self, acc: &Acceptor) -> Result<(), crate::store::StoreError> {
        self.inner
            .tree
            .insert(ACCEPTOR_KEY, crate::store::codec::encode(acc))?;
        self.inner.store.durable().await
    }

    /// A new committed map is in place: update caches, gates and the application.
    fn installed(&self, before: Option<ClusterMap>, map: ClusterMap) {
        let me = self.inner.name.clone();
        let now = self.now_ms();
        let mut gained = Vec::new();
        let mut lost = Vec::new();
        for (p, owner) in map.owners.iter().enumerate() {
            let was = before.as_ref().map(|b| b.owners[p] == me).unwrap_or(false);
            let is = owner == &me;
            if is && !was {
                gained.push(p as u32);
            }
            if was && !is {
                lost.push(p as u32);
            }
            if is && map.forced.contains_key(&(p as u32)) {
                self.inner.gates[p]
                    .serve_after
                    .store(now + self.fence_ms(), Ordering::Release);
            }
        }
        tracing::info!(
            epoch = map.epoch,
            members = map.members.len(),
            moving = map.moving.len(),
            gained = gained.len(),
            lost = lost.len(),
            "cluster map committed"
        );
        metrics::gauge!("emporium_cluster_epoch").set(map.epoch as f64);
        metrics::gauge!("emporium_cluster_partitions_owned").set(map.owned_by(&me).len() as f64);
        let new_member = before
            .as_ref()
            .is_none_or(|b| map.members.keys().any(|n| !b.members.contains_key(n)));
        let moving = !map.moving.is_empty();
        *self.inner.map.write() = Some(Arc::new(map));
        self.watch_members();
        // Start what the map asks for now rather than at the next tick: connect to a new
        // member, and start the handoffs it names.
        if new_member {
            self.inner.membership_wake.notify_one();
        }
        if moving {
            self.inner.handoff_wake.notify_one();
        }
        if let Some(local) = self.inner.local.get() {
            if !gained.is_empty() || !lost.is_empty() {
                local.partitions_changed(gained, lost);
            }
        }
    }

    /// How long a force-reassigned partition stays fenced on its new owner: the failure
    /// timeout (a cut-off node stops counting its peers by then), plus two heartbeat
    /// rounds of their deadlines for a peer that accepted the change to learn it and
    /// stop answering the removed node at the old epoch.
    pub fn fence_ms(&self) -> u64 {
        self.inner.cfg.failure_timeout_ms + 4 * self.inner.cfg.heartbeat_interval_ms
    }

    /// Keeps the detector's member list equal to the map's; new members start down
    /// until heard, so a node never counts a peer toward quorum before hearing it.
    fn watch_members(&self) {
        let Some(map) = self.map() else { return };
        let mut d = self.inner.detector.lock();
        let now = self.now_ms();
        let known: BTreeSet<String> = d.members().keys().cloned().collect();
        for name in map.members.keys().filter(|n| **n != self.inner.name) {
            if !known.contains(name) {
                d.watch(
                    name,
                    now.saturating_sub(self.inner.cfg.failure_timeout_ms + 1),
                );
            }
        }
        for name in known {
            if !map.members.contains_key(&name) {
                d.forget(&name);
            }
        }
        d.tick(now);
    }

    /// Founds a cluster of this node alone (no seeds and no map yet).
    pub(super) async fn bootstrap(&self) -> Result<(), crate::store::StoreError> {
        let mut guard = self.inner.acceptor.lock().await;
        if guard.is_some() {
            return Ok(());
        }
        let info = self.inner.info.read().clone();
        let map = ClusterMap::bootstrap(&self.inner.name, info, self.inner.cfg.partitions);
        let acc = Acceptor::new(map.clone());
        self.persist(&acc).await?;
        *guard = Some(acc);
        drop(guard);
        tracing::info!(node = %self.inner.name, partitions = map.partitions(), "founded a new cluster");
        self.installed(None, map);
        Ok(())
    }

    /// Recomputes quorum from member health and the epochs they answered with.
    pub(super) fn update_quorum(&self) {
        let Some(map) = self.map() else {
            self.inner.quorum.store(false, Ordering::Release);
            return;
        };
        let now = self.now_ms();
        let transitions = self.inner.detector.lock().tick(now);
        for t in transitions {
            tracing::warn!(node = %t.node, from = ?t.from, to = ?t.to, "member health changed");
            metrics::counter!("emporium_cluster_health_transitions_total", "to" => format!("{:?}", t.to).to_lowercase()).increment(1);
        }
        let epochs = self.inner.peer_epochs.lock().clone();
        let mut votes = usize::from(map.members.contains_key(&self.inner.name));
        for name in map.members.keys().filter(|n| **n != self.inner.name) {
            // A peer that answered at a newer epoch does not count until this node has
            // that map: it may no longer consider this node an owner (or a member).
            let not_ahead = epochs.get(name).is_some_and(|e| *e <= map.epoch);
            if not_ahead && self.health(name) != Health::Down {
                votes += 1;
            }
        }
        let q = votes >= map.majority();
        let was = self.inner.quorum.swap(q, Ordering::AcqRel);
        if was != q {
            if q {
                tracing::info!(votes, "quorum regained: serving writes");
            } else {
                tracing::warn!(votes, "quorum lost: refusing writes with no_quorum");
            }
        }
        metrics::gauge!("emporium_cluster_quorum").set(if q { 1.0 } else { 0.0 });
    }

    /// The members with their health, for `GET /v1/cluster`.
    pub fn members(&self) -> Vec<MemberView> {
        let Some(map) = self.map() else {
            return Vec::new();
        };
        let counts = map.counts();
        let d = self.inner.detector.lock();
        let now = self.now_ms();
        map.members
            .iter()
            .map(|(name, info)| {
                let (status, last) = if *name == self.inner.name {
                    ("alive", Some(0))
                } else {
                    match d.members().get(name) {
                        Some(m) => (
                            match m.health {
                                Health::Alive => "alive",
                                Health::Suspect => "suspect",
                                Health::Down => "down",
                            },
                            Some(now.saturating_sub(m.last_heard)),
                        ),
                        None => ("down", None),
                    }
                };
                MemberView {
                    name: name.clone(),
                    addr: info.addr.clone(),
                    http_addr: info.http_addr.clone(),
                    status,
                    leaving: info.leaving,
                    last_seen_ms_ago: last,
                    partitions: counts.get(name).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
