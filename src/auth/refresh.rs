//! Refresh tokens: `<family id>.<generation>.<32 random bytes, hex>`. The family id names
//! the session entity, the generation counts the refreshes of that family (so the family
//! can recognise any used token without remembering it), and only the SHA-256 of the
//! secret part is ever stored. Tokens minted before generations existed have two parts
//! (`<family id>.<secret>`) and parse with no generation.

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
}
