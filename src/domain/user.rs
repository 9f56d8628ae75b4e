//! Users: a registered identity with a password hash, roles and a profile; plus the
//! email claim that makes an email address belong to one user.
//!
//! The password hash is computed at the edge (argon2id); the domain only stores it.

use super::{reject, Aggregate, EntityKind, Millis, Rejection, RejectionCode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Shopper,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shopper => "shopper",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shopper" => Some(Self::Shopper),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub email: Option<String>,
    pub password_hash: String,
    pub roles: BTreeSet<Role>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub registered_at: Millis,
}

impl UserState {
    pub fn exists(&self) -> bool {
        self.email.is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum UserCommand {
    Register {
        email: String,
        password_hash: String,
        at: Millis,
    },
    UpdateProfile {
        name: Option<String>,
        phone: Option<String>,
    },
    SetRoles {
        roles: BTreeSet<Role>,
        by: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    Registered {
        email: String,
        password_hash: String,
        at: Millis,
    },
    ProfileUpdated {
        name: Option<String>,
        phone: Option<String>,
    },
    RolesSet {
        roles: BTreeSet<Role>,
        by: String,
    },
}

pub struct User;

impl Aggregate for User {
    const KIND: EntityKind = EntityKind::User;
    type State = UserState;
    type Command = UserCommand;
    type Event = UserEvent;

    fn decide(s: &UserState, cmd: &UserCommand) -> Result<Vec<UserEvent>, Rejection> {
        match cmd {
            UserCommand::Register {
                email,
                password_hash,
                at,
            } => match &s.email {
                Some(e) if e == email => Ok(vec![]),
                Some(_) => reject(
                    RejectionCode::InvalidTransition,
                    "the user is already registered",
                ),
                None => Ok(vec![UserEvent::Registered {
                    email: email.clone(),
                    password_hash: password_hash.clone(),
                    at: *at,
                }]),
            },
            _ if !s.exists() => reject(RejectionCode::NotFound, "no such user"),
            UserCommand::UpdateProfile { name, phone } => {
                let name = name.clone().or_else(|| s.name.clone());
                let phone = phone.clone().or_else(|| s.phone.clone());
                if name == s.name && phone == s.phone {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::ProfileUpdated { name, phone }])
            }
            UserCommand::SetRoles { roles, by } => {
                if roles == &s.roles {
                    return Ok(vec![]);
                }
                Ok(vec![UserEvent::RolesSet {
                    roles: roles.clone(),
                    by: by.clone(),
                }])
            }
        }
    }

    fn apply(s: &mut UserState, e: &UserEvent) {
        match e {
            UserEvent::Registered {
                email,
                password_hash,
                at,
            } => {
                s.email = Some(email.clone());
                s.password_hash = password_hash.clone();
                s.roles = BTreeSet::from([Role::Shopper]);
                s.registered_at = *at;
            }
            UserEvent::ProfileUpdated { name, phone } => {
                s.name = name.clone();
                s.phone = phone.clone();
            }
            UserEvent::RolesSet { roles, .. } => s.roles = roles.clone(),
        }
    }
}

/// Who holds an email address. Keyed by a hash of the normalised address, so the
/// claim is a single-writer entity and two registrations cannot both win.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailClaimState {
    pub user_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaimEmail {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EmailClaimEvent {
    Claimed { user_id: Uuid },
}

pub struct EmailClaim;

impl Aggregate for EmailClaim {
    const KIND: EntityKind = EntityKind::Email;
    type State = EmailClaimState;
    type Command = ClaimEmail;
    type Event = EmailClaimEvent;

    fn decide(s: &EmailClaimState, cmd: &ClaimEmail) -> Result<Vec<EmailClaimEvent>, Rejection> {
        match s.user_id {
            None => Ok(vec![EmailClaimEvent::Claimed {
                user_id: cmd.user_id,
            }]),
            Some(u) if u == cmd.user_id => Ok(vec![]),
            Some(_) => reject(RejectionCode::Conflict, "email_taken"),
        }
    }

    fn apply(s: &mut EmailClaimState, e: &EmailClaimEvent) {
        match e {
            EmailClaimEvent::Claimed { user_id } => s.user_id = Some(*user_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd() -> impl Strategy<Value = UserCommand> {
        prop_oneof![
            (0u8..2).prop_map(|e| UserCommand::Register {
                email: format!("u{e}@x.io"),
                password_hash: "h".into(),
                at: 1
            }),
            (
                proptest::option::of("[a-z]{1,5}"),
                proptest::option::of("[0-9]{5,8}")
            )
                .prop_map(|(name, phone)| UserCommand::UpdateProfile { name, phone }),
            proptest::collection::btree_set(
                prop_oneof![Just(Role::Shopper), Just(Role::Operator), Just(Role::Admin)],
                0..3
            )
            .prop_map(|roles| UserCommand::SetRoles {
                roles,
                by: "admin".into()
            }),
        ]
    }

    proptest! {
        #[test]
        fn replay_rebuilds_the_user(cmds in proptest::collection::vec(cmd(), 0..30)) {
            let mut s = UserState::default();
            let mut log = vec![];
            for c in &cmds {
                let before = s.clone();
                match User::decide(&s, c) {
                    Ok(evs) => for e in evs { User::apply(&mut s, &e); log.push(e); },
                    Err(_) => prop_assert_eq!(&before, &s),
                }
            }
            prop_assert_eq!(User::replay(&log), s);
        }
    }

    #[test]
    fn an_email_is_claimed_once() {
        let mut s = EmailClaimState::default();
        let a = Uuid::from_u128(1);
        for e in EmailClaim::decide(&s, &ClaimEmail { user_id: a }).unwrap() {
            EmailClaim::apply(&mut s, &e);
        }
        assert!(EmailClaim::decide(&s, &ClaimEmail { user_id: a })
            .unwrap()
            .is_empty());
        let err = EmailClaim::decide(
            &s,
            &ClaimEmail {
                user_id: Uuid::from_u128(2),
            },
        )
        .unwrap_err();
        assert_eq!(err.code, RejectionCode::Conflict);
    }
}
