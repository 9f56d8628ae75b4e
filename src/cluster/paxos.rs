//! Agreement on the next epoch: single-decree Paxos, one instance per epoch.
//!
//! The acceptors that decide epoch `e + 1` are the members of the committed map at
//! epoch `e`, which every node agrees on by induction (epoch 1 is the founding node's
//! bootstrap). A value is chosen once a majority of them accepted it at one ballot;
//! Paxos guarantees that no other value is chosen for that epoch, whatever messages are
//! lost, delayed or repeated and whichever proposers crash. Proposers that find an
//! accepted value must finish it before proposing their own, so an interrupted change
//! is never lost or doubled.
//!
//! This module is pure: the node persists the acceptor after every change (before it
//! replies), and runs the proposer's rounds over the transport.

use super::map::ClusterMap;
use serde::{Deserialize, Serialize};

/// A proposal number: ordered by round, then by proposer name to break ties.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: String,
}

/// What an acceptor remembers; durable on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptor {
    pub committed: ClusterMap,
    /// The highest ballot promised for epoch `committed.epoch + 1`.
    pub promised: Ballot,
    /// The value accepted for epoch `committed.epoch + 1`, if any.
    pub accepted: Option<(Ballot, ClusterMap)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaMsg {
    Prepare {
        epoch: u64,
        ballot: Ballot,
    },
    Accept {
        ballot: Ballot,
        map: ClusterMap,
    },
    /// A chosen value: every node adopts it.
    Commit {
        map: ClusterMap,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    Promise {
        accepted: Option<(Ballot, ClusterMap)>,
    },
    Accepted,
    /// A higher ballot was promised: retry with a higher round.
    Rejected {
        promised: Ballot,
    },
    /// The acceptor already committed this epoch (or later): here is its map.
    Stale {
        committed: ClusterMap,
    },
    /// The acceptor is behind and cannot vote on this epoch until it catches up.
    Behind {
        epoch: u64,
    },
    Committed,
}

impl Acceptor {
    pub fn new(committed: ClusterMap) -> Self {
        Self {
            committed,
            promised: Ballot::default(),
            accepted: None,
        }
    }

    /// Handles one message; the returned flag says whether the state changed and must be
    /// made durable before the reply is sent.
    pub fn handle(&mut self, msg: MetaMsg) -> (MetaReply, bool) {
        match msg {
            MetaMsg::Prepare { epoch, ballot } => {
                if let Some(r) = self.check_epoch(epoch) {
                    return (r, false);
                }
                if ballot > self.promised {
                    self.promised = ballot;
                    let accepted = self.accepted.clone();
                    (MetaReply::Promise { accepted }, true)
                } else {
                    (
                        MetaReply::Rejected {
                            promised: self.promised.clone(),
                        },
                        false,
                    )
                }
            }
            MetaMsg::Accept { ballot, map } => {
                if let Some(r) = self.check_epoch(map.epoch) {
                    return (r, false);
                }
                if ballot >= self.promised {
                    self.promised = ballot.clone();
                    self.accepted = Some((ballot, map));
                    (MetaReply::Accepted, true)
                } else {
                    (
                        MetaReply::Rejected {
                            promised: self.promised.clone(),
                        },
                        false,
                    )
                }
            }
            MetaMsg::Commit { map } => {
                if map.epoch > self.committed.epoch {
                    *self = Acceptor::new(map);
                    (MetaReply::Committed, true)
                } else {
                    (MetaReply::Committed, false)
                }
            }
        }
    }

    fn check_epoch(&self, epoch: u64) -> Option<MetaReply> {
        let next = self.committed.epoch + 1;
        if epoch < next {
            Some(MetaReply::Stale {
                committed: self.committed.clone(),
            })
        } else if epoch > next {
            Some(MetaReply::Behind {
                epoch: self.committed.epoch,
            })
        } else {
            None
        }
    }
}

/// The value a proposer must send in phase 2: the accepted value with the highest
/// ballot among the promises, if any, else its own.
pub fn choose_value(promises: &[Option<(Ballot, ClusterMap)>], own: ClusterMap) -> ClusterMap {
    promises
        .iter()
        .flatten()
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, m)| m.clone())
        .unwrap_or(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::map::MemberInfo;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn base(n: usize) -> ClusterMap {
        let mut m = ClusterMap::bootstrap(
            "n0",
            MemberInfo {
                addr: "n0".into(),
                http_addr: String::new(),
                leaving: false,
            },
            4,
        );
        for i in 1..n {
            m.members.insert(
                format!("n{i}"),
                MemberInfo {
                    addr: format!("n{i}"),
                    http_addr: String::new(),
                    leaving: false,
                },
            );
        }
        m
    }

    fn value(b: &ClusterMap, tag: &str) -> ClusterMap {
        let mut v = b.clone();
        v.epoch += 1;
        v.owners[0] = tag.to_owned();
        v
    }

    /// A proposer's progress through one round, driven step by step by the test.
    struct Proposer {
        ballot: Ballot,
        own: ClusterMap,
        /// Promises and acceptances by acceptor: each counts once.
        promises: BTreeMap<usize, Option<(Ballot, ClusterMap)>>,
        phase2: Option<ClusterMap>,
        accepts: std::collections::BTreeSet<usize>,
    }

    proptest! {
        /// Two or three proposers with their own values, messages delivered in any order
        /// and any of them lost: at most one value is ever chosen for the epoch.
        #[test]
        fn at_most_one_value_is_chosen(
            acceptors in 3usize..6,
            proposers in 2usize..4,
            schedule in proptest::collection::vec((0usize..4, 0usize..6, any::<bool>(), 0u64..3), 1..200),
        ) {
            let b = base(acceptors);
            let mut acc: Vec<Acceptor> = (0..acceptors).map(|_| Acceptor::new(b.clone())).collect();
            let mut ps: Vec<Proposer> = (0..proposers).map(|i| Proposer {
                ballot: Ballot { round: 1, node: format!("p{i}") },
                own: value(&b, &format!("p{i}")),
                promises: BTreeMap::new(), phase2: None, accepts: Default::default(),
            }).collect();
            let mut chosen: BTreeMap<usize, ClusterMap> = BTreeMap::new();
            let majority = b.majority();
            for (p, a, lost, bump) in schedule {
                let p = p % proposers;
                let a = a % acceptors;
                if lost { continue; }
                let pr = &mut ps[p];
                if bump > 1 && pr.phase2.is_none() {
                    // Start a new round.
                    pr.ballot.round += bump;
                    pr.promises.clear();
                    pr.accepts.clear();
                }
                match pr.phase2.clone() {
                    None => {
                        let (r, _) = acc[a].handle(MetaMsg::Prepare { epoch: b.epoch + 1, ballot: pr.ballot.clone() });
                        if let MetaReply::Promise { accepted } = r {
                            pr.promises.insert(a, accepted);
                            if pr.promises.len() >= majority {
                                let seen: Vec<_> = pr.promises.values().cloned().collect();
                                pr.phase2 = Some(choose_value(&seen, pr.own.clone()));
                            }
                        }
                    }
                    Some(v) => {
                        let (r, _) = acc[a].handle(MetaMsg::Accept { ballot: pr.ballot.clone(), map: v.clone() });
                        match r {
                            MetaReply::Accepted => {
                                pr.accepts.insert(a);
                                if pr.accepts.len() >= majority {
                                    chosen.insert(p, v);
                                }
                            }
                            _ => {
                                // Preempted: start over with a higher round.
                                pr.phase2 = None;
                                pr.promises.clear();
                                pr.accepts.clear();
                                pr.ballot.round += 1;
                            }
                        }
                    }
                }
            }
            let values: std::collections::BTreeSet<String> =
                chosen.values().map(|m| m.owners[0].clone()).collect();
            prop_assert!(values.len() <= 1, "two values chosen: {:?}", values);
        }
    }

    #[test]
    fn stale_and_behind_acceptors_say_so() {
        let b = base(3);
        let mut a = Acceptor::new(b.clone());
        let ballot = Ballot {
            round: 1,
            node: "x".into(),
        };
        let (r, _) = a.handle(MetaMsg::Prepare {
            epoch: b.epoch,
            ballot: ballot.clone(),
        });
        assert!(matches!(r, MetaReply::Stale { .. }));
        let (r, _) = a.handle(MetaMsg::Prepare {
            epoch: b.epoch + 2,
            ballot,
        });
        assert_eq!(r, MetaReply::Behind { epoch: b.epoch });
        let v = value(&b, "v");
        let (r, changed) = a.handle(MetaMsg::Commit { map: v.clone() });
        assert_eq!((r, changed), (MetaReply::Committed, true));
        assert_eq!(a.committed, v);
        // An old commit changes nothing.
        assert!(!a.handle(MetaMsg::Commit { map: b }).1);
    }
}
