//! The application's side of the cluster ([`crate::cluster::node::Local`]): running
//! forwarded requests through the router, stopping a partition's actors for a handoff,
//! keeping the catalog view and the resumed sagas in step with the partitions this node
//! owns, delivering machine commands to sessions on this node, and reading listings
//! and journals for the partitions this node owns ([`LocalReads`], the router's
//! [`ListingSource`], with or without a cluster).

use crate::actors::catalog::Catalog;
use crate::actors::machine::CommandSink;
use crate::cluster::wire::{EntityOp, RemoteError, Request};
use crate::cluster::Cluster;
use crate::domain::machine::{Machine, MachineCommand};
use crate::domain::order::Order;
use crate::domain::product::Product;
use crate::domain::EntityKind;
use crate::router::listing::{
    AuditEvent, ListingQuery, ListingSource, PartitionRead, PartitionReply, PartitionRows,
    ReadFailure, Row, RowData,
};
use crate::router::Router;
use crate::store::{Index, Journal, Store, StoreError};
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use uuid::Uuid;

pub struct ClusterLocal {
    pub router: Router,
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub sessions: Arc<crate::grpc::Sessions>,
    pub cluster: Cluster,
    pub resume_concurrency: usize,
}

impl crate::cluster::node::Local for ClusterLocal {
    fn entity(
        &self,
        kind: EntityKind,
        id: String,
        op: EntityOp,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, RemoteError>> {
        let router = self.router.clone();
        Box::pin(async move { router.serve_forwarded(kind, id, op, timeout).await })
    }

    fn drain(&self, partition: u32) -> BoxFuture<'static, ()> {
        let router = self.router.clone();
        Box::pin(async move { router.drain(partition).await })
    }

    fn partitions_changed(&self, gained: Vec<u32>, lost: Vec<u32>) {
        let gained: BTreeSet<u32> = gained.into_iter().collect();
        let lost: BTreeSet<u32> = lost.into_iter().collect();
        let journal = self.store.journal().clone();
        let cluster = self.cluster.clone();
        let catalog = self.catalog.clone();
        let router = self.router.clone();
        let concurrency = self.resume_concurrency.max(1);
        tokio::spawn(async move {
            let of = |kind, id: &str| cluster.partition_of(kind, id);
            for sku in journal.index_keys(Index::Products).filter_map(Result::ok) {
                let p = of(EntityKind::Product, &sku);
                if lost.contains(&p) {
                    catalog.remove(&sku);
                } else if gained.contains(&p) {
                    if let (Ok(s), Ok(rec)) = (
                        crate::domain::Sku::parse(&sku),
                        journal.load::<Product>(&sku),
                    ) {
                        catalog.upsert(&s, &rec.state);
                    }
                }
            }
            // Activation stays lazy: only sagas in flight and live machines resume.
            let orders: Vec<String> = journal
                .index_keys(Index::OpenOrders)
                .filter_map(Result::ok)
                .filter(|id| gained.contains(&of(EntityKind::Order, id)))
                .collect();
            let machines: Vec<String> = journal
                .index_keys(Index::LiveMachines)
                .filter_map(Result::ok)
                .filter(|id| gained.contains(&of(EntityKind::Machine, id)))
                .collect();
            super::resume_ids::<Order>(&router, orders, concurrency).await;
            super::resume_ids::<Machine>(&router, machines, concurrency).await;
        });
    }

    fn replay(
        &self,
        op: crate::router::replay::ReplayOp,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<u32, crate::router::replay::ReplayFailure>> {
        let router = self.router.clone();
        Box::pin(async move { router.serve_replay(op, timeout).await })
    }

    fn push_machine(&self, machine_id: &str, command_id: Uuid, command: &MachineCommand) -> bool {
        self.sessions.push(machine_id, command_id, command)
    }

    fn partition_read(
        &self,
        read: PartitionRead,
        partitions: Vec<u32>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<PartitionReply, ReadFailure>> {
        let router = self.router.clone();
        Box::pin(async move {
            router
                .serve_partition_read(read, partitions, timeout)
                .await
                .map_err(|e| e.into_read_failure())
        })
    }
}

/// This node's listings and journal reads: the journal's indexes and events, and the
/// catalog view, restricted to the entities the router's `keep` selects.
pub struct LocalReads {
    pub journal: Journal,
    pub catalog: Arc<Catalog>,
    /// The projections' runner, built after the router.
    pub projections: Arc<OnceLock<Arc<crate::events::runner::Projections>>>,
}

fn read_failure(e: StoreError) -> ReadFailure {
    match e {
        StoreError::Corrupt { .. } => ReadFailure::Corrupt(e.to_string()),
        other => ReadFailure::Store(other.to_string()),
    }
}

impl LocalReads {
    fn events<A: crate::domain::Aggregate>(
        &self,
        id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, ReadFailure> {
        let evs = self
            .journal
            .events::<A>(id, after_seq, limit)
            .map_err(read_failure)?;
        let mut out = Vec::with_capacity(evs.len());
        let mut bytes = 0;
        for (seq, at, e) in evs {
            let json = serde_json::to_string(&e).unwrap_or_else(|_| "null".into());
            bytes += json.len();
            if bytes > crate::router::listing::MAX_EVENT_BYTES && !out.is_empty() {
                break;
            }
            out.push(AuditEvent { seq, at, json });
        }
        Ok(out)
    }

    /// The partitions asked for, or every partition.
    fn partitions(&self, partitions: Option<&[u32]>) -> Vec<u32> {
        partitions.map_or_else(|| (0..self.journal.partitions()).collect(), <[u32]>::to_vec)
    }

    /// A page of an index over `partitions` (every partition when `None`): one range
    /// read per partition, merged.
    fn keys(
        &self,
        index: Index,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        partitions: Option<&[u32]>,
    ) -> Result<PartitionRows, ReadFailure> {
        let keys = match partitions {
            Some(ps) => self
                .journal
                .index_page_in(ps.iter().copied(), index, prefix, after, limit),
            None => self.journal.index_page(index, prefix, after, limit),
        }
        .map_err(read_failure)?;
        Ok(PartitionRows::Rows(
            keys.into_iter()
                .map(|key| Row {
                    key,
                    data: RowData::Key,
                })
                .collect(),
        ))
    }
}

/// Listed webhook records as listing rows.
fn records(page: Vec<(String, crate::events::webhooks::dlq::Listed)>) -> PartitionRows {
    PartitionRows::Rows(
        page.into_iter()
            .map(|(key, l)| Row {
                key,
                data: RowData::Record(crate::events::webhooks::dlq::encode_listed(&l)),
            })
            .collect(),
    )
}

impl ListingSource for LocalReads {
    fn read(
        &self,
        read: &PartitionRead,
        partitions: Option<&[u32]>,
        keep: &(dyn Fn(EntityKind, &str) -> bool + Send + Sync),
    ) -> Result<PartitionRows, ReadFailure> {
        use crate::domain::{cart::Cart, payment::Payment, stock::Stock, user::User};
        match read {
            PartitionRead::List(ListingQuery::UserOrders { user, after, limit }) => {
                // `user/inverted time/order id`: the entry is in the order's partition.
                let prefix = format!("{user}/");
                self.keys(
                    Index::UserOrders,
                    &prefix,
                    after.as_deref(),
                    *limit as usize + 1,
                    partitions,
                )
            }
            PartitionRead::List(ListingQuery::Reviews {
                prefix,
                after,
                limit,
            }) => self.keys(
                Index::Reviews,
                prefix,
                after.as_deref(),
                *limit as usize + 1,
                partitions,
            ),
            PartitionRead::List(ListingQuery::Machines { after, limit }) => self.keys(
                Index::Machines,
                "",
                after.as_deref(),
                *limit as usize + 1,
                partitions,
            ),
            PartitionRead::List(ListingQuery::Notifications {
                filter,
                after,
                limit,
            }) => {
                let page = crate::events::notify::history::page_in(
                    &self.journal,
                    &self.partitions(partitions),
                    filter,
                    after.as_deref(),
                    *limit as usize + 1,
                )
                .map_err(read_failure)?;
                Ok(PartitionRows::Rows(
                    page.into_iter()
                        .map(|(key, m)| Row {
                            key,
                            data: RowData::Notification(Box::new(m)),
                        })
                        .collect(),
                ))
            }
            PartitionRead::List(ListingQuery::DeadDeliveries {
                endpoint,
                after,
                limit,
            }) => {
                let page = crate::events::webhooks::dlq::dead_in(
                    &self.journal,
                    &self.partitions(partitions),
                    *endpoint,
                    after.as_deref(),
                    *limit as usize + 1,
                )
                .map_err(read_failure)?;
                Ok(records(page))
            }
            PartitionRead::List(ListingQuery::EndpointDeliveries { endpoint, limit }) => {
                let page = crate::events::webhooks::dlq::of_endpoint_in(
                    &self.journal,
                    &self.partitions(partitions),
                    *endpoint,
                    *limit as usize + 1,
                )
                .map_err(read_failure)?;
                Ok(records(page))
            }
            PartitionRead::List(ListingQuery::Products {
                q,
                categories,
                after,
                limit,
            }) => {
                let cursor = after
                    .as_deref()
                    .map(crate::domain::Sku::parse)
                    .transpose()
                    .map_err(|e| ReadFailure::Store(format!("bad cursor: {e}")))?;
                let page = self.catalog.search_where(
                    q.as_deref(),
                    categories.as_deref(),
                    // One more than the page, so the merge knows whether one follows.
                    *limit as usize + 1,
                    cursor.as_ref(),
                    &|sku| keep(EntityKind::Product, sku.as_str()),
                );
                Ok(PartitionRows::Rows(
                    page.items
                        .into_iter()
                        .map(|e| Row {
                            key: e.sku.to_string(),
                            data: RowData::Product(e.state),
                        })
                        .collect(),
                ))
            }
            PartitionRead::Projections => {
                let Some(runner) = self.projections.get() else {
                    return Err(ReadFailure::Unavailable {
                        kind: crate::router::UnavailableKind::ClusterJoining,
                        detail: "the projections are starting".into(),
                    });
                };
                let status = runner
                    .status_in(&self.partitions(partitions))
                    .map_err(read_failure)?;
                Ok(PartitionRows::Rows(
                    serde_json::to_vec(&status)
                        .ok()
                        .map(|b| Row {
                            key: String::new(),
                            data: RowData::Record(b),
                        })
                        .into_iter()
                        .collect(),
                ))
            }
            PartitionRead::Feed { cursor, limit } => {
                let cursor = crate::events::feed::Cursor(cursor.clone());
                let events = crate::events::feed::owner_events(
                    &self.journal,
                    &self.partitions(partitions),
                    &cursor,
                    *limit as usize,
                )
                .map_err(read_failure)?;
                Ok(PartitionRows::Rows(
                    events
                        .iter()
                        .filter_map(|e| serde_json::to_vec(e).ok())
                        .map(|b| Row {
                            key: String::new(),
                            data: RowData::Record(b),
                        })
                        .collect(),
                ))
            }
            PartitionRead::Events {
                kind,
                id,
                after_seq,
                limit,
            } => {
                let kind =
                    EntityKind::from_byte(*kind).ok_or_else(|| ReadFailure::Unavailable {
                        kind: crate::router::UnavailableKind::EntityUnavailable,
                        detail: format!("unknown entity kind {kind}"),
                    })?;
                if !keep(kind, id) {
                    return Ok(PartitionRows::Events(Vec::new()));
                }
                let (after, limit) = (*after_seq, *limit as usize);
                let evs = match kind {
                    EntityKind::Product => self.events::<Product>(id, after, limit),
                    EntityKind::Sku => self.events::<Stock>(id, after, limit),
                    EntityKind::Cart => self.events::<Cart>(id, after, limit),
                    EntityKind::Order => self.events::<Order>(id, after, limit),
                    EntityKind::Payment => self.events::<Payment>(id, after, limit),
                    EntityKind::User => self.events::<User>(id, after, limit),
                    EntityKind::Machine => self.events::<Machine>(id, after, limit),
                    // Email claims and sessions hold hashes of secrets, the webhook
                    // registry signing keys: never listed; templates have their route.
                    EntityKind::Email
                    | EntityKind::Session
                    | EntityKind::Webhook
                    | EntityKind::NotificationTemplate
                    | EntityKind::Preferences
                    | EntityKind::Promotion
                    | EntityKind::Redemption
                    | EntityKind::Category
                    | EntityKind::Review
                    | EntityKind::Location => Ok(Vec::new()),
                }?;
                Ok(PartitionRows::Events(evs))
            }
            PartitionRead::Exists { kind, id } => {
                let kind =
                    EntityKind::from_byte(*kind).ok_or_else(|| ReadFailure::Unavailable {
                        kind: crate::router::UnavailableKind::EntityUnavailable,
                        detail: format!("unknown entity kind {kind}"),
                    })?;
                let exists =
                    keep(kind, id) && self.journal.exists(kind, id).map_err(read_failure)?;
                Ok(PartitionRows::Exists(exists))
            }
        }
    }
}

/// Delivers machine commands to the session, wherever in the cluster it is: this
/// node's sessions first, else every other member is asked (a machine has at most one
/// session). Delivery is best effort; unacked commands are resent by the machine actor.
pub struct ClusterSink {
    pub sessions: Arc<crate::grpc::Sessions>,
    pub cluster: OnceLock<Cluster>,
}

impl CommandSink for ClusterSink {
    /// This node's session only; a session on another member ends at its next message,
    /// when the machine answers with the new secret hash (see `grpc::gateway`).
    fn revoke(&self, machine_id: &str) {
        self.sessions.revoke(machine_id);
    }

    fn push(&self, machine_id: &str, command_id: Uuid, command: &MachineCommand) -> bool {
        if self.sessions.push(machine_id, command_id, command) {
            return true;
        }
        let Some(cluster) = self.cluster.get().cloned() else {
            return false;
        };
        let Some(map) = cluster.map() else {
            return false;
        };
        let peers: Vec<String> = map
            .members
            .keys()
            .filter(|n| n.as_str() != cluster.name())
            .cloned()
            .collect();
        let (id, cmd) = (machine_id.to_owned(), command.clone());
        tokio::spawn(async move {
            let t = Duration::from_millis(cluster.config().call_timeout_ms);
            for peer in peers {
                let req = Request::PushMachine {
                    machine_id: id.clone(),
                    command_id,
                    command: cmd.clone(),
                };
                if let Ok(crate::cluster::wire::Response::Pushed(true)) =
                    cluster.call(&peer, req, t).await
                {
                    return;
                }
            }
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::partition::partition_of;
    use crate::store::{IndexOp, StoreOptions};

    fn store(dir: &std::path::Path) -> Store {
        let opts = StoreOptions {
            cache_capacity_bytes: 16 << 20,
            group_commit_max_batch: 64,
            group_commit_queue: 64,
            partitions: 4,
        };
        Store::open(dir, &opts).unwrap()
    }

    /// A node reads only its partitions' index entries (one range read per partition),
    /// and a page counts only those: `limit + 1` keys even when other partitions' keys
    /// come between them in the global order.
    #[tokio::test]
    async fn a_user_orders_read_keeps_only_the_asked_partitions_and_fills_the_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let orders: Vec<String> = (0..40u128)
            .map(|i| Uuid::from_u128(i * 7919 + 1).to_string())
            .collect();
        // Each order writes its own entry, so the entry is in the order's partition.
        for (i, o) in orders.iter().enumerate() {
            let put = IndexOp::Put(Index::UserOrders, format!("u1/{:04}/{o}", 100 - i));
            store
                .journal()
                .append::<Order>(o, 1, &[], None, &[put])
                .await
                .unwrap();
        }
        let other = IndexOp::Put(Index::UserOrders, format!("u2/0001/{}", orders[0]));
        store
            .journal()
            .append::<Order>(&orders[0], 1, &[], None, &[other])
            .await
            .unwrap();
        let reads = LocalReads {
            journal: store.journal().clone(),
            catalog: Arc::new(Catalog::default()),
            projections: Arc::new(OnceLock::new()),
        };
        let mine = |kind: EntityKind, id: &str| partition_of(kind, id, 4) < 2;
        let expected: Vec<String> = (0..40)
            .rev()
            .map(|i| format!("u1/{:04}/{}", 100 - i, orders[i]))
            .filter(|k| mine(EntityKind::Order, k.rsplit('/').next().unwrap()))
            .collect();
        assert!(
            expected.len() > 5 && expected.len() < 40,
            "{}",
            expected.len()
        );
        let read = |after: Option<String>, limit| {
            let q = PartitionRead::List(ListingQuery::UserOrders {
                user: "u1".into(),
                after,
                limit,
            });
            match reads.read(&q, Some(&[0, 1]), &mine).unwrap() {
                PartitionRows::Rows(r) => r.into_iter().map(|r| r.key).collect::<Vec<_>>(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(read(None, 100), expected, "every kept key, none of u2's");
        assert_eq!(read(None, 3), expected[..4], "limit + 1 kept keys");
        assert_eq!(read(Some(expected[3].clone()), 1), expected[4..6]);
        let exists = PartitionRead::Exists {
            kind: EntityKind::Order.byte(),
            id: orders[1].clone(),
        };
        assert_eq!(
            reads.read(&exists, None, &|_, _| true).unwrap(),
            PartitionRows::Exists(false),
            "index entries are not events"
        );
    }
}
