//! The payment of one order, as the gateway keeps it: its intent (authorize, then capture
//! at most the authorized amount, or void; refund what was captured; Stripe's manual
//! capture) and the idempotent outcome of each of the order's payment steps.
//!
//! The entity's id is the id of the order it pays for, so it lives in the order's
//! partition and moves with it. Its state is bounded: one intent and at most one
//! recorded outcome per [`PaymentStep`] (authorize, capture, void, refund).
//!
//! Idempotency: a step's first final outcome (success, decline, or a request the intent
//! refuses) is recorded with its time, in the same batch as the intent's events, and
//! replayed while younger than the TTL the caller passes; an older one is a new request.
//! A new request on the authorize step still lands on the existing intent, so it can
//! never place a second hold. Errors the gateway calls retryable never reach this entity,
//! and a command addressed to an intent it does not hold is rejected unrecorded.

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    #[default]
    RequiresPaymentMethod,
    RequiresCapture,
    Succeeded,
    Canceled,
    Refunded,
    Declined,
}

/// A payment intent. (The field order is the previous build's `PaymentState`, the state
/// of its `pi_…` intents.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentState {
    pub status: IntentStatus,
    pub amount_minor: i64,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    pub last4: String,
    pub decline_code: Option<String>,
}

/// One of an order's payment calls; each has its own idempotency key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStep {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl PaymentStep {
    pub const ALL: [PaymentStep; 4] = [Self::Authorize, Self::Capture, Self::Void, Self::Refund];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authorize => "authorize",
            Self::Capture => "capture",
            Self::Void => "void",
            Self::Refund => "refund",
        }
    }
}

/// The final outcome of a step. (The variant order is the previous build's stored
/// outcome, so its ledger records decode as this.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; carries the intent id.
    Ok(String),
    /// The issuer refused (the decline code).
    Declined(String),
    /// The intent refused the request (the reason).
    Invalid(String),
}

/// A recorded outcome and when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub outcome: Outcome,
    pub at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    /// The intent the authorization created (`pi_…`), once there is one.
    pub intent_id: Option<String>,
    pub intent: IntentState,
    /// The latest final outcome of each step (at most one per step).
    pub outcomes: BTreeMap<PaymentStep, Recorded>,
}

impl PaymentState {
    /// The outcome `step` has now, if one is recorded.
    pub fn outcome(&self, step: PaymentStep) -> Option<&Outcome> {
        self.outcomes.get(&step).map(|r| &r.outcome)
    }
}

/// A gateway operation on the order's intent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentOp {
    /// `intent_id` names the intent to create; `decline` carries the issuer's decline
    /// code, decided by the gateway.
    Authorize {
        intent_id: String,
        amount_minor: i64,
        last4: String,
        decline: Option<String>,
    },
    Capture {
        authorization: String,
        amount_minor: i64,
    },
    Void {
        authorization: String,
    },
    Refund {
        authorization: String,
        amount_minor: i64,
    },
}

impl PaymentOp {
    pub fn step(&self) -> PaymentStep {
        match self {
            Self::Authorize { .. } => PaymentStep::Authorize,
            Self::Capture { .. } => PaymentStep::Capture,
            Self::Void { .. } => PaymentStep::Void,
            Self::Refund { .. } => PaymentStep::Refund,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PaymentCommand {
    /// One idempotent gateway call: replays the step's outcome if it is younger than
    /// `ttl_ms` at `now`, else runs `op` and records its outcome.
    Call {
        op: PaymentOp,
        now: Millis,
        ttl_ms: Millis,
    },
    /// Takes over the records the previous build kept outside the journal (its `pi_…`
    /// intent and its ledger of outcomes). A no-op unless the payment is still empty.
    Adopt {
        intent_id: Option<String>,
        intent: IntentState,
        outcomes: Vec<(PaymentStep, Recorded)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    // The intent's transitions. These five are the previous build's intent events,
    // unchanged, so its `pi_…` intents still decode as payments.
    Authorized {
        amount_minor: i64,
        last4: String,
    },
    Declined {
        last4: String,
        code: String,
    },
    Captured {
        amount_minor: i64,
    },
    Voided,
    Refunded {
        amount_minor: i64,
    },
    /// The authorization created this intent (precedes its `Authorized` or `Declined`).
    Opened {
        intent_id: String,
    },
    /// A step's final outcome.
    Recorded {
        step: PaymentStep,
        outcome: Outcome,
        at: Millis,
    },
    /// The previous build's records of this payment, taken over.
    Adopted {
        intent_id: Option<String>,
        intent: IntentState,
        outcomes: Vec<(PaymentStep, Recorded)>,
    },
}

pub struct Payment;

/// The intent's own events for `op`, or why the intent refuses it.
fn intent_events(s: &IntentState, op: &PaymentOp) -> Result<Vec<PaymentEvent>, Rejection> {
    use IntentStatus as S;
    match (op, s.status) {
        (
            PaymentOp::Authorize {
                amount_minor,
                last4,
                decline,
                ..
            },
            S::RequiresPaymentMethod,
        ) => {
            if *amount_minor < 0 {
                return reject(RejectionCode::Validation, "amount must not be negative");
            }
            Ok(vec![match decline {
                Some(code) => PaymentEvent::Declined {
                    last4: last4.clone(),
                    code: code.clone(),
                },
                None => PaymentEvent::Authorized {
                    amount_minor: *amount_minor,
                    last4: last4.clone(),
                },
            }])
        }
        // The intent exists: a new authorize request lands on it (never a second hold).
        (PaymentOp::Authorize { .. }, _) => Ok(vec![]),
        (PaymentOp::Capture { amount_minor, .. }, S::RequiresCapture) => {
            if *amount_minor < 0 || *amount_minor > s.amount_minor {
                return reject(
                    RejectionCode::Validation,
                    "capture exceeds the authorized amount",
                );
            }
            Ok(vec![PaymentEvent::Captured {
                amount_minor: *amount_minor,
            }])
        }
        (PaymentOp::Capture { .. }, S::Succeeded) => Ok(vec![]),
        (PaymentOp::Void { .. }, S::RequiresCapture) => Ok(vec![PaymentEvent::Voided]),
        (PaymentOp::Void { .. }, S::Canceled) => Ok(vec![]),
        (PaymentOp::Refund { amount_minor, .. }, S::Succeeded) => {
            if *amount_minor <= 0 || *amount_minor > s.captured_minor - s.refunded_minor {
                return reject(
                    RejectionCode::Validation,
                    "refund exceeds the captured amount",
                );
            }
            Ok(vec![PaymentEvent::Refunded {
                amount_minor: *amount_minor,
            }])
        }
        (PaymentOp::Refund { .. }, S::Refunded) => Ok(vec![]),
        (op, status) => reject(
            RejectionCode::InvalidTransition,
            format!(
                "{} is not allowed when the payment is {status:?}",
                op.step().as_str()
            ),
        ),
    }
}

/// The outcome of `op` once `events` are applied to `s`.
fn outcome_after(s: &PaymentState, op: &PaymentOp, events: &[PaymentEvent]) -> Outcome {
    let mut after = s.clone();
    for e in events {
        Payment::apply(&mut after, e);
    }
    let intent = after.intent_id.clone().unwrap_or_default();
    match (op, after.intent.status, after.intent.decline_code) {
        (PaymentOp::Authorize { .. }, IntentStatus::Declined, Some(code)) => {
            Outcome::Declined(code)
        }
        _ => Outcome::Ok(intent),
    }
}

fn call(
    s: &PaymentState,
    op: &PaymentOp,
    now: Millis,
    ttl_ms: Millis,
) -> Result<Vec<PaymentEvent>, Rejection> {
    let step = op.step();
    if s.outcomes
        .get(&step)
        .is_some_and(|r| now < r.at.saturating_add(ttl_ms))
    {
        // The step's first final outcome, replayed.
        return Ok(vec![]);
    }
    let mut events = vec![];
    match op {
        PaymentOp::Authorize { intent_id, .. } => {
            if s.intent_id.is_none() {
                events.push(PaymentEvent::Opened {
                    intent_id: intent_id.clone(),
                });
            }
        }
        PaymentOp::Capture { authorization, .. }
        | PaymentOp::Void { authorization }
        | PaymentOp::Refund { authorization, .. } => {
            if s.intent_id.as_deref() != Some(authorization.as_str()) {
                return reject(
                    RejectionCode::NotFound,
                    format!("no payment intent {authorization}"),
                );
            }
        }
    }
    let outcome = match intent_events(&s.intent, op) {
        Ok(intent) => {
            events.extend(intent);
            outcome_after(s, op, &events)
        }
        Err(rejection) => {
            // Refused by the intent: final, recorded like any other outcome. Nothing of
            // the intent changes (an `Opened` alone would name an intent never created).
            events.clear();
            Outcome::Invalid(rejection.message)
        }
    };
    events.push(PaymentEvent::Recorded {
        step,
        outcome,
        at: now,
    });
    Ok(events)
}

impl Aggregate for Payment {
    const KIND: EntityKind = EntityKind::Payment;
    type State = PaymentState;
    type Command = PaymentCommand;
    type Event = PaymentEvent;

    fn decide(s: &PaymentState, cmd: &PaymentCommand) -> Result<Vec<PaymentEvent>, Rejection> {
        match cmd {
            PaymentCommand::Call { op, now, ttl_ms } => call(s, op, *now, *ttl_ms),
            PaymentCommand::Adopt {
                intent_id,
                intent,
                outcomes,
            } => {
                if *s != PaymentState::default() {
                    return Ok(vec![]);
                }
                if outcomes.len() > PaymentStep::ALL.len() {
                    return reject(RejectionCode::Validation, "more outcomes than steps");
                }
                Ok(vec![PaymentEvent::Adopted {
                    intent_id: intent_id.clone(),
                    intent: intent.clone(),
                    outcomes: outcomes.clone(),
                }])
            }
        }
    }

    fn apply(s: &mut PaymentState, e: &PaymentEvent) {
        let i = &mut s.intent;
        match e {
            PaymentEvent::Authorized {
                amount_minor,
                last4,
            } => {
                i.status = IntentStatus::RequiresCapture;
                i.amount_minor = *amount_minor;
                i.last4 = last4.clone();
            }
            PaymentEvent::Declined { last4, code } => {
                i.status = IntentStatus::Declined;
                i.last4 = last4.clone();
                i.decline_code = Some(code.clone());
            }
            PaymentEvent::Captured { amount_minor } => {
                i.status = IntentStatus::Succeeded;
                i.captured_minor = *amount_minor;
            }
            PaymentEvent::Voided => i.status = IntentStatus::Canceled,
            PaymentEvent::Refunded { amount_minor } => {
                i.refunded_minor += amount_minor;
                if i.refunded_minor >= i.captured_minor {
                    i.status = IntentStatus::Refunded;
                }
            }
            PaymentEvent::Opened { intent_id } => s.intent_id = Some(intent_id.clone()),
            PaymentEvent::Recorded { step, outcome, at } => {
                s.outcomes.insert(
                    *step,
                    Recorded {
                        outcome: outcome.clone(),
                        at: *at,
                    },
                );
            }
            PaymentEvent::Adopted {
                intent_id,
                intent,
                outcomes,
            } => {
                s.intent_id = intent_id.clone();
                s.intent = intent.clone();
                s.outcomes = outcomes.iter().cloned().collect();
            }
        }
    }
}

#[cfg(test)]
#[path = "payment_tests.rs"]
mod tests;
