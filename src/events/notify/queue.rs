//! The `notify` projection: one pending message per (event, channel, recipient) that a
//! template exists for, written with the projection's offset in the event's partition.
//!
//! Recipients: the order's `email` for `order.paid` and `order.cancelled`, and every
//! address of `notifications.email.operators` for `stock.low`. The content is rendered
//! now, from the event alone, and the message is created at the event's time, so a reset
//! rebuilds the same records. A template saved over the default
//! (`PUT /v1/notification-templates/{event}/{channel}`) is used for events after it. A message already sent or dead (in [`super::LOG`] or
//! [`super::DLQ`], which a reset keeps) is not created again.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::templates::{default_for, render, Template};
use super::{done_key, queue_key, Stored, DLQ, LOG, QUEUE};
use crate::domain::notification::{
    apply, decide, message_id, ChannelKind, MessageCommand, MessageSpec, MessageState, RetryPolicy,
};
use crate::domain::notification_template::NotificationTemplates;
use crate::events::handler::{EventHandler, HandlerError};
use crate::events::public::{EventType, PublicEvent};
use crate::events::snapshot::EntitySnapshot;
use crate::store::partition_store::Record;
use crate::store::{codec, Journal};

/// The clock difference between nodes the template read tolerates (as the webhook
/// queue's registry read does).
pub const SKEW_MARGIN_MS: u64 = 250;

/// The projection's handler.
pub struct NotifyQueue {
    pub journal: Journal,
    /// The templates saved over the defaults.
    pub templates: Arc<EntitySnapshot<NotificationTemplates>>,
    /// Whether email is configured (`notifications.email.smtp_url`).
    pub email: bool,
    pub operators: Vec<String>,
    pub policy: RetryPolicy,
}

impl NotifyQueue {
    /// Whether `ev` may cause a message.
    fn concerns(&self, ev: &PublicEvent) -> bool {
        matches!(
            ev.r#type,
            EventType::OrderPaid | EventType::OrderCancelled | EventType::StockLow
        )
    }

    /// Who gets a message about `ev` on `channel`.
    fn recipients(&self, ev: &PublicEvent, channel: ChannelKind) -> Vec<String> {
        if channel != ChannelKind::Email || !self.email {
            return Vec::new();
        }
        match ev.r#type {
            EventType::OrderPaid | EventType::OrderCancelled => ev.data["email"]
                .as_str()
                .filter(|e| !e.is_empty())
                .map(|e| vec![e.to_owned()])
                .unwrap_or_default(),
            EventType::StockLow => self.operators.clone(),
            _ => Vec::new(),
        }
    }

    /// The pending message of `ev` to `recipient`, as its state machine creates it.
    fn message(
        &self,
        ev: &PublicEvent,
        channel: ChannelKind,
        recipient: &str,
    ) -> Option<MessageState> {
        let (_, saved) = self.templates.current();
        let saved = saved.get(ev.r#type.as_str(), channel).map(|t| Template {
            subject: t.subject.clone(),
            body: t.body.clone(),
        });
        let default = default_for(ev.r#type, channel);
        // A saved template was checked against the event's sample; if a real event still
        // does not render with it, the default is used, so the message is not lost.
        let content = saved
            .iter()
            .chain(default.iter())
            .find_map(|t| match render(t, ev) {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(event = %ev.id, error = %e, "notify: a template did not render");
                    None
                }
            })?;
        let spec = MessageSpec {
            id: message_id(&ev.id, channel, recipient),
            event_id: ev.id.clone(),
            event_type: ev.r#type.as_str().to_owned(),
            channel,
            recipient: recipient.to_owned(),
            user: None,
            content,
            policy: self.policy,
        };
        let mut state = MessageState::default();
        let cmd = MessageCommand::Create { spec, now: ev.at };
        for e in decide(&state, &cmd).ok()? {
            apply(&mut state, &e);
        }
        Some(state)
    }
}

impl EventHandler for NotifyQueue {
    fn name(&self) -> &'static str {
        QUEUE
    }

    /// A template saved before the event is used for it: the event waits (one pass, no
    /// backoff) for a template read that began [`SKEW_MARGIN_MS`] after it.
    fn handle<'a>(&'a self, ev: &'a PublicEvent) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if !self.email || !self.concerns(ev) {
                return Ok(());
            }
            let needed = ev.at.saturating_add(SKEW_MARGIN_MS);
            if self.templates.current().0 >= needed {
                return Ok(());
            }
            let (read_at, _) = self.templates.refresh().await.map_err(|e| {
                HandlerError::Unavailable(format!("the notification templates: {e}"))
            })?;
            if read_at < needed {
                return Err(HandlerError::NotYet);
            }
            Ok(())
        })
    }

    fn records(&self, ev: &PublicEvent) -> Vec<Record> {
        let part = self.journal.partition(ev.partition);
        let mut out = Vec::new();
        for channel in [ChannelKind::Email] {
            for to in self.recipients(ev, channel) {
                let Some(message) = self.message(ev, channel, &to) else {
                    continue;
                };
                let done = done_key(ev.pseq, &message.id);
                if [LOG, DLQ]
                    .iter()
                    .any(|f| matches!(part.projected_get(f, &done), Ok(Some(_))))
                {
                    continue;
                }
                let k = queue_key(message.due_at, &message.id);
                out.push((
                    k,
                    codec::encode(&Stored {
                        pseq: ev.pseq,
                        message,
                    }),
                ));
            }
        }
        out
    }
}
