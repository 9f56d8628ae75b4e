//! A payment intent as the gateway keeps it: authorize, then capture at most the
//! authorized amount, or void; refund what was captured. Mirrors Stripe's manual capture.

use super::{reject, Aggregate, EntityKind, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentState {
    pub status: IntentStatus,
    pub amount_minor: i64,
    pub captured_minor: i64,
    pub refunded_minor: i64,
    pub last4: String,
    pub decline_code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PaymentCommand {
    /// `decline` carries the issuer's decline code, decided by the gateway.
    Authorize {
        amount_minor: i64,
        last4: String,
        decline: Option<String>,
    },
    Capture {
        amount_minor: i64,
    },
    Void,
    Refund {
        amount_minor: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    Authorized { amount_minor: i64, last4: String },
    Declined { last4: String, code: String },
    Captured { amount_minor: i64 },
    Voided,
    Refunded { amount_minor: i64 },
}

pub struct Payment;

impl Aggregate for Payment {
    const KIND: EntityKind = EntityKind::Payment;
    type State = PaymentState;
    type Command = PaymentCommand;
    type Event = PaymentEvent;

    fn decide(s: &PaymentState, cmd: &PaymentCommand) -> Result<Vec<PaymentEvent>, Rejection> {
        use IntentStatus as S;
        match (cmd, s.status) {
            (
                PaymentCommand::Authorize {
                    amount_minor,
                    last4,
                    decline,
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
            (PaymentCommand::Authorize { .. }, _) => Ok(vec![]),
            (PaymentCommand::Capture { amount_minor }, S::RequiresCapture) => {
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
            (PaymentCommand::Capture { .. }, S::Succeeded) => Ok(vec![]),
            (PaymentCommand::Void, S::RequiresCapture) => Ok(vec![PaymentEvent::Voided]),
            (PaymentCommand::Void, S::Canceled) => Ok(vec![]),
            (PaymentCommand::Refund { amount_minor }, S::Succeeded) => {
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
            (PaymentCommand::Refund { .. }, S::Refunded) => Ok(vec![]),
            (cmd, status) => reject(
                RejectionCode::InvalidTransition,
                format!("{cmd:?} is not allowed when the payment is {status:?}"),
            ),
        }
    }

    fn apply(s: &mut PaymentState, e: &PaymentEvent) {
        match e {
            PaymentEvent::Authorized {
                amount_minor,
                last4,
            } => {
                s.status = IntentStatus::RequiresCapture;
                s.amount_minor = *amount_minor;
                s.last4 = last4.clone();
            }
            PaymentEvent::Declined { last4, code } => {
                s.status = IntentStatus::Declined;
                s.last4 = last4.clone();
                s.decline_code = Some(code.clone());
            }
            PaymentEvent::Captured { amount_minor } => {
                s.status = IntentStatus::Succeeded;
                s.captured_minor = *amount_minor;
            }
            PaymentEvent::Voided => s.status = IntentStatus::Canceled,
            PaymentEvent::Refunded { amount_minor } => {
                s.refunded_minor += amount_minor;
                if s.refunded_minor >= s.captured_minor {
                    s.status = IntentStatus::Refunded;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd() -> impl Strategy<Value = PaymentCommand> {
        prop_oneof![
            (0i64..1000, prop::bool::ANY).prop_map(|(a, d)| PaymentCommand::Authorize {
                amount_minor: a,
                last4: "4242".into(),
                decline: d.then(|| "card_declined".into())
            }),
            (0i64..1200).prop_map(|a| PaymentCommand::Capture { amount_minor: a }),
            Just(PaymentCommand::Void),
            (0i64..1200).prop_map(|a| PaymentCommand::Refund { amount_minor: a }),
        ]
    }

    proptest! {
        #[test]
        fn never_captures_or_refunds_more_than_authorized(cmds in proptest::collection::vec(cmd(), 0..30)) {
            let mut s = PaymentState::default();
            let mut log = vec![];
            for c in &cmds {
                if let Ok(evs) = Payment::decide(&s, c) { for e in evs { Payment::apply(&mut s, &e); log.push(e); } }
                prop_assert!(s.captured_minor <= s.amount_minor);
                prop_assert!(s.refunded_minor <= s.captured_minor);
            }
            prop_assert_eq!(Payment::replay(&log), s);
        }
    }
}
