//! One promotion's redemption ledger (keyed by the promotion id): how many orders
//! redeemed it, which orders hold a reservation on it until when, and how many each
//! customer redeemed. The checkout saga reserves a redemption like stock (before the
//! payment), consumes it when the order is paid, and releases it when the order is
//! cancelled or declined, so `usage_limit` and `per_customer_limit` hold exactly however
//! many checkouts race: the ledger has one writer, and it counts consumed redemptions
//! plus the reservations still live.
//!
//! A reservation lapses at its `expires_at` (the order's own reservation deadline): it
//! stops counting then, and a consume after it is refused, so a lapsed order cannot
//! take a redemption another order was since given. Pure: the caller passes the time.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};

/// Most customers whose redemptions one ledger counts (for `per_customer_limit`).
pub const MAX_CUSTOMERS: usize = 100_000;
/// Most live reservations one ledger holds (a checkout burst beyond it is refused).
pub const MAX_RESERVATIONS: usize = 10_000;
/// Closed orders remembered, so a repeated consume or release is recognised.
pub const KEEP_CLOSED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub customer: String,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Closed {
    Consumed,
    Released,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedemptionState {
    /// Orders that redeemed the promotion (paid, and not since given back).
    pub consumed: u32,
    pub reservations: BTreeMap<Uuid, Hold>,
    /// Consumed redemptions per customer.
    pub per_customer: BTreeMap<String, u32>,
    /// The last closed orders, oldest first, with their customer.
    pub closed: VecDeque<(Uuid, String, Closed)>,
}

impl RedemptionState {
    /// Reservations that still count at `now`.
    pub fn live(&self, now: Millis) -> impl Iterator<Item = (&Uuid, &Hold)> {
        self.reservations
            .iter()
            .filter(move |(_, h)| h.expires_at > now)
    }
    /// Redemptions taken at `now`: consumed plus live reservations.
    pub fn taken(&self, now: Millis) -> u32 {
        self.consumed + self.live(now).count() as u32
    }
    /// `customer`'s redemptions at `now`, consumed and reserved.
    pub fn taken_by(&self, customer: &str, now: Millis) -> u32 {
        self.per_customer.get(customer).copied().unwrap_or(0)
            + self
                .live(now)
                .filter(|(_, h)| h.customer == customer)
                .count() as u32
    }
    fn closed(&self, order_id: &Uuid) -> Option<Closed> {
        self.closed
            .iter()
            .find(|(o, _, _)| o == order_id)
            .map(|(_, _, c)| *c)
    }
}

/// Why a reservation is refused (each is a 409 of its own at the edge).
pub fn exhausted(limit: u32) -> Rejection {
    Rejection::new(
        RejectionCode::CouponExhausted,
        format!("the promotion's {limit} redemptions are taken"),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RedemptionCommand {
    /// Holds one redemption for the order until `expires_at`; a repeat is a no-op.
    Reserve {
        order_id: Uuid,
        customer: String,
        usage_limit: Option<u32>,
        per_customer_limit: Option<u32>,
        expires_at: Millis,
        now: Millis,
    },
    /// The order was paid: its reservation becomes a redemption.
    Consume { order_id: Uuid, now: Millis },
    /// The order was cancelled: its reservation (or its redemption) is given back.
    Release { order_id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedemptionEvent {
    Reserved {
        order_id: Uuid,
        customer: String,
        expires_at: Millis,
    },
    /// Reservations that lapsed, dropped to bound the state.
    Lapsed {
        order_ids: Vec<Uuid>,
    },
    Consumed {
        order_id: Uuid,
    },
    Released {
        order_id: Uuid,
    },
    /// A consumed redemption given back by an order that was cancelled after it.
    Unconsumed {
        order_id: Uuid,
    },
}

pub struct Redemptions;

impl Aggregate for Redemptions {
    const KIND: EntityKind = EntityKind::Redemption;
    type State = RedemptionState;
    type Command = RedemptionCommand;
    type Event = RedemptionEvent;

    fn decide(
        s: &RedemptionState,
        cmd: &RedemptionCommand,
    ) -> Result<Vec<RedemptionEvent>, Rejection> {
        match cmd {
            RedemptionCommand::Reserve {
                order_id,
                customer,
                usage_limit,
                per_customer_limit,
                expires_at,
                now,
            } => {
                if s.reservations.contains_key(order_id) || s.closed(order_id).is_some() {
                    return Ok(vec![]);
                }
                if let Some(limit) = usage_limit {
                    if s.taken(*now) >= *limit {
                        return Err(exhausted(*limit));
                    }
                }
                if let Some(limit) = per_customer_limit {
                    if s.taken_by(customer, *now) >= *limit {
                        return reject(
                            RejectionCode::CouponLimitPerCustomer,
                            format!("a customer may redeem this promotion {limit} times"),
                        );
                    }
                    if !s.per_customer.contains_key(customer)
                        && s.per_customer.len() >= MAX_CUSTOMERS
                    {
                        return reject(
                            RejectionCode::CouponExhausted,
                            format!("the promotion counts at most {MAX_CUSTOMERS} customers"),
                        );
                    }
                }
                let lapsed: Vec<Uuid> = s
                    .reservations
                    .iter()
                    .filter(|(_, h)| h.expires_at <= *now)
                    .map(|(o, _)| *o)
                    .collect();
                if s.reservations.len() - lapsed.len() >= MAX_RESERVATIONS {
                    return reject(
                        RejectionCode::CouponExhausted,
                        format!("the promotion holds {MAX_RESERVATIONS} open checkouts; try again"),
                    );
                }
                let mut evs = Vec::new();
                if !lapsed.is_empty() {
                    evs.push(RedemptionEvent::Lapsed { order_ids: lapsed });
                }
                evs.push(RedemptionEvent::Reserved {
                    order_id: *order_id,
                    customer: customer.clone(),
                    expires_at: *expires_at,
                });
                Ok(evs)
            }
            RedemptionCommand::Consume { order_id, now } => match s.reservations.get(order_id) {
                Some(h) if h.expires_at > *now => Ok(vec![RedemptionEvent::Consumed {
                    order_id: *order_id,
                }]),
                _ if s.closed(order_id) == Some(Closed::Consumed) => Ok(vec![]),
                _ => reject(
                    RejectionCode::InvalidTransition,
                    "the order's reservation of this promotion lapsed",
                ),
            },
            RedemptionCommand::Release { order_id } => {
                if s.reservations.contains_key(order_id) {
                    Ok(vec![RedemptionEvent::Released {
                        order_id: *order_id,
                    }])
                } else if s.closed(order_id) == Some(Closed::Consumed) {
                    Ok(vec![RedemptionEvent::Unconsumed {
                        order_id: *order_id,
                    }])
                } else {
                    Ok(vec![])
                }
            }
        }
    }

    fn apply(s: &mut RedemptionState, e: &RedemptionEvent) {
        fn close(s: &mut RedemptionState, order_id: Uuid, customer: String, how: Closed) {
            s.closed.retain(|(o, _, _)| *o != order_id);
            s.closed.push_back((order_id, customer, how));
            while s.closed.len() > KEEP_CLOSED {
                s.closed.pop_front();
            }
        }
        match e {
            RedemptionEvent::Reserved {
                order_id,
                customer,
                expires_at,
            } => {
                s.reservations.insert(
                    *order_id,
                    Hold {
                        customer: customer.clone(),
                        expires_at: *expires_at,
                    },
                );
            }
            RedemptionEvent::Lapsed { order_ids } => {
                for o in order_ids {
                    s.reservations.remove(o);
                }
            }
            RedemptionEvent::Consumed { order_id } => {
                if let Some(h) = s.reservations.remove(order_id) {
                    s.consumed += 1;
                    *s.per_customer.entry(h.customer.clone()).or_default() += 1;
                    close(s, *order_id, h.customer, Closed::Consumed);
                }
            }
            RedemptionEvent::Released { order_id } => {
                if let Some(h) = s.reservations.remove(order_id) {
                    close(s, *order_id, h.customer, Closed::Released);
                }
            }
            RedemptionEvent::Unconsumed { order_id } => {
                let customer = s
                    .closed
                    .iter()
                    .find(|(o, _, _)| o == order_id)
                    .map(|(_, c, _)| c.clone());
                if let Some(c) = customer {
                    s.consumed = s.consumed.saturating_sub(1);
                    if let Some(n) = s.per_customer.get_mut(&c) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            s.per_customer.remove(&c);
                        }
                    }
                    close(s, *order_id, c, Closed::Released);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(u8, u8, u64),
        Consume(u8),
        Release(u8),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..30, 0u8..4, 1u64..50).prop_map(|(o, c, ttl)| Op::Reserve(o, c, ttl)),
            (0u8..30).prop_map(Op::Consume),
            (0u8..30).prop_map(Op::Release),
            (1u64..20).prop_map(Op::Tick),
        ]
    }

    proptest! {
        /// However reservations, consumes, releases and lapses interleave, the ledger
        /// never counts more redemptions than its limits allow, and its totals agree
        /// with each other.
        #[test]
        fn limits_hold_under_any_interleaving(ops in proptest::collection::vec(op(), 0..120)) {
            let (limit, per) = (5u32, 2u32);
            let mut s = RedemptionState::default();
            let mut now = 100u64;
            for op in ops {
                let cmd = match op {
                    Op::Reserve(o, c, ttl) => RedemptionCommand::Reserve {
                        order_id: Uuid::from_u128(o as u128),
                        customer: format!("c{c}"),
                        usage_limit: Some(limit),
                        per_customer_limit: Some(per),
                        expires_at: now + ttl,
                        now,
                    },
                    Op::Consume(o) => RedemptionCommand::Consume { order_id: Uuid::from_u128(o as u128), now },
                    Op::Release(o) => RedemptionCommand::Release { order_id: Uuid::from_u128(o as u128) },
                    Op::Tick(d) => { now += d; continue }
                };
                if let Ok(evs) = Redemptions::decide(&s, &cmd) {
                    for e in &evs { Redemptions::apply(&mut s, e); }
                }
                prop_assert!(s.taken(now) <= limit);
                prop_assert_eq!(s.consumed, s.per_customer.values().sum::<u32>());
                for c in 0..4 {
                    let who = format!("c{c}");
                    prop_assert!(s.taken_by(&who, now) <= per);
                }
            }
        }
    }

    #[test]
    fn a_lapsed_reservation_cannot_be_consumed_and_a_release_gives_a_redemption_back() {
        let o = Uuid::from_u128(1);
        let mut s = RedemptionState::default();
        let reserve = RedemptionCommand::Reserve {
            order_id: o,
            customer: "c".into(),
            usage_limit: Some(1),
            per_customer_limit: None,
            expires_at: 10,
            now: 1,
        };
        for e in Redemptions::decide(&s, &reserve).unwrap() {
            Redemptions::apply(&mut s, &e);
        }
        let late = Redemptions::decide(
            &s,
            &RedemptionCommand::Consume {
                order_id: o,
                now: 10,
            },
        );
        assert_eq!(late.unwrap_err().code, RejectionCode::InvalidTransition);
        for e in Redemptions::decide(
            &s,
            &RedemptionCommand::Consume {
                order_id: o,
                now: 9,
            },
        )
        .unwrap()
        {
            Redemptions::apply(&mut s, &e);
        }
        assert_eq!((s.consumed, s.taken(9)), (1, 1));
        // A repeated consume is a no-op; a release after it gives the redemption back.
        assert!(Redemptions::decide(
            &s,
            &RedemptionCommand::Consume {
                order_id: o,
                now: 9
            }
        )
        .unwrap()
        .is_empty());
        for e in Redemptions::decide(&s, &RedemptionCommand::Release { order_id: o }).unwrap() {
            Redemptions::apply(&mut s, &e);
        }
        assert_eq!((s.consumed, s.taken(9), s.per_customer.len()), (0, 0, 0));
    }
}
