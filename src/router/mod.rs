//! The router: the only way to reach an entity. Callers name a `(kind, id)` and a
//! command; the router finds (or activates) the owner and asks it with a deadline.
//!
//! With a cluster, `(kind, id)` → partition → owner node: a local owner is asked
//! directly (through its partition's gate), a remote owner through its node's agent
//! ([`remote`]). Callers do not change, because they never hold an actor handle.

pub mod remote;

use crate::actors::{Applied, CommandReply, EntityMsg};
use crate::domain::{Aggregate, EntityKind, Rejection};
use crate::supervision::kind::ActivationError;
use crate::supervision::KindRuntime;
use ractor::rpc::CallResult;
use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a routed request did not get an answer from its entity.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("the entity did not answer in time")]
    Timeout,
    #[error("the entity is unavailable: {reason}")]
    Unavailable {
        retry_after: Duration,
        reason: String,
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
                retry_after,
                reason,
            } => RouteError::Unavailable {
                retry_after,
                reason,
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
}

/// How many times a request is re-routed when its actor stopped between lookup and send.
const MAX_REROUTES: usize = 3;

pub struct RouterBuilder {
    kinds: HashMap<EntityKind, Arc<dyn Any + Send + Sync>>,
    remote: HashMap<EntityKind, Arc<dyn remote::RemoteKind>>,
    cluster: Option<crate::cluster::Cluster>,
    ask_timeout: Duration,
    store: Option<crate::store::StoreHealth>,
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
    pub fn build(self) -> Router {
        Router {
            inner: Arc::new(Inner {
                kinds: self.kinds,
                remote: self.remote,
                cluster: self.cluster,
                ask_timeout: self.ask_timeout,
                store: self.store,
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
        self.command_at::<A>(id, cmd, false).await
    }

    pub(crate) async fn command_at<A: Aggregate>(
        &self,
        id: &str,
        cmd: A::Command,
        forwarded: bool,
    ) -> Result<Applied<A>, RouteError> {
        self.store_ok()?;
        let op = self.cluster_op(|| {
            crate::cluster::wire::EntityOp::Command(crate::store::codec::encode(&cmd))
        });
        let reply = self
            .routed::<A, CommandReply<A>>(
                id,
                self.inner.ask_timeout,
                remote::Access {
                    write: true,
                    forwarded,
                    op,
                },
                move |r| EntityMsg::Command(cmd.clone(), r),
            )
            .await?;
        reply.map_err(RouteError::Rejected)
    }

    /// The current state of `(A::KIND, id)`.
    pub async fn get<A: Aggregate>(&self, id: &str) -> Result<A::State, RouteError> {
        self.get_at::<A>(id, false).await
    }

    pub(crate) async fn get_at<A: Aggregate>(
        &self,
        id: &str,
        forwarded: bool,
    ) -> Result<A::State, RouteError> {
        let op = self.cluster_op(|| crate::cluster::wire::EntityOp::Get);
        let access = remote::Access {
            write: false,
            forwarded,
            op,
        };
        self.routed::<A, _>(id, self.inner.ask_timeout, access, EntityMsg::Get)
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

    async fn ask<A, R>(
        &self,
        id: &str,
        timeout: Duration,
        build: impl Fn(ractor::RpcReplyPort<R>) -> EntityMsg<A>,
    ) -> Result<R, RouteError>
    where
        A: Aggregate,
        R: Send + 'static,
    {
        let rt = self.runtime::<A>();
        let deadline = tokio::time::Instant::now() + timeout;
        for _ in 0..MAX_REROUTES {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let actor = rt.actor(id, remaining).await?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            match actor.call(&build, Some(remaining)).await {
                Ok(CallResult::Success(r)) => return Ok(r),
                Ok(CallResult::Timeout) => return Err(RouteError::Timeout),
                // The actor took the message and died before answering: the outcome is
                // unknown, so say so rather than retry a possibly applied command.
                Ok(CallResult::SenderError) => {
                    self.store_ok()?;
                    return Err(RouteError::Unavailable {
                        retry_after: Duration::from_secs(1),
                        reason: "entity_restarting: the entity failed while handling the request"
                            .into(),
                    });
                }
                // The actor stopped (passivated) before admitting the message: nothing
                // was applied, so route again to its successor.
                Err(_) => continue,
            }
        }
        Err(RouteError::Unavailable {
            retry_after: Duration::from_secs(1),
            reason: "entity_unavailable: the entity kept stopping".into(),
        })
    }

    /// Test-only fault hook: makes the entity's actor panic.
    #[cfg(test)]
    pub async fn inject_panic<A: Aggregate>(&self, id: &str) -> Result<(), RouteError> {
        let actor = self
            .runtime::<A>()
            .actor(id, self.inner.ask_timeout)
            .await?;
        actor
            .send_message(EntityMsg::Panic)
            .map_err(|_| RouteError::Timeout)
    }
}
