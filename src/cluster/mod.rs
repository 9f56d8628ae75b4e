//! The cluster: partitioned ownership of entities over ractor_cluster.
//!
//! - [`partition_of`]: the entity → partition hash (fixed algorithm and seed, never
//!   changes between versions);
//! - [`map`], [`placement`]: the versioned cluster map and its balanced, fewest-moves
//!   changes; [`paxos`], [`propose`]: agreement on each epoch by a majority;
//! - [`transport`], [`wire`]: the node server, our listener and dialer, the one
//!   remote-capable agent per node and the versioned protocol;
//! - [`node`], [`runtime`], [`detector`]: this node's view (map, health, quorum,
//!   partition gates), heartbeats, joins and the handling of peer requests;
//! - [`handoff`]: moving a partition's data to its next owner;
//! - [`cli`], [`config`]: `emporium cluster ...` and `[cluster]`.
//!
//! `docs/ARCHITECTURE.md` explains why at most one node writes a partition.

pub mod cli;
pub mod config;
pub mod detector;
pub mod handoff;
pub mod map;
pub mod node;
pub mod paxos;
pub mod placement;
pub mod propose;
pub mod runtime;
pub mod transport;
pub mod wire;

pub use node::{Cluster, Placement};

use crate::domain::EntityKind;

/// FNV-1a 64 offset basis: the fixed seed of the partition hash. Never change it.
const SEED: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The partition of an entity among `partitions` (> 0). Stable across versions.
pub fn partition_of(kind: EntityKind, id: &str, partitions: u32) -> u32 {
    let mut h = SEED;
    for b in std::iter::once(kind.byte()).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(PRIME);
    }
    (h % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_hash_is_pinned() {
        // These values are part of the on-disk contract of a cluster. They were computed
        // by an independent FNV-1a implementation (Python) over `kind byte ++ id`.
        assert_eq!(partition_of(EntityKind::Cart, "a", 64), 44);
        assert_eq!(partition_of(EntityKind::Cart, "cart-42", 64), 44);
        assert_eq!(partition_of(EntityKind::Sku, "MUG-BLUE", 64), 12);
        assert_eq!(
            partition_of(
                EntityKind::Order,
                "6f1c2b4e-8a0d-4c1e-9b7a-3d2f1e0c9b8a",
                1024
            ),
            43
        );
        assert_eq!(partition_of(EntityKind::Machine, "vm-1", 64), 47);
        let spread: std::collections::HashSet<u32> = (0..1000)
            .map(|i| partition_of(EntityKind::Cart, &i.to_string(), 64))
            .collect();
        assert_eq!(spread.len(), 64);
        assert_ne!(
            partition_of(EntityKind::Cart, "x", 1 << 20),
            partition_of(EntityKind::Sku, "x", 1 << 20)
        );
    }
}
