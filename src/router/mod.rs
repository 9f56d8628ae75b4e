//! The router: the only way to reach an entity. Callers name a `(kind, id)` and a
//! command; the router finds (or activates) the owner and asks it with a deadline.
//!
//! Deadlines and bounds: each entity admits at most `actors.max_pending` caller
//! messages in flight (more are refused with [`RouteError::Overloaded`] before anything
//! is queued). Every message carries an admission ticket with the caller's deadline; the
//! entity drops a message it dequeues too late, and a caller whose deadline passes
//! abandons its message unless the entity already started it. So [`RouteError::Timeout`]
//! always means "not applied"; a started command is waited for (up to
//! [`STARTED_GRACE`] past the deadline), and past that the answer is "outcome unknown".
//!
//! With a cluster, `(kind, id)` → partition → owner node: a local owner is asked
//! directly (through its partition's gate), a remote owner through its node's agent.
//! Callers do not change, because they never hold an actor handle.
//!
//! - this module: the public [`Router`], its builder, and [`Router::route`], the one
//!   dispatch between the two paths;
//! - [`local`]: the local path (the kind's runtime and registry, admission, the wait);
//! - [`remote`]: forwarding to the owner's agent, and serving requests forwarded here;
//! - [`client`]: the router as the [`EntityClient`](crate::actors::EntityClient) that
//!   behaviors reach other entities through, bound to every kind it hosts at build.

mod client;
pub mod listing;
mod local;
pub mod remote;
pub mod replay;

pub use crate::actors::unavailable::UnavailableKind;
pub use crate::actors::RouteError;

use crate::actors::{Applied, CommandReply, EntityClient, EntityMsg};
use crate::cluster::Placement;
use crate::domain::{Aggregate, EntityKind};
use crate::supervision::kind::ActivationError;
use crate::supervision::KindRuntime;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

impl From<ActivationError> for RouteError {
    fn from(e: ActivationError) -> Self {
        match e {
            ActivationError::Timeout => RouteError::Timeout,
            ActivationError::Unavailable {
                kind,
                retry_after,
                detail,
            } => RouteError::Unavailable {
                kind,
                retry_after,
                detail,
            },
        }
    }
}

/// Addresses entities by key. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    kinds: HashMap<EntityKind, Arc<dyn Any + Send + Sync>>,
    remote: HashMap<EntityKind, Arc<dyn remote::RemoteKind>>,
    clients: HashMap<EntityKind, Arc<dyn client::ClientKind>>,
    cluster: Option<crate::cluster::Cluster>,
    ask_timeout: Duration,
    store: Option<crate::store::StoreHealth>,
    max_pending: usize,
    listings: Option<Arc<dyn listing::ListingSource>>,
    replays: std::sync::OnceLock<Arc<dyn replay::ReplaySource>>,
}

/// How long past its deadline a caller waits for a command its entity already started,
/// so that an applied command's answer is not lost. Past it: 503 `outcome_unknown`.
pub const STARTED_GRACE: Duration = Duration::from_secs(5);

/// Default of `actors.max_pending`.
pub const DEFAULT_MAX_PENDING: usize = 256;

/// Pause between looks at a partition that is being handed off.
const HOLD: Duration = Duration::from_millis(20);

/// Gives one hosted kind the router as its entities' client.
type Bind = Box<dyn FnOnce(Arc<dyn EntityClient>) + Send>;

pub struct RouterBuilder {
    kinds: HashMap<EntityKind, Arc<dyn Any + Send + Sync>>,
    remote: HashMap<EntityKind, Arc<dyn remote::RemoteKind>>,
    clients: HashMap<EntityKind, Arc<dyn client::ClientKind>>,
    binds: Vec<Bind>,
    cluster: Option<crate::cluster::Cluster>,
    ask_timeout: Duration,
    store: Option<crate::store::StoreHealth>,
    max_pending: usize,
    listings: Option<Arc<dyn listing::ListingSource>>,
}

impl RouterBuilder {
    pub fn with<A: Aggregate>(mut self, rt: Arc<KindRuntime<A>>) -> Self {
        self.kinds.insert(A::KIND, rt.clone());
        self.remote.insert(
            A::KIND,
            Arc::new(remote::Kind::<A>(std::marker::PhantomData)),
        );
        self.clients.insert(
            A::KIND,
            Arc::new(client::Typed::<A>(std::marker::PhantomData)),
        );
        self.binds.push(Box::new(move |c| rt.bind_client(c)));
        self
    }
    /// Hands the built router, as an [`EntityClient`], to a component built before it
    /// (the payment gateway, whose entities this router hosts).
    pub fn bind(mut self, bind: impl FnOnce(Arc<dyn EntityClient>) + Send + 'static) -> Self {
        self.binds.push(Box::new(bind));
        self
    }
    /// Routes through `cluster`: entities owned elsewhere are forwarded to their owner.
    pub fn cluster(mut self, cluster: Option<crate::cluster::Cluster>) -> Self {
        self.cluster = cluster;
        self
    }
    /// Refuses local commands once `health` has failed (fail-stop).
    pub fn store_health(mut self, health: crate::store::StoreHealth) -> Self {
        self.store = Some(health);
        self
    }
    /// Where this node reads listings and journals for the partitions it owns.
    pub fn listings(mut self, source: Arc<dyn listing::ListingSource>) -> Self {
        self.listings = Some(source);
        self
    }
    /// Caller messages each entity admits in flight (`actors.max_pending`).
    pub fn max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }
    /// The router, bound as the client of every kind it hosts (through a weak handle,
    /// so entities do not keep a dropped router alive).
    pub fn build(self) -> Router {
        let ask_timeout = self.ask_timeout;
        let binds = self.binds;
        let inner = Arc::new_cyclic(|weak| {
            let handle: Arc<dyn EntityClient> = Arc::new(client::WeakRouter {
                inner: weak.clone(),
                ask_timeout,
            });
            for bind in binds {
                bind(handle.clone());
            }
            Inner {
                kinds: self.kinds,
                remote: self.remote,
                clients: self.clients,
                cluster: self.cluster,
                ask_timeout,
                store: self.store,
                max_pending: self.max_pending,
                listings: self.listings,
                replays: std::sync::OnceLock::new(),
            }
        });
        Router { inner }
    }
}

impl Router {
    pub fn builder(ask_timeout: Duration) -> RouterBuilder {
        RouterBuilder {
            kinds: HashMap::new(),
            remote: HashMap::new(),
            clients: HashMap::new(),
            binds: Vec::new(),
            cluster: None,
            ask_timeout,
            store: None,
            max_pending: DEFAULT_MAX_PENDING,
            listings: None,
        }
    }

    pub fn ask_timeout(&self) -> Duration {
        self.inner.ask_timeout
    }

    /// The runtime of kind `A`. Panics only if the kind was never registered, which is
    /// a wiring bug caught by every test that starts the app.
    pub fn runtime<A: Aggregate>(&self) -> Arc<KindRuntime<A>> {
        self.inner
            .kinds
            .get(&A::KIND)
            .and_then(|k| k.clone().downcast::<KindRuntime<A>>().ok())
            .unwrap_or_else(|| panic!("kind {} is not registered with the router", A::KIND))
    }

    pub fn cluster(&self) -> Option<&crate::cluster::Cluster> {
        self.inner.cluster.as_ref()
    }

    /// Sends a command to `(A::KIND, id)` and waits for its (durable) outcome.
    pub async fn command<A: Aggregate>(
        &self,
        id: &str,
        cmd: A::Command,
    ) -> Result<Applied<A>, RouteError> {
        self.command_at::<A>(id, cmd, self.inner.ask_timeout, false)
            .await
    }

    /// `timeout` is the caller's: the ask timeout here, the forwarding caller's
    /// remaining deadline for a forwarded request.
    pub(crate) async fn command_at<A: Aggregate>(
        &self,
        id: &str,
        cmd: A::Command,
        timeout: Duration,
        forwarded: bool,
    ) -> Result<Applied<A>, RouteError> {
        self.store_ok()?;
        let op = self.cluster_op(|| {
            crate::cluster::wire::EntityOp::Command(crate::store::codec::encode(&cmd))
        });
        let reply = self
            .route::<A, CommandReply<A>>(
                id,
                timeout,
                remote::Access {
                    write: true,
                    forwarded,
                    op,
                },
                move |r, t| EntityMsg::Command(cmd.clone(), r, t),
            )
            .await?;
        reply.map_err(RouteError::Rejected)
    }

    /// The current state of `(A::KIND, id)`.
    pub async fn get<A: Aggregate>(&self, id: &str) -> Result<A::State, RouteError> {
        self.get_at::<A>(id, self.inner.ask_timeout, false).await
    }

    pub(crate) async fn get_at<A: Aggregate>(
        &self,
        id: &str,
        timeout: Duration,
        forwarded: bool,
    ) -> Result<A::State, RouteError> {
        let op = self.cluster_op(|| crate::cluster::wire::EntityOp::Get);
        let access = remote::Access {
            write: false,
            forwarded,
            op,
        };
        self.route::<A, _>(id, timeout, access, EntityMsg::Get)
            .await
    }

    /// The state once the entity has settled, or `None` if it did not within `wait`.
    pub async fn wait_settled<A: Aggregate>(
        &self,
        id: &str,
        wait: Duration,
    ) -> Result<Option<A::State>, RouteError> {
        self.wait_settled_at::<A>(id, wait, false).await
    }

    pub(crate) async fn wait_settled_at<A: Aggregate>(
        &self,
        id: &str,
        wait: Duration,
        forwarded: bool,
    ) -> Result<Option<A::State>, RouteError> {
        let op = self.cluster_op(|| crate::cluster::wire::EntityOp::WaitSettled);
        let access = remote::Access {
            write: false,
            forwarded,
            op,
        };
        match self
            .route::<A, _>(id, wait, access, EntityMsg::WaitSettled)
            .await
        {
            Ok(s) => Ok(Some(s)),
            Err(RouteError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Activates `(A::KIND, id)` without a request (used to resume sagas at start-up).
    /// With a cluster, only an entity this node owns is activated.
    pub async fn activate<A: Aggregate>(&self, id: &str) -> Result<(), RouteError> {
        if let Some(c) = &self.inner.cluster {
            if !c.owns(A::KIND, id) {
                return Ok(());
            }
        }
        self.runtime::<A>()
            .actor(id, self.inner.ask_timeout)
            .await?;
        Ok(())
    }

    /// Why this node's store failed (fail-stop), if it did.
    pub fn store_failure(&self) -> Option<String> {
        self.inner.store.as_ref().and_then(|h| h.reason())
    }

    fn cluster_op(
        &self,
        op: impl FnOnce() -> crate::cluster::wire::EntityOp,
    ) -> Option<crate::cluster::wire::EntityOp> {
        self.inner.cluster.as_ref().map(|_| op())
    }

    /// The one dispatch: without a cluster every entity is local ([`local`]); with one,
    /// the placement of `(A::KIND, id)` says local (through its partition's gate),
    /// remote ([`remote`]: forwarded to the owner), hold (a handoff is moving it: look
    /// again until the deadline) or refuse.
    async fn route<A, R>(
        &self,
        id: &str,
        timeout: Duration,
        access: remote::Access,
        build: impl Fn(ractor::RpcReplyPort<R>, crate::actors::admission::Ticket) -> EntityMsg<A>,
    ) -> Result<R, RouteError>
    where
        A: Aggregate,
        R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    {
        let (Some(cluster), Some(op)) = (self.inner.cluster.as_ref(), access.op) else {
            return self.ask::<A, R>(id, timeout, access.write, build).await;
        };
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let held = |kind: UnavailableKind, detail: String| -> Result<(), RouteError> {
                if remaining <= HOLD {
                    Err(RouteError::Unavailable {
                        kind,
                        retry_after: Duration::from_secs(1),
                        detail,
                    })
                } else {
                    Ok(())
                }
            };
            match cluster.place(A::KIND, id, access.write) {
                Placement::Local(guard) => {
                    let r = self.ask::<A, R>(id, remaining, access.write, &build).await;
                    drop(guard);
                    return r;
                }
                Placement::Refuse {
                    kind,
                    detail,
                    retry_after,
                } => {
                    return Err(RouteError::Unavailable {
                        kind,
                        retry_after,
                        detail,
                    })
                }
                Placement::Hold { detail } => held(UnavailableKind::PartitionMoving, detail)?,
                Placement::Remote { node, epoch } => {
                    if access.forwarded {
                        return Err(RouteError::NotOwner { epoch });
                    }
                    let sent = remote::Sent {
                        node: &node,
                        epoch,
                        op: &op,
                        remaining,
                        write: access.write,
                    };
                    match self.forward::<A, R>(cluster, id, sent).await {
                        remote::Forwarded::Answer(r) => return r,
                        remote::Forwarded::Hold { kind, detail } => held(kind, detail)?,
                    }
                }
            }
            tokio::time::sleep(HOLD.min(remaining)).await;
        }
    }
}

#[cfg(test)]
mod tests;
