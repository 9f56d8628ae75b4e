//! The remote path: forwarding a request to its owner's agent with the caller's
//! remaining deadline (the placement and the hold while a partition is handed off are
//! [`Router::route`]'s), and running requests forwarded here.
//!
//! A forwarded request is never forwarded again: a node that no longer owns the entity
//! answers `NotOwner` with its epoch, and the caller refreshes its map and retries within
//! its deadline. Every failure reaches the caller as a [`RouteError`]; nothing is
//! dropped silently.

use super::{RouteError, Router, UnavailableKind as K};
use crate::actors::CommandReply;
use crate::cluster::transport::CallError;
use crate::cluster::wire::{EntityOp, RemoteError, Request, Response};
use crate::domain::Aggregate;
use crate::store::codec;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// How a request reaches its entity.
pub struct Access {
    pub write: bool,
    /// Forwarded here by another node: run it only if this node owns the entity.
    pub forwarded: bool,
    /// The request as it travels to another node (only with a cluster).
    pub op: Option<EntityOp>,
}

/// A request on its way to the owner `node` (placed there at `epoch`).
pub(super) struct Sent<'a> {
    pub node: &'a str,
    pub epoch: u64,
    pub op: &'a EntityOp,
    /// What is left of the caller's deadline.
    pub remaining: Duration,
    pub write: bool,
}

/// How a forwarded request ended.
pub(super) enum Forwarded<R> {
    /// The owner's answer, or a failure to give the caller now.
    Answer(Result<R, RouteError>),
    /// The partition is moving or its owner is unreachable: look again until the
    /// deadline (then answer 503 `kind`).
    Hold { kind: K, detail: String },
}

impl Router {
    /// Forwards a request to its owner's agent with the caller's remaining deadline.
    pub(super) async fn forward<A, R>(
        &self,
        cluster: &crate::cluster::Cluster,
        id: &str,
        request: Sent<'_>,
    ) -> Forwarded<R>
    where
        A: Aggregate,
        R: DeserializeOwned,
    {
        let Sent {
            node,
            epoch,
            op,
            remaining,
            write,
        } = request;
        let held = |kind: K, detail: String| Forwarded::Hold { kind, detail };
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
        let reply = cluster.call(node, req, wait).await;
        metrics::histogram!("emporium_cluster_remote_ask_seconds")
            .record(sent.elapsed().as_secs_f64());
        match reply {
            Ok(Response::Entity(Ok(bytes))) => Forwarded::Answer(
                codec::decode::<R>(&bytes).map_err(|e| RouteError::Unavailable {
                    kind: K::EntityUnavailable,
                    retry_after: Duration::from_secs(1),
                    detail: format!("undecodable reply from {node}: {e}"),
                }),
            ),
            Ok(Response::Entity(Err(RemoteError::Timeout))) => {
                Forwarded::Answer(Err(RouteError::Timeout))
            }
            Ok(Response::Entity(Err(RemoteError::NotOwner { epoch: theirs }))) => {
                if theirs > cluster.epoch() {
                    let t = Duration::from_millis(cluster.config().call_timeout_ms);
                    if let Ok(Response::Map(Some(m))) =
                        cluster.call(node, Request::GetMap, t.min(remaining)).await
                    {
                        cluster.adopt(m).await;
                    }
                }
                held(K::PartitionMoving, format!("{node} no longer owns {id}"))
            }
            Ok(Response::Entity(Err(RemoteError::Unavailable {
                kind: K::PartitionMoving,
                detail,
                ..
            }))) => held(K::PartitionMoving, detail),
            Ok(Response::Entity(Err(RemoteError::Unavailable {
                kind,
                retry_after_ms,
                detail,
            }))) => Forwarded::Answer(Err(RouteError::Unavailable {
                kind,
                retry_after: Duration::from_millis(retry_after_ms),
                detail,
            })),
            Ok(other) => Forwarded::Answer(Err(RouteError::Unavailable {
                kind: K::EntityUnavailable,
                retry_after: Duration::from_secs(1),
                detail: format!("unexpected reply from {node}: {other:?}"),
            })),
            // A read that timed out on the way changed nothing; the outcome of
            // a command is unknown (it may have been applied at the owner).
            Err(CallError::Timeout(_)) if !write => Forwarded::Answer(Err(RouteError::Timeout)),
            Err(CallError::Timeout(_)) => Forwarded::Answer(Err(RouteError::Unavailable {
                kind: K::OutcomeUnknown,
                retry_after: Duration::from_secs(1),
                detail: format!("{node} did not answer in time"),
            })),
            Err(e) => held(K::PartitionUnavailable, e.to_string()),
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

    /// Stops every live actor of partition `p`, in every kind.
    pub async fn drain(&self, p: u32) {
        for k in self.inner.remote.values() {
            k.drain(self, p, self.inner.ask_timeout).await;
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
    fn drain<'a>(&'a self, router: &'a Router, p: u32, timeout: Duration) -> BoxFuture<'a, ()>;
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

    fn drain<'a>(&'a self, router: &'a Router, p: u32, timeout: Duration) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            router.runtime::<A>().drain_partition(p, timeout).await;
        })
    }
}
