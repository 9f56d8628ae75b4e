//! Refresh tokens: `<family id>.<generation>.<32 random bytes, hex>`. The family id names
//! the session entity, the generation counts the refreshes of that family (so the family
//! can recognise any used token without remembering it), and only the SHA-256 of the
//! secret part is ever stored. Tokens minted before generations existed have two parts
//! (`<family id>.<secret>`) and parse with no generation.
//!
//! A family id alone is not a credential: refreshing and logging out both check the whole
//! token (its secret's hash and generation) against the family ([`logout_check`]).

use crate::domain::session::SessionState;
use sha2::Digest;
use uuid::Uuid;

/// A presented refresh token, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub family: Uuid,
    /// `None` for a two-part token minted before tokens carried their generation.
    pub generation: Option<u64>,
    /// The SHA-256 of the secret, as the family stores it.
    pub hash: String,
}

/// A new secret: the secret to put in a token and the hash to store.
pub fn mint() -> (String, String) {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let hash = hash(&secret);
    (secret, hash)
}

/// The token for `secret` as generation `generation` of `family`.
pub fn token(family: Uuid, generation: u64, secret: &str) -> String {
    format!("{family}.{generation}.{secret}")
}

/// Splits a presented token into its family, generation and the hash of its secret.
pub fn parse(token: &str) -> Option<Presented> {
    let mut parts = token.split('.');
    let family = parts.next()?;
    let (generation, secret) = match (parts.next()?, parts.next(), parts.next()) {
        (secret, None, None) => (None, secret),
        (generation, Some(secret), None) => {
            let ok = (1..=20).contains(&generation.len())
                && generation.bytes().all(|b| b.is_ascii_digit());
            (Some(generation.parse::<u64>().ok().filter(|_| ok)?), secret)
        }
        _ => return None,
    };
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(Presented {
        family: Uuid::parse_str(family).ok()?,
        generation,
        hash: hash(secret),
    })
}

/// Whether `p` is the family's current token: the hash of its secret (compared in
/// constant time) and, when the token carries one, its generation.
pub fn is_current(state: &SessionState, p: &Presented) -> bool {
    let hash_ok = state
        .current
        .as_deref()
        .is_some_and(|h| super::constant_time_eq(h.as_bytes(), p.hash.as_bytes()));
    let generation_ok = p.generation.is_none_or(|g| g == state.generation);
    hash_ok && generation_ok
}

/// What a logout with a presented token does to its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logout {
    /// The token is the family's current one: revoke the family.
    Revoke,
    /// The family is revoked already: nothing to do (logging out twice is not an error).
    AlreadyRevoked,
    /// No such family, or not its current token: refused, and the family is untouched.
    Refuse,
}

/// Decides a logout from the family's state. Only the holder of the whole current token
/// may revoke a live family; knowing its id is not enough.
pub fn logout_check(state: &SessionState, p: &Presented) -> Logout {
    if state.user_id.is_none() {
        Logout::Refuse
    } else if state.revoked {
        Logout::AlreadyRevoked
    } else if is_current(state, p) {
        Logout::Revoke
    } else {
        Logout::Refuse
    }
}

fn hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_garbage() {
        let f = Uuid::new_v4();
        let (secret, hash) = mint();
        let t = token(f, 7, &secret);
        assert_eq!(
            parse(&t),
            Some(Presented {
                family: f,
                generation: Some(7),
                hash: hash.clone()
            })
        );
        assert!(!t.contains(&hash), "the stored hash is not the token");
        // A token minted before generations: no generation.
        let old = parse(&format!("{f}.{secret}")).unwrap();
        assert_eq!((old.generation, old.hash), (None, hash));
        for bad in [
            "nope".to_owned(),
            format!("{f}.zz"),
            format!("{f}.1.zz"),
            format!("{f}.x.{secret}"),
            format!("{f}.-1.{secret}"),
            format!("{f}.+1.{secret}"),
            format!("{f}.99999999999999999999.{secret}"),
            format!("{f}.1.{secret}.1"),
            format!("{f}..{secret}"),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn logout_needs_the_whole_current_token_not_just_the_family() {
        let family = Uuid::new_v4();
        let (secret, current) = mint();
        let live = SessionState {
            user_id: Some(Uuid::new_v4()),
            current: Some(current),
            generation: 3,
            revoked: false,
            expires_at: 0,
        };
        let good = parse(&token(family, 3, &secret)).unwrap();
        assert_eq!(logout_check(&live, &good), Logout::Revoke);
        // A two-part token carries no generation; its secret decides.
        let legacy = parse(&format!("{family}.{secret}")).unwrap();
        assert_eq!(logout_check(&live, &legacy), Logout::Revoke);
        // The family id with another secret, or an older generation, is refused.
        let (other, _) = mint();
        let forged = parse(&token(family, 3, &other)).unwrap();
        assert_eq!(logout_check(&live, &forged), Logout::Refuse);
        let stale = parse(&token(family, 2, &secret)).unwrap();
        assert_eq!(logout_check(&live, &stale), Logout::Refuse);
        // No such family.
        let unknown = SessionState {
            user_id: None,
            current: None,
            generation: 0,
            revoked: false,
            expires_at: 0,
        };
        assert_eq!(logout_check(&unknown, &good), Logout::Refuse);
        let revoked = SessionState {
            revoked: true,
            current: None,
            ..live
        };
        assert_eq!(logout_check(&revoked, &good), Logout::AlreadyRevoked);
    }
}
