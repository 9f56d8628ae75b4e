//! A shopper's notification preferences: which channels they take messages on, whether
//! they opted in to marketing, the phone number SMS goes to, and their browsers' Web Push
//! subscriptions. One entity per user, keyed by the user id, so it lives in the user's
//! partition and has one writer like every other entity.
//!
//! Channels are on unless turned off (a receipt is expected), marketing is off unless
//! turned on (opt-in). The edge checks the formats (E.164, a push endpoint's URL, the
//! subscription's key lengths); here the bounds are held, so the aggregate stays pure.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::notification::ChannelKind;
use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};

/// Most push subscriptions per shopper (a few browsers and devices).
pub const MAX_SUBSCRIPTIONS: usize = 8;
/// Longest push endpoint URL, in bytes.
pub const MAX_ENDPOINT: usize = 1024;

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it: the push
/// service's endpoint, the browser's P-256 public key and the auth secret (both
/// base64url, RFC 8291).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PushSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
}

impl PushSubscription {
    /// The recipient string of a push message: endpoint, key and secret, space-separated
    /// (a URL holds no space). Histories show only the endpoint ([`display_recipient`]).
    pub fn recipient(&self) -> String {
        format!("{} {} {}", self.endpoint, self.p256dh, self.auth)
    }

    /// The subscription a push recipient string names.
    pub fn from_recipient(r: &str) -> Option<Self> {
        let mut it = r.split(' ');
        let (endpoint, p256dh, auth) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        Some(Self {
            endpoint: endpoint.into(),
            p256dh: p256dh.into(),
            auth: auth.into(),
        })
    }
}

/// What a history shows of a recipient: a push recipient's endpoint only (its auth secret
/// is the subscriber's), every other recipient as it is.
pub fn display_recipient(channel: Option<ChannelKind>, recipient: &str) -> &str {
    match channel {
        Some(ChannelKind::Push) => recipient.split(' ').next().unwrap_or_default(),
        _ => recipient,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencesState {
    /// The channels turned off; every other one is on.
    pub off: BTreeSet<ChannelKind>,
    pub marketing_opt_in: bool,
    /// Where SMS go, in E.164 (`+` and 8 to 15 digits); none: no SMS.
    pub phone: Option<String>,
    pub push_subscriptions: Vec<PushSubscription>,
    /// The last change; 0 for preferences never set (the defaults).
    pub updated_at: Millis,
}

impl PreferencesState {
    pub fn channel_on(&self, c: ChannelKind) -> bool {
        !self.off.contains(&c)
    }
}

/// A change; an absent field stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub channels: Vec<(ChannelKind, bool)>,
    pub marketing_opt_in: Option<bool>,
    /// `Some(None)` removes the phone.
    pub phone: Option<Option<String>>,
    /// The whole new list.
    pub push_subscriptions: Option<Vec<PushSubscription>>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreferencesCommand {
    Change(Change),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreferencesEvent {
    /// The preferences as they are after the change.
    Set(PreferencesState),
}

/// The preferences entity.
pub struct Preferences;

fn changed(s: &PreferencesState, c: &Change) -> PreferencesState {
    let mut n = s.clone();
    for (channel, on) in &c.channels {
        if *on {
            n.off.remove(channel);
        } else {
            n.off.insert(*channel);
        }
    }
    if let Some(m) = c.marketing_opt_in {
        n.marketing_opt_in = m;
    }
    if let Some(p) = &c.phone {
        n.phone = p.clone();
    }
    if let Some(list) = &c.push_subscriptions {
        let mut list = list.clone();
        list.sort();
        list.dedup_by(|a, b| a.endpoint == b.endpoint);
        n.push_subscriptions = list;
    }
    n
}

impl Aggregate for Preferences {
    const KIND: EntityKind = EntityKind::Preferences;
    type State = PreferencesState;
    type Command = PreferencesCommand;
    type Event = PreferencesEvent;

    fn decide(
        s: &PreferencesState,
        cmd: &PreferencesCommand,
    ) -> Result<Vec<PreferencesEvent>, Rejection> {
        let PreferencesCommand::Change(c) = cmd;
        if let Some(list) = &c.push_subscriptions {
            if list.len() > MAX_SUBSCRIPTIONS {
                return reject(
                    RejectionCode::Validation,
                    format!("at most {MAX_SUBSCRIPTIONS} push subscriptions"),
                );
            }
            if list.iter().any(|p| p.endpoint.len() > MAX_ENDPOINT) {
                return reject(
                    RejectionCode::Validation,
                    format!("a push endpoint is at most {MAX_ENDPOINT} bytes"),
                );
            }
        }
        let mut n = changed(s, c);
        n.updated_at = s.updated_at;
        if n == *s {
            return Ok(vec![]); // a retried request, or nothing to change
        }
        n.updated_at = c.at;
        Ok(vec![PreferencesEvent::Set(n)])
    }

    fn apply(s: &mut PreferencesState, e: &PreferencesEvent) {
        let PreferencesEvent::Set(n) = e;
        *s = n.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sub(i: u8) -> PushSubscription {
        PushSubscription {
            endpoint: format!("https://push.example/{i}"),
            p256dh: "k".into(),
            auth: "a".into(),
        }
    }

    fn run(s: &mut PreferencesState, c: Change) -> Result<usize, Rejection> {
        let evs = Preferences::decide(s, &PreferencesCommand::Change(c))?;
        for e in &evs {
            Preferences::apply(s, e);
        }
        Ok(evs.len())
    }

    #[test]
    fn defaults_are_every_channel_on_and_no_marketing() {
        let s = PreferencesState::default();
        for c in [ChannelKind::Email, ChannelKind::Sms, ChannelKind::Push] {
            assert!(s.channel_on(c));
        }
        assert!(!s.marketing_opt_in);
    }

    #[test]
    fn a_change_sets_what_it_names_and_keeps_the_rest() {
        let mut s = PreferencesState::default();
        let c = Change {
            channels: vec![(ChannelKind::Email, false)],
            phone: Some(Some("+15551234567".into())),
            push_subscriptions: Some(vec![sub(2), sub(1), sub(1)]),
            at: 5,
            ..Change::default()
        };
        assert_eq!(run(&mut s, c.clone()), Ok(1));
        assert!(!s.channel_on(ChannelKind::Email));
        assert!(s.channel_on(ChannelKind::Sms));
        assert_eq!(s.phone.as_deref(), Some("+15551234567"));
        assert_eq!(
            s.push_subscriptions,
            vec![sub(1), sub(2)],
            "sorted, deduplicated"
        );
        assert_eq!(s.updated_at, 5);
        // The same change again records nothing, whatever its time.
        assert_eq!(run(&mut s, Change { at: 9, ..c }), Ok(0));
        assert_eq!(s.updated_at, 5);
        let c = Change {
            marketing_opt_in: Some(true),
            phone: Some(None),
            at: 10,
            ..Change::default()
        };
        assert_eq!(run(&mut s, c), Ok(1));
        assert!(s.marketing_opt_in && s.phone.is_none());
        assert_eq!(s.push_subscriptions.len(), 2, "kept");
    }

    #[test]
    fn too_many_subscriptions_are_refused_and_change_nothing() {
        let mut s = PreferencesState::default();
        let c = Change {
            push_subscriptions: Some((0..=MAX_SUBSCRIPTIONS as u8).map(sub).collect()),
            ..Change::default()
        };
        let e = run(&mut s, c).unwrap_err();
        assert_eq!(e.code, RejectionCode::Validation);
        assert_eq!(s, PreferencesState::default());
    }

    #[test]
    fn a_push_recipient_round_trips_and_shows_only_its_endpoint() {
        let p = sub(3);
        let r = p.recipient();
        assert_eq!(PushSubscription::from_recipient(&r), Some(p));
        assert_eq!(
            display_recipient(Some(ChannelKind::Push), &r),
            "https://push.example/3"
        );
        assert_eq!(
            display_recipient(Some(ChannelKind::Email), "a@b.c"),
            "a@b.c"
        );
        assert_eq!(PushSubscription::from_recipient("a b"), None);
    }

    proptest! {
        #[test]
        fn any_change_is_replayable_and_idempotent(
            off in proptest::collection::vec((0u8..3, any::<bool>()), 0..6),
            marketing in proptest::option::of(any::<bool>()),
            n in proptest::option::of(0usize..=MAX_SUBSCRIPTIONS),
            at in 1u64..1_000_000,
        ) {
            let kinds = [ChannelKind::Email, ChannelKind::Sms, ChannelKind::Push];
            let c = Change {
                channels: off.iter().map(|(k, on)| (kinds[*k as usize], *on)).collect(),
                marketing_opt_in: marketing,
                phone: None,
                push_subscriptions: n.map(|n| (0..n as u8).map(sub).collect()),
                at,
            };
            let mut s = PreferencesState::default();
            let evs = Preferences::decide(&s, &PreferencesCommand::Change(c.clone())).unwrap();
            for e in &evs { Preferences::apply(&mut s, e); }
            // Replaying the events on a fresh state gives the same state.
            let mut replay = PreferencesState::default();
            for e in &evs { Preferences::apply(&mut replay, e); }
            prop_assert_eq!(&replay, &s);
            // The last word on each channel wins.
            for k in kinds {
                if let Some((_, on)) = c.channels.iter().rev().find(|(c, _)| *c == k) {
                    prop_assert_eq!(s.channel_on(k), *on);
                }
            }
            // The same change again decides nothing.
            let again = Preferences::decide(&s, &PreferencesCommand::Change(c)).unwrap();
            prop_assert!(again.is_empty());
        }
    }
}
