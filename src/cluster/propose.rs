//! The proposer: turns a change of the map (join, leave, a finished handoff, a forced
//! removal) into the next committed epoch, by a Paxos round among the members of the
//! current map. One proposal at a time per node; conflicting proposals from other nodes
//! are resolved by ballots, and a value found half-accepted is finished first.

use super::map::{ClusterMap, Refusal};
use super::node::Cluster;
use super::paxos::{choose_value, Ballot, MetaMsg, MetaReply};
use super::transport;
use super::wire::{self, Request, Response};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no_quorum: a majority of the members did not answer")]
    NoQuorum,
    #[error("this node has not joined a cluster")]
    NotJoined,
}

const ATTEMPTS: u32 = 10;

impl Cluster {
    /// Proposes `change` applied to the committed map until it is committed, refused,
    /// or a majority cannot be reached.
    pub async fn propose<F>(&self, change: F) -> Result<ClusterMap, ProposeError>
    where
        F: Fn(&ClusterMap) -> Result<ClusterMap, Refusal>,
    {
        let mut round = self.inner.proposing.lock().await;
        for attempt in 0..ATTEMPTS {
            let base = self.map().ok_or(ProposeError::NotJoined)?;
            let own = change(&base)?;
            *round += 1;
            let ballot = Ballot {
                round: *round,
                node: self.name().to_owned(),
            };
            let acceptors: Vec<String> = base.members.keys().cloned().collect();
            let majority = base.majority();
            let replies = self
                .broadcast_meta(
                    &acceptors,
                    MetaMsg::Prepare {
                        epoch: base.epoch + 1,
                        ballot: ballot.clone(),
                    },
                )
                .await;
            let mut promises = Vec::new();
            let mut newer = None;
            for r in replies {
                match r {
                    MetaReply::Promise { accepted } => promises.push(accepted),
                    MetaReply::Rejected { promised } => *round = (*round).max(promised.round),
                    MetaReply::Stale { committed } if committed.epoch > base.epoch => {
                        newer = Some(committed)
                    }
                    _ => {}
                }
            }
            if let Some(m) = newer {
                self.adopt(m).await;
                continue;
            }
            if promises.len() < majority {
                backoff(attempt).await;
                continue;
            }
            let value = choose_value(&promises, own.clone());
            let replies = self
                .broadcast_meta(
                    &acceptors,
                    MetaMsg::Accept {
                        ballot,
                        map: value.clone(),
                    },
                )
                .await;
            let accepted = replies
                .iter()
                .filter(|r| matches!(r, MetaReply::Accepted))
                .count();
            if accepted < majority {
                backoff(attempt).await;
                continue;
            }
            // Chosen. Everyone learns it; those who miss the commit learn it from
            // heartbeats, which carry the epoch.
            let mut everyone: Vec<String> = value.members.keys().cloned().collect();
            everyone.extend(acceptors);
            everyone.sort();
            everyone.dedup();
            let _ = self
                .broadcast_meta(&everyone, MetaMsg::Commit { map: value.clone() })
                .await;
            self.adopt(value.clone()).await;
            if value == own {
                metrics::counter!("emporium_cluster_epochs_committed_total").increment(1);
                return Ok(value);
            }
            // We finished someone else's change; now make ours on top of it.
        }
        Err(ProposeError::NoQuorum)
    }

    /// Sends `msg` to each of `nodes` (this node locally) and collects the replies that
    /// arrive within the call timeout.
    pub(super) async fn broadcast_meta(&self, nodes: &[String], msg: MetaMsg) -> Vec<MetaReply> {
        let timeout = Duration::from_millis(self.config().call_timeout_ms);
        let calls = nodes.iter().map(|n| {
            let msg = msg.clone();
            async move {
                if n == self.name() {
                    return Some(self.on_meta(msg).await);
                }
                match self.call(n, Request::Meta(msg), timeout).await {
                    Ok(Response::Meta(r)) => Some(r),
                    _ => None,
                }
            }
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// One request to `node`'s agent with a deadline.
    pub async fn call(
        &self,
        node: &str,
        req: Request,
        timeout: Duration,
    ) -> Result<Response, transport::CallError> {
        self.call_encoded(node, wire::encode(req), timeout).await
    }

    /// [`Cluster::call`] of a request already encoded with [`wire::encode`] (a handoff
    /// chunk encoded once, sent again on a retry).
    pub(super) async fn call_encoded(
        &self,
        node: &str,
        frame: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, transport::CallError> {
        if self.fault().blackholed() {
            return Err(transport::CallError::NotConnected(node.to_owned()));
        }
        let agent = transport::agent_of(node, self.name())
            .ok_or_else(|| transport::CallError::NotConnected(node.to_owned()))?;
        let bytes = transport::call(&agent, node, frame, timeout).await?;
        let resp: Response =
            wire::decode(&bytes).map_err(|e| transport::CallError::Failed(node.to_owned(), e))?;
        if let Response::Error(e) = &resp {
            return Err(transport::CallError::Failed(node.to_owned(), e.clone()));
        }
        Ok(resp)
    }
}

async fn backoff(attempt: u32) {
    let base = 20u64 << attempt.min(5);
    let jitter = rand::random::<u64>() % base.max(1);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}
