//! The built-in payment gateway: a simulator that follows Stripe's conventions.
//!
//! - Test cards decide the outcome: `4242424242424242` succeeds, `4000000000000002` is
//!   `card_declined`, `4000000000009995` `insufficient_funds`, `4000000000009987`
//!   `lost_card`, `4000000000000069` `expired_card`, `4000000000000127`
//!   `incorrect_cvc`, and `4000000000000119` a retryable `processing_error`. Any other
//!   valid card succeeds.
//! - Every call has an idempotency key. Its first final outcome (success or decline) is
//!   stored and replayed; a retryable error is not stored, so a retry runs again.
//! - Payment intents are event-sourced `Payment` entities in the journal: the ledger is
//!   durable, and a 2xx from the gateway follows the fsync like everything else.
//! - A configurable latency is added to every call.
//! - Payment methods and idempotency records expire: each record carries its creation
//!   time, a key older than the TTL (`checkout.idempotency_ttl_s`, 24 h as Stripe keeps
//!   keys) is not replayed (a reuse is a new request), and a background sweep
//!   ([`Simulator::sweep`], started by [`spawn_sweep`]) removes expired records, looking
//!   at a bounded number per cycle. A saga's keys are `order/step` and its steps run within
//!   the reservation deadline (minutes), far inside 24 h, so no key expires under a running
//!   saga. A new request on an expired authorize key still lands on the intent derived from
//!   the key, so it cannot place a second hold. Records written before they carried a time
//!   are stamped with the time of the first sweep that sees them. A payment method's
//!   token carries the method itself (for nodes that did not tokenize it), so a token
//!   whose record was swept still authorizes; the record is the audit trail, and sweeping
//!   it bounds the tree.

use super::{CardDetails, CardError, PaymentError, PaymentGateway, PaymentMethod};
use crate::domain::payment::{IntentStatus, Payment, PaymentCommand};
use crate::domain::{Aggregate, Millis};
use crate::store::{codec, Journal, Store, StoreError};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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

/// A record with its creation time. The time comes after the value, so a record written
/// before records carried one (the bare value) never decodes as a `Stamped` (it ends too
/// early), and a `Stamped` never decodes as the bare value (it has bytes left over).
#[derive(Debug, Serialize, Deserialize)]
struct Stamped<T> {
    value: T,
    created_at: Millis,
}

/// Decodes a record, with its creation time if it has one.
fn decode_stamped<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, Option<Millis>), codec::CodecError> {
    match codec::decode::<Stamped<T>>(bytes) {
        Ok(s) => Ok((s.value, Some(s.created_at))),
        Err(_) => codec::decode::<T>(bytes).map(|v| (v, None)),
    }
}

fn encode_stamped<T: Serialize>(value: &T, created_at: Millis) -> Vec<u8> {
    codec::encode(&Stamped { value, created_at })
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredMethod {
    last4: String,
    decline: Option<String>,
    processing_error: bool,
}

/// A stored final outcome of an idempotent call.
#[derive(Debug, Serialize, Deserialize)]
enum StoredOutcome {
    Ok(String),
    Declined(String),
    Invalid(String),
}

impl From<StoredOutcome> for Result<String, PaymentError> {
    fn from(o: StoredOutcome) -> Self {
        match o {
            StoredOutcome::Ok(s) => Ok(s),
            StoredOutcome::Declined(code) => Err(PaymentError::Declined { code }),
            StoredOutcome::Invalid(message) => Err(PaymentError::Invalid { message }),
        }
    }
}

const STRIPES: usize = 64;

pub struct Simulator {
    store: Store,
    journal: Journal,
    methods: sled::Tree,
    keys: sled::Tree,
    latency: Duration,
    /// How long payment methods and idempotency keys live.
    ttl_ms: Millis,
    /// Where the next sweep continues in each tree (methods, keys); `None` from the start.
    cursors: std::sync::Mutex<[Option<sled::IVec>; 2]>,
    /// Serialises calls on the same key (authorize) or intent (capture, void, refund).
    stripes: Vec<Mutex<()>>,
}

/// What one sweep cycle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Records looked at (at most the per-cycle bound per tree).
    pub scanned: usize,
    /// Expired records removed.
    pub removed: usize,
    /// Records without a creation time, stamped with this sweep's time.
    pub stamped: usize,
}

/// Default lifetime of payment methods and idempotency keys: 24 h.
pub const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

fn store_err(e: StoreError) -> PaymentError {
    PaymentError::Retryable {
        message: format!("gateway ledger: {e}"),
    }
}

impl Simulator {
    pub fn new(store: &Store, latency: Duration) -> Result<Self, StoreError> {
        Ok(Self {
            journal: store.journal().clone(),
            methods: store.tree("payment_methods")?,
            keys: store.tree(IDEMPOTENCY_TREE)?,
            store: store.clone(),
            latency,
            ttl_ms: DEFAULT_TTL.as_millis() as Millis,
            cursors: std::sync::Mutex::new([None, None]),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// Sets how long payment methods and idempotency keys live (`checkout.idempotency_ttl_s`).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl_ms = ttl.as_millis() as Millis;
        self
    }

    fn expired(&self, created_at: Option<Millis>, now: Millis) -> bool {
        created_at.is_some_and(|t| t.saturating_add(self.ttl_ms) <= now)
    }

    /// One sweep cycle: looks at up to `max` records of each tree (payment methods, then
    /// idempotency keys) from where the last cycle stopped, removes those older than the
    /// TTL, stamps those without a time with `now`, and waits until the changes are on
    /// disk. Each change is a compare-and-swap against the bytes read, so a record that a
    /// call rewrote meanwhile is left alone.
    pub async fn sweep(&self, now: Millis, max: usize) -> Result<Swept, StoreError> {
        let mut swept = Swept::default();
        for (i, tree) in [&self.methods, &self.keys].into_iter().enumerate() {
            let from = self.cursors.lock().expect("cursor lock")[i].clone();
            let range = match &from {
                Some(k) => tree.range::<&[u8], _>((
                    std::ops::Bound::Excluded(k.as_ref()),
                    std::ops::Bound::Unbounded,
                )),
                None => tree.iter(),
            };
            let mut last = None;
            let mut seen = 0;
            for item in range.take(max) {
                let (key, bytes) = item?;
                seen += 1;
                let created_at = if i == 0 {
                    decode_stamped::<StoredMethod>(&bytes).map(|(_, t)| t)
                } else {
                    decode_stamped::<StoredOutcome>(&bytes).map(|(_, t)| t)
                };
                let new = match created_at {
                    Ok(t) if self.expired(t, now) => {
                        swept.removed += 1;
                        None
                    }
                    Ok(Some(_)) => {
                        last = Some(key);
                        continue;
                    }
                    Ok(None) => {
                        swept.stamped += 1;
                        Some(restamp(&bytes, i == 0, now))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "a payment record does not decode; left alone");
                        last = Some(key);
                        continue;
                    }
                };
                // Lost races (the record changed since it was read) are simply skipped.
                let _ = tree.compare_and_swap(&key, Some(&bytes), new)?;
                last = Some(key);
            }
            swept.scanned += seen;
            // A short page means the end of the tree: start again from the top next time.
            self.cursors.lock().expect("cursor lock")[i] = if seen < max { None } else { last };
        }
        if swept.removed + swept.stamped > 0 {
            self.store.durable().await?;
        }
        metrics::counter!("emporium_payment_records_expired_total").increment(swept.removed as u64);
        Ok(swept)
    }

    fn stripe(&self, key: &str) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.stripes[(h.finish() as usize) % STRIPES]
    }

    /// The stored outcome of `key`, unless there is none or it has expired (then the call
    /// is a new request).
    fn replay(&self, key: &str) -> Result<Option<Result<String, PaymentError>>, PaymentError> {
        match self.keys.get(key).map_err(|e| store_err(e.into()))? {
            Some(bytes) => {
                let (o, created_at): (StoredOutcome, _) =
                    decode_stamped(&bytes).map_err(|e| PaymentError::Invalid {
                        message: format!("stored outcome for {key} does not decode: {e}"),
                    })?;
                if self.expired(created_at, crate::clock::now_ms()) {
                    return Ok(None);
                }
                Ok(Some(o.into()))
            }
            None => Ok(None),
        }
    }

    /// Runs a command on an intent, records the outcome under `key`, and waits for disk.
    ///
    /// Order matters for crashes: the intent's events are made durable first, and the
    /// outcome is read from the intent's state, not from the new events. A crash before
    /// the key record lands is then harmless: the retry finds the same intent (its id is
    /// derived from the key), the command is a no-op on its state, and the same outcome
    /// is recorded. The other order could persist "authorized" for an intent that does
    /// not exist, which nothing could capture or void.
    async fn run(
        &self,
        key: &str,
        intent: &str,
        cmd: PaymentCommand,
    ) -> Result<String, PaymentError> {
        let rec = self.journal.load::<Payment>(intent).map_err(store_err)?;
        if rec.seq == 0 && !matches!(cmd, PaymentCommand::Authorize { .. }) {
            return Err(PaymentError::Invalid {
                message: format!("no payment intent {intent}"),
            });
        }
        let outcome = match Payment::decide(&rec.state, &cmd) {
            Ok(events) => {
                let mut state = rec.state;
                for e in &events {
                    Payment::apply(&mut state, e);
                }
                if !events.is_empty() {
                    let at = crate::clock::now_ms();
                    let stamped: Vec<_> = events.into_iter().map(|e| (at, e)).collect();
                    self.journal
                        .append::<Payment>(intent, rec.seq + 1, &stamped, None, &[])
                        .await
                        .map_err(store_err)?;
                }
                match (&cmd, state.status, state.decline_code) {
                    (PaymentCommand::Authorize { .. }, IntentStatus::Declined, Some(code)) => {
                        StoredOutcome::Declined(code)
                    }
                    _ => StoredOutcome::Ok(intent.to_owned()),
                }
            }
            Err(rejection) => StoredOutcome::Invalid(rejection.message),
        };
        let now = crate::clock::now_ms();
        self.keys
            .insert(key, encode_stamped(&outcome, now))
            .map_err(|e| store_err(e.into()))?;
        self.store.durable().await.map_err(store_err)?;
        outcome.into()
    }

    async fn call(
        &self,
        key: String,
        intent: String,
        cmd: PaymentCommand,
    ) -> Result<(), PaymentError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let _guard = self.stripe(&intent).lock().await;
        if let Some(prev) = self.replay(&key)? {
            return prev.map(|_| ());
        }
        self.run(&key, &intent, cmd).await.map(|_| ())
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
            let method = StoredMethod {
                last4: card.last4(),
                decline: match behavior {
                    CardBehavior::Decline(code) => Some(code.to_owned()),
                    _ => None,
                },
                processing_error: matches!(behavior, CardBehavior::ProcessingError),
            };
            // The token carries the method, so a node that did not tokenize the card (the
            // order's owner in a cluster) can still charge it; the tree is the record.
            let token = format!(
                "pm_{}_{}",
                hex::encode(codec::encode(&method)),
                uuid::Uuid::new_v4().simple()
            );
            self.methods
                .insert(&token, encode_stamped(&method, crate::clock::now_ms()))
                .map_err(|e| CardError::Store(e.to_string()))?;
            // Durable with the order placement that follows (same database flush).
            Ok(PaymentMethod {
                token,
                last4: method.last4,
            })
        })
    }

    fn authorize(
        &self,
        key: String,
        method: String,
        amount_minor: i64,
        _currency: String,
    ) -> BoxFuture<'_, Result<String, PaymentError>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let _guard = self.stripe(&key).lock().await;
            if let Some(prev) = self.replay(&key)? {
                return prev;
            }
            let stored: StoredMethod =
                match self.methods.get(&method).map_err(|e| store_err(e.into()))? {
                    Some(b) => {
                        decode_stamped(&b)
                            .map_err(|e| PaymentError::Invalid {
                                message: e.to_string(),
                            })?
                            .0
                    }
                    None => match method_from_token(&method) {
                        Some(m) => m,
                        None => {
                            return Err(PaymentError::Invalid {
                                message: "unknown payment method".into(),
                            })
                        }
                    },
                };
            if stored.processing_error {
                return Err(PaymentError::Retryable {
                    message: "processing_error".into(),
                });
            }
            // The intent id is derived from the key, so a replay after a crash between
            // the two writes lands on the same intent.
            let intent = intent_of(&key);
            let cmd = PaymentCommand::Authorize {
                amount_minor,
                last4: stored.last4,
                decline: stored.decline,
            };
            self.run(&key, &intent, cmd).await
        })
    }

    fn capture(
        &self,
        key: String,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        Box::pin(self.call(key, authorization, PaymentCommand::Capture { amount_minor }))
    }

    fn void(&self, key: String, authorization: String) -> BoxFuture<'_, Result<(), PaymentError>> {
        Box::pin(self.call(key, authorization, PaymentCommand::Void))
    }

    fn refund(
        &self,
        key: String,
        authorization: String,
        amount_minor: i64,
    ) -> BoxFuture<'_, Result<(), PaymentError>> {
        Box::pin(self.call(key, authorization, PaymentCommand::Refund { amount_minor }))
    }
}

/// A record without a time (`bytes`, known to decode) as a stamped one.
fn restamp(bytes: &[u8], method: bool, now: Millis) -> Vec<u8> {
    if method {
        let (m, _) = decode_stamped::<StoredMethod>(bytes).expect("decoded above");
        encode_stamped(&m, now)
    } else {
        let (o, _) = decode_stamped::<StoredOutcome>(bytes).expect("decoded above");
        encode_stamped(&o, now)
    }
}

/// Runs [`Simulator::sweep`] every `every`, `max` records per tree and cycle, for as long
/// as the simulator lives. A failed sweep (a storage error) is logged and tried again next
/// cycle: it removed nothing it did not also make durable, and every record it would have
/// removed has expired for callers already.
pub fn spawn_sweep(sim: &std::sync::Arc<Simulator>, every: Duration, max: usize) {
    let weak = std::sync::Arc::downgrade(sim);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(sim) = weak.upgrade() else { break };
            match sim.sweep(crate::clock::now_ms(), max).await {
                Ok(s) if s.removed + s.stamped > 0 => {
                    tracing::debug!(
                        removed = s.removed,
                        stamped = s.stamped,
                        "payment records swept"
                    )
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "payment expiry sweep failed; will retry"),
            }
        }
    });
}

/// The method a token carries (tokens made before tokens carried one hold none).
fn method_from_token(token: &str) -> Option<StoredMethod> {
    let hexed = token.strip_prefix("pm_")?.split('_').next()?;
    codec::decode(&hex::decode(hexed).ok()?).ok()
}

/// The intent an idempotency key's authorization creates.
fn intent_of(key: &str) -> String {
    format!("pi_{}", &hex::encode(sha2_256(key.as_bytes()))[..24])
}

/// The ledger records that belong to an order, for moving the order to another node:
/// the idempotency keys of its payment steps, and the intent its authorization created.
pub fn order_ledger_keys(order_id: uuid::Uuid) -> (Vec<String>, String) {
    use crate::domain::order::OrderState;
    let keys: Vec<String> = ["authorize", "capture", "void", "refund"]
        .iter()
        .map(|step| OrderState::payment_key(order_id, step))
        .collect();
    let intent = intent_of(&keys[0]);
    (keys, intent)
}

/// The tree of the simulator's idempotency records.
pub const IDEMPOTENCY_TREE: &str = "payment_idempotency";

fn sha2_256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
#[path = "simulator_tests.rs"]
mod tests;
