//! The behaviors of each kind: what runs at the edge around the pure domain.
//!
//! - [`OrderSaga`] performs each step named by `domain::order::next_effect` (cart lock,
//!   reservations, payment calls) and reports the outcome as a command. Transient
//!   failures return `None`, and the actor re-drives later; forward steps give up with
//!   `Expired` once the reservation deadline has passed. In a cluster each step runs
//!   inside its order's partition gate ([`crate::cluster::node::EffectGuard`]): a
//!   handoff waits for the steps in flight, and a step refused by a frozen gate returns
//!   `None`, so the order re-drives it on whichever node owns it next.
//! - [`StockBehavior`] wakes a SKU when its earliest reservation expires.
//! - [`ProductBehavior`] keeps the catalog view and the product index current.

use super::behavior::{Behavior, Effects};
use super::catalog::Catalog;
use super::client::{EntityClient, RouteError};
use crate::clock::Clock;
use crate::domain::cart::{Cart, CartCommand};
use crate::domain::location::{Locations, BOOK_ID};
use crate::domain::order::{
    self, Effect, FailureCode, Order, OrderCommand, OrderEvent, OrderState,
};
use crate::domain::product::{Product, ProductEvent, ProductState};
use crate::domain::stock::{Stock, StockCommand, StockState};
use crate::domain::EntityKind;
use crate::domain::{Millis, RejectionCode, Sku};
use crate::payment::{PaymentError, PaymentGateway, PaymentKey, PaymentStep};
use crate::store::{Index, IndexOp};
use futures::future::BoxFuture;
use metrics::counter;
use std::sync::Arc;
use std::time::Duration;

/// Saga settings.
#[derive(Debug, Clone)]
pub struct SagaConfig {
    /// Attempts for a retryable payment error (`processing_error`) before `payment_error`.
    pub payment_retries: u32,
    pub payment_retry_backoff: Duration,
    /// Most closed reservations a SKU remembers (`inventory.closed_reservations_max`).
    pub keep_closed: u32,
}

pub struct OrderSaga {
    gateway: Arc<dyn PaymentGateway>,
    config: SagaConfig,
}

impl OrderSaga {
    /// Its steps reach other entities, and read the time, through the [`Effects`] the
    /// entity shell hands each one.
    pub fn new(gateway: Arc<dyn PaymentGateway>, config: SagaConfig) -> Self {
        // Exported from the start, so a dashboard sees 0 rather than a missing series.
        counter!("emporium_saga_steps_deferred_total").absolute(0);
        Self { gateway, config }
    }
}

struct Step {
    client: Arc<dyn EntityClient>,
    clock: Arc<dyn Clock>,
    gateway: Arc<dyn PaymentGateway>,
    config: SagaConfig,
    /// The SKU of a vending order's line (its steps report outcomes per line).
    vending_sku: Option<Sku>,
}

fn stage_key(order_id: uuid::Uuid, step: PaymentStep) -> PaymentKey {
    PaymentKey::new(order_id, step)
}

impl Step {
    async fn perform(self, effect: Effect) -> Option<OrderCommand> {
        let now_ms = || self.clock.now_ms();
        let at = now_ms();
        let expired = |deadline: Millis| at >= deadline;
        match effect {
            Effect::ReserveSlot { .. } | Effect::Dispense { .. } | Effect::ReleaseSlot { .. } => {
                let clock = &*self.clock;
                super::vending_steps::perform(
                    &*self.client,
                    clock,
                    self.vending_sku.clone(),
                    effect,
                )
                .await
            }
            Effect::Price { .. }
            | Effect::ReservePromotion { .. }
            | Effect::ConsumePromotion { .. }
            | Effect::ReleasePromotion { .. } => {
                super::promotion_steps::perform(&*self.client, &*self.clock, effect).await
            }
            Effect::LockCart { cart_id, order_id } => {
                match self
                    .client
                    .command::<Cart>(&cart_id.to_string(), CartCommand::Lock { order_id })
                    .await
                {
                    Ok(a) => Some(OrderCommand::CartLocked {
                        lines: a
                            .state
                            .lines
                            .iter()
                            .map(|(s, l)| (s.clone(), l.quantity, l.unit_price_minor))
                            .collect(),
                        at,
                    }),
                    Err(RouteError::Rejected(r)) => Some(OrderCommand::CartLockFailed {
                        message: r.message,
                        at,
                    }),
                    Err(e) => transient("lock cart", e),
                }
            }
            Effect::Reserve {
                sku,
                order_id,
                quantity,
                expires_at,
            } => {
                if expired(expires_at) {
                    return Some(OrderCommand::Expired { at });
                }
                let from = match self.draw_order().await {
                    Ok(from) => from,
                    Err(e) => return transient("read the locations", e),
                };
                let cmd = StockCommand::Reserve {
                    order_id,
                    quantity,
                    expires_at,
                    now: at,
                    from,
                };
                match self.client.command::<Stock>(sku.as_str(), cmd).await {
                    Ok(a) => Some(OrderCommand::LineReserved {
                        allocations: a
                            .state
                            .reservations
                            .get(&order_id)
                            .map(|r| r.allocations.clone())
                            .unwrap_or_default(),
                        sku,
                        at,
                    }),
                    Err(RouteError::Rejected(r)) if r.code == RejectionCode::InvalidTransition => {
                        Some(OrderCommand::Expired { at })
                    }
                    Err(RouteError::Rejected(r)) => Some(OrderCommand::LineOutOfStock {
                        sku,
                        message: r.message,
                        at,
                    }),
                    Err(e) => transient("reserve", e),
                }
            }
            Effect::Authorize {
                order_id,
                amount_minor,
                currency,
                method,
                expires_at,
            } => {
                let key = stage_key(order_id, PaymentStep::Authorize);
                let mut backoff = self.config.payment_retry_backoff;
                for attempt in 1..=self.config.payment_retries.max(1) {
                    if expired(expires_at) {
                        return Some(OrderCommand::Expired { at: now_ms() });
                    }
                    match self
                        .gateway
                        .authorize(key, method.clone(), amount_minor, currency.clone())
                        .await
                    {
                        Ok(authorization) => {
                            return Some(OrderCommand::Authorized {
                                authorization,
                                at: now_ms(),
                            })
                        }
                        Err(PaymentError::Declined { code }) => {
                            return Some(OrderCommand::PaymentFailed {
                                code: FailureCode::PaymentDeclined,
                                message: code,
                                at: now_ms(),
                            })
                        }
                        Err(PaymentError::Invalid { message }) => {
                            return Some(OrderCommand::PaymentFailed {
                                code: FailureCode::PaymentError,
                                message,
                                at: now_ms(),
                            })
                        }
                        // The ledger did not answer: re-driven later, same key.
                        Err(e @ PaymentError::Unavailable { .. }) => {
                            return transient("authorize", e)
                        }
                        Err(PaymentError::Retryable { message }) => {
                            tracing::warn!(%order_id, attempt, %message, "authorization failed; retrying");
                            if attempt < self.config.payment_retries {
                                tokio::time::sleep(backoff).await;
                                backoff = backoff.saturating_mul(2);
                            }
                        }
                    }
                }
                Some(OrderCommand::PaymentFailed {
                    code: FailureCode::PaymentError,
                    message: format!(
                        "processing_error: the gateway failed {} times",
                        self.config.payment_retries.max(1)
                    ),
                    at: now_ms(),
                })
            }
            Effect::Capture {
                order_id,
                authorization,
                amount_minor,
                expires_at,
            } => {
                if expired(expires_at) {
                    return Some(OrderCommand::Expired { at });
                }
                match self
                    .gateway
                    .capture(
                        stage_key(order_id, PaymentStep::Capture),
                        authorization,
                        amount_minor,
                    )
                    .await
                {
                    Ok(()) => Some(OrderCommand::Captured { at: now_ms() }),
                    Err(
                        e @ (PaymentError::Retryable { .. } | PaymentError::Unavailable { .. }),
                    ) => transient("capture", e),
                    Err(e) => Some(OrderCommand::PaymentFailed {
                        code: FailureCode::PaymentError,
                        message: e.to_string(),
                        at: now_ms(),
                    }),
                }
            }
            Effect::Commit {
                sku,
                order_id,
                quantity,
                from,
            } => {
                match self
                    .client
                    .command::<Stock>(
                        sku.as_str(),
                        StockCommand::Commit {
                            order_id,
                            quantity,
                            now: at,
                            keep_closed: self.config.keep_closed,
                            from,
                        },
                    )
                    .await
                {
                    Ok(_) => Some(OrderCommand::LineCommitted { sku, at }),
                    Err(RouteError::Rejected(r)) => Some(OrderCommand::CommitFailed {
                        sku,
                        message: r.message,
                        at,
                    }),
                    Err(e) => transient("commit", e),
                }
            }
            Effect::Release { sku, order_id } => {
                let keep_closed = self.config.keep_closed;
                let release = StockCommand::Release {
                    order_id,
                    now: at,
                    keep_closed,
                };
                self.stock_undo(sku, release, at).await
            }
            Effect::Return { sku, order_id } => {
                self.stock_undo(sku, StockCommand::Return { order_id, now: at }, at)
                    .await
            }
            Effect::Void {
                order_id,
                authorization,
            } => {
                match self
                    .gateway
                    .void(stage_key(order_id, PaymentStep::Void), authorization)
                    .await
                {
                    Ok(()) => Some(OrderCommand::Voided { at: now_ms() }),
                    Err(e) => transient("void", e),
                }
            }
            Effect::Refund {
                order_id,
                authorization,
                amount_minor,
            } => {
                match self
                    .gateway
                    .refund(
                        stage_key(order_id, PaymentStep::Refund),
                        authorization,
                        amount_minor,
                    )
                    .await
                {
                    Ok(()) => Some(OrderCommand::Refunded { at: now_ms() }),
                    Err(e) => transient("refund", e),
                }
            }
            Effect::ReopenCart { cart_id, order_id } => {
                match self
                    .client
                    .command::<Cart>(&cart_id.to_string(), CartCommand::Reopen { order_id })
                    .await
                {
                    Ok(_) | Err(RouteError::Rejected(_)) => Some(OrderCommand::CartReopened { at }),
                    Err(e) => transient("reopen cart", e),
                }
            }
        }
    }

    /// The locations a line's units are drawn from, in order, as the location book says
    /// now (read fresh: a location opened or closed a moment ago counts).
    async fn draw_order(&self) -> Result<Vec<String>, RouteError> {
        let book = self.client.get::<Locations>(BOOK_ID).await?;
        Ok(book.draw_order())
    }

    async fn stock_undo(&self, sku: Sku, cmd: StockCommand, at: Millis) -> Option<OrderCommand> {
        let release = matches!(cmd, StockCommand::Release { .. });
        match self.client.command::<Stock>(sku.as_str(), cmd).await {
            // Release and Return are no-ops when there is nothing to undo, so a
            // rejection cannot happen; treat any answer as done.
            Ok(_) | Err(RouteError::Rejected(_)) => Some(if release {
                OrderCommand::LineReleased { sku, at }
            } else {
                OrderCommand::LineReturned { sku, at }
            }),
            Err(e) => transient("undo stock", e),
        }
    }
}

/// Logs a transient failure; the actor re-drives the step later.
pub(super) fn transient(step: &str, error: impl std::fmt::Display) -> Option<OrderCommand> {
    tracing::warn!(step, %error, "saga step failed transiently; will retry");
    counter!("emporium_saga_step_retries_total", "step" => step.to_owned()).increment(1);
    None
}

impl Behavior<Order> for OrderSaga {
    fn next_effect(
        &self,
        id: &str,
        state: &OrderState,
        effects: &Effects,
    ) -> Option<BoxFuture<'static, Option<OrderCommand>>> {
        let effect = order::next_effect(state)?;
        let step = Step {
            client: effects.client.clone(),
            clock: effects.clock.clone(),
            gateway: self.gateway.clone(),
            config: self.config.clone(),
            vending_sku: super::vending_steps::line_sku(state),
        };
        let id = id.to_owned();
        let client = effects.client.clone();
        Some(Box::pin(async move {
            // Entered when the step starts, not when it is planned: a step that starts
            // after its partition froze does not run here.
            match client
                .in_gate(EntityKind::Order, &id, step.perform(effect))
                .await
            {
                Ok(next) => next,
                Err(refused) => {
                    tracing::debug!(order = %id, %refused, "saga step deferred");
                    counter!("emporium_saga_steps_deferred_total").increment(1);
                    None
                }
            }
        }))
    }

    fn index_ops(&self, id: &str, events: &[OrderEvent], after: &OrderState) -> Vec<IndexOp> {
        order_index_ops(id, events, after)
    }

    fn on_persisted(&self, _id: &str, events: &[OrderEvent], _after: &OrderState) {
        for e in events {
            match e {
                OrderEvent::Paid { .. } => counter!("emporium_saga_outcomes_total", "result" => "paid").increment(1),
                OrderEvent::Cancelled { failure, .. } => {
                    counter!("emporium_saga_outcomes_total", "result" => "cancelled", "code" => failure.code.as_str())
                        .increment(1)
                }
                OrderEvent::Refunded { .. } => counter!("emporium_saga_outcomes_total", "result" => "refunded").increment(1),
                _ => {}
            }
        }
    }

    fn is_settled(&self, state: &OrderState) -> bool {
        state.placement.is_none() || state.is_settled()
    }
}

pub struct StockBehavior {
    /// Most closed reservations a SKU remembers (`inventory.closed_reservations_max`).
    pub keep_closed: u32,
}

impl Behavior<Stock> for StockBehavior {
    fn next_wakeup(&self, state: &StockState) -> Option<Millis> {
        state.next_expiry()
    }
    fn on_wakeup(&self, _state: &StockState, now: Millis) -> Option<StockCommand> {
        Some(StockCommand::Expire {
            now,
            keep_closed: self.keep_closed,
        })
    }
}

pub struct ProductBehavior {
    pub catalog: Arc<Catalog>,
}

impl Behavior<Product> for ProductBehavior {
    fn index_ops(&self, id: &str, events: &[ProductEvent], _after: &ProductState) -> Vec<IndexOp> {
        if events
            .iter()
            .any(|e| matches!(e, ProductEvent::Created { .. }))
        {
            vec![IndexOp::Put(Index::Products, id.to_owned())]
        } else {
            vec![]
        }
    }
    fn on_persisted(&self, id: &str, _events: &[ProductEvent], after: &ProductState) {
        if let Ok(sku) = Sku::parse(id) {
            self.catalog.upsert(&sku, after);
        }
    }
}

/// The index entries an order's events write: every placed order, a cart checkout or an
/// app purchase at a machine, is open (resumed at start-up) until it settles, and listed
/// under its owner's orders.
fn order_index_ops(id: &str, events: &[OrderEvent], after: &OrderState) -> Vec<IndexOp> {
    let mut ops = vec![];
    for e in events {
        // Placed by this build, or (legacy shape) by an older one.
        let (owner, placed_at) = match e {
            OrderEvent::PlacedKeyed(p) | OrderEvent::VendingPlacedKeyed { placement: p, .. } => {
                (p.owner, p.placed_at)
            }
            OrderEvent::Placed(p) | OrderEvent::VendingPlaced { placement: p, .. } => {
                (p.owner, p.placed_at)
            }
            _ => continue,
        };
        ops.push(IndexOp::Put(Index::OpenOrders, id.to_owned()));
        if let Some(owner) = owner {
            // Inverted time sorts newest first.
            let key = format!("{owner}/{:016x}/{id}", u64::MAX - placed_at);
            ops.push(IndexOp::Put(Index::UserOrders, key));
        }
    }
    if after.is_settled() {
        ops.push(IndexOp::Remove(Index::OpenOrders, id.to_owned()));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::{Order, OrderCommand, Placement, VendingPlacement};
    use crate::domain::{Aggregate, Sku};
    use uuid::Uuid;

    fn placement(owner: Option<Uuid>) -> Placement {
        Placement {
            order_id: Uuid::from_u128(42),
            cart_id: Uuid::nil(),
            owner,
            email: "a@b.c".into(),
            currency: "USD".into(),
            payment_method: "pm_x".into(),
            last4: "4242".into(),
            placed_at: 1,
            expires_at: 1_000,
            fingerprint: [7; 32],
            key_expires_at: 1_000_000,
        }
    }

    /// An app purchase is open until it settles, like a checkout: a node that restarts
    /// before the machine holds its unit resumes it rather than leaving it pending.
    #[test]
    fn an_app_purchase_is_an_open_order_and_listed_under_its_owner() {
        let owner = Uuid::from_u128(9);
        let cmd = OrderCommand::PlaceVending {
            placement: placement(Some(owner)),
            vending: VendingPlacement {
                machine_id: "vm-1".into(),
                slot: 3,
                sku: Sku::parse("S0").unwrap(),
                price_minor: 250,
                deadline: 500,
            },
        };
        let state = Default::default();
        let events = Order::decide(&state, &cmd).unwrap();
        let mut after = state;
        for e in &events {
            Order::apply(&mut after, e);
        }
        let ops = order_index_ops("o-1", &events, &after);
        assert!(ops
            .iter()
            .any(|op| matches!(op, IndexOp::Put(Index::OpenOrders, id) if id == "o-1")));
        assert!(ops.iter().any(
            |op| matches!(op, IndexOp::Put(Index::UserOrders, k) if k.starts_with(&owner.to_string()))
        ));
    }
}
