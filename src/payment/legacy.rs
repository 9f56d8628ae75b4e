//! The previous build's payment ledger, folded into the payment entities once, at
//! start-up, before any actor runs.
//!
//! That build kept, per order, a `pi_…` intent entity (its id derived from the order's
//! authorize key) in the journal, and two node-local sled trees beside it:
//! `payment_idempotency` (the outcome of each `order:<id>:<step>` key) and
//! `payment_methods` (a record per token; every token it made also carries its method, so
//! that tree holds nothing a payment needs). An order in flight at the upgrade must find
//! its hold and its outcomes, or its saga would authorize or capture again. So for every
//! order in the journal with a legacy intent or ledger record, and no payment yet, the
//! fold appends one `Adopted` event to the order's payment (through the journal's group
//! commit, durably), then drops both trees. It runs again after a crash midway: an order
//! whose payment exists is skipped, and the trees go only once everything is durable.
//! The `pi_…` intents stay in the journal as inert history.
//!
//! A store whose trees are gone (folded, or made by this build) is not looked at again.

use crate::domain::payment::{Outcome, Payment, PaymentEvent, PaymentStep, Recorded};
use crate::domain::{EntityKind, Millis};
use crate::store::{codec, Store, StoreError};
use serde::Deserialize;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The previous build's tree of idempotent outcomes.
pub const IDEMPOTENCY_TREE: &str = "payment_idempotency";
/// The previous build's tree of payment method records.
pub const METHODS_TREE: &str = "payment_methods";

/// Appends written at once (each waits for its fsync; the group commit shares them).
const BATCH: usize = 128;

/// What a fold did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Folded {
    /// Orders whose payment was created from legacy records.
    pub adopted: usize,
    /// Legacy ledger records read.
    pub ledger_records: usize,
}

/// A ledger record with its creation time, as the previous build wrote it (after the
/// value, so the bare value of still older records never decodes as this).
#[derive(Deserialize)]
struct Stamped {
    value: Outcome,
    created_at: Millis,
}

/// A ledger record: its outcome, and its time (`now` for records that carried none).
fn decode_outcome(bytes: &[u8], now: Millis) -> Option<Recorded> {
    match codec::decode::<Stamped>(bytes) {
        Ok(s) => Some(Recorded {
            outcome: s.value,
            at: s.created_at,
        }),
        Err(_) => codec::decode::<Outcome>(bytes)
            .ok()
            .map(|outcome| Recorded { outcome, at: now }),
    }
}

/// `order:<uuid>:<step>`, the key of a saga's payment call.
fn parse_key(key: &[u8]) -> Option<(Uuid, PaymentStep)> {
    let key = std::str::from_utf8(key).ok()?;
    let (order, step) = key.strip_prefix("order:")?.rsplit_once(':')?;
    let step = PaymentStep::ALL.into_iter().find(|s| s.as_str() == step)?;
    Some((Uuid::parse_str(order).ok()?, step))
}

/// Folds the legacy ledger into payment entities (see the module doc). `now` stamps
/// ledger records that carried no time.
pub async fn fold(store: &Store, now: Millis) -> Result<Folded, StoreError> {
    let mut folded = Folded::default();
    if !store.has_tree(IDEMPOTENCY_TREE) && !store.has_tree(METHODS_TREE) {
        return Ok(folded);
    }
    let journal = store.journal();
    let mut ledger: BTreeMap<Uuid, Vec<(PaymentStep, Recorded)>> = BTreeMap::new();
    for item in store.tree(IDEMPOTENCY_TREE)?.iter() {
        let (key, bytes) = item?;
        folded.ledger_records += 1;
        match (parse_key(&key), decode_outcome(&bytes, now)) {
            (Some((order, step)), Some(rec)) => ledger.entry(order).or_default().push((step, rec)),
            _ => tracing::warn!(
                key = %String::from_utf8_lossy(&key),
                "a legacy payment ledger record is not an order's; left out"
            ),
        }
    }
    tracing::info!(
        records = folded.ledger_records,
        orders = ledger.len(),
        "folding the previous build's payment ledger into payment entities"
    );
    let mut batch = Vec::with_capacity(BATCH);
    for id in journal.entity_ids(EntityKind::Order) {
        let id = id?;
        let Ok(order) = Uuid::parse_str(&id) else {
            continue;
        };
        let outcomes = ledger.remove(&order).unwrap_or_default();
        if journal.exists(EntityKind::Payment, &id)? {
            continue;
        }
        let intent_id = super::simulator::intent_of(order);
        // The previous build's intent events are this build's first five payment events.
        let intent = journal.load::<Payment>(&intent_id)?;
        if intent.seq == 0 && outcomes.is_empty() {
            continue;
        }
        let event = PaymentEvent::Adopted {
            intent_id: (intent.seq > 0).then_some(intent_id),
            intent: intent.state.intent,
            outcomes,
        };
        batch.push((id, event));
        if batch.len() >= BATCH {
            folded.adopted += write(store, std::mem::take(&mut batch), now).await?;
        }
    }
    folded.adopted += write(store, batch, now).await?;
    store.durable().await?;
    store.drop_tree(IDEMPOTENCY_TREE)?;
    store.drop_tree(METHODS_TREE)?;
    store.durable().await?;
    tracing::info!(
        adopted = folded.adopted,
        "the previous build's payment ledger is folded"
    );
    Ok(folded)
}

async fn write(
    store: &Store,
    batch: Vec<(String, PaymentEvent)>,
    now: Millis,
) -> Result<usize, StoreError> {
    let n = batch.len();
    let journal = store.journal();
    let writes = batch.into_iter().map(|(id, event)| async move {
        journal
            .append::<Payment>(&id, 1, &[(now, event)], None, &[])
            .await
    });
    for r in futures::future::join_all(writes).await {
        r?;
    }
    Ok(n)
}

#[cfg(test)]
#[path = "legacy_tests.rs"]
mod tests;
