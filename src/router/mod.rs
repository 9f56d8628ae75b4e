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
//! directly (through its partition's gate), a remote owner through its node's agent
//! ([`remote`]). Callers do not change, because they never hold an actor handle.

pub mod listing;
pub mod remote;
pub mod unavailable;

pub use unavailable::UnavailableKind;

use crate::actors::admission::{Claim, Ticket};
use crate::actors::{Applied, CommandReply, EntityMsg};
use crate::domain::{Aggregate, EntityKind, Rejection};
use crate::supervision::kind::ActivationError;
use crate::supervision::KindRuntime;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a routed request did not get an answer from its entity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The deadline passed and the request was not applied (it never will be).
    #[error("the entity did not answer in time; the request was not applied")]
    Timeout,
    /// The entity has `actors.max_pending` messages in flight; nothing was queued.
    #[error("the entity has too many requests in flight")]
    Overloaded { retry_after: Duration },
    #[error("the entity is unavailable ({kind}): {detail}")]
    Unavailable {
        kind: UnavailableKind,
        retry_after: Duration,
        detail: String,
    },
    /// A forwarded request reached a node that does not own the entity at `epoch`.
    #[error("this node does not own the entity at epoch {epoch}")]
    NotOwner { epoch: u64 },
    /// The owner's store failed (fail-stop): no write is acknowledged until it restarts.
    #[error("the store failed: {0}")]
    StoreFailed(String),
}

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
    cluster: Option<crate::cluster::Cluster>,
    ask_timeout: Duration,
    store: Option<crate::store::StoreHealth>,
    max_pending: usize,
    listings: Option<Arc<dyn listing::ListingSource>>,
}

/// How many times a request is re-routed when its actor stopped between lookup and send.
const MAX_REROUTES: usize = 3;

/// How long past its deadline a caller waits for a command its entity already started,
/// so that an applied command's answer is not lost. Past it: 503 `outcome_unknown`.
pub const STARTED_GRACE: Duration = Duration::from_secs(5);

/// `Retry-After` of a request refused because its entity is at `actors.max_pending`.
const OVERLOADED_RETRY: Duration = Duration::from_secs(1);

/// Default of `actors.max_pending`.
pub const DEFAULT_MAX_PENDING: usize = 256;

/// How a wait for an entity's reply ended, when it did not end with the reply.
enum Unanswered {
    /// The message was dropped before it started: nothing was applied.
    NotStarted,
    Failed(RouteError),
}

pub struct RouterBuilder {
    kinds: HashMap<EntityKind, Arc<dyn Any + Send + Sync>>,
    remote: HashMap<EntityKind, Arc<dyn remote::RemoteKind>>,
    cluster: Option<crate::cluster::Cluster>,
    ask_timeout: Duration,
    store: Option<crate::store::StoreHealth>,
    max_pending: usize,
    listings: Option<Arc<dyn listing::ListingSource>>,
}

impl RouterBuilder {
    pub fn with<A: Aggregate>(mut self, rt: Arc<KindRuntime<A>>) -> Self {
        self.kinds.insert(A::KIND, rt);
        self.remote.insert(
            A::KIND,
            Arc::new(remote::Kind::<A>(std::marker::PhantomData)),
        );
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
    pub fn build(self) -> Router {
        Router {
            inner: Arc::new(Inner {
                kinds: self.kinds,
                remote: self.remote,
                cluster: self.cluster,
                ask_timeout: self.ask_timeout,
                store: self.store,
                max_pending: self.max_pending,
                listings: self.listings,
            }),
        }
    }
}

impl Router {
    pub fn builder(ask_timeout: Duration) -> RouterBuilder {
        RouterBuilder {
            kinds: HashMap::new(),
            remote: HashMap::new(),
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
            .routed::<A, CommandReply<A>>(
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
        self.routed::<A, _>(id, timeout, access, EntityMsg::Get)
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
            .routed::<A, _>(id, wait, access, EntityMsg::WaitSettled)
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

    /// A failed store takes no command: refused here, before anything is queued. (A
    /// forwarded command is refused by the owner's router, whose store it would hit.)
    fn store_ok(&self) -> Result<(), RouteError> {
        match self.inner.store.as_ref().and_then(|h| h.reason()) {
            Some(reason) => Err(RouteError::StoreFailed(reason)),
            None => Ok(()),
        }
    }

    fn cluster_op(
        &self,
        op: impl FnOnce() -> crate::cluster::wire::EntityOp,
    ) -> Option<crate::cluster::wire::EntityOp> {
        self.inner.cluster.as_ref().map(|_| op())
    }

    /// Asks the live actor of `id`, re-routing a message its actor dropped unstarted.
    async fn ask<A, R>(
        &self,
        id: &str,
        timeout: Duration,
        write: bool,
        build: impl Fn(ractor::RpcReplyPort<R>, Ticket) -> EntityMsg<A>,
    ) -> Result<R, RouteError>
    where
        A: Aggregate,
        R: Send + 'static,
    {
        let rt = self.runtime::<A>();
        let deadline = tokio::time::Instant::now() + timeout;
        for _ in 0..MAX_REROUTES {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                return Err(RouteError::Timeout);
            }
            let live = rt.actor(id, remaining).await?;
            let Some(pending) = live.pending.try_admit(self.inner.max_pending) else {
                metrics::counter!("emporium_entity_overloaded_total", "kind" => A::KIND.as_str())
                    .increment(1);
                return Err(RouteError::Overloaded {
                    retry_after: OVERLOADED_RETRY,
                });
            };
            let (ticket, claim) = Ticket::new(deadline, pending);
            let (tx, rx) = tokio::sync::oneshot::channel();
            // A send error means the actor stopped (passivated) before admitting the
            // message: nothing was applied, so route again to its successor.
            if live.actor.send_message(build(tx.into(), ticket)).is_err() {
                continue;
            }
            match Self::reply(rx, claim, deadline, write).await {
                Ok(r) => return Ok(r),
                Err(Unanswered::NotStarted) => continue,
                Err(Unanswered::Failed(e)) => {
                    // An entity that died on a failed store write says so.
                    self.store_ok()?;
                    return Err(e);
                }
            }
        }
        Err(RouteError::Unavailable {
            retry_after: Duration::from_secs(1),
            kind: UnavailableKind::EntityUnavailable,
            detail: "the entity kept stopping".into(),
        })
    }

    /// Waits for the reply to a sent message. At the deadline the message is abandoned
    /// (then it is never applied: 504), unless its entity already started it: a command
    /// is then waited for up to [`STARTED_GRACE`] more, so its answer is not lost.
    async fn reply<R>(
        mut rx: tokio::sync::oneshot::Receiver<R>,
        claim: Claim,
        deadline: tokio::time::Instant,
        write: bool,
    ) -> Result<R, Unanswered> {
        let restarting = || {
            Unanswered::Failed(RouteError::Unavailable {
                retry_after: Duration::from_secs(1),
                kind: UnavailableKind::EntityRestarting,
                detail: "the entity failed while handling the request; its outcome is unknown"
                    .into(),
            })
        };
        match tokio::time::timeout_at(deadline, &mut rx).await {
            Ok(Ok(r)) => return Ok(r),
            // Dropped unanswered: unstarted (its actor stopped, or it expired), or the
            // actor died while handling it and the outcome is unknown.
            Ok(Err(_)) if claim.abandon() => return Err(Unanswered::NotStarted),
            Ok(Err(_)) => return Err(restarting()),
            Err(_) if claim.abandon() || !write => {
                return Err(Unanswered::Failed(RouteError::Timeout))
            }
            Err(_) => {}
        }
        match tokio::time::timeout_at(deadline + STARTED_GRACE, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(restarting()),
            Err(_) => Err(Unanswered::Failed(RouteError::Unavailable {
                retry_after: Duration::from_secs(1),
                kind: UnavailableKind::OutcomeUnknown,
                detail: "the entity started the command but did not answer in time".into(),
            })),
        }
    }

    /// Test-only fault hook: makes the entity's actor panic.
    #[cfg(test)]
    pub async fn inject_panic<A: Aggregate>(&self, id: &str) -> Result<(), RouteError> {
        let live = self
            .runtime::<A>()
            .actor(id, self.inner.ask_timeout)
            .await?;
        live.actor
            .send_message(EntityMsg::Panic)
            .map_err(|_| RouteError::Timeout)
    }
}

#[cfg(test)]
mod tests;
