//! An order and its checkout saga.
//!
//! The saga is a pure state machine. [`next_effect`] reads the state and names the one
//! step to perform next (lock the cart, reserve a line, authorize, ...). The actor shell
//! performs it at the edge and feeds the outcome back as a command. `decide` turns the
//! outcome into events, and appends the terminal event (`Paid`, `Cancelled`) once the last
//! step of a path is done. Every step is idempotent at its target, so a saga that resumes
//! after a crash repeats at most the step it was in, and that step has no second effect.

use super::order_idempotency::{key_use, Fingerprint, KeyUse};
use super::order_promotions::{self as promos, OrderDiscount, PricedDiscount, RedemptionStage};
pub use super::order_vending::{vend_status, VendStatus};
use super::order_vending::{vending_effect, VendReport};
pub use super::order_vending::{VendState, VendingOrder, VendingPlacement};
use super::stock_location::Allocation;
use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode, Sku};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Pending,
    Reserved,
    Paid,
    Fulfilled,
    Cancelled,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Reserved => "reserved",
            Self::Paid => "paid",
            Self::Fulfilled => "fulfilled",
            Self::Cancelled => "cancelled",
            Self::Refunded => "refunded",
        }
    }
    /// The allowed edges of the status graph.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Reserved)
                | (Pending, Cancelled)
                | (Reserved, Paid)
                | (Reserved, Cancelled)
                | (Paid, Fulfilled)
                | (Paid, Refunded)
                | (Fulfilled, Refunded)
        )
    }
    /// Cancelled and refunded orders never change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Refunded)
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCode {
    OutOfStock,
    PaymentDeclined,
    PaymentError,
    Expired,
    CancelledByCustomer,
    /// The cart was emptied or checked out by another order before this one locked it.
    CartUnavailable,
    /// A vending machine reported that the vend failed (or refused the dispense).
    VendFailed,
    /// A vending machine did not vend before the dispense deadline.
    VendTimeout,
    /// The vending machine went offline before the unit could be held.
    MachineOffline,
    // Appended for promotions; earlier variants keep their codec positions.
    /// A coupon on the cart had expired (or was ended) by the checkout.
    CouponExpired,
    /// The promotion's redemptions were all taken by other orders.
    CouponExhausted,
    /// A coupon on the cart no longer applied to it.
    CouponNotApplicable,
    /// The customer had redeemed the promotion as often as it allows.
    CouponLimitPerCustomer,
}

impl FailureCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OutOfStock => "out_of_stock",
            Self::PaymentDeclined => "payment_declined",
            Self::PaymentError => "payment_error",
            Self::Expired => "expired",
            Self::CancelledByCustomer => "cancelled_by_customer",
            Self::CartUnavailable => "cart_unavailable",
            Self::VendFailed => "vend_failed",
            Self::VendTimeout => "vend_timeout",
            Self::MachineOffline => "machine_offline",
            Self::CouponExpired => "coupon_expired",
            Self::CouponExhausted => "coupon_exhausted",
            Self::CouponNotApplicable => "coupon_not_applicable",
            Self::CouponLimitPerCustomer => "coupon_limit_per_customer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineStage {
    Pending,
    Reserved,
    Committed,
    Released,
    Returned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price_minor: i64,
    pub stage: LineStage,
    /// What the order's discounts take off this line (0 before pricing).
    pub discount_minor: i64,
    /// The locations its units are held at or were taken from (once reserved).
    pub allocations: Vec<Allocation>,
}

impl OrderLine {
    /// The line's value before discounts.
    pub fn subtotal_minor(&self) -> i64 {
        self.unit_price_minor * i64::from(self.quantity)
    }
    /// What the line costs: its value less its discounts (never negative).
    pub fn total_minor(&self) -> i64 {
        self.subtotal_minor() - self.discount_minor
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    #[default]
    None,
    Authorized,
    Captured,
    Voided,
    Refunded,
    Failed,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Authorized => "authorized",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Refunded => "refunded",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPayment {
    pub status: PaymentStatus,
    /// The gateway's token for the card; the card number itself is never kept.
    pub method: String,
    pub last4: String,
    pub authorization: Option<String>,
}

/// What the shopper asked for at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub order_id: Uuid,
    pub cart_id: Uuid,
    /// The shopper who owns the order (the cart's owner); `None` for a guest.
    pub owner: Option<Uuid>,
    pub email: String,
    pub currency: String,
    pub payment_method: String,
    pub last4: String,
    pub placed_at: Millis,
    /// Reservations made for this order expire at this time.
    pub expires_at: Millis,
    /// The placing request's fingerprint: a retry under the same key must match it.
    pub fingerprint: Fingerprint,
    /// The `Idempotency-Key` names this order until then (see [`super::order_idempotency`]).
    pub key_expires_at: Millis,
}

/// A [`Placement`] as builds before keyed idempotency wrote it (up to commit 254d909):
/// the shape carried by [`OrderEvent::Placed`] and [`OrderEvent::VendingPlaced`].
///
/// The codec is positional (bincode), so this struct is frozen: its fields, their order
/// and their types are the wire format of events already on disk. Never change it; a new
/// placement shape gets a new struct and new event variants appended to [`OrderEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyPlacement {
    pub order_id: Uuid,
    pub cart_id: Uuid,
    pub owner: Option<Uuid>,
    pub email: String,
    pub currency: String,
    pub payment_method: String,
    pub last4: String,
    pub placed_at: Millis,
    pub expires_at: Millis,
}

/// The fingerprint given to an order placed before keyed idempotency: all zeros, which no
/// request's SHA-256 fingerprint is.
pub const LEGACY_FINGERPRINT: Fingerprint = [0; 32];

impl LegacyPlacement {
    /// The placement this legacy one stands for today.
    ///
    /// An old build recorded no fingerprint and no key expiry, so the order is given
    /// [`LEGACY_FINGERPRINT`] (it never matches a real request) and
    /// `key_expires_at = placed_at`: for key purposes the order expired when it was placed.
    /// A `Place` reaching it is therefore `IdempotencyKeyExpired`, never a replay of, nor a
    /// 409 against, a fingerprint nobody knows, and the edge moves the key on to its next
    /// generation. (Old builds also gave orders random ids, which no key derives, so in
    /// practice no keyed request reaches such an order at all.)
    pub fn upgrade(&self) -> Placement {
        Placement {
            order_id: self.order_id,
            cart_id: self.cart_id,
            owner: self.owner,
            email: self.email.clone(),
            currency: self.currency.clone(),
            payment_method: self.payment_method.clone(),
            last4: self.last4.clone(),
            placed_at: self.placed_at,
            expires_at: self.expires_at,
            fingerprint: LEGACY_FINGERPRINT,
            key_expires_at: self.placed_at,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    pub placement: Option<Placement>,
    pub status: OrderStatus,
    pub cart_locked: bool,
    pub cart_reopened: bool,
    pub lines: Vec<OrderLine>,
    pub payment: OrderPayment,
    /// Set when the saga turned back; the reason it will be cancelled with.
    pub compensating: Option<Failure>,
    pub failure: Option<Failure>,
    pub refund_requested: bool,
    pub history: Vec<(OrderStatus, Millis)>,
    /// Set for an app purchase at a vending machine (order kind `vending`).
    pub vending: Option<VendingOrder>,
    /// The discounts the order was priced with and their redemptions; `None` until the
    /// checkout priced it (and for orders placed before pricing existed).
    pub discounts: Option<Vec<OrderDiscount>>,
}

impl OrderState {
    /// What the order costs: the sum of its lines after discounts.
    pub fn total_minor(&self) -> i64 {
        self.lines.iter().map(OrderLine::total_minor).sum()
    }
    /// The lines' value before discounts.
    pub fn subtotal_minor(&self) -> i64 {
        self.lines.iter().map(OrderLine::subtotal_minor).sum()
    }
    pub fn discount_minor(&self) -> i64 {
        self.lines.iter().map(|l| l.discount_minor).sum()
    }
    /// Whether the saga has nothing more to do (a vending order also waits for its vend).
    pub fn is_settled(&self) -> bool {
        self.placement.is_some() && next_effect(self).is_none() && !self.awaiting_vend()
    }
    /// A vending order whose dispense was sent and whose machine has not reported yet.
    pub fn awaiting_vend(&self) -> bool {
        self.compensating.is_none()
            && !self.status.is_final()
            && self
                .vending
                .as_ref()
                .is_some_and(|v| v.state == VendState::Dispensing)
    }
    /// `cart` or `vending`.
    pub fn kind(&self) -> &'static str {
        if self.vending.is_some() {
            "vending"
        } else {
            "cart"
        }
    }
    fn id(&self) -> Uuid {
        self.placement
            .as_ref()
            .map(|p| p.order_id)
            .unwrap_or_default()
    }
}

/// One step of the saga, to be performed by the shell. Idempotency keys are derived
/// from the order id, so a repeated step is recognised by its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    LockCart {
        cart_id: Uuid,
        order_id: Uuid,
    },
    Reserve {
        sku: Sku,
        order_id: Uuid,
        quantity: i64,
        expires_at: Millis,
    },
    Authorize {
        order_id: Uuid,
        amount_minor: i64,
        currency: String,
        method: String,
        expires_at: Millis,
    },
    Capture {
        order_id: Uuid,
        authorization: String,
        amount_minor: i64,
        expires_at: Millis,
    },
    Commit {
        sku: Sku,
        order_id: Uuid,
        quantity: i64,
        /// The locations the line was allocated from: where to take the units again if
        /// the reservation is gone.
        from: Vec<String>,
    },
    Release {
        sku: Sku,
        order_id: Uuid,
    },
    Return {
        sku: Sku,
        order_id: Uuid,
    },
    Void {
        order_id: Uuid,
        authorization: String,
    },
    Refund {
        order_id: Uuid,
        authorization: String,
        amount_minor: i64,
    },
    ReopenCart {
        cart_id: Uuid,
        order_id: Uuid,
    },
    /// Hold one unit of a vending machine slot for the order until `deadline`.
    ReserveSlot {
        machine_id: String,
        slot: u32,
        order_id: Uuid,
        deadline: Millis,
    },
    /// Send `Dispense` down the machine's stream.
    Dispense {
        machine_id: String,
        slot: u32,
        order_id: Uuid,
        deadline: Millis,
    },
    /// Drop the order's hold at the machine (no-op if the machine already let it go).
    ReleaseSlot {
        machine_id: String,
        order_id: Uuid,
    },
    /// Price the locked cart's lines against the promotion book and its coupons.
    Price {
        order_id: Uuid,
        cart_id: Uuid,
        customer: String,
        lines: Vec<(Sku, u32, i64)>,
    },
    /// Hold one redemption of the promotion until `expires_at`.
    ReservePromotion {
        promotion_id: String,
        order_id: Uuid,
        customer: String,
        usage_limit: Option<u32>,
        per_customer_limit: Option<u32>,
        expires_at: Millis,
    },
    /// The order is paid: its reservation becomes a redemption.
    ConsumePromotion {
        promotion_id: String,
        order_id: Uuid,
    },
    /// Give the order's reservation or redemption back.
    ReleasePromotion {
        promotion_id: String,
        order_id: Uuid,
    },
}

/// The next step of the saga, or `None` when it is settled (or waits for nobody).
pub fn next_effect(s: &OrderState) -> Option<Effect> {
    let p = s.placement.as_ref()?;
    let order_id = p.order_id;
    let auth = || s.payment.authorization.clone().unwrap_or_default();
    if s.refund_requested
        && s.payment.status == PaymentStatus::Captured
        && matches!(s.status, OrderStatus::Paid | OrderStatus::Fulfilled)
    {
        return Some(Effect::Refund {
            order_id,
            authorization: auth(),
            amount_minor: s.total_minor(),
        });
    }
    if s.status.is_final() || matches!(s.status, OrderStatus::Paid | OrderStatus::Fulfilled) {
        return None;
    }
    if s.compensating.is_some() {
        // Undo in reverse: payment first, then stock, then the cart.
        return match s.payment.status {
            PaymentStatus::Captured => Some(Effect::Refund {
                order_id,
                authorization: auth(),
                amount_minor: s.total_minor(),
            }),
            PaymentStatus::Authorized => Some(Effect::Void {
                order_id,
                authorization: auth(),
            }),
            _ if s.vending.is_some() => vending_effect(s, p),
            _ => promos::release(s, order_id).or_else(|| {
                s.lines
                    .iter()
                    .find_map(|l| match l.stage {
                        LineStage::Committed => Some(Effect::Return {
                            sku: l.sku.clone(),
                            order_id,
                        }),
                        LineStage::Reserved => Some(Effect::Release {
                            sku: l.sku.clone(),
                            order_id,
                        }),
                        _ => None,
                    })
                    // Reopen even if the lock never answered: the cart reopens only if this
                    // order holds it, so the step is safe either way.
                    .or_else(|| {
                        (!s.cart_reopened).then_some(Effect::ReopenCart {
                            cart_id: p.cart_id,
                            order_id,
                        })
                    })
            }),
        };
    }
    if s.vending.is_some() {
        return vending_effect(s, p);
    }
    if !s.cart_locked {
        return Some(Effect::LockCart {
            cart_id: p.cart_id,
            order_id,
        });
    }
    if let Some(e) = promos::before_stock(s, p) {
        return Some(e);
    }
    if let Some(l) = s.lines.iter().find(|l| l.stage == LineStage::Pending) {
        return Some(Effect::Reserve {
            sku: l.sku.clone(),
            order_id,
            quantity: i64::from(l.quantity),
            expires_at: p.expires_at,
        });
    }
    match s.payment.status {
        PaymentStatus::None => Some(Effect::Authorize {
            order_id,
            amount_minor: s.total_minor(),
            currency: p.currency.clone(),
            method: s.payment.method.clone(),
            expires_at: p.expires_at,
        }),
        PaymentStatus::Authorized => Some(Effect::Capture {
            order_id,
            authorization: auth(),
            amount_minor: s.total_minor(),
            expires_at: p.expires_at,
        }),
        PaymentStatus::Captured => s
            .lines
            .iter()
            .find(|l| l.stage == LineStage::Reserved)
            .map(|l| Effect::Commit {
                sku: l.sku.clone(),
                order_id,
                quantity: i64::from(l.quantity),
                from: l.allocations.iter().map(|a| a.location.clone()).collect(),
            })
            .or_else(|| promos::after_capture(s, order_id)),
        _ => None,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum OrderCommand {
    Place(Placement),
    // Outcomes of effects, reported by the shell.
    CartLocked {
        lines: Vec<(Sku, u32, i64)>,
        at: Millis,
    },
    CartLockFailed {
        message: String,
        at: Millis,
    },
    LineReserved {
        sku: Sku,
        /// Where the SKU holds the line's units (empty at a machine).
        allocations: Vec<Allocation>,
        at: Millis,
    },
    /// Places an app purchase at a vending machine.
    PlaceVending {
        placement: Placement,
        vending: VendingPlacement,
    },
    /// The machine accepted the `Dispense` command.
    DispenseSent {
        at: Millis,
    },
    /// What the machine reported for the order's vend (or that its deadline passed).
    VendReported {
        report: VendReport,
        at: Millis,
    },
    /// The slot could not be held (`machine_offline`, out of stock, locked).
    SlotUnavailable {
        code: FailureCode,
        message: String,
        at: Millis,
    },
    LineOutOfStock {
        sku: Sku,
        message: String,
        at: Millis,
    },
    Authorized {
        authorization: String,
        at: Millis,
    },
    PaymentFailed {
        code: FailureCode,
        message: String,
        at: Millis,
    },
    Captured {
        at: Millis,
    },
    LineCommitted {
        sku: Sku,
        at: Millis,
    },
    CommitFailed {
        sku: Sku,
        message: String,
        at: Millis,
    },
    LineReleased {
        sku: Sku,
        at: Millis,
    },
    LineReturned {
        sku: Sku,
        at: Millis,
    },
    Voided {
        at: Millis,
    },
    Refunded {
        at: Millis,
    },
    CartReopened {
        at: Millis,
    },
    /// The reservation deadline passed before the payment was captured.
    Expired {
        at: Millis,
    },
    // Requests from people.
    Cancel {
        at: Millis,
    },
    Fulfil {
        at: Millis,
        by: String,
    },
    RequestRefund {
        at: Millis,
        by: String,
    },
    // Outcomes of the promotion steps.
    Priced {
        discounts: Vec<PricedDiscount>,
        at: Millis,
    },
    /// A coupon on the locked cart does not apply (the code says why).
    PricingRefused {
        code: FailureCode,
        message: String,
        at: Millis,
    },
    PromotionReserved {
        promotion_id: String,
        at: Millis,
    },
    PromotionRefused {
        promotion_id: String,
        code: FailureCode,
        message: String,
        at: Millis,
    },
    PromotionConsumed {
        promotion_id: String,
        at: Millis,
    },
    /// The reservation lapsed before the consume (the order's deadline passed).
    PromotionConsumeFailed {
        promotion_id: String,
        message: String,
        at: Millis,
    },
    PromotionReleased {
        promotion_id: String,
        at: Millis,
    },
}

/// The events of an order. The codec is positional: a variant's index and its fields'
/// shape are its wire format, so variants are only ever appended, and a variant whose
/// payload must change is superseded by a new one at the end (the old one still decodes
/// and is still applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// Placed by a build before keyed idempotency; superseded by [`Self::PlacedKeyed`].
    Placed(LegacyPlacement),
    CartLocked {
        lines: Vec<(Sku, u32, i64)>,
    },
    LineReserved {
        sku: Sku,
    },
    AllReserved {
        at: Millis,
    },
    PaymentAuthorized {
        authorization: String,
    },
    PaymentCaptured,
    LineCommitted {
        sku: Sku,
    },
    Paid {
        at: Millis,
    },
    CompensationStarted {
        failure: Failure,
    },
    LineReleased {
        sku: Sku,
    },
    LineReturned {
        sku: Sku,
    },
    PaymentVoided,
    PaymentRefunded,
    PaymentFailed,
    CartReopened,
    Cancelled {
        failure: Failure,
        at: Millis,
    },
    Fulfilled {
        at: Millis,
        by: String,
    },
    RefundRequested {
        by: String,
    },
    Refunded {
        at: Millis,
    },
    // Appended for vending orders; earlier variants keep their codec positions.
    /// Placed by a build before keyed idempotency; superseded by
    /// [`Self::VendingPlacedKeyed`].
    VendingPlaced {
        placement: LegacyPlacement,
        vending: VendingPlacement,
    },
    DispenseSent,
    Vended {
        vend_id: Uuid,
    },
    // Appended for keyed idempotency: the placement keeps the request's fingerprint and
    // the key's expiry.
    PlacedKeyed(Placement),
    VendingPlacedKeyed {
        placement: Placement,
        vending: VendingPlacement,
    },
    // Appended for promotions.
    /// The locked cart was priced: these discounts (possibly none) apply.
    Priced {
        discounts: Vec<PricedDiscount>,
    },
    PromotionReserved {
        promotion_id: String,
    },
    PromotionConsumed {
        promotion_id: String,
    },
    PromotionReleased {
        promotion_id: String,
    },
    /// Where a line's units are held: recorded with its `LineReserved`.
    LineAllocated {
        sku: Sku,
        allocations: Vec<Allocation>,
    },
}

pub struct Order;

fn line_stage(s: &OrderState, sku: &Sku) -> Option<LineStage> {
    s.lines.iter().find(|l| &l.sku == sku).map(|l| l.stage)
}

fn compensate(s: &OrderState, code: FailureCode, message: String) -> Vec<OrderEvent> {
    if s.compensating.is_some() {
        return vec![];
    }
    vec![OrderEvent::CompensationStarted {
        failure: Failure { code, message },
    }]
}

/// A `Place` for an order that exists: its key decides (see [`super::order_idempotency`]).
/// The new placement's `placed_at` is the request's time.
fn replay_place(placed: &Placement, new: &Placement) -> Result<Vec<OrderEvent>, Rejection> {
    match key_use(placed, &new.fingerprint, new.placed_at) {
        KeyUse::Replay => Ok(vec![]),
        KeyUse::Reused => reject(
            RejectionCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request",
        ),
        KeyUse::Expired => reject(
            RejectionCode::IdempotencyKeyExpired,
            "this Idempotency-Key has expired for this order",
        ),
    }
}

/// Appends the terminal event once the events leave nothing more to do on a path.
fn settle(s: &OrderState, mut events: Vec<OrderEvent>, at: Millis) -> Vec<OrderEvent> {
    let mut after = s.clone();
    for e in &events {
        Order::apply(&mut after, e);
    }
    if after.placement.is_none() || next_effect(&after).is_some() {
        return events;
    }
    if let Some(f) = after.compensating.clone() {
        if !after.status.is_final() {
            events.push(OrderEvent::Cancelled { failure: f, at });
        }
    } else if after.status == OrderStatus::Reserved
        && after.payment.status == PaymentStatus::Captured
    {
        events.push(OrderEvent::Paid { at });
        if let Some(v) = &after.vending {
            // The machine has handed over the unit: a paid vend is also fulfilled.
            events.push(OrderEvent::Fulfilled {
                at,
                by: format!("machine:{}", v.machine_id),
            });
        }
    } else if after.refund_requested
        && after.payment.status == PaymentStatus::Refunded
        && after.status != OrderStatus::Refunded
    {
        events.push(OrderEvent::Refunded { at });
    }
    events
}

impl Aggregate for Order {
    const KIND: EntityKind = EntityKind::Order;
    const INDEXES: &'static [crate::domain::Index] =
        &[super::Index::OpenOrders, super::Index::UserOrders];
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;

    fn decide(s: &OrderState, cmd: &OrderCommand) -> Result<Vec<OrderEvent>, Rejection> {
        use OrderCommand as C;
        if s.placement.is_none() && !matches!(cmd, C::Place(_) | C::PlaceVending { .. }) {
            return reject(RejectionCode::NotFound, "no such order");
        }
        let (events, at) = match cmd {
            C::Place(p) => {
                return Ok(match &s.placement {
                    Some(placed) => replay_place(placed, p)?,
                    None => vec![OrderEvent::PlacedKeyed(p.clone())],
                })
            }
            C::PlaceVending { placement, vending } => {
                return Ok(match &s.placement {
                    Some(placed) => replay_place(placed, placement)?,
                    None => vec![OrderEvent::VendingPlacedKeyed {
                        placement: placement.clone(),
                        vending: vending.clone(),
                    }],
                })
            }
            C::DispenseSent { at } => (
                match &s.vending {
                    Some(v) if v.state == VendState::Reserving && s.compensating.is_none() => {
                        vec![OrderEvent::DispenseSent]
                    }
                    _ => vec![],
                },
                *at,
            ),
            C::VendReported { report, at } => (
                super::order_vending::decide_report(s, report),
                *at,
            ),
            C::SlotUnavailable { code, message, at } => {
                (compensate(s, *code, message.clone()), *at)
            }
            C::CartLocked { lines, at } => {
                if s.cart_locked || s.status.is_final() {
                    (vec![], *at)
                } else if s.compensating.is_some() {
                    // Cancelled while locking: the cart is ours now, and must be reopened.
                    (vec![OrderEvent::CartLocked { lines: vec![] }], *at)
                } else {
                    (
                        vec![OrderEvent::CartLocked {
                            lines: lines.clone(),
                        }],
                        *at,
                    )
                }
            }
            C::CartLockFailed { message, at } => (
                compensate(s, FailureCode::CartUnavailable, message.clone()),
                *at,
            ),
            C::LineReserved {
                sku,
                allocations,
                at,
            } => {
                let mut evs = vec![];
                if line_stage(s, sku) == Some(LineStage::Pending) {
                    if !allocations.is_empty() {
                        evs.push(OrderEvent::LineAllocated {
                            sku: sku.clone(),
                            allocations: allocations.clone(),
                        });
                    }
                    evs.push(OrderEvent::LineReserved { sku: sku.clone() });
                    let rest = s
                        .lines
                        .iter()
                        .filter(|l| l.stage == LineStage::Pending)
                        .count();
                    if rest == 1 && s.compensating.is_none() && s.status == OrderStatus::Pending {
                        evs.push(OrderEvent::AllReserved { at: *at });
                    }
                }
                (evs, *at)
            }
            C::LineOutOfStock { sku, message, at } => (
                compensate(s, FailureCode::OutOfStock, format!("{sku}: {message}")),
                *at,
            ),
            C::Authorized { authorization, at } => (
                match s.payment.status {
                    PaymentStatus::None => vec![OrderEvent::PaymentAuthorized {
                        authorization: authorization.clone(),
                    }],
                    _ => vec![],
                },
                *at,
            ),
            C::PaymentFailed { code, message, at } => {
                let mut evs = vec![];
                if s.payment.status == PaymentStatus::None {
                    evs.push(OrderEvent::PaymentFailed);
                }
                evs.extend(compensate(s, *code, message.clone()));
                (evs, *at)
            }
            C::Captured { at } => (
                match s.payment.status {
                    PaymentStatus::Authorized => vec![OrderEvent::PaymentCaptured],
                    _ => vec![],
                },
                *at,
            ),
            C::LineCommitted { sku, at } => (
                match line_stage(s, sku) {
                    Some(LineStage::Reserved) => {
                        vec![OrderEvent::LineCommitted { sku: sku.clone() }]
                    }
                    _ => vec![],
                },
                *at,
            ),
            C::CommitFailed { sku, message, at } => (
                compensate(s, FailureCode::Expired, format!("{sku}: {message}")),
                *at,
            ),
            C::LineReleased { sku, at } => (
                match line_stage(s, sku) {
                    Some(LineStage::Reserved) => {
                        vec![OrderEvent::LineReleased { sku: sku.clone() }]
                    }
                    _ => vec![],
                },
                *at,
            ),
            C::LineReturned { sku, at } => (
                match line_stage(s, sku) {
                    Some(LineStage::Committed) => {
                        vec![OrderEvent::LineReturned { sku: sku.clone() }]
                    }
                    _ => vec![],
                },
                *at,
            ),
            C::Voided { at } => (
                match s.payment.status {
                    PaymentStatus::Authorized => vec![OrderEvent::PaymentVoided],
                    _ => vec![],
                },
                *at,
            ),
            C::Refunded { at } => (
                match s.payment.status {
                    PaymentStatus::Captured => vec![OrderEvent::PaymentRefunded],
                    _ => vec![],
                },
                *at,
            ),
            C::CartReopened { at } => (
                if s.compensating.is_some() && !s.cart_reopened {
                    vec![OrderEvent::CartReopened]
                } else {
                    vec![]
                },
                *at,
            ),
            // A vended unit is gone: its payment is captured however late, never dropped.
            C::Expired { at }
                if s
                    .vending
                    .as_ref()
                    .is_some_and(|v| v.state == VendState::Vended) =>
            {
                (vec![], *at)
            }
            C::Expired { at } => (
                compensate(
                    s,
                    FailureCode::Expired,
                    "the reservation expired before payment".into(),
                ),
                *at,
            ),
            C::Cancel { .. }
                if s.compensating.is_none()
                    && s
                        .vending
                        .as_ref()
                        .is_some_and(|v| v.state != VendState::Reserving) =>
            {
                return reject(
                    RejectionCode::InvalidTransition,
                    "the machine is dispensing (or has dispensed) this order; it cannot be cancelled",
                )
            }
            C::Cancel { at } => match s.status {
                OrderStatus::Pending | OrderStatus::Reserved => (
                    compensate(
                        s,
                        FailureCode::CancelledByCustomer,
                        "cancelled by the customer".into(),
                    ),
                    *at,
                ),
                OrderStatus::Cancelled => (vec![], *at),
                other => {
                    return reject(
                        RejectionCode::InvalidTransition,
                        format!("an order that is {} cannot be cancelled", other.as_str()),
                    )
                }
            },
            C::Fulfil { at, by } => match s.status {
                OrderStatus::Paid if !s.refund_requested => {
                    return Ok(vec![OrderEvent::Fulfilled {
                        at: *at,
                        by: by.clone(),
                    }])
                }
                OrderStatus::Fulfilled => return Ok(vec![]),
                other => {
                    return reject(
                        RejectionCode::InvalidTransition,
                        format!("an order that is {} cannot be fulfilled", other.as_str()),
                    )
                }
            },
            C::Priced { discounts, at } => (
                if s.discounts.is_none() && s.compensating.is_none() && !s.status.is_final() {
                    vec![OrderEvent::Priced {
                        discounts: discounts.clone(),
                    }]
                } else {
                    vec![]
                },
                *at,
            ),
            C::PricingRefused { code, message, at } => (compensate(s, *code, message.clone()), *at),
            C::PromotionReserved { promotion_id, at } => (
                if promos::stage(s, promotion_id) == Some(RedemptionStage::Pending) {
                    vec![OrderEvent::PromotionReserved {
                        promotion_id: promotion_id.clone(),
                    }]
                } else {
                    vec![]
                },
                *at,
            ),
            C::PromotionRefused {
                promotion_id,
                code,
                message,
                at,
            } => (
                compensate(s, *code, format!("promotion {promotion_id}: {message}")),
                *at,
            ),
            C::PromotionConsumed { promotion_id, at } => (
                if promos::stage(s, promotion_id) == Some(RedemptionStage::Reserved) {
                    vec![OrderEvent::PromotionConsumed {
                        promotion_id: promotion_id.clone(),
                    }]
                } else {
                    vec![]
                },
                *at,
            ),
            C::PromotionConsumeFailed {
                promotion_id,
                message,
                at,
            } => (
                compensate(
                    s,
                    FailureCode::Expired,
                    format!("promotion {promotion_id}: {message}"),
                ),
                *at,
            ),
            C::PromotionReleased { promotion_id, at } => (
                match promos::stage(s, promotion_id) {
                    Some(RedemptionStage::Reserved | RedemptionStage::Consumed) => {
                        vec![OrderEvent::PromotionReleased {
                            promotion_id: promotion_id.clone(),
                        }]
                    }
                    _ => vec![],
                },
                *at,
            ),
            C::RequestRefund { at, by } => match s.status {
                OrderStatus::Paid | OrderStatus::Fulfilled if !s.refund_requested => {
                    (vec![OrderEvent::RefundRequested { by: by.clone() }], *at)
                }
                OrderStatus::Paid | OrderStatus::Fulfilled | OrderStatus::Refunded => (vec![], *at),
                other => {
                    return reject(
                        RejectionCode::InvalidTransition,
                        format!("an order that is {} cannot be refunded", other.as_str()),
                    )
                }
            },
        };
        Ok(settle(s, events, at))
    }

    fn apply(s: &mut OrderState, event: &OrderEvent) {
        fn set_line(s: &mut OrderState, sku: &Sku, stage: LineStage) {
            if let Some(l) = s.lines.iter_mut().find(|l| &l.sku == sku) {
                l.stage = stage;
            }
        }
        fn status(s: &mut OrderState, to: OrderStatus, at: Millis) {
            s.status = to;
            s.history.push((to, at));
        }
        fn placed(s: &mut OrderState, p: Placement) {
            s.payment.method = p.payment_method.clone();
            s.payment.last4 = p.last4.clone();
            s.history.push((OrderStatus::Pending, p.placed_at));
            s.placement = Some(p);
        }
        fn vending_placed(s: &mut OrderState, p: Placement, vending: &VendingPlacement) {
            placed(s, p);
            // No cart: the one line is the slot's unit, and nothing to reopen.
            s.cart_locked = true;
            s.cart_reopened = true;
            s.lines = vec![OrderLine {
                sku: vending.sku.clone(),
                quantity: 1,
                unit_price_minor: vending.price_minor,
                stage: LineStage::Pending,
                discount_minor: 0,
                allocations: Vec::new(),
            }];
            s.vending = Some(VendingOrder::new(vending.clone()));
        }
        match event {
            OrderEvent::Placed(p) => placed(s, p.upgrade()),
            OrderEvent::PlacedKeyed(p) => placed(s, p.clone()),
            OrderEvent::CartLocked { lines } => {
                s.cart_locked = true;
                s.lines = lines
                    .iter()
                    .map(|(sku, q, p)| OrderLine {
                        sku: sku.clone(),
                        quantity: *q,
                        unit_price_minor: *p,
                        stage: LineStage::Pending,
                        discount_minor: 0,
                        allocations: Vec::new(),
                    })
                    .collect();
            }
            OrderEvent::LineReserved { sku } => set_line(s, sku, LineStage::Reserved),
            OrderEvent::LineAllocated { sku, allocations } => {
                if let Some(l) = s.lines.iter_mut().find(|l| &l.sku == sku) {
                    l.allocations = allocations.clone();
                }
            }
            OrderEvent::AllReserved { at } => status(s, OrderStatus::Reserved, *at),
            OrderEvent::PaymentAuthorized { authorization } => {
                s.payment.status = PaymentStatus::Authorized;
                s.payment.authorization = Some(authorization.clone());
            }
            OrderEvent::PaymentCaptured => s.payment.status = PaymentStatus::Captured,
            OrderEvent::LineCommitted { sku } => set_line(s, sku, LineStage::Committed),
            OrderEvent::Paid { at } => status(s, OrderStatus::Paid, *at),
            OrderEvent::CompensationStarted { failure } => s.compensating = Some(failure.clone()),
            OrderEvent::LineReleased { sku } => set_line(s, sku, LineStage::Released),
            OrderEvent::LineReturned { sku } => set_line(s, sku, LineStage::Returned),
            OrderEvent::PaymentVoided => s.payment.status = PaymentStatus::Voided,
            OrderEvent::PaymentRefunded => s.payment.status = PaymentStatus::Refunded,
            OrderEvent::PaymentFailed => s.payment.status = PaymentStatus::Failed,
            OrderEvent::CartReopened => s.cart_reopened = true,
            OrderEvent::Cancelled { failure, at } => {
                s.failure = Some(failure.clone());
                status(s, OrderStatus::Cancelled, *at);
            }
            OrderEvent::Fulfilled { at, .. } => status(s, OrderStatus::Fulfilled, *at),
            OrderEvent::RefundRequested { .. } => s.refund_requested = true,
            OrderEvent::Refunded { at } => status(s, OrderStatus::Refunded, *at),
            OrderEvent::VendingPlaced { placement, vending } => {
                vending_placed(s, placement.upgrade(), vending)
            }
            OrderEvent::VendingPlacedKeyed { placement, vending } => {
                vending_placed(s, placement.clone(), vending)
            }
            OrderEvent::DispenseSent => {
                if let Some(v) = s.vending.as_mut() {
                    v.state = VendState::Dispensing;
                }
            }
            OrderEvent::Priced { discounts } => promos::apply_priced(s, discounts),
            OrderEvent::PromotionReserved { promotion_id } => {
                promos::set_stage(s, promotion_id, RedemptionStage::Reserved)
            }
            OrderEvent::PromotionConsumed { promotion_id } => {
                promos::set_stage(s, promotion_id, RedemptionStage::Consumed)
            }
            OrderEvent::PromotionReleased { promotion_id } => {
                promos::set_stage(s, promotion_id, RedemptionStage::Released)
            }
            OrderEvent::Vended { vend_id } => {
                if let Some(v) = s.vending.as_mut() {
                    v.state = VendState::Vended;
                    v.vend_id = Some(*vend_id);
                }
                // The unit left the machine: the line is committed.
                for l in &mut s.lines {
                    l.stage = LineStage::Committed;
                }
            }
        }
    }

    fn can_passivate(s: &OrderState) -> bool {
        // An order waiting for its vend passivates too: the machine's notice wakes it.
        next_effect(s).is_none()
    }
}

impl OrderState {
    /// The idempotency key for a gateway call of this order.
    pub fn payment_key(order_id: Uuid, step: &str) -> String {
        format!("order:{order_id}:{step}")
    }
    pub fn order_id(&self) -> Uuid {
        self.id()
    }
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "order_codec_tests.rs"]
mod codec_tests;
