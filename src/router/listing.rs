//! Cluster-wide reads that are not one entity's state: listings (a shopper's orders,
//! machines, product search) and per-entity journal reads (the audit trail, whether an
//! entity has any event).
//!
//! A listing fans out to the owners of the partitions concerned, each with the caller's
//! remaining deadline; every owner answers for the partitions it owns at its epoch (and
//! names those it does not), the rows are merged in the global key order and cut to the
//! page. A cursor is the last key returned, a position in that global order, so a page
//! read after a rebalance continues where the previous one stopped. A partition that
//! cannot answer makes the listing fail with [`ListingError::PartitionsUnavailable`], or,
//! when the caller accepts a partial answer, is named in [`Page::missing_partitions`].
//!
//! A per-entity read goes to the entity's owner only. Without a cluster every partition
//! is local and nothing crosses the wire. The data itself comes from a
//! [`ListingSource`] the application provides (its journal and catalog view).

use super::{RouteError, Router, UnavailableKind};
use crate::cluster::wire::{Request, Response};
use crate::domain::product::ProductState;
use crate::domain::EntityKind;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// A listing, as each partition owner runs it. `after` is a key of the global order
/// (exclusive); each owner returns up to `limit + 1` rows so the merge knows whether
/// there is a next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListingQuery {
    /// A shopper's order index keys `inverted placement time/order id`, newest first.
    UserOrders {
        user: String,
        after: Option<String>,
        limit: u32,
    },
    /// Registered machine ids, in id order.
    Machines { after: Option<String>, limit: u32 },
    /// Dead-lettered webhook deliveries (of one endpoint, or all), in record order.
    DeadDeliveries {
        endpoint: Option<uuid::Uuid>,
        after: Option<String>,
        limit: u32,
    },
    /// An endpoint's deliveries in every state, the most recently attempted first.
    EndpointDeliveries { endpoint: uuid::Uuid, limit: u32 },
    /// Notification messages a filter keeps, newest first
    /// ([`crate::domain::notification::listing_key`]).
    Notifications {
        filter: crate::domain::notification::MessageFilter,
        after: Option<String>,
        limit: u32,
    },
    /// Purchasable products matching `q` and in one of `categories`, in sku order.
    Products {
        q: Option<String>,
        categories: Option<Vec<String>>,
        after: Option<String>,
        limit: u32,
    },
    /// Review listing keys under `prefix` ([`crate::domain::review::index_keys`]), in key
    /// order (newest first, or best rated first).
    Reviews {
        prefix: String,
        after: Option<String>,
        limit: u32,
    },
}

impl ListingQuery {
    fn limit(&self) -> usize {
        match self {
            Self::UserOrders { limit, .. }
            | Self::Machines { limit, .. }
            | Self::Notifications { limit, .. }
            | Self::DeadDeliveries { limit, .. }
            | Self::EndpointDeliveries { limit, .. }
            | Self::Products { limit, .. }
            | Self::Reviews { limit, .. } => *limit as usize,
        }
    }
}

/// One row of a listing: its key in the global order, and what the listing carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub key: String,
    pub data: RowData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RowData {
    /// The key is the whole answer (an order key, a machine id).
    Key,
    Product(ProductState),
    Notification(Box<crate::domain::notification::MessageState>),
    /// A record a projection keeps, in that projection's own encoding: the module that
    /// wrote it decodes it (webhook deliveries, `events::webhooks::dlq::decode_listed`).
    Record(Vec<u8>),
}

/// One event of an entity's journal, its payload as serde JSON text (the event types
/// are not self-describing in the storage codec).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub seq: u64,
    pub at: crate::domain::Millis,
    pub json: String,
}

/// What one owner is asked to read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartitionRead {
    List(ListingQuery),
    /// Up to `limit` events of `(kind, id)` after `after_seq`.
    Events {
        kind: u8,
        id: String,
        after_seq: u64,
        limit: u32,
    },
    /// Whether `(kind, id)` has any event.
    Exists {
        kind: u8,
        id: String,
    },
    /// About `limit` public events of the feed after `cursor` (per partition, the last
    /// log seq read), as JSON records (added last: earlier variants keep their encoding).
    Feed {
        cursor: BTreeMap<u32, u64>,
        limit: u32,
    },
    /// Every projection's offsets and lag in the partitions, and the owner's state, as
    /// one JSON record per owner.
    Projections,
}

/// What one owner read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PartitionRows {
    Rows(Vec<Row>),
    Events(Vec<AuditEvent>),
    Exists(bool),
}

/// An owner's answer: its rows over the partitions it owns, the asked partitions it
/// does not own (or cannot serve now), and its epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionReply {
    pub rows: PartitionRows,
    pub not_owned: Vec<u32>,
    pub epoch: u64,
}

/// Why an owner could not read (typed across the wire).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum ReadFailure {
    /// A record does not decode: the entity cannot be read until repaired.
    #[error("{0}")]
    Corrupt(String),
    /// The store could not be read.
    #[error("the store cannot be read: {0}")]
    Store(String),
    /// The owner could not serve the read (overloaded, starting, unknown kind).
    #[error("{detail}")]
    Unavailable {
        kind: UnavailableKind,
        detail: String,
    },
}

/// Why a listing or a per-entity read did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ListingError {
    #[error(transparent)]
    Route(#[from] RouteError),
    /// These partitions could not answer (their owner is down, unreachable, or moving
    /// them), and the caller did not accept a partial answer.
    #[error("partitions {partitions:?} cannot answer: {detail}")]
    PartitionsUnavailable {
        partitions: Vec<u32>,
        retry_after: Duration,
        detail: String,
    },
    #[error(transparent)]
    Read(#[from] ReadFailure),
}

impl ListingError {
    /// The failure as an owner sends it back to the node that asked.
    pub fn into_read_failure(self) -> ReadFailure {
        match self {
            Self::Read(r) => r,
            Self::Route(RouteError::Timeout) => ReadFailure::Unavailable {
                kind: UnavailableKind::EntityUnavailable,
                detail: "the read did not finish in time".into(),
            },
            Self::Route(RouteError::Unavailable { kind, detail, .. }) => {
                ReadFailure::Unavailable { kind, detail }
            }
            Self::Route(e) => ReadFailure::Unavailable {
                kind: UnavailableKind::EntityUnavailable,
                detail: e.to_string(),
            },
            Self::PartitionsUnavailable { detail, .. } => ReadFailure::Unavailable {
                kind: UnavailableKind::PartitionUnavailable,
                detail,
            },
        }
    }
}

/// A merged page.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub rows: Vec<Row>,
    /// The key of the last row when there are more rows after it.
    pub next_cursor: Option<String>,
    /// The partitions that did not answer (only with a partial answer accepted).
    pub missing_partitions: Vec<u32>,
}

/// The data a node reads for the partitions it owns: the application's journal and
/// catalog view. `keep` selects the entities of the partitions being read.
pub trait ListingSource: Send + Sync + 'static {
    /// Reads `read` over `partitions` (every partition when `None`); `keep` says whether
    /// an entity is in them, for reads that are not by partition range (the catalog
    /// view, one entity's events).
    fn read(
        &self,
        read: &PartitionRead,
        partitions: Option<&[u32]>,
        keep: &(dyn Fn(EntityKind, &str) -> bool + Send + Sync),
    ) -> Result<PartitionRows, ReadFailure>;
}

/// The most bytes of events one journal read returns (at least one event): a reply
/// stays well under the cluster codec's decode limit; the caller pages on with
/// `after_seq`.
pub const MAX_EVENT_BYTES: usize = 2 << 20;

/// The margin a fan-out call allows past the owner's deadline for the trip back.
const TRIP: Duration = Duration::from_millis(200);

/// `Retry-After` of a listing some partition could not answer.
const MISSING_RETRY: Duration = Duration::from_secs(2);

/// How one owner's part of a fan-out ended.
enum Part {
    /// The owner's rows, the asked partitions it did not own, its epoch and name.
    Answered {
        rows: PartitionRows,
        not_owned: Vec<u32>,
        epoch: u64,
        node: String,
    },
    Missing(Vec<u32>, String),
}

impl Router {
    /// `GET /v1/me/orders`: a page of the user's order keys (`inverted time/order id`,
    /// without the user prefix), newest first, after `cursor`.
    pub async fn list_user_orders(
        &self,
        user: uuid::Uuid,
        cursor: Option<String>,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let prefix = format!("{user}/");
        let q = ListingQuery::UserOrders {
            user: user.to_string(),
            after: cursor.map(|c| format!("{prefix}{c}")),
            limit: limit as u32,
        };
        let mut page = self.list(q, partial).await?;
        for r in &mut page.rows {
            r.key = r.key.strip_prefix(&prefix).unwrap_or(&r.key).to_owned();
        }
        if let Some(c) = &mut page.next_cursor {
            *c = c.strip_prefix(&prefix).unwrap_or(c).to_owned();
        }
        Ok(page)
    }

    /// A page of review listing keys under `prefix` (with the prefix stripped, as is the
    /// cursor), from every partition's owner: a product's approved reviews, or the
    /// moderation queue.
    pub async fn list_reviews(
        &self,
        prefix: &str,
        cursor: Option<String>,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let q = ListingQuery::Reviews {
            prefix: prefix.to_owned(),
            after: cursor.map(|c| format!("{prefix}{c}")),
            limit: limit as u32,
        };
        let mut page = self.list(q, partial).await?;
        for r in &mut page.rows {
            r.key = r.key.strip_prefix(prefix).unwrap_or(&r.key).to_owned();
        }
        if let Some(c) = &mut page.next_cursor {
            *c = c.strip_prefix(prefix).unwrap_or(c).to_owned();
        }
        Ok(page)
    }

    /// `GET /v1/machines`: a page of registered machine ids, in id order.
    pub async fn list_machines(
        &self,
        cursor: Option<String>,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let q = ListingQuery::Machines {
            after: cursor,
            limit: limit as u32,
        };
        self.list(q, partial).await
    }

    /// `GET /v1/admin/notifications`, `GET /v1/me/notifications`: a page of the messages
    /// `filter` keeps, newest first, from every partition's owner.
    pub async fn list_notifications(
        &self,
        filter: crate::domain::notification::MessageFilter,
        cursor: Option<String>,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let q = ListingQuery::Notifications {
            filter,
            after: cursor,
            limit: limit as u32,
        };
        self.list(q, partial).await
    }

    /// `GET /v1/admin/dlq`: a page of dead-lettered deliveries (of `endpoint`, or all)
    /// from every partition's owner, in record order.
    pub async fn list_dead_deliveries(
        &self,
        endpoint: Option<uuid::Uuid>,
        cursor: Option<String>,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let q = ListingQuery::DeadDeliveries {
            endpoint,
            after: cursor,
            limit: limit as u32,
        };
        self.list(q, partial).await
    }

    /// `GET /v1/webhooks/{id}/deliveries`: an endpoint's deliveries from every
    /// partition's owner, the most recently attempted first.
    pub async fn list_endpoint_deliveries(
        &self,
        endpoint: uuid::Uuid,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let q = ListingQuery::EndpointDeliveries {
            endpoint,
            limit: limit as u32,
        };
        self.list(q, partial).await
    }

    /// `GET /v1/products`: a page of purchasable products matching `q` and in one of
    /// `categories`, in sku order, from every owner's catalog view.
    pub async fn search_products(
        &self,
        q: Option<String>,
        categories: Option<Vec<String>>,
        cursor: Option<String>,
        limit: usize,
        partial: bool,
    ) -> Result<Page, ListingError> {
        let q = ListingQuery::Products {
            q,
            categories,
            after: cursor,
            limit: limit as u32,
        };
        self.list(q, partial).await
    }

    /// Up to `limit` events of `(kind, id)` after `after_seq`, read on the entity's owner.
    pub async fn entity_events(
        &self,
        kind: EntityKind,
        id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, ListingError> {
        let read = PartitionRead::Events {
            kind: kind.byte(),
            id: id.to_owned(),
            after_seq,
            limit: limit as u32,
        };
        match self.entity_read(kind, id, read).await? {
            PartitionRows::Events(e) => Ok(e),
            other => Err(unexpected(&other)),
        }
    }

    /// `GET /v1/events`: every owner's part of a feed page after `cursor`, as the JSON
    /// records the feed keeps (the events layer merges them), and the partitions that
    /// could not answer (only with `partial`).
    pub async fn feed_records(
        &self,
        cursor: BTreeMap<u32, u64>,
        limit: u32,
        partial: bool,
    ) -> Result<(Vec<Vec<u8>>, Vec<u32>), ListingError> {
        self.records(&PartitionRead::Feed { cursor, limit }, partial)
            .await
    }

    /// `GET /v1/admin/projections`: every owner's status records (the events layer
    /// merges them), and the partitions that could not answer.
    pub async fn projection_records(&self) -> Result<(Vec<Vec<u8>>, Vec<u32>), ListingError> {
        self.records(&PartitionRead::Projections, true).await
    }

    /// The records every owner answers `read` with (rows of [`RowData::Record`]).
    async fn records(
        &self,
        read: &PartitionRead,
        partial: bool,
    ) -> Result<(Vec<Vec<u8>>, Vec<u32>), ListingError> {
        let (parts, missing) = self.fan_out(read, None).await?;
        if !missing.is_empty() && !partial {
            return Err(missing_error(&missing));
        }
        let mut records = Vec::new();
        for p in parts {
            match p {
                PartitionRows::Rows(rows) => {
                    records.extend(rows.into_iter().filter_map(|r| match r.data {
                        RowData::Record(b) => Some(b),
                        _ => None,
                    }))
                }
                other => return Err(unexpected(&other)),
            }
        }
        Ok((records, missing.into_keys().collect()))
    }

    /// Whether `(kind, id)` has any event, read on the entity's owner.
    pub async fn entity_exists(&self, kind: EntityKind, id: &str) -> Result<bool, ListingError> {
        let read = PartitionRead::Exists {
            kind: kind.byte(),
            id: id.to_owned(),
        };
        match self.entity_read(kind, id, read).await? {
            PartitionRows::Exists(b) => Ok(b),
            other => Err(unexpected(&other)),
        }
    }

    async fn entity_read(
        &self,
        kind: EntityKind,
        id: &str,
        read: PartitionRead,
    ) -> Result<PartitionRows, ListingError> {
        let p = self.cluster().map(|c| c.partition_of(kind, id));
        let (mut rows, missing) = self.fan_out(&read, p.map(|p| vec![p])).await?;
        if !missing.is_empty() {
            return Err(missing_error(&missing));
        }
        rows.pop()
            .ok_or_else(|| ListingError::from(RouteError::Timeout))
    }

    /// Runs a listing over every partition and merges the owners' rows.
    async fn list(&self, q: ListingQuery, partial: bool) -> Result<Page, ListingError> {
        let limit = q.limit();
        let (parts, missing) = self.fan_out(&PartitionRead::List(q), None).await?;
        if !missing.is_empty() && !partial {
            return Err(missing_error(&missing));
        }
        let mut rows = Vec::new();
        for p in parts {
            match p {
                PartitionRows::Rows(r) => rows.extend(r),
                other => return Err(unexpected(&other)),
            }
        }
        let (rows, next_cursor) = merge(rows, limit);
        Ok(Page {
            rows,
            next_cursor,
            missing_partitions: missing.into_keys().collect(),
        })
    }

    fn source(&self) -> Result<&std::sync::Arc<dyn ListingSource>, ListingError> {
        self.inner.listings.as_ref().ok_or_else(|| {
            ListingError::Read(ReadFailure::Unavailable {
                kind: UnavailableKind::EntityUnavailable,
                detail: "this node serves no listings".into(),
            })
        })
    }

    /// Reads `read` over `partitions` (every partition when `None`) from their owners.
    /// Returns each owner's rows and the partitions that did not answer, with why.
    async fn fan_out(
        &self,
        read: &PartitionRead,
        partitions: Option<Vec<u32>>,
    ) -> Result<(Vec<PartitionRows>, BTreeMap<u32, String>), ListingError> {
        let Some(cluster) = self.cluster() else {
            let source = self.source()?.clone();
            let read = read.clone();
            let rows = run_blocking(self.ask_timeout(), move || {
                source.read(&read, None, &|_, _| true)
            })
            .await??;
            return Ok((vec![rows], BTreeMap::new()));
        };
        let deadline = Instant::now() + self.ask_timeout();
        let Some(map) = cluster.map() else {
            return Err(RouteError::Unavailable {
                kind: UnavailableKind::ClusterJoining,
                retry_after: Duration::from_secs(1),
                detail: "this node has not joined its cluster yet".into(),
            }
            .into());
        };
        let asked: Vec<u32> = partitions.unwrap_or_else(|| (0..map.partitions()).collect());
        let mut rows = Vec::new();
        let mut missing = BTreeMap::<u32, String>::new();
        let mut pending = asked;
        for round in 0..2 {
            let map = cluster.map().expect("a map once joined");
            let mut by_owner = BTreeMap::<String, Vec<u32>>::new();
            for p in pending.drain(..) {
                match map.owners.get(p as usize) {
                    Some(owner) => by_owner.entry(owner.clone()).or_default().push(p),
                    None => {
                        missing.insert(p, format!("partition {p} does not exist"));
                    }
                }
            }
            let parts = futures::future::join_all(
                by_owner
                    .into_iter()
                    .map(|(owner, ps)| self.ask_owner(owner, read, ps, deadline)),
            )
            .await;
            let mut newer = None::<(u64, String)>;
            for part in parts {
                match part? {
                    Part::Answered {
                        rows: r,
                        not_owned,
                        epoch,
                        node,
                    } => {
                        rows.push(r);
                        let ahead = epoch > newer.as_ref().map_or(cluster.epoch(), |n| n.0);
                        if !not_owned.is_empty() && ahead {
                            newer = Some((epoch, node));
                        }
                        pending.extend(not_owned);
                    }
                    Part::Missing(ps, why) => {
                        for p in ps {
                            missing.insert(p, why.clone());
                        }
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            if round == 0 {
                // Retry once with a fresh map, from the node that is ahead of ours.
                if let Some((_, node)) = newer {
                    let t = Duration::from_millis(cluster.config().call_timeout_ms)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    if let Ok(Response::Map(Some(m))) =
                        cluster.call(&node, Request::GetMap, t).await
                    {
                        cluster.adopt(m).await;
                    }
                }
            }
        }
        for p in pending {
            missing.insert(p, "its owner does not serve it now (it is moving)".into());
        }
        Ok((rows, missing))
    }

    /// Asks `owner` (possibly this node) to read `read` over `partitions`.
    async fn ask_owner(
        &self,
        owner: String,
        read: &PartitionRead,
        partitions: Vec<u32>,
        deadline: Instant,
    ) -> Result<Part, ListingError> {
        let cluster = self.cluster().expect("only with a cluster");
        if owner == cluster.name() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .serve_partition_read(read.clone(), partitions, remaining)
                .await?;
            return Ok(Part::Answered {
                rows: reply.rows,
                not_owned: reply.not_owned,
                epoch: reply.epoch,
                node: owner,
            });
        }
        if cluster.health(&owner) == crate::cluster::detector::Health::Down {
            return Ok(Part::Missing(partitions, format!("{owner} is down")));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Part::Missing(partitions, "no time left".into()));
        }
        let req = Request::PartitionRead {
            read: read.clone(),
            partitions: partitions.clone(),
            timeout_ms: crate::cluster::wire::millis(remaining),
            epoch: cluster.epoch(),
        };
        match cluster.call(&owner, req, remaining + TRIP).await {
            Ok(Response::PartitionRead(Ok(reply))) => Ok(Part::Answered {
                rows: reply.rows,
                not_owned: reply.not_owned,
                epoch: reply.epoch,
                node: owner,
            }),
            Ok(Response::PartitionRead(Err(ReadFailure::Unavailable { kind, detail }))) => {
                tracing::debug!(%owner, %kind, %detail, "an owner could not serve a listing");
                Ok(Part::Missing(partitions, detail))
            }
            Ok(Response::PartitionRead(Err(e))) => Err(e.into()),
            Ok(other) => Ok(Part::Missing(
                partitions,
                format!("unexpected reply from {owner}: {other:?}"),
            )),
            // Unreachable, or no answer in time: the partitions are missing, not the
            // whole listing failed.
            Err(e) => Ok(Part::Missing(partitions, e.to_string())),
        }
    }

    /// Reads `read` over those of `partitions` this node owns and may serve now; names
    /// the others. Runs for this node's own fan-outs and for other nodes' requests.
    pub async fn serve_partition_read(
        &self,
        read: PartitionRead,
        partitions: Vec<u32>,
        timeout: Duration,
    ) -> Result<PartitionReply, ListingError> {
        let source = self.source()?.clone();
        let Some(cluster) = self.cluster().cloned() else {
            let rows =
                run_blocking(timeout, move || source.read(&read, None, &|_, _| true)).await??;
            return Ok(PartitionReply {
                rows,
                not_owned: Vec::new(),
                epoch: 0,
            });
        };
        let epoch = cluster.epoch();
        let n = cluster.map().map_or(1, |m| m.partitions());
        let mut guards = Vec::new();
        let mut served = BTreeSet::new();
        let mut not_owned = Vec::new();
        for p in partitions {
            match cluster.read_guard(p) {
                Some(g) => {
                    guards.push(g);
                    served.insert(p);
                }
                None => not_owned.push(p),
            }
        }
        let rows = run_blocking(timeout, move || {
            let keep = |kind: EntityKind, id: &str| {
                served.contains(&crate::store::partition::partition_of(kind, id, n))
            };
            let parts: Vec<u32> = served.iter().copied().collect();
            let rows = source.read(&read, Some(&parts), &keep);
            // The gates stay counted until the read is done: no handoff moves them meanwhile.
            drop(guards);
            rows
        })
        .await??;
        Ok(PartitionReply {
            rows,
            not_owned,
            epoch,
        })
    }
}

/// Runs a bounded store read off the async threads, within `timeout`.
async fn run_blocking<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ListingError> {
    match tokio::time::timeout(timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(ListingError::Read(ReadFailure::Unavailable {
            kind: UnavailableKind::EntityUnavailable,
            detail: format!("the read failed: {e}"),
        })),
        Err(_) => Err(RouteError::Timeout.into()),
    }
}

/// The error of a read some partitions could not answer: their numbers, and (a few of)
/// the reasons.
fn missing_error(missing: &BTreeMap<u32, String>) -> ListingError {
    let partitions: Vec<u32> = missing.keys().copied().collect();
    let reasons: BTreeSet<&str> = missing.values().map(String::as_str).collect();
    let reasons: Vec<&str> = reasons.into_iter().take(3).collect();
    tracing::debug!(?partitions, ?reasons, "a read misses partitions");
    ListingError::PartitionsUnavailable {
        detail: format!(
            "partitions {partitions:?} cannot answer now: {}",
            reasons.join("; ")
        ),
        partitions,
        retry_after: MISSING_RETRY,
    }
}

fn unexpected(rows: &PartitionRows) -> ListingError {
    ListingError::Read(ReadFailure::Unavailable {
        kind: UnavailableKind::EntityUnavailable,
        detail: format!("unexpected rows for the read: {rows:?}"),
    })
}

/// Merges owners' rows into the global key order (a key read twice, from an old and a
/// new owner, counts once) and cuts the first `limit`; the cursor is the last key when
/// more rows follow.
pub fn merge(mut rows: Vec<Row>, limit: usize) -> (Vec<Row>, Option<String>) {
    rows.sort_by(|a, b| a.key.cmp(&b.key));
    rows.dedup_by(|a, b| a.key == b.key);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(|r| r.key.clone());
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
