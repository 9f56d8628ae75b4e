//! Identity at the edge: who is calling, and what may they do.
//!
//! - [`attempts`]: login and register attempts per account (normalised email).
//! - [`jwt`]: the signing key set (rotatable, selected by `kid`) and access tokens.
//! - [`password`]: argon2id hashing, off the async runtime, with a dummy hash so an
//!   unknown email costs the same as a wrong password.
//! - [`refresh`]: opaque refresh tokens `<family>.<secret>`, stored only as hashes.
//! - [`Principal`]: the caller of one request, and its role checks.

pub mod attempts;
pub mod jwt;
pub mod password;
pub mod refresh;

use crate::domain::user::Role;
use std::collections::BTreeSet;
use uuid::Uuid;

/// The label recorded in audit events for the bootstrap admin token.
pub const BOOTSTRAP_ADMIN: &str = "bootstrap-admin";

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User {
        id: Uuid,
        roles: BTreeSet<Role>,
    },
    /// The bootstrap admin token from configuration.
    Bootstrap,
}

impl Principal {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            _ => None,
        }
    }
    pub fn is_admin(&self) -> bool {
        match self {
            Self::Bootstrap => true,
            Self::User { roles, .. } => roles.contains(&Role::Admin),
            Self::Anonymous => false,
        }
    }
    /// Operators and admins: catalog, inventory, fulfilment, refunds, any cart or order.
    pub fn is_staff(&self) -> bool {
        self.is_admin()
            || matches!(self, Self::User { roles, .. } if roles.contains(&Role::Operator))
    }
    /// Who did it, for the audit trail.
    pub fn actor(&self) -> String {
        match self {
            Self::User { id, .. } => id.to_string(),
            Self::Bootstrap => BOOTSTRAP_ADMIN.into(),
            Self::Anonymous => "anonymous".into(),
        }
    }
}

/// Why a presented credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the access token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
}

/// The authenticator of one node: the key set, the bootstrap token, and the settings of
/// the auth routes.
pub struct Identity {
    pub keys: jwt::KeySet,
    bootstrap: String,
    /// A real argon2id hash of a random password, verified when an email is unknown.
    pub dummy_hash: String,
    pub refresh_ttl_s: u64,
    pub allow_guest_checkout: bool,
}

impl Identity {
    pub fn new(
        keys: jwt::KeySet,
        bootstrap: String,
        dummy_hash: String,
        refresh_ttl_s: u64,
        allow_guest_checkout: bool,
    ) -> Self {
        Self {
            keys,
            bootstrap,
            dummy_hash,
            refresh_ttl_s,
            allow_guest_checkout,
        }
    }

    /// Resolves an `Authorization` header. No header is anonymous; a header that is not
    /// a valid bearer credential is an error, never silently anonymous.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let Some(h) = header else {
            return Ok(Principal::Anonymous);
        };
        let token = h
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or(AuthError::Invalid)?;
        if constant_time_eq(token.as_bytes(), self.bootstrap.as_bytes()) {
            return Ok(Principal::Bootstrap);
        }
        let claims = self.keys.verify(token)?;
        let id = Uuid::parse_str(&claims.sub).map_err(|_| AuthError::Invalid)?;
        let roles = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
        Ok(Principal::User { id, roles })
    }
}

/// Compares digests so neither length nor content leaks through timing.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    let (x, y) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}
