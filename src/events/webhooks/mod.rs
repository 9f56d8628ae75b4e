//! Webhooks: every public event an enabled endpoint asked for is delivered to it as a
//! signed POST ([`super::signing`]), retried per [`super::retry`], and kept in a
//! dead-letter queue when it cannot be.
//!
//! The flow, and where each piece lives:
//! - [`queue`]: the `webhooks` projection. For each event it writes one delivery record
//!   per endpoint that wants it into the event's own partition, in the same durable
//!   batch as the projection's offset, so a committed event is queued exactly once per
//!   endpoint and the queue moves with the partition on handoff.
//! - [`dispatch`]: one task per node. It POSTs the due records of the partitions this
//!   node owns, at most `webhooks.max_in_flight` per endpoint, and writes each attempt
//!   durably under the partition's gate: a retry stays in the queue with its next time,
//!   a delivered record moves to the log, a dead one to the dead-letter queue.
//! - [`client`]: one signed attempt, with redirects off and every resolved address
//!   checked by the target guard ([`super::target`]).
//! - [`registry`]: the node's view of the endpoint registry, with when it was read.
//! - [`dlq`]: reading the three families (deliveries of an endpoint, the DLQ) and
//!   replaying dead records.
//!
//! Records live in three projection families of each partition ([`QUEUE`], [`LOG`],
//! [`DLQ`]) under the same key, endpoint id (16 bytes) + log seq (8) + type index (1),
//! so a record moves between families without changing its key, and a projection reset
//! (which forgets only [`QUEUE`]) never queues again what was delivered or dead.

pub mod client;
pub mod dispatch;
pub mod dlq;
pub mod queue;
pub mod registry;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::public::{EventType, PublicEvent};
use crate::domain::Millis;

/// The projection (and queue family) name.
pub const QUEUE: &str = "webhooks";
/// Delivered records, kept for `webhooks.log_retention_s`.
pub const LOG: &str = "webhooks.log";
/// Records that will not be retried until replayed.
pub const DLQ: &str = "webhooks.dlq";
/// Most attempts one record remembers (the latest are kept).
pub const MAX_ATTEMPTS_KEPT: usize = 32;
/// Most characters of a response body kept with an attempt.
pub const EXCERPT_CHARS: usize = 256;

/// How one attempt went, as `GET /v1/webhooks/{id}/deliveries` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Millis,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<u16>,
    /// `ok`, `http_error`, `timeout`, `connection_error` or `refused`.
    pub outcome: String,
    pub latency_ms: u64,
    /// The start of the answer's body (or the error).
    pub excerpt: String,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub endpoint: Uuid,
    pub event_id: String,
    pub event_type: String,
    /// The exact bytes POSTed (`{"id","type","timestamp","data"}`), the same on every
    /// attempt, so a receiver's signature check and deduplication see one message.
    pub body: String,
    pub state: DeliveryState,
    /// When the next attempt is due (pending records).
    pub next_at: Millis,
    /// Attempts since it was queued or last replayed.
    pub tries: u32,
    pub attempts: Vec<Attempt>,
}

impl Delivery {
    /// The delivery of `ev` to `endpoint`, due at once.
    pub fn new(endpoint: Uuid, ev: &PublicEvent) -> Self {
        let body = serde_json::json!({
            "id": ev.id,
            "type": ev.r#type.as_str(),
            "timestamp": crate::clock::rfc3339(ev.at),
            "data": ev.data,
        });
        Self {
            endpoint,
            event_id: ev.id.clone(),
            event_type: ev.r#type.as_str().to_owned(),
            body: body.to_string(),
            state: DeliveryState::Pending,
            next_at: 0,
            tries: 0,
            attempts: Vec::new(),
        }
    }

    /// Records an attempt, keeping the latest [`MAX_ATTEMPTS_KEPT`].
    pub fn record(&mut self, attempt: Attempt) {
        self.tries = self.tries.saturating_add(1);
        self.attempts.push(attempt);
        if self.attempts.len() > MAX_ATTEMPTS_KEPT {
            self.attempts.remove(0);
        }
    }

    pub fn last_status(&self) -> Option<u16> {
        self.attempts.last().and_then(|a| a.status)
    }
}

/// The key of the delivery of `ev` to `endpoint` (in every family).
pub fn key(endpoint: Uuid, ev: &PublicEvent) -> Vec<u8> {
    let mut k = endpoint.as_bytes().to_vec();
    k.extend_from_slice(&ev.pseq.to_be_bytes());
    let ty = EventType::ALL
        .iter()
        .position(|t| *t == ev.r#type)
        .unwrap_or(0);
    k.push(ty as u8);
    k
}

/// The endpoint a key belongs to.
pub fn endpoint_of(key: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(key.get(..16)?).ok()
}

/// The public id of a record: `<partition>.<hex key>` (what the DLQ routes take).
pub fn record_id(p: u32, key: &[u8]) -> String {
    format!("{p}.{}", hex::encode(key))
}

/// The partition and key a record id names.
pub fn parse_record_id(id: &str) -> Option<(u32, Vec<u8>)> {
    let (p, k) = id.split_once('.')?;
    let p = p.parse().ok()?;
    let k = hex::decode(k).ok()?;
    (k.len() == 25).then_some((p, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_round_trip_and_keys_name_their_endpoint() {
        let ev = PublicEvent {
            id: PublicEvent::id_for(3, 9, EventType::OrderPaid),
            r#type: EventType::OrderPaid,
            at: 1_700_000_000_000,
            schema_version: 1,
            partition: 3,
            pseq: 9,
            data: serde_json::json!({"order_id": "o"}),
        };
        let e = Uuid::from_u128(42);
        let k = key(e, &ev);
        assert_eq!(endpoint_of(&k), Some(e));
        let id = record_id(3, &k);
        assert_eq!(parse_record_id(&id), Some((3, k)));
        assert_eq!(parse_record_id("3.zz"), None);
        assert_eq!(parse_record_id("x.00"), None);
        let d = Delivery::new(e, &ev);
        let body: serde_json::Value = serde_json::from_str(&d.body).unwrap();
        assert_eq!(body["id"], ev.id);
        assert_eq!(body["type"], "order.paid");
        assert_eq!(body["data"]["order_id"], "o");
        assert!(body["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2023-11-14T"));
    }
}
