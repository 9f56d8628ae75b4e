//! The vending path of the order saga: an app purchase of one unit from a machine slot.
//!
//! Steps: hold the slot's unit at the machine (`ReserveSlot`), authorize the payment, send
//! `Dispense` with a deadline, then wait for the machine. The machine is the single judge of
//! what happened to the unit: it reports `Vended` (capture; the order becomes `fulfilled`),
//! `Failed` or `TimedOut` (void, release; `cancelled` with `vend_failed` / `vend_timeout`).
//! Because the machine actor serialises the vend and the deadline, a unit is never both
//! vended and timed out.

use super::machine::AppOutcome;
use super::order::{
    Effect, FailureCode, LineStage, OrderEvent, OrderState, PaymentStatus, Placement,
};
use super::{Millis, Sku};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What the machine reports for an order's vend.
pub type VendReport = AppOutcome;

/// What the shopper bought: one unit of `slot` at `machine_id`, priced when placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendingPlacement {
    pub machine_id: String,
    pub slot: u32,
    pub sku: Sku,
    pub price_minor: i64,
    /// After this the machine must not dispense, and the order is cancelled `vend_timeout`.
    pub deadline: Millis,
}

/// Where the vend is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VendState {
    /// Holding the unit and authorizing the payment.
    Reserving,
    /// `Dispense` was sent; waiting for the machine.
    Dispensing,
    /// The machine dispensed the unit.
    Vended,
}

/// The vending part of an order's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendingOrder {
    pub machine_id: String,
    pub slot: u32,
    pub deadline: Millis,
    pub state: VendState,
    pub vend_id: Option<Uuid>,
}

impl VendingOrder {
    pub fn new(p: VendingPlacement) -> Self {
        Self {
            machine_id: p.machine_id,
            slot: p.slot,
            deadline: p.deadline,
            state: VendState::Reserving,
            vend_id: None,
        }
    }
}

/// The next step of a vending order (forward or compensating); `None` while it waits for
/// the machine or when it is done.
pub(super) fn vending_effect(s: &OrderState, p: &Placement) -> Option<Effect> {
    let v = s.vending.as_ref()?;
    let order_id = p.order_id;
    let line = s.lines.first()?;
    if s.compensating.is_some() {
        // Payment is undone first by the caller; then the hold, if it is still ours.
        return (line.stage == LineStage::Reserved).then(|| Effect::ReleaseSlot {
            machine_id: v.machine_id.clone(),
            order_id,
        });
    }
    if line.stage == LineStage::Pending {
        return Some(Effect::ReserveSlot {
            machine_id: v.machine_id.clone(),
            slot: v.slot,
            order_id,
            deadline: v.deadline,
        });
    }
    let auth = || s.payment.authorization.clone().unwrap_or_default();
    match (s.payment.status, v.state) {
        (PaymentStatus::None, _) => Some(Effect::Authorize {
            order_id,
            amount_minor: s.total_minor(),
            currency: p.currency.clone(),
            method: s.payment.method.clone(),
            expires_at: p.expires_at,
        }),
        (PaymentStatus::Authorized, VendState::Reserving) => Some(Effect::Dispense {
            machine_id: v.machine_id.clone(),
            slot: v.slot,
            order_id,
            deadline: v.deadline,
        }),
        (PaymentStatus::Authorized, VendState::Vended) => Some(Effect::Capture {
            order_id,
            authorization: auth(),
            amount_minor: s.total_minor(),
            expires_at: p.expires_at,
        }),
        _ => None,
    }
}

/// The events for a machine's report on this order's vend. Reports are idempotent: only
/// the first one for a live vend changes anything.
pub(super) fn decide_report(s: &OrderState, report: &VendReport) -> Vec<OrderEvent> {
    let Some(v) = &s.vending else {
        return vec![];
    };
    if s.compensating.is_some() || s.status.is_final() || v.state == VendState::Vended {
        return vec![];
    }
    match report {
        VendReport::Vended { vend_id } => vec![OrderEvent::Vended { vend_id: *vend_id }],
        VendReport::Failed { reason } => vec![OrderEvent::CompensationStarted {
            failure: super::order::Failure {
                code: FailureCode::VendFailed,
                message: reason.clone(),
            },
        }],
        VendReport::TimedOut => vec![OrderEvent::CompensationStarted {
            failure: super::order::Failure {
                code: FailureCode::VendTimeout,
                message: "the machine did not vend before the deadline".into(),
            },
        }],
    }
}

/// The shopper-facing status of a vend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VendStatus {
    Reserving,
    Dispensing,
    Vended,
    Failed,
    TimedOut,
    Cancelled,
}

impl VendStatus {
    /// The wire name: `reserving`, `dispensing`, `vended`, `failed`, `timed_out` or
    /// `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserving => "reserving",
            Self::Dispensing => "dispensing",
            Self::Vended => "vended",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }
}

/// The shopper-facing status of the order's vend; `None` for a cart order.
pub fn vend_status(s: &OrderState) -> Option<VendStatus> {
    let v = s.vending.as_ref()?;
    if v.state == VendState::Vended {
        return Some(VendStatus::Vended);
    }
    let failure = s.compensating.as_ref().or(s.failure.as_ref());
    Some(match failure.map(|f| f.code) {
        Some(FailureCode::VendFailed) => VendStatus::Failed,
        Some(FailureCode::VendTimeout) => VendStatus::TimedOut,
        Some(_) => VendStatus::Cancelled,
        None if v.state == VendState::Dispensing => VendStatus::Dispensing,
        None => VendStatus::Reserving,
    })
}
