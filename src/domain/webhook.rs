//! The webhook endpoint registry: one entity (id [`REGISTRY_ID`]) holding every endpoint
//! an operator registered, with its URL, the event types it takes, its signing key (and
//! the previous key while a rotation's grace lasts) and whether it is enabled.
//!
//! One entity rather than one per endpoint: the webhooks projection reads the whole set
//! in one call for every pass, and the set is small and bounded ([`MAX_ENDPOINTS`]).
//! Pure: the caller passes the ids, keys and times.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};

/// The one id of the registry entity.
pub const REGISTRY_ID: &str = "endpoints";
/// Most endpoints a shop may register.
pub const MAX_ENDPOINTS: usize = 100;
/// Most event types one endpoint names (`*` counts as one).
pub const MAX_EVENT_TYPES: usize = 32;
/// How long the previous key stays valid after a rotation (24 h).
pub const ROTATION_GRACE_MS: Millis = 24 * 60 * 60 * 1000;

/// One registered endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    /// Event type names (`order.paid`), or `["*"]` for every type.
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// The current signing key's bytes.
    pub key: Vec<u8>,
    /// The key before the last rotation and until when it still signs.
    pub previous: Option<(Vec<u8>, Millis)>,
    /// Events decided before this are not sent to it.
    pub created_at: Millis,
    /// Why the runtime disabled it (an endpoint failing for `disable_after_s`).
    pub disabled_reason: Option<String>,
}

impl Endpoint {
    /// Whether it takes events of type `name`.
    pub fn wants(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == name)
    }

    /// The keys that sign a delivery at `now`: the current one, then the previous one
    /// while its grace lasts.
    pub fn signing_keys(&self, now: Millis) -> Vec<&[u8]> {
        let mut keys = vec![self.key.as_slice()];
        if let Some((old, until)) = &self.previous {
            if now < *until {
                keys.push(old.as_slice());
            }
        }
        keys
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhooksState {
    pub endpoints: BTreeMap<Uuid, Endpoint>,
}

/// A change to one endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WebhookCommand {
    Create {
        id: Uuid,
        url: String,
        events: Vec<String>,
        description: String,
        key: Vec<u8>,
        now: Millis,
    },
    Update {
        id: Uuid,
        patch: EndpointPatch,
    },
    Delete {
        id: Uuid,
    },
    /// A new key; the current one keeps signing until `now + ROTATION_GRACE_MS`.
    Rotate {
        id: Uuid,
        key: Vec<u8>,
        now: Millis,
    },
    /// The runtime disables an endpoint that kept failing (a no-op when it is already
    /// disabled or gone).
    AutoDisable {
        id: Uuid,
        reason: String,
        now: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookEvent {
    Created(Endpoint),
    Updated {
        id: Uuid,
        patch: EndpointPatch,
    },
    Deleted {
        id: Uuid,
    },
    Rotated {
        id: Uuid,
        key: Vec<u8>,
        previous_until: Millis,
    },
    AutoDisabled {
        id: Uuid,
        reason: String,
        at: Millis,
    },
}

pub struct Webhooks;

fn check_events(events: &[String]) -> Result<(), Rejection> {
    if events.is_empty() || events.len() > MAX_EVENT_TYPES {
        return reject(
            RejectionCode::Validation,
            format!("events names 1 to {MAX_EVENT_TYPES} event types, or [\"*\"]"),
        );
    }
    Ok(())
}

impl Aggregate for Webhooks {
    const KIND: EntityKind = EntityKind::Webhook;
    type State = WebhooksState;
    type Command = WebhookCommand;
    type Event = WebhookEvent;

    fn decide(s: &WebhooksState, cmd: &WebhookCommand) -> Result<Vec<WebhookEvent>, Rejection> {
        let existing = |id: &Uuid| {
            s.endpoints
                .get(id)
                .ok_or_else(|| Rejection::new(RejectionCode::NotFound, "no such webhook endpoint"))
        };
        match cmd {
            WebhookCommand::Create {
                id,
                url,
                events,
                description,
                key,
                now,
            } => {
                if let Some(e) = s.endpoints.get(id) {
                    // A repeated create (a retried request) is the same endpoint.
                    if &e.url == url && &e.events == events && &e.key == key {
                        return Ok(vec![]);
                    }
                    return reject(RejectionCode::Conflict, "webhook endpoint id taken");
                }
                if s.endpoints.len() >= MAX_ENDPOINTS {
                    return reject(
                        RejectionCode::Validation,
                        format!("at most {MAX_ENDPOINTS} webhook endpoints"),
                    );
                }
                check_events(events)?;
                Ok(vec![WebhookEvent::Created(Endpoint {
                    id: *id,
                    url: url.clone(),
                    events: events.clone(),
                    description: description.clone(),
                    enabled: true,
                    key: key.clone(),
                    previous: None,
                    created_at: *now,
                    disabled_reason: None,
                })])
            }
            WebhookCommand::Update { id, patch } => {
                existing(id)?;
                if let Some(ev) = &patch.events {
                    check_events(ev)?;
                }
                Ok(vec![WebhookEvent::Updated {
                    id: *id,
                    patch: patch.clone(),
                }])
            }
            WebhookCommand::Delete { id } => match s.endpoints.get(id) {
                Some(_) => Ok(vec![WebhookEvent::Deleted { id: *id }]),
                None => Ok(vec![]),
            },
            WebhookCommand::Rotate { id, key, now } => {
                existing(id)?;
                Ok(vec![WebhookEvent::Rotated {
                    id: *id,
                    key: key.clone(),
                    previous_until: now.saturating_add(ROTATION_GRACE_MS),
                }])
            }
            WebhookCommand::AutoDisable { id, reason, now } => match s.endpoints.get(id) {
                Some(e) if e.enabled => Ok(vec![WebhookEvent::AutoDisabled {
                    id: *id,
                    reason: reason.clone(),
                    at: *now,
                }]),
                _ => Ok(vec![]),
            },
        }
    }

    fn apply(s: &mut WebhooksState, event: &WebhookEvent) {
        match event {
            WebhookEvent::Created(e) => {
                s.endpoints.insert(e.id, e.clone());
            }
            WebhookEvent::Updated { id, patch } => {
                if let Some(e) = s.endpoints.get_mut(id) {
                    if let Some(u) = &patch.url {
                        e.url = u.clone();
                    }
                    if let Some(ev) = &patch.events {
                        e.events = ev.clone();
                    }
                    if let Some(d) = &patch.description {
                        e.description = d.clone();
                    }
                    if let Some(on) = patch.enabled {
                        e.enabled = on;
                        if on {
                            e.disabled_reason = None;
                        }
                    }
                }
            }
            WebhookEvent::Deleted { id } => {
                s.endpoints.remove(id);
            }
            WebhookEvent::Rotated {
                id,
                key,
                previous_until,
            } => {
                if let Some(e) = s.endpoints.get_mut(id) {
                    let old = std::mem::replace(&mut e.key, key.clone());
                    e.previous = Some((old, *previous_until));
                }
            }
            WebhookEvent::AutoDisabled { id, reason, .. } => {
                if let Some(e) = s.endpoints.get_mut(id) {
                    e.enabled = false;
                    e.disabled_reason = Some(reason.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn create(n: u128, now: Millis) -> WebhookCommand {
        WebhookCommand::Create {
            id: Uuid::from_u128(n),
            url: format!("https://example.com/hook/{n}"),
            events: vec!["*".into()],
            description: String::new(),
            key: vec![n as u8; 32],
            now,
        }
    }

    fn run(s: &mut WebhooksState, cmd: &WebhookCommand) -> Result<(), Rejection> {
        for e in Webhooks::decide(s, cmd)? {
            Webhooks::apply(s, &e);
        }
        Ok(())
    }

    fn command() -> impl Strategy<Value = WebhookCommand> {
        let id = (0u128..6).prop_map(Uuid::from_u128);
        prop_oneof![
            (0u128..6, 0u64..1000).prop_map(|(n, t)| create(n, t)),
            (id.clone(), any::<Option<bool>>()).prop_map(|(id, enabled)| WebhookCommand::Update {
                id,
                patch: EndpointPatch {
                    enabled,
                    ..Default::default()
                }
            }),
            id.clone().prop_map(|id| WebhookCommand::Delete { id }),
            (id.clone(), any::<u8>(), 0u64..1000).prop_map(|(id, b, now)| {
                WebhookCommand::Rotate {
                    id,
                    key: vec![b; 32],
                    now,
                }
            }),
            (id, 0u64..1000).prop_map(|(id, now)| WebhookCommand::AutoDisable {
                id,
                reason: "failing".into(),
                now
            }),
        ]
    }

    proptest! {
        /// Any sequence keeps the registry bounded, every endpoint with at least one
        /// event type and a key, and a disabled reason only on a disabled endpoint; a
        /// replay of the events gives the same state.
        #[test]
        fn the_registry_stays_consistent(cmds in proptest::collection::vec(command(), 0..40)) {
            let mut s = WebhooksState::default();
            let mut log = Vec::new();
            for c in &cmds {
                if let Ok(evs) = Webhooks::decide(&s, c) {
                    for e in evs {
                        Webhooks::apply(&mut s, &e);
                        log.push(e);
                    }
                }
                prop_assert!(s.endpoints.len() <= MAX_ENDPOINTS);
                for e in s.endpoints.values() {
                    prop_assert!(!e.events.is_empty());
                    prop_assert_eq!(e.key.len(), 32);
                    prop_assert!(e.disabled_reason.is_none() || !e.enabled);
                }
            }
            prop_assert_eq!(Webhooks::replay(&log), s);
        }
    }

    #[test]
    fn rotation_keeps_the_old_key_for_the_grace_only() {
        let mut s = WebhooksState::default();
        run(&mut s, &create(1, 0)).unwrap();
        let id = Uuid::from_u128(1);
        run(
            &mut s,
            &WebhookCommand::Rotate {
                id,
                key: vec![9; 32],
                now: 1000,
            },
        )
        .unwrap();
        let e = &s.endpoints[&id];
        assert_eq!(e.signing_keys(1000), vec![&[9u8; 32][..], &[1u8; 32][..]]);
        assert_eq!(
            e.signing_keys(1000 + ROTATION_GRACE_MS),
            vec![&[9u8; 32][..]]
        );
    }

    #[test]
    fn limits_and_refusals() {
        let mut s = WebhooksState::default();
        for n in 0..MAX_ENDPOINTS as u128 {
            run(&mut s, &create(n, 0)).unwrap();
        }
        let over = run(&mut s, &create(1000, 0)).unwrap_err();
        assert_eq!(over.code, RejectionCode::Validation);
        // A repeated create is idempotent; a different one under the same id is refused.
        assert!(Webhooks::decide(&s, &create(3, 5)).unwrap().is_empty());
        let mut other = create(3, 5);
        if let WebhookCommand::Create { url, .. } = &mut other {
            *url = "https://other.example/".into();
        }
        assert_eq!(
            Webhooks::decide(&s, &other).unwrap_err().code,
            RejectionCode::Conflict
        );
        let none = WebhookCommand::Update {
            id: Uuid::from_u128(3),
            patch: EndpointPatch {
                events: Some(vec![]),
                ..Default::default()
            },
        };
        assert_eq!(
            Webhooks::decide(&s, &none).unwrap_err().code,
            RejectionCode::Validation
        );
        let missing = WebhookCommand::Rotate {
            id: Uuid::from_u128(5000),
            key: vec![0; 32],
            now: 0,
        };
        assert_eq!(
            Webhooks::decide(&s, &missing).unwrap_err().code,
            RejectionCode::NotFound
        );
        // Re-enabling clears the runtime's reason.
        let id = Uuid::from_u128(2);
        run(
            &mut s,
            &WebhookCommand::AutoDisable {
                id,
                reason: "failing for 5 days".into(),
                now: 9,
            },
        )
        .unwrap();
        assert!(!s.endpoints[&id].enabled);
        run(
            &mut s,
            &WebhookCommand::Update {
                id,
                patch: EndpointPatch {
                    enabled: Some(true),
                    ..Default::default()
                },
            },
        )
        .unwrap();
        assert!(s.endpoints[&id].enabled && s.endpoints[&id].disabled_reason.is_none());
    }
}
