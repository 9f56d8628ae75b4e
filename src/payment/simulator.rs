//! The built-in payment gateway: a simulator that follows Stripe's conventions.
//!
//! - Test cards decide the outcome: `4242424242424242` succeeds, `4000000000000002` is
//!   `card_declined`, `4000000000009995` `insufficient_funds`, `4000000000009987`
//!   `lost_card`, `4000000000000069` `expired_card`, `4000000000000127`
//!   `incorrect_cvc`, and `4000000000000119` a retryable `processing_error`. Any other
//!   valid card succeeds.
//! - The ledger is the `payment` entity of each order (its id is the order's id, so it
//!   lives in, and moves with, the order's partition). Every call is a command to that
//!   entity through the router, with the router's deadline: it is decided, journaled and
//!   fsync'd by the entity's single writer like any other entity, so a 2xx from the
//!   gateway follows the fsync, and nothing here writes the store.
//! - Every call has an idempotency key ([`PaymentKey`], an order's step). The step's
//!   first final outcome (success or decline) is recorded in the entity and replayed; a
//!   retryable error is not recorded, so a retry runs again.
//! - Keys expire: an outcome older than the TTL (`checkout.idempotency_ttl_s`, 24 h as
//!   Stripe keeps keys) is not replayed; a reuse is a new request. A saga's steps run
//!   within the reservation deadline (minutes), far inside 24 h, so no key expires under a
//!   running saga, and a new request on an expired authorize key lands on the order's
//!   existing intent, so it cannot place a second hold. Each order keeps at most one
//!   outcome per step, so nothing needs sweeping.
//! - A payment method is its token: the token carries the card's behaviour and last 4
//!   digits, so any node can charge it and no methods record is kept. (Tokens made before
//!   tokens carried their method are refused as an unknown payment method.)
//! - A configurable latency (`payment.latency_ms`) is added to every call.

use super::{CardDetails, CardError, PaymentError, PaymentGateway, PaymentKey, PaymentMethod};
use crate::actors::client::{EntityClient, RouteError};
use crate::clock::now_ms;
use crate::domain::payment::{Outcome, Payment, PaymentCommand, PaymentOp};
use crate::domain::Millis;
use crate::store::codec;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
enum CardBehavior {
    Approve,
    Decline(&'static str),
    ProcessingError,
}

fn behavior_of(digits: &str) -> CardBehavior {
    match digits {
        "4000000000000002" => CardBehavior::Decline("card_declined"),
        "4000000000009995" => CardBehavior::Decline("insufficient_funds"),
        "4000000000009987" => CardBehavior::Decline("lost_card"),
        "4000000000000069" => CardBehavior::Decline("expired_card"),
        "4000000000000127" => CardBehavior::Decline("incorrect_cvc"),
        "4000000000000119" => CardBehavior::ProcessingError,
        _ => CardBehavior::Approve,
    }
}

/// What a payment method token carries.
#[derive(Debug, Serialize, Deserialize)]
struct TokenMethod {
    last4: String,
    decline: Option<String>,
    processing_error: bool,
}

/// Default lifetime of idempotency keys: 24 h.
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

pub struct Simulator {
    /// The way to the payment entities: bound by the router that hosts them when it is
    /// built ([`crate::router::RouterBuilder::bind`]), after this gateway (the orders
    /// that use it are hosted by the same router).
    client: OnceLock<Arc<dyn EntityClient>>,
    latency: Duration,
    /// How long idempotency keys live.
    ttl_ms: Millis,
}

impl Simulator {
    pub fn new(latency: Duration) -> Self {
        Self {
            client: OnceLock::new(),
            latency,
            ttl_ms: DEFAULT_TTL.as_millis() as Millis,
        }
    }

    /// Binds the client the payment entities are reached through (once; later binds are
    /// ignored).
    pub fn bind_client(&self, client: Arc<dyn EntityClient>) {
        let _ = self.client.set(client);
    }

    /// Sets how long idempotency keys live (`checkout.idempotency_ttl_s`).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl_ms = ttl.as_millis() as Millis;
        self
    }

    /// The simulated latency of a gateway call (`payment.latency_ms`).
    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// Runs `op` as the call `key` on the order's payment entity and returns the step's
    /// outcome (the one recorded now, or the one replayed).
    async fn call(&self, key: PaymentKey, op: PaymentOp) -> Result<String, PaymentError> {
        let client = self.client.get().ok_or_else(|| PaymentError::Unavailable {
            message: "the gateway is starting".into(),
        })?;
        let cmd = PaymentCommand::Call {
            op,
            now: now_ms(),
            ttl_ms: self.ttl_ms,
        };
        match client
            .command::<Payment>(&key.order_id.to_string(), cmd)
            .await
        {
            Ok(applied) => match applied.state.outcome(key.step) {
                Some(Outcome::Ok(intent)) => Ok(intent.clone()),
                Some(Outcome::Declined(code)) => Err(PaymentError::Declined { code: code.clone() }),
                Some(Outcome::Invalid(message)) => Err(PaymentError::Invalid {
                    message: message.clone(),
                }),
                None => Err(PaymentError::Unavailable {
                    message: format!("no outcome recorded for {key}"),
                }),
            },
            // Refused unrecorded (an intent the order's payment does not hold).
            Err(RouteError::Rejected(r)) => Err(PaymentError::Invalid { message: r.message }),
            // Not applied, or its outcome unknown: a retry with the same key replays it.
            Err(e) => Err(PaymentError::Unavailable {
                message: format!("gateway ledger: {e}"),
            }),
        }
    }
}

impl PaymentGateway for Simulator {
    fn tokenize(
        &self,
        card: &CardDetails,
        now_year: u32,
        now_month: u32,
    ) -> BoxFuture<'_, Result<PaymentMethod, CardError>> {
        let card = card.clone();
        Box::pin(async move {
            card.validate(now_year, now_month)?;
            let behavior = behavior_of(&card.digits());
            let method = TokenMethod {
                last4: card.last4(),
                decline: match behavior {
                    CardBehavior::Decline(code) => Some(code.to_owned()),
                    _ => None,
                },
                processing_error: matches!(behavior, CardBehavior::ProcessingError),
            };
            // The token carries the method, so the node that owns the order (whichever
            // node tokenized the card) can charge it.
            let token = format!(
                "pm_{}_{}",
                hex::encode(codec::encode(&method)),
                uuid::Uuid::new_v4().simple()
            );
            Ok(PaymentMethod {
                token,
                last4: method.last4,
            })
        })
    }

    fn authorize(
        &self,
        key: PaymentKey,
        method: String,
        amount_minor: i64,
        _currency: String,
    ) -> BoxFuture<'_, Result<String, PaymentError>> {
        Box::pin(async move {
            self.delay().await;
            let Some(m) = method_from_token(&method) else {
                return Err(PaymentError::Invalid {
                    message: "unknown payment method".into(),
                });
            };
            if m.processing_error {
                return Err(PaymentError::Retryable {
                    message: "processing_error".into(),
                });
            }
            let op = PaymentOp::Authorize {
                intent_id: intent_of(key.order_id),
                amount_minor,
                last4: m.last4,
                decline: m.decline,
            };
            self.call(key, op).await
        })
    }

    fn capture(
        &self,
        key: PaymentKey,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        let op = PaymentOp::Capture {
            authorization,
            amount_minor,
        };
        Box::pin(async move {
            self.delay().await;
            self.call(key, op).await.map(|_| ())
        })
    }

    fn void(
        &self,
        key: PaymentKey,
        authorization: String,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        let op = PaymentOp::Void { authorization };
        Box::pin(async move {
            self.delay().await;
            self.call(key, op).await.map(|_| ())
        })
    }

    fn refund(
        &self,
        key: PaymentKey,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        let op = PaymentOp::Refund {
            authorization,
            amount_minor,
        };
        Box::pin(async move {
            self.delay().await;
            self.call(key, op).await.map(|_| ())
        })
    }
}

/// The method a token carries (tokens made before tokens carried one hold none).
fn method_from_token(token: &str) -> Option<TokenMethod> {
    let hexed = token.strip_prefix("pm_")?.split('_').next()?;
    codec::decode(&hex::decode(hexed).ok()?).ok()
}

/// The intent an order's authorization creates: derived from its authorize key, as the
/// previous build named its `pi_…` intents, so an order authorized before an upgrade
/// keeps its authorization id.
pub fn intent_of(order_id: uuid::Uuid) -> String {
    let key = PaymentKey::new(order_id, super::PaymentStep::Authorize).to_string();
    format!("pi_{}", &hex::encode(sha2_256(key.as_bytes()))[..24])
}

fn sha2_256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
#[path = "simulator_tests.rs"]
pub(crate) mod tests;
