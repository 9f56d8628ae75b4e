//! The application's side of the cluster ([`crate::cluster::node::Local`]): running
//! forwarded requests through the router, stopping a partition's actors for a handoff,
//! keeping the catalog view and the resumed sagas in step with the partitions this node
//! owns, and delivering machine commands to sessions on this node.

use crate::actors::catalog::Catalog;
use crate::actors::machine::CommandSink;
use crate::cluster::wire::{EntityOp, RemoteError, Request};
use crate::cluster::Cluster;
use crate::domain::machine::{Machine, MachineCommand};
use crate::domain::order::Order;
use crate::domain::product::Product;
use crate::domain::EntityKind;
use crate::router::Router;
use crate::store::{Index, Store};
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

    fn drain(&self, owned: crate::cluster::node::Selector) -> BoxFuture<'static, ()> {
        let router = self.router.clone();
        Box::pin(async move { router.drain(&*owned).await })
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

    fn push_machine(&self, machine_id: &str, command_id: Uuid, command: &MachineCommand) -> bool {
        self.sessions.push(machine_id, command_id, command)
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
