//! The messages of the partitions this node owns, for `GET /v1/admin/notifications`,
//! `GET /v1/me/notifications` and the replay of a dead message. Reads are bounded
//! ([`SCAN`] records per family and partition); like the webhook deliveries, a node
//! answers for its own partitions.

use std::sync::Arc;

use super::{done_key, id_of, queue_key, Stored, DLQ, LOG, QUEUE};
use crate::clock::now_ms;
use crate::domain::notification::{apply, decide, ChannelKind, MessageCommand, MessageStatus};
use crate::events::runner::Ownership;
use crate::store::{codec, Journal, StoreError};

/// Most records one listing reads per family and partition.
pub const SCAN: usize = 10_000;

/// What a listing keeps.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<MessageStatus>,
    pub channel: Option<ChannelKind>,
    pub event_type: Option<String>,
    /// Only messages to this address.
    pub recipient: Option<String>,
    /// Only a shopper's own: about their orders (on any channel), or to their address.
    pub mine: Option<(String, String)>,
}

impl Filter {
    fn keeps(&self, s: &Stored) -> bool {
        let m = &s.message;
        self.status.is_none_or(|st| st == m.status)
            && self.channel.is_none_or(|c| m.channel == Some(c))
            && self.event_type.as_deref().is_none_or(|t| t == m.event_type)
            && self
                .recipient
                .as_deref()
                .is_none_or(|r| r.eq_ignore_ascii_case(&m.recipient))
            && self.mine.as_ref().is_none_or(|(user, email)| {
                m.user.as_deref() == Some(user.as_str()) || email.eq_ignore_ascii_case(&m.recipient)
            })
    }
}

/// Why a replay did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("no dead message with that id on this node")]
    NotFound,
    #[error("the message's partition is moving; try again")]
    Moving,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The node's notification records.
pub struct Notifications {
    journal: Journal,
    owner: Arc<dyn Ownership>,
}

fn decode(v: &[u8]) -> Option<Stored> {
    codec::decode(v).ok()
}

impl Notifications {
    pub fn new(journal: Journal, owner: Arc<dyn Ownership>) -> Arc<Self> {
        Arc::new(Self { journal, owner })
    }

    /// The newest `limit` messages that `f` keeps, newest first.
    pub fn list(&self, f: &Filter, limit: usize) -> Result<Vec<Stored>, StoreError> {
        let families: &[&str] = match f.status {
            Some(MessageStatus::Pending) => &[QUEUE],
            Some(MessageStatus::Sent) => &[LOG],
            Some(MessageStatus::Dead) => &[DLQ],
            Some(MessageStatus::Absent) => &[],
            None => &[QUEUE, LOG, DLQ],
        };
        let mut out = Vec::new();
        for p in self.owner.local() {
            let part = self.journal.partition(p);
            for family in families {
                for (_, v) in part.projected(family, None, SCAN)? {
                    if let Some(s) = decode(&v).filter(|s| f.keeps(s)) {
                        out.push(s);
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (b.message.created_at, &b.message.id).cmp(&(a.message.created_at, &a.message.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    /// Puts dead message `id` back in its partition's queue, due now, for one more round
    /// of attempts.
    pub async fn replay(&self, id: &str) -> Result<(), ReplayError> {
        for p in self.owner.local() {
            let part = self.journal.partition(p);
            let found = part
                .projected(DLQ, None, SCAN)?
                .into_iter()
                .find(|(k, _)| id_of(k) == Some(id));
            let Some((k, _)) = found else { continue };
            let _held = self.owner.hold(p).ok_or(ReplayError::Moving)?;
            // Re-read under the gate: the record may have moved since the scan.
            let Some(mut s) = part.projected_get(DLQ, &k)?.as_deref().and_then(decode) else {
                return Err(ReplayError::NotFound);
            };
            let now = now_ms();
            let events = decide(&s.message, &MessageCommand::Replay { now })
                .map_err(|_| ReplayError::NotFound)?;
            for e in &events {
                apply(&mut s.message, e);
            }
            debug_assert_eq!(k, done_key(s.pseq, &s.message.id));
            let q = queue_key(s.message.due_at, &s.message.id);
            part.write_projected(vec![(DLQ, k, None), (QUEUE, q, Some(codec::encode(&s)))])
                .await?;
            return Ok(());
        }
        Err(ReplayError::NotFound)
    }
}
