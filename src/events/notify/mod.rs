//! Notifications: the messages public events cause (an order receipt, a cancellation
//! note, a low-stock alert to the operators), kept and sent like webhook deliveries.
//!
//! - [`queue`]: the `notify` projection. For each event with a message it renders the
//!   content ([`templates`]) and writes one record per (event, channel, recipient) in the
//!   event's partition, in the batch that moves the projection's offset.
//! - [`dispatch`]: one task per node that sends the due records of its partitions through
//!   a [`channel::Channel`] ([`email`] over SMTP, [`sms`] through a Twilio-shaped API,
//!   [`push`] by Web Push), bounded per channel, and records each
//!   attempt with the pure message state machine ([`crate::domain::notification`]).
//! - [`history`]: what `GET /v1/admin/notifications` and `GET /v1/me/notifications` read.
//!
//! Families of a partition: [`QUEUE`] (pending, keyed by when the next send is due, so a
//! pass reads the due ones first and stops at the first that is not), [`LOG`] (sent) and
//! [`DLQ`] (dead), both keyed by the event's log seq and the message id.

pub mod channel;
pub mod dispatch;
pub mod email;
pub mod history;
pub mod push;
pub mod queue;
pub mod sms;
pub mod templates;

use serde::{Deserialize, Serialize};

use crate::domain::notification::MessageState;

/// The projection (and its pending family).
pub const QUEUE: &str = "notify";
/// Sent messages, kept `notifications.log_retention_s`.
pub const LOG: &str = "notify.log";
/// Dead messages: attempts exhausted or refused for good.
pub const DLQ: &str = "notify.dlq";

/// One stored message: the state machine's state, and where its event sits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The seq of the event's entry in its partition log.
    pub pseq: u64,
    pub message: MessageState,
}

/// The key of a message in [`LOG`] and [`DLQ`]: log seq (big-endian), then the id.
pub fn done_key(pseq: u64, id: &str) -> Vec<u8> {
    let mut k = pseq.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// The key of a pending message in [`QUEUE`]: when it is due (ms, big-endian), then the
/// id; a retry moves the record to its new key.
pub fn queue_key(due_at: u64, id: &str) -> Vec<u8> {
    done_key(due_at, id)
}

/// The id in a key of any family.
pub fn id_of(key: &[u8]) -> Option<&str> {
    key.get(8..).and_then(|b| std::str::from_utf8(b).ok())
}

/// The number (due time or log seq) in a key of any family.
pub fn number_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_their_number_and_carry_the_id() {
        let a = queue_key(5, "ntf_b");
        let b = queue_key(300, "ntf_a");
        assert!(a < b, "due earlier sorts first");
        assert_eq!(id_of(&a), Some("ntf_b"));
        assert_eq!(number_of(&b), Some(300));
        assert_eq!(id_of(&[1, 2]), None);
        assert_eq!(number_of(&[1, 2]), None);
    }
}
