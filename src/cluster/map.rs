//! The cluster map: the members, the owner of every partition, the handoffs under way,
//! all versioned by one epoch. Every change is a pure function from one committed map to
//! the next (`join`, `leave`, `complete`, `remove_forced`, `forget_left`); agreement on
//! which change becomes the next epoch is [`super::paxos`]'s job.
//!
//! A partition moves in two epochs. The first marks it `moving` to its next owner; the
//! old owner then stops serving it, streams its data and proposes the second, which
//! names the new owner. Between the two nobody serves it, so at no epoch do two nodes
//! own it.

use super::placement::{rebalance, NodeName, PartitionMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its cluster transport address (`cluster.advertise_addr`).
    pub addr: String,
    /// Its HTTP edge, for operators.
    pub http_addr: String,
    /// Draining: its partitions are moving away, then it is removed.
    pub leaving: bool,
}

/// One committed (or proposed) version of the cluster's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMap {
    pub epoch: u64,
    pub members: BTreeMap<NodeName, MemberInfo>,
    /// `owners[p]` owns partition `p`.
    pub owners: Vec<NodeName>,
    /// Partitions in handoff: partition → its next owner.
    pub moving: BTreeMap<u32, NodeName>,
    /// Partitions reassigned by a forced removal at this epoch: their new owner waits out
    /// the failure timeout before serving, so a lost node that was only cut off has
    /// stopped writing first.
    pub forced: BTreeMap<u32, u64>,
}

/// Why a change cannot be made to a map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Refusal {
    #[error("a handoff is in progress ({0} partitions moving); retry when it ends")]
    Busy(usize),
    #[error("{0} is not a member")]
    NotMember(String),
    #[error("{0} is already a member at another address")]
    NameTaken(String),
    #[error("the last member cannot leave")]
    LastMember,
    #[error("{0}")]
    Invalid(String),
}

impl ClusterMap {
    /// A new cluster of one node owning every partition.
    pub fn bootstrap(name: &str, info: MemberInfo, partitions: u32) -> Self {
        Self {
            epoch: 1,
            members: BTreeMap::from([(name.to_owned(), info)]),
            owners: PartitionMap::single(name, partitions).owners,
            moving: BTreeMap::new(),
            forced: BTreeMap::new(),
        }
    }

    pub fn partitions(&self) -> u32 {
        self.owners.len() as u32
    }

    /// Members that keep or receive partitions.
    fn active(&self) -> Vec<NodeName> {
        self.members
            .iter()
            .filter(|(_, m)| !m.leaving)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Marks the partitions that must move so owners are balanced over the active members.
    fn plan_moves(&mut self) {
        let current = PartitionMap {
            epoch: self.epoch,
            owners: self.owners.clone(),
        };
        if let Some(target) = rebalance(&current, &self.active()) {
            for p in current.moves(&target) {
                self.moving.insert(p, target.owners[p as usize].clone());
            }
        }
    }

    fn next(&self) -> Self {
        let mut n = self.clone();
        n.epoch += 1;
        n.forced.clear();
        n
    }

    /// `name` joins: it becomes a member, and partitions start moving to it.
    pub fn join(&self, name: &str, info: MemberInfo) -> Result<Self, Refusal> {
        if let Some(m) = self.members.get(name) {
            return if m.addr == info.addr {
                Err(Refusal::Invalid(format!("{name} is already a member")))
            } else {
                Err(Refusal::NameTaken(name.to_owned()))
            };
        }
        if !self.moving.is_empty() {
            return Err(Refusal::Busy(self.moving.len()));
        }
        let mut n = self.next();
        n.members.insert(name.to_owned(), info);
        n.plan_moves();
        Ok(n)
    }

    /// `name` starts draining: its partitions start moving to the others.
    pub fn leave(&self, name: &str) -> Result<Self, Refusal> {
        let m = self
            .members
            .get(name)
            .ok_or_else(|| Refusal::NotMember(name.to_owned()))?;
        if m.leaving {
            return Err(Refusal::Invalid(format!("{name} is already leaving")));
        }
        if self.active().len() <= 1 {
            return Err(Refusal::LastMember);
        }
        if !self.moving.is_empty() {
            return Err(Refusal::Busy(self.moving.len()));
        }
        let mut n = self.next();
        if let Some(m) = n.members.get_mut(name) {
            m.leaving = true;
        }
        n.plan_moves();
        Ok(n)
    }

    /// The handoffs of `parts` are done: their next owners now own them.
    pub fn complete(&self, parts: &[u32]) -> Result<Self, Refusal> {
        let mut n = self.next();
        for p in parts {
            let to = n
                .moving
                .remove(p)
                .ok_or_else(|| Refusal::Invalid(format!("partition {p} is not moving")))?;
            n.owners[*p as usize] = to;
        }
        Ok(n)
    }

    /// A leaving member that owns nothing and receives nothing is removed.
    pub fn forget_left(&self, name: &str) -> Result<Self, Refusal> {
        match self.members.get(name) {
            Some(m) if m.leaving && self.owned_by(name).is_empty() => {
                let mut n = self.next();
                n.members.remove(name);
                Ok(n)
            }
            Some(_) => Err(Refusal::Invalid(format!("{name} still owns partitions"))),
            None => Err(Refusal::NotMember(name.to_owned())),
        }
    }

    /// `name` is permanently lost: it is removed, and its partitions go to the others
    /// empty. Handoffs to or from it are cancelled.
    pub fn remove_forced(&self, name: &str) -> Result<Self, Refusal> {
        if !self.members.contains_key(name) {
            return Err(Refusal::NotMember(name.to_owned()));
        }
        if self.members.len() <= 1 {
            return Err(Refusal::LastMember);
        }
        let mut n = self.next();
        n.members.remove(name);
        n.moving
            .retain(|p, to| to != name && n.owners[*p as usize] != name);
        let lost = n.owned_by(name);
        let current = PartitionMap {
            epoch: n.epoch,
            owners: n.owners.clone(),
        };
        let survivors = n.active();
        if survivors.is_empty() {
            return Err(Refusal::LastMember);
        }
        if let Some(target) = rebalance(&current, &survivors) {
            // Only the lost partitions change owner now; others keep theirs.
            for p in &lost {
                n.owners[*p as usize] = target.owners[*p as usize].clone();
                n.forced.insert(*p, n.epoch);
            }
        }
        Ok(n)
    }

    /// The partitions `name` owns.
    pub fn owned_by(&self, name: &str) -> Vec<u32> {
        self.owners
            .iter()
            .enumerate()
            .filter(|(_, o)| o.as_str() == name)
            .map(|(p, _)| p as u32)
            .collect()
    }

    /// Partitions per member (members owning none are listed with 0).
    pub fn counts(&self) -> BTreeMap<NodeName, usize> {
        let mut c: BTreeMap<NodeName, usize> =
            self.members.keys().map(|n| (n.clone(), 0)).collect();
        for o in &self.owners {
            *c.entry(o.clone()).or_default() += 1;
        }
        c
    }

    /// Votes needed among this map's members to decide the next epoch.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn info(n: &str) -> MemberInfo {
        MemberInfo {
            addr: format!("{n}:1"),
            http_addr: format!("{n}:2"),
            leaving: false,
        }
    }

    /// Applies every pending move, as the handoffs would.
    fn settle(m: &ClusterMap) -> ClusterMap {
        let parts: Vec<u32> = m.moving.keys().copied().collect();
        m.complete(&parts).unwrap()
    }

    fn spread(m: &ClusterMap) -> usize {
        let c = m.counts();
        let active: Vec<usize> = c
            .iter()
            .filter(|(n, _)| m.members.get(*n).is_some_and(|i| !i.leaving))
            .map(|(_, v)| *v)
            .collect();
        active.iter().max().unwrap() - active.iter().min().unwrap()
    }

    #[test]
    fn join_moves_a_fair_share_and_refuses_while_busy() {
        let a = ClusterMap::bootstrap("a", info("a"), 64);
        let b = a.join("b", info("b")).unwrap();
        assert_eq!(b.epoch, 2);
        assert_eq!(b.moving.len(), 32);
        assert!(b.moving.values().all(|to| to == "b"));
        // Nothing changes owner until the handoff completes.
        assert!(b.owners.iter().all(|o| o == "a"));
        assert!(matches!(b.join("c", info("c")), Err(Refusal::Busy(32))));
        let b = settle(&b);
        assert_eq!(b.counts()["b"], 32);
        assert!(matches!(b.join("b", info("x")), Err(Refusal::NameTaken(_))));
    }

    #[test]
    fn leave_drains_then_forgets() {
        let m = settle(
            &ClusterMap::bootstrap("a", info("a"), 8)
                .join("b", info("b"))
                .unwrap(),
        );
        let l = m.leave("a").unwrap();
        assert!(l.moving.values().all(|to| to == "b"));
        assert!(l.forget_left("a").is_err());
        let l = settle(&l);
        let f = l.forget_left("a").unwrap();
        assert_eq!(f.members.len(), 1);
        assert!(f.owners.iter().all(|o| o == "b"));
        assert!(matches!(f.leave("b"), Err(Refusal::LastMember)));
    }

    #[test]
    fn forced_removal_reassigns_only_the_lost_partitions_and_fences_them() {
        let mut m = ClusterMap::bootstrap("a", info("a"), 12);
        for n in ["b", "c"] {
            m = settle(&m.join(n, info(n)).unwrap());
        }
        let before = m.clone();
        let r = m.remove_forced("c").unwrap();
        assert!(!r.members.contains_key("c"));
        for (p, o) in before.owners.iter().enumerate() {
            if o == "c" {
                assert!(r.forced.contains_key(&(p as u32)));
                assert_ne!(r.owners[p], "c");
            } else {
                assert_eq!(&r.owners[p], o);
            }
        }
        assert_eq!(spread(&r), 0);
        // The fence is for that epoch only.
        assert!(r.complete(&[]).unwrap().forced.is_empty());
    }

    proptest! {
        /// Any sequence of joins and leaves, each settled, keeps every partition owned by
        /// a member and the owners balanced within one.
        #[test]
        fn joins_and_leaves_stay_balanced(ops in proptest::collection::vec((0u8..2, 0usize..6), 1..20), parts in 1u32..80) {
            let mut m = ClusterMap::bootstrap("n0", info("n0"), parts);
            for (op, k) in ops {
                let name = format!("n{k}");
                let next = if op == 0 { m.join(&name, info(&name)) } else { m.leave(&name) };
                if let Ok(n) = next {
                    prop_assert_eq!(n.epoch, m.epoch + 1);
                    m = settle(&n);
                    if let Ok(f) = m.forget_left(&name) { m = f; }
                }
                prop_assert!(m.owners.iter().all(|o| m.members.contains_key(o)));
                prop_assert!(spread(&m) <= 1);
                prop_assert!(m.moving.is_empty());
            }
        }
    }
}
