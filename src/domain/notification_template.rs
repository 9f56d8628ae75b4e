//! The notification templates a shop saved over the built-in defaults: one entity
//! ([`TEMPLATES_ID`]) holding a subject and a body per (event type, channel). The edge
//! checks that a template renders against its event's sample before it is saved; here
//! only the bounds are held (sizes and count), so the aggregate stays pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::notification::ChannelKind;
use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};

/// The id of the one template entity.
pub const TEMPLATES_ID: &str = "templates";
/// Longest subject, in characters.
pub const MAX_SUBJECT: usize = 200;
/// Longest body, in bytes.
pub const MAX_BODY: usize = 16 * 1024;
/// Most saved templates (every event type on every channel fits).
pub const MAX_TEMPLATES: usize = 64;

/// A saved template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTemplate {
    pub event: String,
    pub channel: ChannelKind,
    pub subject: String,
    pub body: String,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplatesState {
    /// By `event/channel` (`order.paid/email`).
    pub templates: BTreeMap<String, SavedTemplate>,
}

/// The map key of (event, channel).
pub fn key(event: &str, channel: ChannelKind) -> String {
    format!("{event}/{}", channel.as_str())
}

impl TemplatesState {
    pub fn get(&self, event: &str, channel: ChannelKind) -> Option<&SavedTemplate> {
        self.templates.get(&key(event, channel))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplateCommand {
    Save(SavedTemplate),
    Delete { event: String, channel: ChannelKind },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplateEvent {
    Saved(SavedTemplate),
    Deleted { event: String, channel: ChannelKind },
}

/// The template entity.
pub struct NotificationTemplates;

impl Aggregate for NotificationTemplates {
    const KIND: EntityKind = EntityKind::NotificationTemplate;
    type State = TemplatesState;
    type Command = TemplateCommand;
    type Event = TemplateEvent;

    fn decide(s: &TemplatesState, cmd: &TemplateCommand) -> Result<Vec<TemplateEvent>, Rejection> {
        match cmd {
            TemplateCommand::Save(t) => {
                if t.subject.trim().is_empty() || t.subject.chars().count() > MAX_SUBJECT {
                    return reject(
                        RejectionCode::Validation,
                        format!("subject is 1 to {MAX_SUBJECT} characters"),
                    );
                }
                if t.body.len() > MAX_BODY {
                    return reject(
                        RejectionCode::Validation,
                        format!("body is at most {MAX_BODY} bytes"),
                    );
                }
                let k = key(&t.event, t.channel);
                match s.templates.get(&k) {
                    // The same template again (a retried request): nothing to record.
                    Some(old) if old.subject == t.subject && old.body == t.body => Ok(vec![]),
                    None if s.templates.len() >= MAX_TEMPLATES => reject(
                        RejectionCode::Validation,
                        format!("at most {MAX_TEMPLATES} saved templates"),
                    ),
                    _ => Ok(vec![TemplateEvent::Saved(t.clone())]),
                }
            }
            TemplateCommand::Delete { event, channel } => {
                if s.get(event, *channel).is_none() {
                    return reject(
                        RejectionCode::NotFound,
                        "no saved template for that event and channel",
                    );
                }
                Ok(vec![TemplateEvent::Deleted {
                    event: event.clone(),
                    channel: *channel,
                }])
            }
        }
    }

    fn apply(s: &mut TemplatesState, e: &TemplateEvent) {
        match e {
            TemplateEvent::Saved(t) => {
                s.templates.insert(key(&t.event, t.channel), t.clone());
            }
            TemplateEvent::Deleted { event, channel } => {
                s.templates.remove(&key(event, *channel));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn saved(event: &str, subject: &str, body: &str) -> SavedTemplate {
        SavedTemplate {
            event: event.into(),
            channel: ChannelKind::Email,
            subject: subject.into(),
            body: body.into(),
            updated_at: 1,
        }
    }

    fn run(s: &mut TemplatesState, cmd: &TemplateCommand) -> Result<(), Rejection> {
        for e in NotificationTemplates::decide(s, cmd)? {
            NotificationTemplates::apply(s, &e);
        }
        Ok(())
    }

    #[test]
    fn save_replace_delete() {
        let mut s = TemplatesState::default();
        run(
            &mut s,
            &TemplateCommand::Save(saved("order.paid", "a", "b")),
        )
        .unwrap();
        run(
            &mut s,
            &TemplateCommand::Save(saved("order.paid", "c", "d")),
        )
        .unwrap();
        assert_eq!(
            s.get("order.paid", ChannelKind::Email).unwrap().subject,
            "c"
        );
        assert_eq!(s.templates.len(), 1);
        let again = NotificationTemplates::decide(
            &s,
            &TemplateCommand::Save(saved("order.paid", "c", "d")),
        );
        assert_eq!(again, Ok(vec![]), "the same template again records nothing");
        let del = TemplateCommand::Delete {
            event: "order.paid".into(),
            channel: ChannelKind::Email,
        };
        run(&mut s, &del).unwrap();
        assert!(s.templates.is_empty());
        assert_eq!(run(&mut s, &del).unwrap_err().code, RejectionCode::NotFound);
    }

    #[test]
    fn bounds_are_held() {
        let mut s = TemplatesState::default();
        let long = "x".repeat(MAX_SUBJECT + 1);
        let huge = "x".repeat(MAX_BODY + 1);
        for (subject, body) in [
            ("", "b"),
            (" ", "b"),
            (long.as_str(), "b"),
            ("s", huge.as_str()),
        ] {
            let r = run(
                &mut s,
                &TemplateCommand::Save(saved("order.paid", subject, body)),
            );
            assert_eq!(r.unwrap_err().code, RejectionCode::Validation);
        }
        for i in 0..MAX_TEMPLATES {
            run(
                &mut s,
                &TemplateCommand::Save(saved(&format!("e{i}"), "s", "b")),
            )
            .unwrap();
        }
        let over = run(&mut s, &TemplateCommand::Save(saved("one.more", "s", "b")));
        assert_eq!(over.unwrap_err().code, RejectionCode::Validation);
        // Replacing one that exists is still allowed at the cap.
        run(&mut s, &TemplateCommand::Save(saved("e0", "new", "b"))).unwrap();
    }

    proptest! {
        /// Whatever the commands, the state stays within its bounds and replays to the
        /// same state from its events.
        #[test]
        fn state_is_bounded_and_replays(cmds in proptest::collection::vec(
            (0u8..80, any::<bool>(), "[a-z]{0,3}"), 0..200)) {
            let mut s = TemplatesState::default();
            let mut log = Vec::new();
            for (i, save, text) in cmds {
                let event = format!("e{i}");
                let cmd = if save {
                    TemplateCommand::Save(saved(&event, &text, &text))
                } else {
                    TemplateCommand::Delete { event, channel: ChannelKind::Email }
                };
                if let Ok(evs) = NotificationTemplates::decide(&s, &cmd) {
                    for e in evs {
                        NotificationTemplates::apply(&mut s, &e);
                        log.push(e);
                    }
                }
                prop_assert!(s.templates.len() <= MAX_TEMPLATES);
                prop_assert!(s.templates.values().all(|t| !t.subject.trim().is_empty()));
            }
            prop_assert_eq!(NotificationTemplates::replay(&log), s);
        }
    }
}
