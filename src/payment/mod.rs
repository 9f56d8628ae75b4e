//! Payments: the [`PaymentGateway`] trait the checkout saga talks to, and the built-in
//! [`simulator`] that follows Stripe's conventions. A real gateway implements the same
//! trait.
//!
//! The simulator keeps its ledger in the `payment` entity of each order
//! ([`crate::domain::payment`]), reached through the router like every other entity;
//! [`legacy`] folds the previous build's ledger (its own sled trees) into those entities
//! once, at start-up.
//!
//! Card numbers never leave [`card`]: the edge tokenizes a card into a payment method
//! token and its last 4 digits; only those are stored or logged.

pub mod card;
pub mod legacy;
pub mod simulator;

pub use card::{CardDetails, CardError};
pub use simulator::Simulator;

pub use crate::domain::payment::PaymentStep;

use futures::future::BoxFuture;

/// The idempotency key of one payment call: an order's step. A gateway sends it as
/// `order:<order id>:<step>` (its `Display`); the simulator addresses the order's
/// payment entity with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PaymentKey {
    pub order_id: uuid::Uuid,
    pub step: PaymentStep,
}

impl PaymentKey {
    pub fn new(order_id: uuid::Uuid, step: PaymentStep) -> Self {
        Self { order_id, step }
    }
}

impl std::fmt::Display for PaymentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::domain::order::OrderState::payment_key(
            self.order_id,
            self.step.as_str(),
        ))
    }
}

/// A tokenized card: what the order keeps instead of the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub token: String,
    pub last4: String,
}

/// Why a gateway call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The issuer refused: final, do not retry (`card_declined`, `insufficient_funds`, ...).
    #[error("declined: {code}")]
    Declined { code: String },
    /// A transient failure (`processing_error`, gateway unreachable): retry with the same
    /// idempotency key.
    #[error("retryable: {message}")]
    Retryable { message: String },
    /// The request is wrong (unknown token, capture above the authorization): final.
    #[error("invalid: {message}")]
    Invalid { message: String },
    /// The gateway's ledger did not answer (busy, moving, timed out): the call may or may
    /// not have been applied. Not the card's fault, so it does not count as a failed
    /// attempt: the caller tries again later with the same key, which replays it.
    #[error("unavailable: {message}")]
    Unavailable { message: String },
}

/// A payment gateway with manual capture. Every call carries an idempotency key (the
/// order and step, [`PaymentKey`]): a repeat with the same key returns the first outcome
/// and never charges twice. The saga calls it from inside its order's partition gate, so
/// an implementation that writes entities (the simulator writes the order's payment)
/// does so before a handoff of that partition streams it.
pub trait PaymentGateway: Send + Sync + 'static {
    /// Validates a card and returns a token for it. Nothing about the number but its
    /// last 4 digits is kept.
    fn tokenize(
        &self,
        card: &CardDetails,
        now_year: u32,
        now_month: u32,
    ) -> BoxFuture<'_, Result<PaymentMethod, CardError>>;
    /// Places a hold for `amount_minor`; returns the authorization (payment intent) id.
    fn authorize(
        &self,
        key: PaymentKey,
        method: String,
        amount_minor: i64,
        currency: String,
    ) -> BoxFuture<'_, Result<String, PaymentError>>;
    fn capture(
        &self,
        key: PaymentKey,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
    fn void(
        &self,
        key: PaymentKey,
        authorization: String,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
    fn refund(
        &self,
        key: PaymentKey,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
}
