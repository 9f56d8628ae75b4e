//! Payments: the [`PaymentGateway`] trait the checkout saga talks to, and the built-in
//! [`simulator`] that follows Stripe's conventions. A real gateway implements the same
//! trait.
//!
//! Card numbers never leave [`card`]: the edge tokenizes a card into a payment method
//! token and its last 4 digits; only those are stored or logged.

pub mod card;
pub mod simulator;

pub use card::{CardDetails, CardError};
pub use simulator::Simulator;

use futures::future::BoxFuture;

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
}

/// A payment gateway with manual capture. Every call carries an idempotency key: a
/// repeat with the same key returns the first outcome and never charges twice.
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
        key: String,
        method: String,
        amount_minor: i64,
        currency: String,
    ) -> BoxFuture<'_, Result<String, PaymentError>>;
    fn capture(
        &self,
        key: String,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
    fn void(&self, key: String, authorization: String) -> BoxFuture<'_, Result<(), PaymentError>>;
    fn refund(
        &self,
        key: String,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>>;
}
