//! The `notify` projection: one pending message per (event, channel, recipient) that a
//! template exists for, written with the projection's offset in the event's partition.
//!
//! Recipients of `order.paid` and `order.cancelled`: the order's `email`, the shopper's
//! SMS phone and each of their push subscriptions, on the channels this node has
//! configured and the shopper has not turned off (`PATCH /v1/me/preferences`; a guest's
//! order gets the defaults: email only, for there is no phone or subscription). Every
//! address of `notifications.email.operators` gets `stock.low`. The content is rendered
//! now, from the event alone, and the message is created at the event's time, so a reset
//! rebuilds the same records. A template saved over the default
//! (`PUT /v1/notification-templates/{event}/{channel}`) is used for events after it. A message already sent or dead (in [`super::LOG`] or
//! [`super::DLQ`], which a reset keeps) is not created again.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use uuid::Uuid;

use super::templates::{default_for, render, Template};
use super::{done_key, queue_key, Stored, DLQ, LOG, QUEUE};
use crate::domain::notification::{
    apply, decide, message_id, ChannelKind, MessageCommand, MessageSpec, MessageState, RetryPolicy,
};
use crate::domain::notification_template::NotificationTemplates;
use crate::domain::preferences::{Preferences, PreferencesState, PushSubscription};
use crate::events::handler::{EventHandler, HandlerError};
use crate::events::public::{EventType, PublicEvent};
use crate::events::snapshot::EntitySnapshot;
use crate::router::Router;
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
    /// Reads a shopper's preferences.
    pub router: Router,
    /// The channels configured on this node (`notifications.email.smtp_url`,
    /// `notifications.sms.base_url`, `notifications.push.vapid_private_key_path`).
    pub channels: BTreeSet<ChannelKind>,
    pub operators: Vec<String>,
    pub policy: RetryPolicy,
}

/// The shopper an order event concerns (`data.user_id`); none for a guest's order.
fn shopper(ev: &PublicEvent) -> Option<Uuid> {
    ev.data["user_id"].as_str().and_then(|u| u.parse().ok())
}

impl NotifyQueue {
    /// Whether `ev` may cause a message.
    fn concerns(&self, ev: &PublicEvent) -> bool {
        !self.channels.is_empty()
            && matches!(
                ev.r#type,
                EventType::OrderPaid | EventType::OrderCancelled | EventType::StockLow
            )
    }

    /// Who gets a message about `ev` on `channel`, given the shopper's preferences
    /// (`None`: a guest, or an operator alert; the defaults apply).
    fn recipients(
        &self,
        ev: &PublicEvent,
        channel: ChannelKind,
        prefs: Option<&PreferencesState>,
    ) -> Vec<String> {
        if !self.channels.contains(&channel) {
            return Vec::new();
        }
        let default = PreferencesState::default();
        let prefs = prefs.unwrap_or(&default);
        match ev.r#type {
            EventType::OrderPaid | EventType::OrderCancelled if prefs.channel_on(channel) => {
                match channel {
                    ChannelKind::Email => ev.data["email"]
                        .as_str()
                        .filter(|e| !e.is_empty())
                        .map(|e| vec![e.to_owned()])
                        .unwrap_or_default(),
                    ChannelKind::Sms => prefs.phone.iter().cloned().collect(),
                    ChannelKind::Push => prefs
                        .push_subscriptions
                        .iter()
                        .map(PushSubscription::recipient)
                        .collect(),
                }
            }
            EventType::StockLow if channel == ChannelKind::Email => self.operators.clone(),
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
            user: shopper(ev).map(|u| u.to_string()),
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

    /// The shopper's preferences, read through the router (their partition may be on
    /// another node); an unreachable entity is retried by the runner, not guessed at.
    async fn preferences(
        &self,
        ev: &PublicEvent,
    ) -> Result<Option<PreferencesState>, HandlerError> {
        let Some(user) = shopper(ev) else {
            return Ok(None);
        };
        self.router
            .get::<Preferences>(&user.to_string())
            .await
            .map(Some)
            .map_err(|e| HandlerError::Unavailable(format!("the preferences of {user}: {e}")))
    }

    fn records(&self, ev: &PublicEvent, prefs: Option<&PreferencesState>) -> Vec<Record> {
        let part = self.journal.partition(ev.partition);
        let mut out = Vec::new();
        for channel in [ChannelKind::Email, ChannelKind::Sms, ChannelKind::Push] {
            for to in self.recipients(ev, channel, prefs) {
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

impl EventHandler for NotifyQueue {
    fn name(&self) -> &'static str {
        QUEUE
    }

    fn handle<'a>(
        &'a self,
        ev: &'a PublicEvent,
    ) -> BoxFuture<'a, Result<Vec<Record>, HandlerError>> {
        Box::pin(async move {
            if !self.concerns(ev) {
                return Ok(Vec::new());
            }
            // A template saved before the event is used for it: the event waits (one
            // pass, no backoff) for a template read that began SKEW_MARGIN_MS after it.
            self.templates
                .caught_up(ev.at, SKEW_MARGIN_MS, "the notification templates")
                .await?;
            let prefs = self.preferences(ev).await?;
            Ok(self.records(ev, prefs.as_ref()))
        })
    }
}
