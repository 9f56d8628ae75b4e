//! A refresh-token family: one login's chain of refresh tokens.
//!
//! Each refresh uses up the presented token and issues the next. Presenting a token that
//! was already used means it was copied: the whole family is revoked, so both the thief
//! and the victim must log in again. Only token hashes are stored.
//!
//! The state is O(1) however often the family is refreshed: instead of a set of every used
//! hash (which grew by one per refresh, and was cloned on every command and re-encoded in
//! every snapshot) it keeps a generation counter. Each token carries its generation
//! (`<family>.<generation>.<secret>`, see `crate::auth::refresh`); the family remembers
//! the current generation and the hash of its one valid token. Then:
//! - generation below the current one: that token was used already (generations only
//!   advance on use), so it is a reuse and the family is revoked. Only someone who saw a
//!   token of this family knows its id, so a forged old generation is still a leaked token;
//! - the current generation with the current hash: rotate to the next generation;
//! - anything else (a future generation, a wrong secret): `invalid_token`, no revoke.
//!
//! Tokens minted before generations existed have two parts and no generation. One that is
//! still the current token rotates normally (into a three-part token); an older one cannot
//! be told apart from a guess and gets `invalid_token` without revoking. Journals written
//! before this change replay unchanged: each old `Rotated` event advances the generation.

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    pub user_id: Option<Uuid>,
    /// Hash of the one refresh token that is valid now.
    pub current: Option<String>,
    /// The generation of `current`: 0 at login, one more per refresh. Every token of a
    /// lower generation has been used. (It sits where the set of used hashes was, so an
    /// old snapshot either decodes to the right value or fails and is rebuilt from events.)
    pub generation: u64,
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
    /// Exchange `presented` (of `generation`; `None` for a token minted before tokens
    /// carried one) for `next`, which becomes the next generation.
    Rotate {
        presented: String,
        generation: Option<u64>,
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
    /// Written before generations existed; replayed as one generation forward.
    Rotated {
        used: String,
        next: String,
        expires_at: Millis,
    },
    /// `reuse` is true when a used token was presented again (suspected theft).
    Revoked { reason: String, reuse: bool },
    /// The token of `generation - 1` was used; `next` (of `generation`) is now valid.
    Advanced {
        generation: u64,
        next: String,
        expires_at: Millis,
    },
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
                generation,
                next,
                now,
                expires_at,
            } => {
                if s.user_id.is_none() || s.revoked {
                    return reject(RejectionCode::Unauthorized, "invalid_token");
                }
                if generation.is_some_and(|g| g < s.generation) {
                    // A used token came back: revoke the family. The caller reports
                    // the reuse after this event is persisted.
                    return Ok(vec![SessionEvent::Revoked {
                        reason: "refresh token reused".into(),
                        reuse: true,
                    }]);
                }
                let current_generation = generation.is_none_or(|g| g == s.generation);
                if !current_generation
                    || s.current.as_deref() != Some(presented.as_str())
                    || *now >= s.expires_at
                {
                    return reject(RejectionCode::Unauthorized, "invalid_token");
                }
                Ok(vec![SessionEvent::Advanced {
                    generation: s.generation + 1,
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
                s.generation = 0;
                s.expires_at = *expires_at;
            }
            SessionEvent::Rotated {
                next, expires_at, ..
            } => {
                s.generation += 1;
                s.current = Some(next.clone());
                s.expires_at = *expires_at;
            }
            SessionEvent::Advanced {
                generation,
                next,
                expires_at,
            } => {
                s.generation = *generation;
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
    use proptest::prelude::*;

    fn run(s: &mut SessionState, c: SessionCommand) -> Result<Vec<SessionEvent>, Rejection> {
        let evs = Session::decide(s, &c)?;
        for e in &evs {
            Session::apply(s, e);
        }
        Ok(evs)
    }

    fn start(s: &mut SessionState, hash: &str, expires_at: Millis) {
        run(
            s,
            SessionCommand::Start {
                user_id: Uuid::from_u128(1),
                token_hash: hash.into(),
                expires_at,
            },
        )
        .unwrap();
    }

    fn rot(p: &str, g: Option<u64>, n: &str) -> SessionCommand {
        SessionCommand::Rotate {
            presented: p.into(),
            generation: g,
            next: n.into(),
            now: 10,
            expires_at: 100,
        }
    }

    #[test]
    fn rotation_uses_up_tokens_and_reuse_revokes_the_family() {
        let mut s = SessionState::default();
        start(&mut s, "a", 100);
        run(&mut s, rot("a", Some(0), "b")).unwrap();
        run(&mut s, rot("b", Some(1), "c")).unwrap();
        assert_eq!((s.generation, s.current.as_deref()), (2, Some("c")));
        let evs = run(&mut s, rot("a", Some(0), "x")).unwrap();
        assert!(matches!(
            evs[..],
            [SessionEvent::Revoked { reuse: true, .. }]
        ));
        assert_eq!(
            run(&mut s, rot("c", Some(2), "d")).unwrap_err().code,
            RejectionCode::Unauthorized
        );
        let replayed = Session::replay(&[
            SessionEvent::Started {
                user_id: Uuid::from_u128(1),
                token_hash: "a".into(),
                expires_at: 100,
            },
            SessionEvent::Advanced {
                generation: 1,
                next: "b".into(),
                expires_at: 100,
            },
            SessionEvent::Advanced {
                generation: 2,
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
    fn expired_unknown_or_future_tokens_are_refused_without_revoking() {
        let mut s = SessionState::default();
        start(&mut s, "a", 5);
        let late = SessionCommand::Rotate {
            presented: "a".into(),
            generation: Some(0),
            next: "b".into(),
            now: 5,
            expires_at: 50,
        };
        assert_eq!(
            run(&mut s, late).unwrap_err().code,
            RejectionCode::Unauthorized
        );
        let mut s = SessionState::default();
        start(&mut s, "a", 100);
        for bad in [
            rot("zz", Some(0), "b"),
            rot("a", Some(1), "b"),
            rot("zz", None, "b"),
        ] {
            assert_eq!(
                run(&mut s, bad).unwrap_err().code,
                RejectionCode::Unauthorized
            );
        }
        assert!(!s.revoked);
        assert_eq!(s.current.as_deref(), Some("a"));
    }

    /// A family written before generations: old `Rotated` events replay as generations,
    /// and its current two-part token (no generation) still rotates.
    #[test]
    fn old_journals_replay_and_an_old_current_token_still_rotates() {
        let mut s = Session::replay(&[
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
        ]);
        assert_eq!((s.generation, s.current.as_deref()), (2, Some("c")));
        let evs = run(&mut s, rot("c", None, "d")).unwrap();
        assert_eq!(
            evs,
            vec![SessionEvent::Advanced {
                generation: 3,
                next: "d".into(),
                expires_at: 100
            }]
        );
        // An old used two-part token cannot be recognised: refused, no revoke.
        assert!(run(&mut s, rot("a", None, "x")).is_err());
        assert!(!s.revoked);
        // The new three-part token works, and reuse of generation 2 revokes.
        run(&mut s, rot("d", Some(3), "e")).unwrap();
        let evs = run(&mut s, rot("c", Some(2), "y")).unwrap();
        assert!(matches!(
            evs[..],
            [SessionEvent::Revoked { reuse: true, .. }]
        ));
    }

    /// The shape of the state before generations, to check old snapshots.
    #[derive(Serialize)]
    struct OldState {
        user_id: Option<Uuid>,
        current: Option<String>,
        used: std::collections::BTreeSet<String>,
        revoked: bool,
        expires_at: Millis,
    }

    #[test]
    fn an_old_snapshot_decodes_right_or_not_at_all() {
        use crate::store::codec;
        let old = |used: &[&str]| OldState {
            user_id: Some(Uuid::from_u128(1)),
            current: Some("h".repeat(64)),
            used: used.iter().map(|u| u.repeat(64)).collect(),
            revoked: false,
            expires_at: 1_000,
        };
        // Never rotated: the empty set reads as generation 0, which is right.
        let s: SessionState = codec::decode(&codec::encode(&old(&[]))).unwrap();
        assert_eq!((s.generation, s.expires_at), (0, 1_000));
        // Rotated: does not decode, so the journal replays the events instead.
        for used in [&["a"][..], &["a", "b", "c"]] {
            assert!(codec::decode::<SessionState>(&codec::encode(&old(used))).is_err());
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// Refresh with the current token.
        Refresh,
        /// Present the token of `back` generations ago (0 = current, wrong secret).
        Old(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![4 => Just(Step::Refresh), 1 => (0u64..50).prop_map(Step::Old)]
    }

    proptest! {
        /// Any sequence of rotations keeps the encoded state the same size (the hashes
        /// have a fixed length), and presenting any token of an older generation revokes.
        #[test]
        fn state_size_is_constant_and_any_older_token_revokes(
            steps in proptest::collection::vec(step(), 1..200),
        ) {
            let hash = |g: u64| format!("{g:064x}");
            let mut s = SessionState::default();
            start(&mut s, &hash(0), Millis::MAX);
            let size = crate::store::codec::encode(&s).len();
            for st in steps {
                let g = s.generation;
                match st {
                    Step::Refresh => {
                        run(&mut s, rot(&hash(g), Some(g), &hash(g + 1))).unwrap();
                        prop_assert_eq!(s.generation, g + 1);
                        // A varint generation may grow by a few bytes; never per rotation.
                        prop_assert!(crate::store::codec::encode(&s).len() <= size + 8);
                    }
                    Step::Old(back) if back > 0 && back <= g => {
                        let mut t = s.clone();
                        let evs = run(&mut t, rot(&hash(g - back), Some(g - back), "x")).unwrap();
                        let reuse = matches!(evs[..], [SessionEvent::Revoked { reuse: true, .. }]);
                        prop_assert!(reuse, "not a reuse: {:?}", evs);
                        prop_assert!(t.revoked);
                    }
                    Step::Old(_) => {
                        let before = s.clone();
                        prop_assert!(Session::decide(&s, &rot("bad", Some(g), "x")).is_err());
                        prop_assert_eq!(before, s.clone());
                    }
                }
            }
        }
    }
}
