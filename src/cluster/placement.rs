//! The partition map: which node owns each partition, at which epoch, and how a new map
//! is computed when members join or leave. Pure: membership and agreement on the epoch
//! live elsewhere; this only decides placements.
//!
//! [`rebalance`] keeps every partition whose owner is still a member and not above its
//! fair share, and moves only the rest, to the members furthest below theirs. The result
//! is balanced (owner counts differ by at most one) with the fewest moves that allow it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node's stable name (`cluster.node_name`).
pub type NodeName = String;

/// Owners of every partition, versioned by an epoch that only grows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMap {
    pub epoch: u64,
    /// `owners[p]` owns partition `p`.
    pub owners: Vec<NodeName>,
}

impl PartitionMap {
    /// Every partition on `node`, at epoch 1: a cluster's first map.
    pub fn single(node: &str, partitions: u32) -> Self {
        Self {
            epoch: 1,
            owners: vec![node.to_owned(); partitions as usize],
        }
    }

    /// Partitions per owner.
    pub fn counts(&self) -> BTreeMap<&str, usize> {
        let mut c = BTreeMap::new();
        for o in &self.owners {
            *c.entry(o.as_str()).or_default() += 1;
        }
        c
    }

    /// The partitions whose owner differs between `self` and `next`.
    pub fn moves(&self, next: &PartitionMap) -> Vec<u32> {
        self.owners
            .iter()
            .zip(&next.owners)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(p, _)| p as u32)
            .collect()
    }
}

/// The map for `members` (non-empty, any order) derived from `current` with the fewest
/// moves, at the next epoch. Deterministic: every node computes the same map.
pub fn rebalance(current: &PartitionMap, members: &[NodeName]) -> Option<PartitionMap> {
    let mut members: Vec<&str> = members.iter().map(String::as_str).collect();
    members.sort_unstable();
    members.dedup();
    if members.is_empty() {
        return None;
    }
    let n = current.owners.len();
    let m = members.len();
    // Fair shares: the first `n % m` members (in name order) may hold one more.
    let quota: BTreeMap<&str, usize> = members
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, n / m + usize::from(i < n % m)))
        .collect();
    let mut held: BTreeMap<&str, usize> = members.iter().map(|name| (*name, 0)).collect();
    let mut owners: Vec<Option<&str>> = vec![None; n];
    // Keep partitions whose owner stays and is within quota, lowest partition first.
    for (p, o) in current.owners.iter().enumerate() {
        if let Some(h) = held.get_mut(o.as_str()) {
            if *h < quota[o.as_str()] {
                *h += 1;
                owners[p] = Some(
                    quota
                        .get_key_value(o.as_str())
                        .map(|(k, _)| *k)
                        .unwrap_or(""),
                );
            }
        }
    }
    // Hand every freed partition to the member furthest below its quota.
    for slot in owners.iter_mut().filter(|o| o.is_none()) {
        let (name, _) = members
            .iter()
            .map(|name| (*name, quota[name] - held[name]))
            .filter(|(_, room)| *room > 0)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
        *held.get_mut(name)? += 1;
        *slot = Some(name);
    }
    Some(PartitionMap {
        epoch: current.epoch + 1,
        owners: owners
            .into_iter()
            .map(|o| o.unwrap_or_default().to_owned())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn names(k: usize) -> Vec<NodeName> {
        (1..=k).map(|i| format!("node{i}")).collect()
    }

    #[test]
    fn joining_nodes_take_only_their_share() {
        let one = PartitionMap::single("node1", 64);
        let two = rebalance(&one, &names(2)).unwrap();
        assert_eq!(two.epoch, 2);
        assert_eq!(two.counts().values().copied().collect::<Vec<_>>(), [32, 32]);
        assert_eq!(one.moves(&two).len(), 32, "only the new node's share moves");
        let three = rebalance(&two, &names(3)).unwrap();
        assert_eq!(
            three.counts().values().copied().collect::<Vec<_>>(),
            [22, 21, 21]
        );
        assert_eq!(two.moves(&three).len(), 21);
        // Leaving: only the leaver's partitions move.
        let left = rebalance(&three, &names(2)).unwrap();
        assert_eq!(three.moves(&left).len(), 21);
        assert!(left.owners.iter().all(|o| o != "node3"));
        // Same members: nothing moves (the epoch still advances).
        let same = rebalance(&left, &names(2)).unwrap();
        assert!(left.moves(&same).is_empty());
        assert!(rebalance(&left, &[]).is_none());
    }

    proptest! {
        #[test]
        fn balanced_minimal_and_deterministic(
            partitions in 1u32..200,
            start in 1usize..6,
            next in proptest::collection::btree_set(1usize..8, 1..6),
        ) {
            let mut map = PartitionMap::single("node1", partitions);
            map = rebalance(&map, &names(start)).unwrap();
            let members: Vec<NodeName> = next.iter().map(|i| format!("node{i}")).collect();
            let new = rebalance(&map, &members).unwrap();
            // Every partition is owned by a member.
            prop_assert!(new.owners.iter().all(|o| members.contains(o)));
            // Balanced: counts differ by at most one (members without any count as 0).
            let counts = new.counts();
            let per: Vec<usize> = members.iter().map(|m| counts.get(m.as_str()).copied().unwrap_or(0)).collect();
            prop_assert!(per.iter().max().unwrap() - per.iter().min().unwrap() <= 1);
            // Minimal: a partition moves only if its owner left or held more than its quota.
            let old_counts = map.counts();
            let quota_max = (partitions as usize).div_ceil(members.len());
            let must_move: usize = old_counts
                .iter()
                .map(|(o, c)| if members.iter().any(|m| m == o) { c.saturating_sub(quota_max) } else { *c })
                .sum();
            let moved = map.moves(&new).len();
            prop_assert!(moved >= must_move);
            prop_assert!(moved <= must_move + members.len(), "moved {} for {} forced", moved, must_move);
            // Deterministic, whatever the order members are given in.
            let mut reversed = members;
            reversed.reverse();
            prop_assert_eq!(rebalance(&map, &reversed).unwrap(), new);
        }
    }
}
