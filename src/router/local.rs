//! The local path: a request for an entity this node owns goes to its kind's runtime,
//! which finds (or activates) the live actor; the request is admitted against
//! `actors.max_pending`, carries its admission ticket, and is waited for with the
//! caller's deadline (see the module doc of [`super`] for the rules). A failed store
//! refuses commands here, before anything is queued.

use super::{RouteError, Router, UnavailableKind, STARTED_GRACE};
use crate::actors::admission::{Claim, Ticket};
use crate::actors::EntityMsg;
use crate::domain::Aggregate;
use std::time::Duration;

/// How many times a request is re-routed when its actor stopped between lookup and send.
const MAX_REROUTES: usize = 3;

/// `Retry-After` of a request refused because its entity is at `actors.max_pending`.
const OVERLOADED_RETRY: Duration = Duration::from_secs(1);

/// How a wait for an entity's reply ended, when it did not end with the reply.
enum Unanswered {
    /// The message was dropped before it started: nothing was applied.
    NotStarted,
    Failed(RouteError),
}

impl Router {
    /// A failed store takes no command: refused here, before anything is queued. (A
    /// forwarded command is refused by the owner's router, whose store it would hit.)
    pub(super) fn store_ok(&self) -> Result<(), RouteError> {
        match self.inner.store.as_ref().and_then(|h| h.reason()) {
            Some(reason) => Err(RouteError::StoreFailed(reason)),
            None => Ok(()),
        }
    }

    /// Asks the live actor of `id`, re-routing a message its actor dropped unstarted.
    pub(super) async fn ask<A, R>(
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
