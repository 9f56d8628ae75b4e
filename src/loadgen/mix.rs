//! What a load run sends: the mixes, their operations and the weighted pick (pure).
//!
//! `boutique` follows the task weights of Google's Online Boutique load generator
//! (`loadgenerator/locustfile.py`): index 1, set currency 2, browse product 10, add to
//! cart 2, view cart 3, checkout 1. emporium has one shop currency, so "set currency"
//! becomes a filtered product listing, the nearest read a shopper makes there.

use serde::Serialize;

/// A workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mix {
    /// Online Boutique's weighted shopper tasks.
    Boutique,
    /// Durable add-to-cart: `POST /v1/carts/{id}/items`, one unit.
    CartWrites,
    /// `GET /v1/carts/{id}` of a cart with lines.
    CartReads,
    /// A whole order: create a cart, add one unit of one SKU, check out; counts paid orders.
    Checkout,
    /// `POST /v1/carts` only (no setup): fills a store with carts, e.g. for scale checks.
    CreateCarts,
    /// `GET --path` with no setup: a baseline against any HTTP server.
    Get,
}

/// One thing a simulated shopper does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Home page: the first page of the catalog.
    Index,
    /// "Set currency": a product listing filtered by category.
    ListCategory,
    /// A product page.
    Browse,
    /// `POST /v1/carts/{id}/items`.
    AddToCart,
    /// `GET /v1/carts/{id}`.
    ViewCart,
    /// `POST /v1/carts`.
    CreateCart,
    /// `POST /v1/carts/{id}/checkout`.
    Checkout,
    /// A whole order, from a new cart to `paid` (the `checkout` mix's unit of work).
    Order,
    /// `GET --path`.
    Get,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::ListCategory => "list_category",
            Op::Browse => "browse",
            Op::AddToCart => "add_to_cart",
            Op::ViewCart => "view_cart",
            Op::CreateCart => "create_cart",
            Op::Checkout => "checkout",
            Op::Order => "order",
            Op::Get => "get",
        }
    }
}

/// Online Boutique's task weights, in the locustfile's order.
pub const BOUTIQUE: [(Op, u32); 6] = [
    (Op::Index, 1),
    (Op::ListCategory, 2),
    (Op::Browse, 10),
    (Op::AddToCart, 2),
    (Op::ViewCart, 3),
    (Op::Checkout, 1),
];

impl Mix {
    /// The weighted operations a user of this mix picks from.
    pub fn weights(self) -> &'static [(Op, u32)] {
        match self {
            Mix::Boutique => &BOUTIQUE,
            Mix::CartWrites => &[(Op::AddToCart, 1)],
            Mix::CartReads => &[(Op::ViewCart, 1)],
            Mix::Checkout => &[(Op::Order, 1)],
            Mix::CreateCarts => &[(Op::CreateCart, 1)],
            Mix::Get => &[(Op::Get, 1)],
        }
    }

    /// Whether the run needs products, stock and carts made first.
    pub fn needs_catalog(self) -> bool {
        !matches!(self, Mix::Get | Mix::CreateCarts)
    }
}

/// Picks an operation for a uniform draw `r` in `0..total_weight(weights)`.
pub fn pick(weights: &[(Op, u32)], mut r: u32) -> Op {
    for &(op, w) in weights {
        if r < w {
            return op;
        }
        r -= w;
    }
    // Unreachable for r < total; the last op is a safe answer for any r.
    weights.last().map(|&(op, _)| op).unwrap_or(Op::Get)
}

/// The sum of the weights.
pub fn total_weight(weights: &[(Op, u32)]) -> u32 {
    weights.iter().map(|&(_, w)| w).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_draw_hits_each_op_exactly_its_weight() {
        for mix in [
            Mix::Boutique,
            Mix::CartWrites,
            Mix::CartReads,
            Mix::Checkout,
            Mix::CreateCarts,
            Mix::Get,
        ] {
            let w = mix.weights();
            let mut seen: BTreeMap<Op, u32> = BTreeMap::new();
            for r in 0..total_weight(w) {
                *seen.entry(pick(w, r)).or_default() += 1;
            }
            let expected: BTreeMap<Op, u32> = w.iter().copied().collect();
            assert_eq!(seen, expected, "{mix:?}");
        }
    }

    #[test]
    fn boutique_weights_are_online_boutiques() {
        assert_eq!(total_weight(&BOUTIQUE), 19);
        assert_eq!(pick(&BOUTIQUE, 0), Op::Index);
        assert_eq!(pick(&BOUTIQUE, 3), Op::Browse);
        assert_eq!(pick(&BOUTIQUE, 18), Op::Checkout);
    }

    proptest! {
        #[test]
        fn a_draw_picks_an_op_of_the_mix(r in 0u32..19) {
            let op = pick(&BOUTIQUE, r);
            prop_assert!(BOUTIQUE.iter().any(|&(o, _)| o == op));
        }
    }
}
