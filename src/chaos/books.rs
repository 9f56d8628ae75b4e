//! The arithmetic of the checks, pure: which cart quantities a ledger allows, what stock
//! conservation allows given unknown adjustments, and the machine's unit count. The
//! checker feeds it what it read over HTTP; every rule here is unit-tested.

use super::ledger::LineWrites;
use std::collections::BTreeSet;
use std::fmt;

/// Beyond this many unknown adjustments or vends of one SKU or slot, the subset sums are
/// replaced by their interval (still sound, less exact).
pub const MAX_EXACT_UNKNOWNS: usize = 16;

/// A broken promise, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// An acknowledged cart line is missing or has another quantity.
    CartLine {
        cart: String,
        sku: String,
        found: u32,
        allowed: Vec<u32>,
    },
    /// An acknowledged order is gone.
    OrderMissing { order: String },
    /// Re-sending an unknown checkout with its key was answered with an order that does
    /// not exist: the key was claimed for an order that was never placed.
    PhantomOrder { order: String, key: String },
    /// An order did not settle in time.
    OrderNotTerminal { order: String, status: String },
    /// An order's lines differ from its cart's or from what was acknowledged.
    OrderLines {
        order: String,
        expected: String,
        found: String,
    },
    /// A successful card's order was cancelled or a declined card's order paid.
    OrderOutcome {
        order: String,
        card: String,
        status: String,
    },
    /// `on_hand + sold` is not `received` for any subset of the unknown adjustments.
    StockNotConserved {
        sku: String,
        on_hand: i64,
        sold: i64,
        received: i64,
        unknown: Vec<i64>,
    },
    /// Units still reserved with every order terminal.
    Reserved { sku: String, reserved: i64 },
    /// A SKU's total on hand is not the sum over its locations.
    LocationsDisagree { sku: String, on_hand: i64, sum: i64 },
    /// A slot's level plus its units sold is not what it was seeded with.
    SlotNotConserved {
        slot: u32,
        level: u64,
        sold: u64,
        seeded: u64,
    },
    /// The machine counts a number of sales the vends cannot explain (a vend counted
    /// twice, or an acknowledged vend lost).
    MachineUnits {
        slot: u32,
        counted: u64,
        acked: u64,
        unknown: u64,
    },
    /// A unit held for an app purchase with every purchase terminal.
    HoldLeft { holds: usize },
    /// Two fulfilled orders for one vend, or a fulfilled vending order with no vend.
    VendSoldTwice { order: String, vend_id: String },
    /// The SKU's units at the machine's location do not fall by exactly the machine's
    /// count of units sold (a vend taken off twice, or never).
    MachineStock {
        sku: String,
        at_machine: i64,
        counted: u64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Violation::*;
        match self {
            CartLine { cart, sku, found, allowed } => write!(
                f,
                "lost cart write: cart {cart} line {sku} has quantity {found}, acknowledged writes allow only {allowed:?}"
            ),
            OrderMissing { order } => write!(f, "lost order: acknowledged order {order} does not exist"),
            PhantomOrder { order, key } => write!(
                f,
                "phantom order: re-sending the unknown checkout with Idempotency-Key {key} was acknowledged with order {order}, which does not exist"
            ),
            OrderNotTerminal { order, status } => write!(
                f,
                "order {order} is still {status} after the settle wait"
            ),
            OrderLines { order, expected, found } => write!(
                f,
                "order {order} holds {found}, expected {expected}"
            ),
            OrderOutcome { order, card, status } => write!(
                f,
                "order {order} paid with the {card} card ended {status}"
            ),
            StockNotConserved { sku, on_hand, sold, received, unknown } => write!(
                f,
                "stock not conserved for {sku}: on_hand {on_hand} + sold {sold} = {} but received {received} (+ any subset of unknown adjustments {unknown:?})",
                on_hand + sold
            ),
            Reserved { sku, reserved } => write!(
                f,
                "{sku} still has {reserved} reserved with every order terminal"
            ),
            LocationsDisagree { sku, on_hand, sum } => write!(
                f,
                "{sku} has {on_hand} on hand but its locations hold {sum}"
            ),
            SlotNotConserved { slot, level, sold, seeded } => write!(
                f,
                "machine slot {slot}: level {level} + sold {sold} != seeded {seeded}"
            ),
            MachineUnits { slot, counted, acked, unknown } => write!(
                f,
                "machine slot {slot} counts {counted} units sold; acknowledged vends give {acked}, unknown ones up to {unknown} more"
            ),
            HoldLeft { holds } => write!(f, "the machine still holds {holds} units for app purchases"),
            VendSoldTwice { order, vend_id } => write!(
                f,
                "unit sold twice or never vended: order {order} fulfilled by vend {vend_id}"
            ),
            MachineStock { sku, at_machine, counted } => write!(
                f,
                "{sku} holds {at_machine} at the machine's location; the machine counts {counted} sold, so -{counted} was due"
            ),
        }
    }
}

/// The quantities a cart line may show: the last acknowledged value (0 before any), or
/// any unknown write sent after it.
pub fn allowed_quantities(writes: &LineWrites) -> BTreeSet<u32> {
    let last_ack = writes.iter().rposition(|(_, ack)| *ack);
    let mut allowed = BTreeSet::from([last_ack.map_or(0, |i| writes[i].0)]);
    let after = last_ack.map_or(0, |i| i + 1);
    allowed.extend(writes[after..].iter().map(|(q, _)| *q));
    allowed
}

/// The exact value of a line when no unknown write follows the last acknowledged one.
pub fn exact_quantity(writes: &LineWrites) -> Option<u32> {
    let a = allowed_quantities(writes);
    (a.len() == 1).then(|| *a.iter().next().expect("one element"))
}

/// Every total a subset of `xs` can make; past [`MAX_EXACT_UNKNOWNS`], `None` (use
/// [`interval`]).
pub fn subset_sums(xs: &[i64]) -> Option<BTreeSet<i64>> {
    if xs.len() > MAX_EXACT_UNKNOWNS {
        return None;
    }
    let mut sums = BTreeSet::from([0i64]);
    for x in xs {
        let more: Vec<i64> = sums.iter().map(|s| s + x).collect();
        sums.extend(more);
    }
    Some(sums)
}

/// The smallest and largest subset total of `xs`.
pub fn interval(xs: &[i64]) -> (i64, i64) {
    let lo = xs.iter().filter(|x| **x < 0).sum();
    let hi = xs.iter().filter(|x| **x > 0).sum();
    (lo, hi)
}

fn subset_allows(xs: &[i64], total: i64) -> bool {
    match subset_sums(xs) {
        Some(s) => s.contains(&total),
        None => {
            let (lo, hi) = interval(xs);
            (lo..=hi).contains(&total)
        }
    }
}

/// A SKU's stock at the check.
#[derive(Debug, Clone, Default)]
pub struct StockBooks {
    pub sku: String,
    /// `on_hand` at the seed plus acknowledged and already settled adjustments.
    pub received: i64,
    /// Unknown adjustments still open.
    pub unknown: Vec<i64>,
    pub on_hand: i64,
    pub reserved: i64,
    /// Units in paid or fulfilled orders.
    pub sold: i64,
}

/// Checks `on_hand + sold = received + (a subset of the unknown adjustments)` and
/// `reserved = 0`; `Ok` carries what the unknown adjustments turned out to add.
pub fn check_stock(b: &StockBooks) -> Result<i64, Violation> {
    if b.reserved != 0 {
        return Err(Violation::Reserved {
            sku: b.sku.clone(),
            reserved: b.reserved,
        });
    }
    let residual = b.on_hand + b.sold - b.received;
    if b.on_hand < 0 || !subset_allows(&b.unknown, residual) {
        return Err(Violation::StockNotConserved {
            sku: b.sku.clone(),
            on_hand: b.on_hand,
            sold: b.sold,
            received: b.received,
            unknown: b.unknown.clone(),
        });
    }
    Ok(residual)
}

/// A machine slot at the check.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotBooks {
    pub slot: u32,
    pub seeded: u64,
    pub level: u64,
    /// Units the machine counts as sold from this slot.
    pub counted: u64,
    /// Distinct acknowledged successful vends plus earlier settled units.
    pub acked: u64,
    /// Unknown successful vends still open.
    pub unknown: u64,
}

/// Checks `level + counted = seeded` and `acked <= counted <= acked + unknown`; `Ok`
/// carries how many unknown vends were counted.
pub fn check_slot(b: &SlotBooks) -> Result<u64, Violation> {
    if b.level + b.counted != b.seeded {
        return Err(Violation::SlotNotConserved {
            slot: b.slot,
            level: b.level,
            sold: b.counted,
            seeded: b.seeded,
        });
    }
    if b.counted < b.acked || b.counted > b.acked + b.unknown {
        return Err(Violation::MachineUnits {
            slot: b.slot,
            counted: b.counted,
            acked: b.acked,
            unknown: b.unknown,
        });
    }
    Ok(b.counted - b.acked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_line_shows_its_last_acked_value_or_a_later_unknown_one() {
        assert_eq!(allowed_quantities(&vec![]), BTreeSet::from([0]));
        assert_eq!(
            allowed_quantities(&vec![(2, true), (3, true)]),
            BTreeSet::from([3])
        );
        assert_eq!(
            allowed_quantities(&vec![(2, true), (5, false), (3, true), (7, false)]),
            BTreeSet::from([3, 7])
        );
        assert_eq!(
            allowed_quantities(&vec![(4, false)]),
            BTreeSet::from([0, 4])
        );
        assert_eq!(exact_quantity(&vec![(1, false), (2, true)]), Some(2));
        assert_eq!(exact_quantity(&vec![(2, true), (0, false)]), None);
    }

    fn books(on_hand: i64, sold: i64, unknown: Vec<i64>) -> StockBooks {
        StockBooks {
            sku: "A".into(),
            received: 100,
            unknown,
            on_hand,
            reserved: 0,
            sold,
        }
    }

    #[test]
    fn stock_is_conserved_only_up_to_a_subset_of_the_unknown_adjustments() {
        assert_eq!(check_stock(&books(90, 10, vec![])), Ok(0));
        // One unit sold twice (or a paid unit left on the shelf) is caught.
        assert!(matches!(
            check_stock(&books(90, 11, vec![])),
            Err(Violation::StockNotConserved { .. })
        ));
        assert!(check_stock(&books(89, 10, vec![])).is_err());
        // Unknown adjustments of +5 and -2: 0, 5, -2 or 3 more.
        for (on_hand, extra) in [(90, 0), (95, 5), (88, -2), (93, 3)] {
            assert_eq!(check_stock(&books(on_hand, 10, vec![5, -2])), Ok(extra));
        }
        assert!(check_stock(&books(94, 10, vec![5, -2])).is_err());
        let mut held = books(90, 10, vec![]);
        held.reserved = 1;
        assert!(matches!(
            check_stock(&held),
            Err(Violation::Reserved { .. })
        ));
        assert!(check_stock(&books(-1, 101, vec![])).is_err());
    }

    #[test]
    fn a_slot_balances_and_its_count_is_explained_by_the_vends() {
        let ok = SlotBooks {
            slot: 1,
            seeded: 50,
            level: 40,
            counted: 10,
            acked: 9,
            unknown: 2,
        };
        assert_eq!(check_slot(&ok), Ok(1));
        assert!(matches!(
            check_slot(&SlotBooks { level: 41, ..ok }),
            Err(Violation::SlotNotConserved { .. })
        ));
        // Counted more than every vend could make: a vend counted twice.
        assert!(matches!(
            check_slot(&SlotBooks {
                counted: 12,
                level: 38,
                ..ok
            }),
            Err(Violation::MachineUnits { .. })
        ));
        // An acknowledged vend lost.
        assert!(check_slot(&SlotBooks {
            counted: 8,
            level: 42,
            ..ok
        })
        .is_err());
    }

    proptest! {
        #[test]
        fn every_subset_total_is_allowed_and_the_interval_bounds_them(
            xs in proptest::collection::vec(-20i64..20, 0..10),
            mask in any::<u16>(),
        ) {
            let total: i64 = xs.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, x)| x).sum();
            let sums = subset_sums(&xs).unwrap();
            prop_assert!(sums.contains(&total));
            let (lo, hi) = interval(&xs);
            prop_assert!(sums.iter().all(|s| (lo..=hi).contains(s)));
        }
    }
}
