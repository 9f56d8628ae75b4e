//! Pricing a cart against the promotion book: which promotions apply, what each takes
//! off which line, and the totals. Pure, and the same function prices the cart a shopper
//! sees and the order a checkout places.
//!
//! Money is integer minor units throughout. Rounding, stated once:
//! - a percentage is taken of each selected line's total and rounded half-to-even per
//!   line;
//! - a fixed amount is shared between the selected lines in proportion to their value by
//!   the largest-remainder method, so the shares sum to the amount exactly;
//! - a line's discounts never exceed its total (each promotion takes at most what is left
//!   of the line), so no line is negative, and the total is the sum of the lines.
//!
//! Which promotions apply: every eligible one (open window, conditions met, and for a
//! coupon its code on the cart). When one of them does not combine with others, the cart
//! gets whichever is worth more: that one alone or every combining one together (a tie
//! goes to the set holding a coupon the shopper typed, then to the lower id).

use std::collections::BTreeMap;

use super::promotion::{Action, Promotion, PromotionsState, Window};
use super::Sku;

/// One cart line as pricing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price_minor: i64,
    /// The product's category, when a promotion's conditions name categories.
    pub category: Option<String>,
}

impl PricedLine {
    pub fn total_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity)
    }
}

/// What one promotion takes off, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    pub promotion_id: String,
    pub code: Option<String>,
    pub amount_minor: i64,
    pub lines: Vec<(Sku, i64)>,
    pub usage_limit: Option<u32>,
    pub per_customer_limit: Option<u32>,
}

/// Why a coupon on the cart gives nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponRefusal {
    /// No live promotion has this code.
    Unknown,
    /// Its window has not opened, has closed, or an operator ended it.
    Expired,
    /// The cart does not meet its conditions, or another promotion worth more excludes it.
    NotApplicable,
    /// Its redemptions are taken.
    Exhausted,
    /// This customer redeemed it as often as allowed.
    LimitPerCustomer,
}

/// The promotions that may not be redeemed now, as their ledgers say (the caller reads
/// them): they are left out of the price.
#[derive(Debug, Clone, Default)]
pub struct Unavailable {
    pub by_id: BTreeMap<String, CouponRefusal>,
}

/// A priced cart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Priced {
    pub subtotal_minor: i64,
    pub discounts: Vec<Discount>,
    pub discount_minor: i64,
    pub total_minor: i64,
    /// The coupons on the cart that give nothing, and why.
    pub refused: Vec<(String, CouponRefusal)>,
}

/// `n * p / 100`, rounded half to even (`n >= 0`, `0 <= p <= 100`).
pub fn percent_half_even(n: i64, p: u32) -> i64 {
    let x = i128::from(n) * i128::from(p);
    let (q, r) = (x / 100, x % 100);
    let q = match (r * 2).cmp(&100) {
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal if q % 2 == 1 => q + 1,
        _ => q,
    };
    q as i64
}

/// Shares `amount` between `weights` in proportion, by largest remainder: the shares sum
/// to `amount` exactly and none exceeds its weight (`amount <= sum(weights)`).
pub fn share(amount: i64, weights: &[i64]) -> Vec<i64> {
    let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if total <= 0 || amount <= 0 {
        return vec![0; weights.len()];
    }
    let amount = i128::from(amount).min(total);
    let mut shares: Vec<i128> = weights
        .iter()
        .map(|w| amount * i128::from(*w) / total)
        .collect();
    let mut rest = amount - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest remainder first; ties to the earlier line.
    order.sort_by_key(|&i| std::cmp::Reverse((amount * i128::from(weights[i])) % total));
    for i in order {
        if rest == 0 {
            break;
        }
        if shares[i] < i128::from(weights[i]) {
            shares[i] += 1;
            rest -= 1;
        }
    }
    shares.into_iter().map(|s| s as i64).collect()
}

fn eligible(
    p: &Promotion,
    lines: &[PricedLine],
    subtotal: i64,
    now: u64,
) -> Result<(), CouponRefusal> {
    if p.window(now) != Window::Open {
        return Err(CouponRefusal::Expired);
    }
    let c = &p.def.conditions;
    if subtotal < c.min_subtotal_minor {
        return Err(CouponRefusal::NotApplicable);
    }
    if !lines
        .iter()
        .any(|l| c.selects(&l.sku, l.category.as_deref()))
    {
        return Err(CouponRefusal::NotApplicable);
    }
    let holds = |sku: &Sku| lines.iter().any(|l| &l.sku == sku);
    match &p.def.action {
        Action::BuyXGetY {
            buy_sku, get_sku, ..
        } if !holds(buy_sku) || !holds(get_sku) => Err(CouponRefusal::NotApplicable),
        Action::FreeItem { sku, .. } if !holds(sku) => Err(CouponRefusal::NotApplicable),
        _ => Ok(()),
    }
}

/// What `p` takes off each line, given what is left of each (`left[i]`).
fn take(p: &Promotion, lines: &[PricedLine], left: &[i64]) -> Vec<i64> {
    let c = &p.def.conditions;
    let selected = |l: &PricedLine| c.selects(&l.sku, l.category.as_deref());
    let qty = |sku: &Sku| {
        lines
            .iter()
            .find(|l| &l.sku == sku)
            .map_or(0, |l| l.quantity)
    };
    let free_units = |sku: &Sku, units: u32| -> Vec<i64> {
        lines
            .iter()
            .zip(left)
            .map(|(l, left)| {
                if &l.sku == sku {
                    (l.unit_price_minor * i64::from(units.min(l.quantity))).min(*left)
                } else {
                    0
                }
            })
            .collect()
    };
    match &p.def.action {
        Action::PercentOff { percent } => lines
            .iter()
            .zip(left)
            .map(|(l, left)| {
                if selected(l) {
                    percent_half_even(l.total_minor(), *percent).min(*left)
                } else {
                    0
                }
            })
            .collect(),
        Action::AmountOff { amount_minor } => {
            let weights: Vec<i64> = lines
                .iter()
                .zip(left)
                .map(|(l, left)| if selected(l) { *left } else { 0 })
                .collect();
            share(*amount_minor, &weights)
        }
        Action::BuyXGetY {
            buy_sku,
            buy_quantity,
            get_sku,
            get_quantity,
        } => {
            let free = if buy_sku == get_sku {
                qty(buy_sku) / (buy_quantity + get_quantity) * get_quantity
            } else {
                (qty(buy_sku) / buy_quantity * get_quantity).min(qty(get_sku))
            };
            free_units(get_sku, free)
        }
        Action::FreeItem { sku, quantity } => free_units(sku, *quantity),
    }
}

/// Applies `set` in id order, each taking at most what is left of a line.
fn apply_set(set: &[&Promotion], lines: &[PricedLine]) -> Vec<Discount> {
    let mut left: Vec<i64> = lines.iter().map(PricedLine::total_minor).collect();
    let mut out = Vec::new();
    for p in set {
        let takes = take(p, lines, &left);
        let amount: i64 = takes.iter().sum();
        if amount <= 0 {
            continue;
        }
        for (l, t) in left.iter_mut().zip(&takes) {
            *l -= t;
        }
        out.push(Discount {
            promotion_id: p.id.clone(),
            code: p.def.code.clone(),
            amount_minor: amount,
            lines: lines
                .iter()
                .zip(&takes)
                .filter(|(_, t)| **t > 0)
                .map(|(l, t)| (l.sku.clone(), *t))
                .collect(),
            usage_limit: p.def.usage_limit,
            per_customer_limit: p.def.per_customer_limit,
        });
    }
    out
}

/// Prices `lines` with the coupons `codes` (stored form) at `now`, leaving out the
/// promotions `unavailable` names.
pub fn price(
    lines: &[PricedLine],
    book: &PromotionsState,
    codes: &[String],
    unavailable: &Unavailable,
    now: u64,
) -> Priced {
    let subtotal: i64 = lines.iter().map(PricedLine::total_minor).sum();
    let mut refused = Vec::new();
    let mut candidates: Vec<&Promotion> = Vec::new();
    for p in book.promotions.values() {
        if p.def.code.is_none() && p.ended_at.is_none() {
            let ok =
                eligible(p, lines, subtotal, now).is_ok() && !unavailable.by_id.contains_key(&p.id);
            if ok {
                candidates.push(p);
            }
        }
    }
    for code in codes {
        let Some(p) = book.by_code(code) else {
            refused.push((code.clone(), CouponRefusal::Unknown));
            continue;
        };
        if let Err(r) = eligible(p, lines, subtotal, now) {
            refused.push((code.clone(), r));
        } else if let Some(r) = unavailable.by_id.get(&p.id) {
            refused.push((code.clone(), *r));
        } else if !candidates.iter().any(|c| c.id == p.id) {
            candidates.push(p);
        }
    }
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    let chosen = choose(&candidates, lines);
    for p in &candidates {
        if let Some(code) = &p.def.code {
            if !chosen.iter().any(|d| d.promotion_id == p.id)
                && !refused.iter().any(|(c, _)| c == code)
            {
                refused.push((code.clone(), CouponRefusal::NotApplicable));
            }
        }
    }
    let discount: i64 = chosen.iter().map(|d| d.amount_minor).sum();
    Priced {
        subtotal_minor: subtotal,
        discounts: chosen,
        discount_minor: discount,
        total_minor: subtotal - discount,
        refused,
    }
}

fn choose(candidates: &[&Promotion], lines: &[PricedLine]) -> Vec<Discount> {
    let combining: Vec<&Promotion> = candidates
        .iter()
        .copied()
        .filter(|p| p.def.combines)
        .collect();
    let mut sets: Vec<Vec<&Promotion>> = vec![combining];
    sets.extend(
        candidates
            .iter()
            .filter(|p| !p.def.combines)
            .map(|p| vec![*p]),
    );
    let value = |ds: &[Discount]| ds.iter().map(|d| d.amount_minor).sum::<i64>();
    let coupons = |ds: &[Discount]| ds.iter().filter(|d| d.code.is_some()).count();
    let mut best: Vec<Discount> = Vec::new();
    for set in sets {
        let ds = apply_set(&set, lines);
        if (value(&ds), coupons(&ds)) > (value(&best), coupons(&best)) {
            best = ds;
        }
    }
    best
}

#[cfg(test)]
#[path = "pricing_tests.rs"]
mod tests;
