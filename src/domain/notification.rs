//! A notification message: one per (public event id, channel, recipient), its attempts,
//! its backoff and its dead-letter state, as a pure `decide`/`apply` pair with time passed
//! in. The id is derived from that triple ([`message_id`]), so a redelivered event names
//! the same message and `Create` on an existing message decides nothing: no second send.
//!
//! The send itself is an effect run outside the message (`src/events/notify/dispatch.rs`);
//! the message only records what happened and says when the next attempt is due
//! ([`next_due`]). A message is not an entity kind: it is a record of the `notify`
//! projection in its event's partition (`src/events/notify/`), and every step of it is
//! decided here.

use serde::{Deserialize, Serialize};

use super::{reject, Millis, Rejection, RejectionCode};

/// The channels a message can go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Email,
    Sms,
    Push,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Push => "push",
        }
    }
}

/// Retries: exponential backoff from `initial_ms`, capped at `max_ms`, at most
/// `max_attempts` attempts in all (the first included); then the message is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// The webhooks' defaults (`retry_initial_ms = 1000`, `max_attempts = 8`), capped at
    /// six hours between attempts: about a day in all.
    fn default() -> Self {
        RetryPolicy {
            initial_ms: 1000,
            max_ms: 6 * 3600 * 1000,
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `initial * 2^(attempt-1)`,
    /// capped. Jitter is the caller's (it is randomness); this is its upper bound.
    pub fn backoff_ms(&self, attempt: u32) -> u64 {
        let shift = attempt.saturating_sub(1).min(40);
        self.initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.max_ms)
            .max(1)
    }
}

/// What a listing of messages keeps (`GET /v1/admin/notifications`,
/// `GET /v1/me/notifications`); every field that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFilter {
    pub status: Option<MessageStatus>,
    pub channel: Option<ChannelKind>,
    pub event_type: Option<String>,
    /// Only messages to this address.
    pub recipient: Option<String>,
    /// Only a shopper's own `(user id, email)`: about their orders (on any channel), or
    /// to their address.
    pub mine: Option<(String, String)>,
}

impl MessageFilter {
    pub fn keeps(&self, m: &MessageState) -> bool {
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

/// A message's place in a listing, newest first: the inverted creation time (16 hex
/// digits), then the id. Unique, and the same on every node.
pub fn listing_key(m: &MessageState) -> String {
    format!("{:016x}{}", u64::MAX - m.created_at, m.id)
}

/// The deterministic id of the message for `(event_id, channel, recipient)`.
pub fn message_id(event_id: &str, channel: ChannelKind, recipient: &str) -> String {
    let id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{event_id}\n{}\n{recipient}", channel.as_str()).as_bytes(),
    );
    format!("ntf_{}", id.simple())
}

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Not created yet (the default state of an unknown id).
    #[default]
    Absent,
    /// Waiting for its next attempt.
    Pending,
    Sent,
    /// Attempts exhausted, or the provider refused it for good.
    Dead,
}

/// What a message says, rendered at creation so a template change never alters a
/// message already created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub subject: String,
    pub body: String,
}

/// One attempt and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Millis,
    pub ok: bool,
    /// The provider's answer or the error, shortened.
    pub detail: String,
    /// A replay's marker, not a send: the policy counts attempts after the last one.
    #[serde(default)]
    pub replay: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageState {
    pub status: MessageStatus,
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub channel: Option<ChannelKind>,
    pub recipient: String,
    /// The shopper it concerns, when there is one (`GET /v1/me/notifications`).
    pub user: Option<String>,
    pub content: Option<Content>,
    pub created_at: Millis,
    pub attempts: Vec<Attempt>,
    /// When the next attempt is due (only while `Pending`).
    pub due_at: Millis,
    pub policy: Option<RetryPolicy>,
}

/// The most attempts a message keeps (the policy's cap is enforced on create).
pub const MAX_ATTEMPTS: u32 = 32;
/// An attempt's detail is cut to this many bytes (bounded state).
pub const MAX_DETAIL: usize = 256;

/// What a message is: the same in the command that creates it and the event that records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSpec {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub channel: ChannelKind,
    pub recipient: String,
    /// The shopper it concerns, when there is one.
    pub user: Option<String>,
    pub content: Content,
    pub policy: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageCommand {
    Create {
        spec: MessageSpec,
        now: Millis,
    },
    /// The outcome of one send. `permanent` failures dead-letter at once.
    RecordAttempt {
        now: Millis,
        ok: bool,
        permanent: bool,
        detail: String,
    },
    /// An operator's replay of a dead message: one more round of attempts.
    Replay {
        now: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageEvent {
    Created {
        spec: MessageSpec,
        at: Millis,
    },
    Attempted {
        attempt: Attempt,
        /// `Some(due)`: retry at `due`; `None` with `ok == false`: dead.
        retry_at: Option<Millis>,
    },
    Replayed {
        at: Millis,
    },
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(MAX_DETAIL);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

pub fn decide(state: &MessageState, cmd: &MessageCommand) -> Result<Vec<MessageEvent>, Rejection> {
    match cmd {
        MessageCommand::Create { spec, now } => {
            if state.status != MessageStatus::Absent {
                // A redelivered event: the message exists, nothing more to send.
                return Ok(vec![]);
            }
            if spec.recipient.is_empty() {
                return reject(RejectionCode::Validation, "a message needs a recipient");
            }
            if spec.policy.max_attempts == 0 || spec.policy.max_attempts > MAX_ATTEMPTS {
                return reject(RejectionCode::Validation, "max_attempts must be 1..=32");
            }
            Ok(vec![MessageEvent::Created {
                spec: spec.clone(),
                at: *now,
            }])
        }
        MessageCommand::RecordAttempt {
            now,
            ok,
            permanent,
            detail,
        } => {
            if state.status != MessageStatus::Pending {
                return reject(
                    RejectionCode::InvalidTransition,
                    "only a pending message takes an attempt",
                );
            }
            let policy = state.policy.unwrap_or_default();
            let n = state.attempts_in_round() + 1;
            let retry_at = if *ok || *permanent || n >= policy.max_attempts {
                None
            } else {
                Some(now.saturating_add(policy.backoff_ms(n)))
            };
            Ok(vec![MessageEvent::Attempted {
                attempt: Attempt {
                    at: *now,
                    ok: *ok,
                    detail: cut(detail),
                    replay: false,
                },
                retry_at,
            }])
        }
        MessageCommand::Replay { now } => match state.status {
            MessageStatus::Dead => Ok(vec![MessageEvent::Replayed { at: *now }]),
            _ => reject(
                RejectionCode::InvalidTransition,
                "only a dead message can be replayed",
            ),
        },
    }
}

pub fn apply(state: &mut MessageState, event: &MessageEvent) {
    match event {
        MessageEvent::Created { spec, at } => {
            *state = MessageState {
                status: MessageStatus::Pending,
                id: spec.id.clone(),
                event_id: spec.event_id.clone(),
                event_type: spec.event_type.clone(),
                channel: Some(spec.channel),
                recipient: spec.recipient.clone(),
                user: spec.user.clone(),
                content: Some(spec.content.clone()),
                created_at: *at,
                attempts: vec![],
                due_at: *at,
                policy: Some(spec.policy),
            }
        }
        MessageEvent::Attempted { attempt, retry_at } => {
            state.attempts.push(attempt.clone());
            // Bounded: keep the latest attempts of the history only.
            let cap = 2 * MAX_ATTEMPTS as usize;
            if state.attempts.len() > cap {
                let extra = state.attempts.len() - cap;
                state.attempts.drain(..extra);
            }
            match (attempt.ok, retry_at) {
                (true, _) => state.status = MessageStatus::Sent,
                (false, Some(due)) => state.due_at = *due,
                (false, None) => state.status = MessageStatus::Dead,
            }
        }
        MessageEvent::Replayed { at } => {
            state.status = MessageStatus::Pending;
            state.due_at = *at;
            // A replay starts a fresh round: the marker restarts the count.
            state.attempts.push(Attempt {
                at: *at,
                ok: false,
                detail: "replayed by an operator".to_string(),
                replay: true,
            });
        }
    }
}

impl MessageState {
    /// Attempts since the last replay (the ones the policy counts).
    pub fn attempts_in_round(&self) -> u32 {
        self.attempts.iter().rev().take_while(|a| !a.replay).count() as u32
    }
}

/// When the message wants its next send: `Some(due)` while pending, `None` once sent or
/// dead. The effect runner sends when `now >= due`.
pub fn next_due(state: &MessageState) -> Option<Millis> {
    (state.status == MessageStatus::Pending).then_some(state.due_at)
}

#[cfg(test)]
#[path = "notification_tests.rs"]
mod tests;
