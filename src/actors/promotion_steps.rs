//! Promotions at the edge of the pure domain: gathering what [`pricing::price`] needs
//! (the categories of the lines, and which promotions their ledgers say are taken), and
//! the order saga's promotion steps (price the locked cart, reserve, consume and release
//! a redemption).
//!
//! The cart a shopper sees and the order a checkout places are priced by the same
//! [`quote`]; the checkout reads the promotion book fresh, the cart view a node's recent
//! copy of it.

use std::collections::BTreeMap;

use super::client::{EntityClient, RouteError};
use crate::clock::Clock;
use crate::domain::cart::Cart;
use crate::domain::order::{Effect, FailureCode, OrderCommand};
use crate::domain::order_promotions::failure_of;
use crate::domain::pricing::{self, CouponRefusal, Priced, PricedLine, Unavailable};
use crate::domain::product::Product;
use crate::domain::promotion::{Promotion, Promotions, PromotionsState, Window, BOOK_ID};
use crate::domain::redemption::{RedemptionCommand, Redemptions};
use crate::domain::{Millis, RejectionCode, Sku};

/// Whether `p` could apply to a cart holding `codes`: live, and automatic or entered.
fn in_play(p: &Promotion, codes: &[String], now: Millis) -> bool {
    p.window(now) == Window::Open && p.def.code.as_ref().is_none_or(|c| codes.contains(c))
}

/// Prices `lines` with `codes` against `book` at `now`, for `customer` when known.
///
/// Reads, through `client`, only what a promotion in play needs: each line's product
/// category when one names categories, and the ledger of each one with a limit.
pub async fn quote(
    client: &dyn EntityClient,
    book: &PromotionsState,
    lines: &[(Sku, u32, i64)],
    codes: &[String],
    customer: Option<&str>,
    now: Millis,
) -> Result<Priced, RouteError> {
    let playing: Vec<&Promotion> = book
        .promotions
        .values()
        .filter(|p| in_play(p, codes, now))
        .collect();
    let mut categories: BTreeMap<Sku, Option<String>> = BTreeMap::new();
    if playing
        .iter()
        .any(|p| !p.def.conditions.categories.is_empty())
    {
        for (sku, _, _) in lines {
            let p = client.get::<Product>(sku.as_str()).await?;
            categories.insert(sku.clone(), p.spec.map(|s| s.category));
        }
    }
    let mut unavailable = Unavailable::default();
    for p in &playing {
        let limited = p.def.usage_limit.is_some()
            || (p.def.per_customer_limit.is_some() && customer.is_some());
        if !limited {
            continue;
        }
        let ledger = client.get::<Redemptions>(&p.id).await?;
        if p.def.usage_limit.is_some_and(|l| ledger.taken(now) >= l) {
            unavailable
                .by_id
                .insert(p.id.clone(), CouponRefusal::Exhausted);
        } else if let (Some(l), Some(c)) = (p.def.per_customer_limit, customer) {
            if ledger.taken_by(c, now) >= l {
                unavailable
                    .by_id
                    .insert(p.id.clone(), CouponRefusal::LimitPerCustomer);
            }
        }
    }
    let priced_lines: Vec<PricedLine> = lines
        .iter()
        .map(|(sku, quantity, unit_price_minor)| PricedLine {
            sku: sku.clone(),
            quantity: *quantity,
            unit_price_minor: *unit_price_minor,
            category: categories.get(sku).cloned().flatten(),
        })
        .collect();
    Ok(pricing::price(
        &priced_lines,
        book,
        codes,
        &unavailable,
        now,
    ))
}

/// The rejection a refused coupon answers with.
pub fn refusal_code(r: CouponRefusal) -> RejectionCode {
    match r {
        CouponRefusal::Unknown => RejectionCode::NotFound,
        CouponRefusal::Expired => RejectionCode::CouponExpired,
        CouponRefusal::NotApplicable => RejectionCode::CouponNotApplicable,
        CouponRefusal::Exhausted => RejectionCode::CouponExhausted,
        CouponRefusal::LimitPerCustomer => RejectionCode::CouponLimitPerCustomer,
    }
}

/// What a refusal says to the shopper.
pub fn refusal_message(code: &str, r: CouponRefusal) -> String {
    match r {
        CouponRefusal::Unknown => format!("no coupon {code}"),
        CouponRefusal::Expired => format!("the coupon {code} is not valid now"),
        CouponRefusal::NotApplicable => {
            format!("the coupon {code} does not apply to this cart (its conditions, or a better promotion)")
        }
        CouponRefusal::Exhausted => format!("the coupon {code} has no redemptions left"),
        CouponRefusal::LimitPerCustomer => {
            format!("the coupon {code} was already redeemed as often as one customer may")
        }
    }
}

fn transient(step: &str, e: impl std::fmt::Display) -> Option<OrderCommand> {
    super::order_saga::transient(step, e)
}

/// Performs one promotion step of the order saga.
pub async fn perform(
    client: &dyn EntityClient,
    clock: &dyn Clock,
    effect: Effect,
) -> Option<OrderCommand> {
    let at = clock.now_ms();
    match effect {
        Effect::Price {
            cart_id,
            customer,
            lines,
            ..
        } => {
            let cart = match client.get::<Cart>(&cart_id.to_string()).await {
                Ok(c) => c,
                Err(e) => return transient("price: read cart", e),
            };
            let book = match client.get::<Promotions>(BOOK_ID).await {
                Ok(b) => b,
                Err(e) => return transient("price: read promotions", e),
            };
            let priced =
                match quote(client, &book, &lines, &cart.coupons, Some(&customer), at).await {
                    Ok(p) => p,
                    Err(e) => return transient("price", e),
                };
            if let Some((code, r)) = priced.refused.first() {
                return Some(OrderCommand::PricingRefused {
                    code: match r {
                        CouponRefusal::Unknown => FailureCode::CouponNotApplicable,
                        r => failure_of(refusal_code(*r)),
                    },
                    message: refusal_message(code, *r),
                    at,
                });
            }
            Some(OrderCommand::Priced {
                discounts: priced.discounts.into_iter().map(Into::into).collect(),
                at,
            })
        }
        Effect::ReservePromotion {
            promotion_id,
            order_id,
            customer,
            usage_limit,
            per_customer_limit,
            expires_at,
        } => {
            if at >= expires_at {
                return Some(OrderCommand::Expired { at });
            }
            let cmd = RedemptionCommand::Reserve {
                order_id,
                customer,
                usage_limit,
                per_customer_limit,
                expires_at,
                now: at,
            };
            match client.command::<Redemptions>(&promotion_id, cmd).await {
                Ok(_) => Some(OrderCommand::PromotionReserved { promotion_id, at }),
                Err(RouteError::Rejected(r)) => Some(OrderCommand::PromotionRefused {
                    promotion_id,
                    code: failure_of(r.code),
                    message: r.message,
                    at,
                }),
                Err(e) => transient("reserve promotion", e),
            }
        }
        Effect::ConsumePromotion {
            promotion_id,
            order_id,
        } => {
            let cmd = RedemptionCommand::Consume { order_id, now: at };
            match client.command::<Redemptions>(&promotion_id, cmd).await {
                Ok(_) => Some(OrderCommand::PromotionConsumed { promotion_id, at }),
                Err(RouteError::Rejected(r)) => Some(OrderCommand::PromotionConsumeFailed {
                    promotion_id,
                    message: r.message,
                    at,
                }),
                Err(e) => transient("consume promotion", e),
            }
        }
        Effect::ReleasePromotion {
            promotion_id,
            order_id,
        } => {
            let cmd = RedemptionCommand::Release { order_id };
            match client.command::<Redemptions>(&promotion_id, cmd).await {
                // A release is a no-op when there is nothing to give back.
                Ok(_) | Err(RouteError::Rejected(_)) => {
                    Some(OrderCommand::PromotionReleased { promotion_id, at })
                }
                Err(e) => transient("release promotion", e),
            }
        }
        other => {
            tracing::error!(?other, "not a promotion step");
            None
        }
    }
}
