//! Routing across nodes: the placement decision for every request, forwarding to the
//! owner's agent with the caller's remaining deadline, holding requests while their
//! partition is handed off, and running requests forwarded here.
//!
//! A forwarded request is never forwarded again: a node that no longer owns the entity
//! answers `NotOwner` with its epoch, and the caller refreshes its map and retries within
//! its deadline. Every failure reaches the caller as a [`RouteError`]; nothing is
//! dropped silently.

use super::{RouteError, Router, UnavailableKind as K};
use crate::actors::{CommandReply, EntityMsg};
use crate::cluster::transport::CallError;
use crate::cluster::wire::{EntityOp, RemoteError, Request, Response};
use crate::cluster::Placement;
use crate::domain::Aggregate;
use crate::store::codec;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// How a request reaches its entity.
pub struct Access {
    pub write: bool,
    /// Forwarded here by another node: run it only if this node owns the entity.
    pub forwarded: bool,
    /// The request as it travels to another node (only with a cluster).
    pub op: Option<EntityOp>,
}

/// Pause between looks at a partition that is being handed off.
const HOLD: Duration = Duration::from_millis(20);

impl Router {
    pub(super) async fn routed<A, R>(
        &self,
        id: &str,
        timeout: Duration,
        access: Access,
        build: impl Fn(ractor::RpcReplyPort<R>, crate::actors::admission::Ticket) -> EntityMsg<A>,
    ) -> Result<R, RouteError>
    where
        A: Aggregate,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        let (Some(cluster), Some(op)) = (self.inner.cluster.as_ref(), access.op) else {
            return self.ask::<A, R>(id, timeout, access.write, build).await;
        };
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let held = |kind: K, detail: String| -> Result<(), RouteError> {
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
                Placement::Hold { detail } => held(K::PartitionMoving, detail)?,
                Placement::Remote { node, epoch } => {
                    if access.forwarded {
                        return Err(RouteError::NotOwner { epoch });
                    }
                    let req = Request::Entity {
                        kind: A::KIND.byte(),
                        id: id.to_owned(),
                        op: op.clone(),
                        timeout_ms: crate::cluster::wire::millis(remaining),
                        epoch,
                    };
                    // The owner answers within `remaining`, or within `STARTED_GRACE` more
                    // for a command it started; the margin covers the trip.
                    let wait = remaining + super::STARTED_GRACE + Duration::from_millis(200);
                    let sent = std::time::Instant::now();
                    let reply = cluster.call(&node, req, wait).await;
                    metrics::histogram!("emporium_cluster_remote_ask_seconds")
                        .record(sent.elapsed().as_secs_f64());
                    match reply {
                        Ok(Response::Entity(Ok(bytes))) => {
                            return codec::decode::<R>(&bytes).map_err(|e| {
                                RouteError::Unavailable {
                                    kind: K::EntityUnavailable,
                                    retry_after: Duration::from_secs(1),
                                    detail: format!("undecodable reply from {node}: {e}"),
                                }
                            })
                        }
                        Ok(Response::Entity(Err(RemoteError::Timeout))) => {
                            return Err(RouteError::Timeout)
                        }
                        Ok(Response::Entity(Err(RemoteError::NotOwner { epoch: theirs }))) => {
                            if theirs > cluster.epoch() {
                                let t = Duration::from_millis(cluster.config().call_timeout_ms);
                                if let Ok(Response::Map(Some(m))) =
                                    cluster.call(&node, Request::GetMap, t.min(remaining)).await
                                {
                                    cluster.adopt(m).await;
                                }
                            }
                            held(K::PartitionMoving, format!("{node} no longer owns {id}"))?;
                        }
                        Ok(Response::Entity(Err(RemoteError::Unavailable {
                            kind: K::PartitionMoving,
                            detail,
                            ..
                        }))) => held(K::PartitionMoving, detail)?,
                        Ok(Response::Entity(Err(RemoteError::Unavailable {
                            kind,
                            retry_after_ms,
                            detail,
                        }))) => {
                            return Err(RouteError::Unavailable {
                                kind,
                                retry_after: Duration::from_millis(retry_after_ms),
                                detail,
                            });
                        }
                        Ok(other) => {
                            return Err(RouteError::Unavailable {
                                kind: K::EntityUnavailable,
                                retry_after: Duration::from_secs(1),
                                detail: format!("unexpected reply from {node}: {other:?}"),
                            })
                        }
                        // A read that timed out on the way changed nothing; the outcome of
                        // a command is unknown (it may have been applied at the owner).
                        Err(CallError::Timeout(_)) if !access.write => {
                            return Err(RouteError::Timeout)
                        }
                        Err(CallError::Timeout(_)) => {
                            return Err(RouteError::Unavailable {
                                kind: K::OutcomeUnknown,
                                retry_after: Duration::from_secs(1),
                                detail: format!("{node} did not answer in time"),
                            })
                        }
                        Err(e) => held(K::PartitionUnavailable, e.to_string())?,
                    }
                }
            }
            tokio::time::sleep(HOLD.min(remaining)).await;
        }
    }

    /// Runs a request another node forwarded here.
    pub async fn serve_forwarded(
        &self,
        kind: crate::domain::EntityKind,
        id: String,
        op: EntityOp,
        timeout: Duration,
    ) -> Result<Vec<u8>, RemoteError> {
        let Some(k) = self.inner.remote.get(&kind).cloned() else {
            return Err(RemoteError::Unavailable {
                kind: K::EntityUnavailable,
                retry_after_ms: 1000,
                detail: format!("kind {kind} is not served here"),
            });
        };
        k.run(self.clone(), id, op, timeout).await
    }

    /// Stops every live actor `owned` selects, in every kind.
    pub async fn drain(
        &self,
        owned: &(dyn Fn(crate::domain::EntityKind, &str) -> bool + Send + Sync),
    ) {
        for k in self.inner.remote.values() {
            k.drain(self, owned, self.inner.ask_timeout).await;
        }
    }
}

fn to_remote(e: RouteError) -> RemoteError {
    match e {
        RouteError::Timeout => RemoteError::Timeout,
        RouteError::NotOwner { epoch } => RemoteError::NotOwner { epoch },
        RouteError::Overloaded { retry_after } => RemoteError::Unavailable {
            kind: K::Overloaded,
            retry_after_ms: crate::cluster::wire::millis(retry_after),
            detail: "the entity has too many requests in flight".into(),
        },
        RouteError::Unavailable {
            kind,
            retry_after,
            detail,
        } => RemoteError::Unavailable {
            kind,
            retry_after_ms: crate::cluster::wire::millis(retry_after),
            detail,
        },
        RouteError::StoreFailed(detail) => RemoteError::Unavailable {
            kind: K::StoreFailed,
            retry_after_ms: 5000,
            detail,
        },
        RouteError::Rejected(r) => RemoteError::Unavailable {
            kind: K::EntityUnavailable,
            retry_after_ms: 0,
            detail: format!("unexpected rejection {r}"),
        },
    }
}

/// One kind's side of forwarding, erased over the aggregate type.
pub trait RemoteKind: Send + Sync + 'static {
    fn run(
        &self,
        router: Router,
        id: String,
        op: EntityOp,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, RemoteError>>;
    fn drain<'a>(
        &'a self,
        router: &'a Router,
        owned: &'a (dyn Fn(crate::domain::EntityKind, &str) -> bool + Send + Sync),
        timeout: Duration,
    ) -> BoxFuture<'a, ()>;
}

pub struct Kind<A>(pub std::marker::PhantomData<fn() -> A>);

impl<A: Aggregate> RemoteKind for Kind<A> {
    fn run(
        &self,
        router: Router,
        id: String,
        op: EntityOp,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u8>, RemoteError>> {
        Box::pin(async move {
            match op {
                EntityOp::Command(bytes) => {
                    let cmd: A::Command =
                        codec::decode(&bytes).map_err(|e| RemoteError::Unavailable {
                            kind: K::EntityUnavailable,
                            retry_after_ms: 0,
                            detail: format!("undecodable command: {e}"),
                        })?;
                    let reply: CommandReply<A> =
                        match router.command_at::<A>(&id, cmd, timeout, true).await {
                            Ok(applied) => Ok(applied),
                            Err(RouteError::Rejected(r)) => Err(r),
                            Err(e) => return Err(to_remote(e)),
                        };
                    Ok(codec::encode(&reply))
                }
                EntityOp::Get => router
                    .get_at::<A>(&id, timeout, true)
                    .await
                    .map(|s| codec::encode(&s))
                    .map_err(to_remote),
                EntityOp::WaitSettled => {
                    match router.wait_settled_at::<A>(&id, timeout, true).await {
                        Ok(Some(s)) => Ok(codec::encode(&s)),
                        Ok(None) => Err(RemoteError::Timeout),
                        Err(e) => Err(to_remote(e)),
                    }
                }
                EntityOp::Activate => router
                    .activate::<A>(&id)
                    .await
                    .map(|()| codec::encode(&()))
                    .map_err(to_remote),
            }
        })
    }

    fn drain<'a>(
        &'a self,
        router: &'a Router,
        owned: &'a (dyn Fn(crate::domain::EntityKind, &str) -> bool + Send + Sync),
        timeout: Duration,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let select = |id: &str| owned(A::KIND, id);
            router.runtime::<A>().drain_where(&select, timeout).await;
        })
    }
}
