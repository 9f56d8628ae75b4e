//! Access tokens: HS256 JWTs carrying `sub`, `roles`, `exp`, `iat`, `jti`, with the
//! signing key's `kid` in the header. The key set holds every key that may verify; the
//! first one signs. Rotation: put the new key first, keep the old one until the last
//! token it signed has expired. Every key, from whatever source (config, environment or
//! `jwt.key`), is at least [`MIN_KEY_BYTES`] long.

use super::AuthError;
use crate::domain::user::Role;
use jsonwebtoken::{
    decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<String>,
    pub exp: u64,
    pub iat: u64,
    pub jti: String,
}

/// The shortest HS256 key accepted: 32 bytes, the size of the SHA-256 output.
pub const MIN_KEY_BYTES: usize = 32;

/// Why a signing key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no signing key")]
    Empty,
    #[error("a signing key has an empty kid")]
    NoKid,
    #[error("signing key {kid:?} is {len} bytes; keys must be at least {MIN_KEY_BYTES} bytes")]
    TooShort { kid: String, len: usize },
}

/// Checks one `(kid, secret)`.
pub fn check_key(kid: &str, secret: &[u8]) -> Result<(), KeyError> {
    if kid.is_empty() {
        return Err(KeyError::NoKid);
    }
    if secret.len() < MIN_KEY_BYTES {
        return Err(KeyError::TooShort {
            kid: kid.to_owned(),
            len: secret.len(),
        });
    }
    Ok(())
}

struct Key {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

pub struct KeySet {
    keys: Vec<Key>,
    ttl_s: u64,
}

impl KeySet {
    /// `keys` are `(kid, secret)`; the first signs. Panics on an empty set: the caller
    /// always provides or generates one.
    pub fn new(keys: &[(String, Vec<u8>)], ttl_s: u64) -> Self {
        assert!(!keys.is_empty(), "a key set needs at least one key");
        let keys = keys
            .iter()
            .map(|(kid, secret)| Key {
                kid: kid.clone(),
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
            })
            .collect();
        Self { keys, ttl_s }
    }

    /// Like [`KeySet::new`], but refuses an empty set, an empty kid or a short key.
    pub fn try_new(keys: &[(String, Vec<u8>)], ttl_s: u64) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        for (kid, secret) in keys {
            check_key(kid, secret)?;
        }
        Ok(Self::new(keys, ttl_s))
    }

    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    /// Issues an access token for `user` valid from `now_s`.
    pub fn issue(&self, user: Uuid, roles: &BTreeSet<Role>, now_s: u64) -> String {
        let key = &self.keys[0];
        let claims = Claims {
            sub: user.to_string(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            exp: now_s + self.ttl_s,
            iat: now_s,
            jti: Uuid::new_v4().simple().to_string(),
        };
        let header = Header {
            kid: Some(key.kid.clone()),
            ..Header::new(Algorithm::HS256)
        };
        encode(&header, &claims, &key.encoding)
            .expect("HS256 signing with an in-memory key cannot fail")
    }

    /// Verifies signature, algorithm, `kid` and expiry (no leeway).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or(AuthError::Invalid)?;
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub", "iat"]);
        decode::<Claims>(token, &key.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn set(kid: &str, secret: &str) -> KeySet {
        KeySet::new(&[(kid.into(), secret.as_bytes().to_vec())], 60)
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn issues_and_verifies_and_rejects_forgeries() {
        let ks = set("k1", "0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        let t = ks.issue(user, &BTreeSet::from([Role::Shopper]), now());
        let c = ks.verify(&t).unwrap();
        assert_eq!(
            (c.sub, c.roles),
            (user.to_string(), vec!["shopper".to_string()])
        );
        // Unknown key.
        let other = set("k9", "fedcba9876543210fedcba9876543210");
        assert_eq!(
            ks.verify(&other.issue(user, &BTreeSet::new(), now())),
            Err(AuthError::Invalid)
        );
        // Tampered payload.
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(b64.decode(&parts[1]).unwrap())
            .unwrap()
            .replace("shopper", "admin");
        parts[1] = b64.encode(payload);
        assert_eq!(ks.verify(&parts.join(".")), Err(AuthError::Invalid));
        // alg=none.
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","kid":"k1"}"#),
            parts[1]
        );
        assert_eq!(ks.verify(&none), Err(AuthError::Invalid));
        // Expired.
        let old = ks.issue(user, &BTreeSet::new(), now() - 120);
        assert_eq!(ks.verify(&old), Err(AuthError::Expired));
    }

    #[test]
    fn keys_shorter_than_32_bytes_are_refused() {
        let ok = b"0123456789abcdef0123456789abcdef".to_vec();
        assert!(KeySet::try_new(&[("k".into(), ok.clone())], 60).is_ok());
        assert_eq!(
            KeySet::try_new(&[("k".into(), ok[..31].to_vec())], 60).err(),
            Some(KeyError::TooShort {
                kid: "k".into(),
                len: 31
            })
        );
        assert_eq!(
            KeySet::try_new(&[("".into(), ok)], 60).err(),
            Some(KeyError::NoKid)
        );
        assert_eq!(KeySet::try_new(&[], 60).err(), Some(KeyError::Empty));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid() {
        let old = set("old", "0123456789abcdef0123456789abcdef");
        let t = old.issue(Uuid::new_v4(), &BTreeSet::new(), now());
        let rotated = KeySet::new(
            &[
                ("new".into(), b"fedcba9876543210fedcba9876543210".to_vec()),
                ("old".into(), b"0123456789abcdef0123456789abcdef".to_vec()),
            ],
            60,
        );
        assert!(rotated.verify(&t).is_ok());
        let fresh = rotated.issue(Uuid::new_v4(), &BTreeSet::new(), now());
        assert_eq!(decode_header(&fresh).unwrap().kid.as_deref(), Some("new"));
    }
}
