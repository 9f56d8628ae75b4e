//! Replays of dead letters (a webhook delivery, an endpoint's whole DLQ, a notification
//! message) and of a projection from the start of the logs (a reset), on the nodes that
//! own them, from whichever node was asked: the write stays with the partition's one
//! writer, as every other write does.
//!
//! A delivery's id names its partition, so the replay goes to that partition's owner only;
//! an endpoint's replay and a message's (whose id does not name its partition) go to every
//! owner, each acting on the partitions it owns, and the counts add up. The work itself is
//! the application's [`ReplaySource`] (the dead-letter families are the projections'), run
//! under each partition's gate there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::Router;
use crate::cluster::wire::{Request, Response};

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplayOp {
    /// One dead webhook delivery, by its record id (`<partition>.<hex key>`).
    Delivery { partition: u32, id: String },
    /// Every dead delivery of an endpoint.
    Endpoint { endpoint: uuid::Uuid },
    /// One dead notification message, by id.
    Notification { id: String },
    /// A projection rebuilt from the start of every log (a reset is a replay of the
    /// logs), by name: each owner resets its own partitions.
    ResetProjection { name: String },
}

/// Why a replay did not happen (typed across the wire).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ReplayFailure {
    #[error("nothing dead by that id")]
    NotFound,
    #[error("its partition is moving; try again")]
    Moving,
    #[error("the store failed: {0}")]
    Store(String),
    #[error("{0}")]
    Unavailable(String),
}

/// The application's replays over the partitions this node owns; the answer is how many
/// records were queued again, or projections reset (`NotFound` when none of a single
/// id's, or no such projection).
pub trait ReplaySource: Send + Sync + 'static {
    fn replay(&self, op: ReplayOp) -> BoxFuture<'static, Result<u32, ReplayFailure>>;
}

/// The margin a call allows past the owner's deadline for the trip back.
const TRIP: Duration = Duration::from_millis(200);

impl Router {
    /// Gives the router the application's replays (built after the router: they read the
    /// partitions the cluster says this node owns).
    pub fn set_replays(&self, source: Arc<dyn ReplaySource>) {
        let _ = self.inner.replays.set(source);
    }

    fn replays(&self) -> Result<Arc<dyn ReplaySource>, ReplayFailure> {
        self.inner
            .replays
            .get()
            .cloned()
            .ok_or_else(|| ReplayFailure::Unavailable("this node runs no replays".into()))
    }

    /// Runs `op` here, for the partitions this node owns (a forwarded replay, or this
    /// node's own part).
    pub async fn serve_replay(
        &self,
        op: ReplayOp,
        timeout: Duration,
    ) -> Result<u32, ReplayFailure> {
        let source = self.replays()?;
        tokio::time::timeout(timeout, source.replay(op))
            .await
            .unwrap_or_else(|_| Err(ReplayFailure::Unavailable("no time left".into())))
    }

    /// Replays `op` on the owners of the partitions it concerns; how many records were
    /// queued again.
    pub async fn replay(&self, op: ReplayOp) -> Result<u32, ReplayFailure> {
        let timeout = self.ask_timeout();
        let Some(cluster) = self.cluster() else {
            return self.serve_replay(op, timeout).await;
        };
        let map = cluster.map().ok_or_else(|| {
            ReplayFailure::Unavailable("this node has not joined its cluster yet".into())
        })?;
        let owners: Vec<String> = match &op {
            ReplayOp::Delivery { partition, .. } => map
                .owners
                .get(*partition as usize)
                .cloned()
                .into_iter()
                .collect(),
            _ => {
                let all: BTreeMap<&String, ()> = map.owners.iter().map(|o| (o, ())).collect();
                all.into_keys().cloned().collect()
            }
        };
        if owners.is_empty() {
            return Err(ReplayFailure::NotFound);
        }
        let deadline = Instant::now() + timeout;
        let parts = futures::future::join_all(owners.into_iter().map(|owner| {
            let op = op.clone();
            async move {
                let remaining = deadline.saturating_duration_since(Instant::now());
                if owner == cluster.name() {
                    return self.serve_replay(op, remaining).await;
                }
                let req = Request::Replay {
                    op,
                    timeout_ms: crate::cluster::wire::millis(remaining),
                };
                match cluster.call(&owner, req, remaining + TRIP).await {
                    Ok(Response::Replayed(r)) => r,
                    Ok(other) => Err(ReplayFailure::Unavailable(format!(
                        "unexpected reply from {owner}: {other:?}"
                    ))),
                    Err(e) => Err(ReplayFailure::Unavailable(format!("{owner}: {e}"))),
                }
            }
        }))
        .await;
        combine(parts)
    }
}

/// The owners' answers as one: the sum of what was replayed; else the most telling
/// failure (a store failure, then an unreachable owner, then a moving partition), and
/// `NotFound` only when every owner said so.
fn combine(parts: Vec<Result<u32, ReplayFailure>>) -> Result<u32, ReplayFailure> {
    let mut n = 0u32;
    let mut worst: Option<ReplayFailure> = None;
    let rank = |f: &ReplayFailure| match f {
        ReplayFailure::NotFound => 0,
        ReplayFailure::Moving => 1,
        ReplayFailure::Unavailable(_) => 2,
        ReplayFailure::Store(_) => 3,
    };
    let mut found = false;
    for p in parts {
        match p {
            Ok(k) => {
                found = true;
                n = n.saturating_add(k);
            }
            Err(f) => {
                if worst.as_ref().is_none_or(|w| rank(&f) > rank(w)) {
                    worst = Some(f);
                }
            }
        }
    }
    match worst {
        // An owner that had nothing by that id is not a failure once another replayed it.
        Some(ReplayFailure::NotFound) if found => Ok(n),
        Some(f) => Err(f),
        None => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_answers_combine() {
        use ReplayFailure::*;
        assert_eq!(combine(vec![Ok(2), Ok(3)]), Ok(5));
        assert_eq!(combine(vec![Err(NotFound), Ok(1), Err(NotFound)]), Ok(1));
        assert_eq!(combine(vec![Err(NotFound), Err(NotFound)]), Err(NotFound));
        assert_eq!(combine(vec![Ok(1), Err(Moving)]), Err(Moving));
        assert_eq!(
            combine(vec![
                Err(Moving),
                Err(Unavailable("x".into())),
                Err(NotFound)
            ]),
            Err(Unavailable("x".into()))
        );
        assert_eq!(combine(vec![]), Ok(0));
    }
}
