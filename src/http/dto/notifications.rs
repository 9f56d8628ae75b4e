//! Notification messages, as `GET /v1/admin/notifications` and `GET /v1/me/notifications`
//! answer them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::domain::notification::{ChannelKind, MessageState, MessageStatus};
use crate::domain::preferences::display_recipient;

wire_enum! {
    /// Where a message is: waiting for its next send, sent, or dead (in the dead-letter
    /// queue, replayable).
    NotificationStatus from MessageStatus { Absent, Pending, Sent, Dead }
}

wire_enum! {
    /// A notification channel.
    NotificationChannel from ChannelKind { Email, Sms, Push }
}

/// One send of a message.
#[derive(Serialize, ToSchema, Debug)]
pub struct SendAttemptView {
    #[schema(format = DateTime)]
    pub at: String,
    pub ok: bool,
    /// The provider's answer or the error, shortened (at most 256 bytes).
    pub detail: String,
    /// An operator's replay (a marker, not a send).
    pub replay: bool,
}

/// One message.
#[derive(Serialize, ToSchema, Debug)]
pub struct NotificationView {
    /// `ntf_...`, derived from (event id, channel, recipient): a redelivered event names
    /// the same message, so it is sent once.
    pub id: String,
    pub event_id: String,
    #[schema(example = "order.paid")]
    pub event_type: String,
    pub channel: Option<NotificationChannel>,
    pub recipient: String,
    pub status: NotificationStatus,
    pub subject: String,
    pub body: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When the next send is due (pending messages).
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    pub attempts: Vec<SendAttemptView>,
}

impl From<&MessageState> for NotificationView {
    fn from(m: &MessageState) -> Self {
        let (subject, body) = m
            .content
            .as_ref()
            .map(|c| (c.subject.clone(), c.body.clone()))
            .unwrap_or_default();
        Self {
            id: m.id.clone(),
            event_id: m.event_id.clone(),
            event_type: m.event_type.clone(),
            channel: m.channel.map(Into::into),
            recipient: display_recipient(m.channel, &m.recipient).to_owned(),
            status: m.status.into(),
            subject,
            body,
            created_at: rfc3339(m.created_at),
            due_at: (m.status == MessageStatus::Pending).then(|| rfc3339(m.due_at)),
            attempts: m
                .attempts
                .iter()
                .map(|a| SendAttemptView {
                    at: rfc3339(a.at),
                    ok: a.ok,
                    detail: a.detail.clone(),
                    replay: a.replay,
                })
                .collect(),
        }
    }
}

/// Messages, newest first, from every node of a cluster.
#[derive(Serialize, ToSchema, Debug)]
pub struct NotificationList {
    pub items: Vec<NotificationView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// With `partial=true`: the partitions that could not answer (empty if none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_partitions: Option<Vec<u32>>,
}

/// A template's subject and body, in minijinja (Jinja2) syntax. The context is the event:
/// `event.id`, `event.type`, `event.timestamp` and `data` (the fields the OpenAPI
/// document's `webhooks` section lists for the type); `| money(data.currency)` formats
/// minor units.
#[derive(serde::Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    #[schema(
        max_length = 200,
        example = "Your order {{ data.order_id[:8] }} is paid"
    )]
    pub subject: String,
    #[schema(
        max_length = 16384,
        example = "Total: {{ data.total_minor | money(data.currency) }}"
    )]
    pub body: String,
}

/// Where a template comes from.
#[derive(Serialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// Built in.
    Default,
    /// Saved with `PUT`, over the default.
    Saved,
}

/// The template used for an event type on a channel.
#[derive(Serialize, ToSchema, Debug)]
pub struct TemplateView {
    #[schema(example = "order.paid")]
    pub event: String,
    pub channel: NotificationChannel,
    pub subject: String,
    pub body: String,
    pub source: TemplateSource,
    /// When it was saved (saved templates).
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

/// Every template in use.
#[derive(Serialize, ToSchema, Debug)]
pub struct TemplateList {
    pub items: Vec<TemplateView>,
}
