//! A refresh-token family: one login's chain of refresh tokens.
//!
//! Each refresh uses up the presented token and issues the next. Presenting a token that
//! was already used means it was copied: the whole family is revoked, so both the thief
//! and the victim must log in again. Only token hashes are stored.

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub user_id: Option<Uuid>,
    /// Hash of the one refresh token that is valid now.
    pub current: Option<String>,
    /// Hashes of tokens already used.
    pub used: BTreeSet<String>,
    pub revoked: bool,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum SessionCommand {
    Start {
        user_id: Uuid,
        token_hash: String,
        expires_at: Millis,
    },
    /// Exchange `presented` for `next`.
    Rotate {
        presented: String,
        next: String,
        now: Millis,
        expires_at: Millis,
    },
    Revoke {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionEvent {
    Started {
        user_id: Uuid,
        token_hash: String,
        expires_at: Millis,
    },
    Rotated {
        used: String,
        next: String,
        expires_at: Millis,
    },
    /// `reuse` is true when a used token was presented again (suspected theft).
    Revoked { reason: String, reuse: bool },
}

pub struct Session;

impl Aggregate for Session {
    const KIND: EntityKind = EntityKind::Session;
    type State = SessionState;
    type Command = SessionCommand;
    type Event = SessionEvent;

    fn decide(s: &SessionState, cmd: &SessionCommand) -> Result<Vec<SessionEvent>, Rejection> {
        match cmd {
            SessionCommand::Start {
                user_id,
                token_hash,
                expires_at,
            } => {
                if s.user_id.is_some() {
                    return Ok(vec![]);
                }
                Ok(vec![SessionEvent::Started {
                    user_id: *user_id,
                    token_hash: token_hash.clone(),
                    expires_at: *expires_at,
                }])
            }
            SessionCommand::Rotate {
                presented,
                next,
                now,
                expires_at,
            } => {
                if s.user_id.is_none() || s.revoked {
                    return reject(RejectionCode::Unauthorized, "invalid_token");
                }
                if s.used.contains(presented) {
                    // A used token came back: revoke the family. The caller reports
                    // the reuse after this event is persisted.
                    return Ok(vec![SessionEvent::Revoked {
                        reason: "refresh token reused".into(),
                        reuse: true,
                    }]);
                }
                if s.current.as_deref() != Some(presented.as_str()) || *now >= s.expires_at {
                    return reject(RejectionCode::Unauthorized, "invalid_token");
                }
                Ok(vec![SessionEvent::Rotated {
                    used: presented.clone(),
                    next: next.clone(),
                    expires_at: *expires_at,
                }])
            }
            SessionCommand::Revoke { reason } => {
                if s.revoked || s.user_id.is_none() {
                    return Ok(vec![]);
                }
                Ok(vec![SessionEvent::Revoked {
                    reason: reason.clone(),
                    reuse: false,
                }])
            }
        }
    }

    fn apply(s: &mut SessionState, e: &SessionEvent) {
        match e {
            SessionEvent::Started {
                user_id,
                token_hash,
                expires_at,
            } => {
                s.user_id = Some(*user_id);
                s.current = Some(token_hash.clone());
                s.expires_at = *expires_at;
            }
            SessionEvent::Rotated {
                used,
                next,
                expires_at,
            } => {
                s.used.insert(used.clone());
                s.current = Some(next.clone());
                s.expires_at = *expires_at;
            }
            SessionEvent::Revoked { .. } => {
                s.revoked = true;
                s.current = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &mut SessionState, c: SessionCommand) -> Result<Vec<SessionEvent>, Rejection> {
        let evs = Session::decide(s, &c)?;
        for e in &evs {
            Session::apply(s, e);
        }
        Ok(evs)
    }

    #[test]
    fn rotation_uses_up_tokens_and_reuse_revokes_the_family() {
        let mut s = SessionState::default();
        let rot = |p: &str, n: &str| SessionCommand::Rotate {
            presented: p.into(),
            next: n.into(),
            now: 10,
            expires_at: 100,
        };
        run(
            &mut s,
            SessionCommand::Start {
                user_id: Uuid::from_u128(1),
                token_hash: "a".into(),
                expires_at: 100,
            },
        )
        .unwrap();
        run(&mut s, rot("a", "b")).unwrap();
        run(&mut s, rot("b", "c")).unwrap();
        let evs = run(&mut s, rot("a", "x")).unwrap();
        assert!(matches!(
            evs[..],
            [SessionEvent::Revoked { reuse: true, .. }]
        ));
        assert_eq!(
            run(&mut s, rot("c", "d")).unwrap_err().code,
            RejectionCode::Unauthorized
        );
        let replayed = Session::replay(&[
            SessionEvent::Started {
                user_id: Uuid::from_u128(1),
                token_hash: "a".into(),
                expires_at: 100,
            },
            SessionEvent::Rotated {
                used: "a".into(),
                next: "b".into(),
                expires_at: 100,
            },
            SessionEvent::Rotated {
                used: "b".into(),
                next: "c".into(),
                expires_at: 100,
            },
            SessionEvent::Revoked {
                reason: "refresh token reused".into(),
                reuse: true,
            },
        ]);
        assert_eq!(replayed, s);
    }

    #[test]
    fn expired_or_unknown_tokens_are_refused() {
        let mut s = SessionState::default();
        run(
            &mut s,
            SessionCommand::Start {
                user_id: Uuid::from_u128(1),
                token_hash: "a".into(),
                expires_at: 5,
            },
        )
        .unwrap();
        let late = SessionCommand::Rotate {
            presented: "a".into(),
            next: "b".into(),
            now: 5,
            expires_at: 50,
        };
        assert_eq!(
            run(&mut s, late).unwrap_err().code,
            RejectionCode::Unauthorized
        );
        let unknown = SessionCommand::Rotate {
            presented: "zz".into(),
            next: "b".into(),
            now: 1,
            expires_at: 50,
        };
        assert_eq!(
            run(&mut s, unknown).unwrap_err().code,
            RejectionCode::Unauthorized
        );
    }
}
