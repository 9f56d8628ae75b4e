//! The partition of an entity: the hash that places every record of an entity (its
//! events, snapshot, index entries and side records) in one partition, on one node.
//!
//! The algorithm and seed are part of the on-disk and on-wire contract of a cluster:
//! they never change between versions. A kind may be *placed with* another kind: a
//! payment lives in the partition of the order it pays for (its id is the order's id),
//! so the order's single writer also writes its payment; a review (`{sku}~{author}`)
//! lives in the partition of its product, so a product's reviews are listed and rated
//! where the product is.

use crate::domain::EntityKind;

/// FNV-1a 64 offset basis: the fixed seed of the partition hash. Never change it.
const SEED: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// The kind and id whose hash places entity `(kind, id)`: a payment is placed with its
/// order, a review with its product.
pub fn placement(kind: EntityKind, id: &str) -> (EntityKind, &str) {
    match kind {
        EntityKind::Payment => (EntityKind::Order, id),
        EntityKind::Review => (
            EntityKind::Product,
            id.split_once('~').map_or(id, |(sku, _)| sku),
        ),
        k => (k, id),
    }
}

/// The partition of an entity among `partitions` (> 0). Stable across versions.
pub fn partition_of(kind: EntityKind, id: &str, partitions: u32) -> u32 {
    let mut h = SEED;
    let (kind, id) = placement(kind, id);
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

    #[test]
    fn a_payment_is_placed_with_its_order() {
        for i in 0..200 {
            let id = uuid::Uuid::from_u128(i * 7919).to_string();
            assert_eq!(
                partition_of(EntityKind::Payment, &id, 64),
                partition_of(EntityKind::Order, &id, 64)
            );
        }
    }
}
