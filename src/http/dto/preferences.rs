//! `GET`/`PATCH /v1/me/preferences`: a shopper's notification choices.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::domain::notification::ChannelKind;
use crate::domain::preferences::PreferencesState;

/// Which channels a shopper takes messages on; each is on unless turned off.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Copy)]
pub struct ChannelChoices {
    pub email: bool,
    pub sms: bool,
    pub push: bool,
}

/// The channels to turn on or off; an absent one stays as it is.
#[derive(Serialize, Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct ChannelChanges {
    pub email: Option<bool>,
    pub sms: Option<bool>,
    pub push: Option<bool>,
}

impl ChannelChanges {
    pub fn pairs(&self) -> Vec<(ChannelKind, bool)> {
        [
            (ChannelKind::Email, self.email),
            (ChannelKind::Sms, self.sms),
            (ChannelKind::Push, self.push),
        ]
        .into_iter()
        .filter_map(|(c, on)| on.map(|on| (c, on)))
        .collect()
    }
}

/// A subscription's keys, base64url as the browser gives them.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PushKeys {
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: String,
    /// The auth secret (16 bytes).
    pub auth: String,
}

/// A browser's Web Push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct PushSubscriptionInput {
    /// The push service's URL for this browser (`https`).
    #[schema(example = "https://fcm.googleapis.com/fcm/send/c1KrmpTuRm...")]
    pub endpoint: String,
    /// Ignored: the push service says when a subscription is gone (404 or 410), and the
    /// message to it goes dead.
    #[serde(rename = "expirationTime", default)]
    pub expiration_time: Option<f64>,
    pub keys: PushKeys,
}

/// A subscription as the preferences show it: its endpoint (the keys are not echoed).
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct PushSubscriptionView {
    pub endpoint: String,
}

fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `PATCH /v1/me/preferences`: the fields to change; an absent field stays as it is.
#[derive(Serialize, Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct PreferencesUpdate {
    pub channels: Option<ChannelChanges>,
    /// Marketing messages go only to shoppers who opted in.
    pub marketing_opt_in: Option<bool>,
    /// Where SMS go, in E.164 (`+` and 8 to 15 digits); `null` removes it.
    #[serde(default, deserialize_with = "some")]
    #[schema(value_type = Option<String>, example = "+15551234567")]
    pub phone: Option<Option<String>>,
    /// The whole new list (at most 8); `[]` removes every subscription.
    pub push_subscriptions: Option<Vec<PushSubscriptionInput>>,
}

/// A shopper's notification preferences.
#[derive(Serialize, Deserialize, ToSchema, Debug)]
pub struct PreferencesView {
    pub channels: ChannelChoices,
    pub marketing_opt_in: bool,
    pub phone: Option<String>,
    pub push_subscriptions: Vec<PushSubscriptionView>,
    /// The last change; absent while the defaults apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl PreferencesView {
    pub fn new(s: &PreferencesState) -> Self {
        Self {
            channels: ChannelChoices {
                email: s.channel_on(ChannelKind::Email),
                sms: s.channel_on(ChannelKind::Sms),
                push: s.channel_on(ChannelKind::Push),
            },
            marketing_opt_in: s.marketing_opt_in,
            phone: s.phone.clone(),
            push_subscriptions: s
                .push_subscriptions
                .iter()
                .map(|p| PushSubscriptionView {
                    endpoint: p.endpoint.clone(),
                })
                .collect(),
            updated_at: (s.updated_at > 0).then(|| rfc3339(s.updated_at)),
        }
    }
}
