use super::*;
use crate::domain::promotion::{Conditions, PromotionDef};
use proptest::prelude::*;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}

fn line(s: &str, quantity: u32, unit_price_minor: i64) -> PricedLine {
    PricedLine {
        sku: sku(s),
        quantity,
        unit_price_minor,
        category: Some(if s.starts_with('M') { "mugs" } else { "tea" }.into()),
    }
}

fn promo(id: &str, action: Action, code: Option<&str>, combines: bool) -> Promotion {
    Promotion {
        id: id.into(),
        def: PromotionDef {
            name: id.into(),
            campaign: None,
            action,
            conditions: Conditions::default(),
            code: code.map(str::to_owned),
            usage_limit: None,
            per_customer_limit: None,
            starts_at: None,
            ends_at: None,
            combines,
        },
        created_at: 0,
        updated_at: 0,
        ended_at: None,
    }
}

fn book(ps: Vec<Promotion>) -> PromotionsState {
    PromotionsState {
        promotions: ps.into_iter().map(|p| (p.id.clone(), p)).collect(),
    }
}

#[test]
fn percentages_round_half_to_even_per_line() {
    assert_eq!(percent_half_even(25, 10), 2); // 2.5 -> 2
    assert_eq!(percent_half_even(35, 10), 4); // 3.5 -> 4
    assert_eq!(percent_half_even(36, 10), 4); // 3.6 -> 4
    let b = book(vec![promo(
        "p",
        Action::PercentOff { percent: 10 },
        None,
        true,
    )]);
    let lines = [line("MUG", 1, 25), line("TEA", 1, 35)];
    let p = price(&lines, &b, &[], &Unavailable::default(), 1);
    assert_eq!(p.discounts[0].lines, vec![(sku("MUG"), 2), (sku("TEA"), 4)]);
    assert_eq!(
        (p.subtotal_minor, p.discount_minor, p.total_minor),
        (60, 6, 54)
    );
}

#[test]
fn a_fixed_amount_is_shared_exactly_and_never_beyond_the_lines() {
    assert_eq!(share(100, &[100, 100, 100]), vec![34, 33, 33]);
    assert_eq!(share(100, &[1, 1, 1]), vec![1, 1, 1]);
    assert_eq!(share(500, &[100, 50]), vec![100, 50]);
    let b = book(vec![promo(
        "p",
        Action::AmountOff { amount_minor: 500 },
        Some("SAVE5"),
        true,
    )]);
    let lines = [line("MUG", 1, 100), line("TEA", 1, 50)];
    let p = price(&lines, &b, &["SAVE5".into()], &Unavailable::default(), 1);
    assert_eq!((p.discount_minor, p.total_minor), (150, 0));
}

#[test]
fn buy_two_get_one_and_coupons_that_do_not_apply_say_why() {
    let mut late = promo(
        "late",
        Action::PercentOff { percent: 50 },
        Some("LATE"),
        true,
    );
    late.def.ends_at = Some(5);
    let mut big = promo("big", Action::PercentOff { percent: 50 }, Some("BIG"), true);
    big.def.conditions.min_subtotal_minor = 10_000;
    let b = book(vec![
        promo(
            "b2g1",
            Action::BuyXGetY {
                buy_sku: sku("TEA"),
                buy_quantity: 2,
                get_sku: sku("TEA"),
                get_quantity: 1,
            },
            None,
            true,
        ),
        late,
        big,
    ]);
    let lines = [line("TEA", 7, 300)];
    let codes = ["LATE".into(), "BIG".into(), "NOPE".into()];
    let p = price(&lines, &b, &codes, &Unavailable::default(), 10);
    // 7 units: two groups of three, so two free.
    assert_eq!(p.discount_minor, 600);
    assert_eq!(
        p.refused,
        vec![
            ("LATE".into(), CouponRefusal::Expired),
            ("BIG".into(), CouponRefusal::NotApplicable),
            ("NOPE".into(), CouponRefusal::Unknown),
        ]
    );
}

#[test]
fn a_promotion_that_does_not_combine_wins_only_when_it_is_worth_more() {
    let b = book(vec![
        promo("a", Action::PercentOff { percent: 10 }, None, true),
        promo("b", Action::AmountOff { amount_minor: 50 }, None, true),
        promo(
            "solo",
            Action::PercentOff { percent: 30 },
            Some("SOLO"),
            false,
        ),
    ]);
    let lines = [line("MUG", 1, 1000)];
    let none = price(&lines, &b, &[], &Unavailable::default(), 1);
    assert_eq!(none.discount_minor, 150);
    let solo = price(&lines, &b, &["SOLO".into()], &Unavailable::default(), 1);
    assert_eq!(solo.discount_minor, 300);
    assert_eq!(solo.discounts.len(), 1);
    let small = [line("MUG", 1, 100)];
    // 30% of 100 is 30; 10% + 50 is 60: the coupon is left out, and says so.
    let p = price(&small, &b, &["SOLO".into()], &Unavailable::default(), 1);
    assert_eq!(p.discount_minor, 60);
    assert_eq!(
        p.refused,
        vec![("SOLO".into(), CouponRefusal::NotApplicable)]
    );
    let mut gone = Unavailable::default();
    gone.by_id.insert("solo".into(), CouponRefusal::Exhausted);
    let p = price(&lines, &b, &["SOLO".into()], &gone, 1);
    assert_eq!(p.refused, vec![("SOLO".into(), CouponRefusal::Exhausted)]);
}

fn action() -> impl Strategy<Value = Action> {
    let s = || prop_oneof![Just(sku("MUG")), Just(sku("TEA")), Just(sku("CUP"))];
    prop_oneof![
        (1u32..=100).prop_map(|percent| Action::PercentOff { percent }),
        (1i64..100_000).prop_map(|amount_minor| Action::AmountOff { amount_minor }),
        (s(), 1u32..5, s(), 1u32..5).prop_map(|(buy_sku, buy_quantity, get_sku, get_quantity)| {
            Action::BuyXGetY {
                buy_sku,
                buy_quantity,
                get_sku,
                get_quantity,
            }
        }),
        (s(), 1u32..5).prop_map(|(sku, quantity)| Action::FreeItem { sku, quantity }),
    ]
}

proptest! {
    /// No combination of promotions makes a line negative, and every total is the sum of
    /// its parts: each discount of its lines, the cart's of its discounts and lines.
    #[test]
    fn no_line_goes_negative_and_totals_are_sums_of_lines(
        qty in proptest::collection::vec((0u32..20, 0i64..50_000), 3),
        promos in proptest::collection::vec((action(), any::<bool>(), any::<bool>(), 0i64..60_000, proptest::option::of(prop_oneof![Just("mugs".to_string()), Just("tea".to_string())])), 0..6),
    ) {
        let names = ["MUG", "TEA", "CUP"];
        let lines: Vec<PricedLine> = names
            .iter()
            .zip(&qty)
            .filter(|(_, (q, _))| *q > 0)
            .map(|(n, (q, p))| line(n, *q, *p))
            .collect();
        let mut codes = Vec::new();
        let ps: Vec<Promotion> = promos
            .into_iter()
            .enumerate()
            .map(|(i, (a, coupon, combines, min, cat))| {
                let code = coupon.then(|| format!("C{i}"));
                if let Some(c) = &code { codes.push(c.clone()); }
                let mut p = promo(&format!("p{i}"), a, code.as_deref(), combines);
                p.def.conditions.min_subtotal_minor = min;
                p.def.conditions.categories = cat.into_iter().collect();
                p
            })
            .collect();
        let p = price(&lines, &book(ps), &codes, &Unavailable::default(), 1);
        let mut per_line: BTreeMap<Sku, i64> = BTreeMap::new();
        for d in &p.discounts {
            prop_assert!(d.amount_minor > 0);
            prop_assert_eq!(d.amount_minor, d.lines.iter().map(|(_, a)| *a).sum::<i64>());
            for (s, a) in &d.lines {
                prop_assert!(*a > 0);
                *per_line.entry(s.clone()).or_default() += a;
            }
        }
        let mut total = 0;
        for l in &lines {
            let d = per_line.get(&l.sku).copied().unwrap_or(0);
            prop_assert!(d <= l.total_minor(), "line {} discounted {} of {}", l.sku, d, l.total_minor());
            total += l.total_minor() - d;
        }
        prop_assert_eq!(p.total_minor, total);
        prop_assert_eq!(p.subtotal_minor - p.discount_minor, p.total_minor);
        prop_assert!(p.total_minor >= 0);
    }
}
