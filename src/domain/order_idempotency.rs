//! An `Idempotency-Key` names an order: the order id is derived from the key, so the
//! order entity itself, with its single writer, is the idempotency record.
//!
//! - The id of generation `n` of a key is a UUIDv5 of (scope, key, n) ([`keyed_order_id`]).
//!   The scope is what the key is private to: the cart for a checkout; the machine and
//!   the principal for a vending purchase.
//! - The order's [`Placement`] keeps the request's [`fingerprint`] (SHA-256 of the scope
//!   and the canonical body) and `key_expires_at` (placement time + the key's TTL).
//! - `Place` on an order that already exists ([`key_use`]): the same fingerprint is a
//!   replay (no events); another fingerprint is rejected `IdempotencyKeyReused` (409);
//!   a key used at or after `key_expires_at` is rejected `IdempotencyKeyExpired`, and the
//!   edge moves on to generation `n + 1`, a new request with a new order. At most
//!   [`MAX_GENERATIONS`] generations are tried; past them the key is refused with
//!   `IdempotencyKeyExpired` too (use a new key).
//!
//! Racing requests with one key converge: each generation's order decides for itself,
//! and the first `Place` wins. Time is passed in (the new placement's `placed_at`), so
//! this stays pure.

use super::order::Placement;
use super::Millis;
use sha2::Digest;
use uuid::Uuid;

/// SHA-256 of a request's scope and canonical body.
pub type Fingerprint = [u8; 32];

/// How many orders one key may name, one after another as each expires.
pub const MAX_GENERATIONS: u32 = 8;

/// The UUIDv5 namespace of keyed order ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x6e1f_3c2a_9b47_4d05_8a61_2f0e_c0de_1d3a);

/// The id of generation `generation` of the order that `key` names within `scope`.
/// Scope and key are length-prefixed, so no two (scope, key) pairs share a name.
pub fn keyed_order_id(scope: &str, key: &str, generation: u32) -> Uuid {
    let mut name = Vec::with_capacity(scope.len() + key.len() + 12);
    for part in [scope.as_bytes(), key.as_bytes()] {
        name.extend_from_slice(&(part.len() as u32).to_be_bytes());
        name.extend_from_slice(part);
    }
    name.extend_from_slice(&generation.to_be_bytes());
    Uuid::new_v5(&NAMESPACE, &name)
}

/// The fingerprint of a request: its scope and its canonical body.
pub fn fingerprint(scope: &[u8], canonical_body: &str) -> Fingerprint {
    let mut h = sha2::Sha256::new();
    h.update(scope);
    h.update(canonical_body.as_bytes());
    h.finalize().into()
}

/// What a request with `fingerprint` at `now` is to an order that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// The same request again: answer with this order.
    Replay,
    /// Another request under the same key, while the key still names this order.
    Reused,
    /// The key no longer names this order: the request is a new one (next generation).
    Expired,
}

/// How `placed` (the existing order's placement) answers a request.
pub fn key_use(placed: &Placement, fingerprint: &Fingerprint, now: Millis) -> KeyUse {
    if now >= placed.key_expires_at {
        KeyUse::Expired
    } else if &placed.fingerprint == fingerprint {
        KeyUse::Replay
    } else {
        KeyUse::Reused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_differ_by_scope_key_and_generation_and_are_stable() {
        let a = keyed_order_id("cart:1", "k", 0);
        assert_eq!(a, keyed_order_id("cart:1", "k", 0));
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(a, keyed_order_id("cart:1", "k", 1));
        assert_ne!(a, keyed_order_id("cart:2", "k", 0));
        assert_ne!(a, keyed_order_id("cart:1", "k2", 0));
        // Length prefixes: moving bytes between scope and key changes the id.
        assert_ne!(keyed_order_id("ab", "c", 0), keyed_order_id("a", "bc", 0));
    }

    proptest! {
        #[test]
        fn distinct_inputs_give_distinct_ids(
            s1 in "[a-z:0-9]{0,12}", k1 in "[!-~]{1,12}", g1 in 0u32..MAX_GENERATIONS,
            s2 in "[a-z:0-9]{0,12}", k2 in "[!-~]{1,12}", g2 in 0u32..MAX_GENERATIONS,
        ) {
            let same = (s1.as_str(), k1.as_str(), g1) == (s2.as_str(), k2.as_str(), g2);
            prop_assert_eq!(keyed_order_id(&s1, &k1, g1) == keyed_order_id(&s2, &k2, g2), same);
        }
    }
}
