//! Refresh tokens: `<family id>.<32 random bytes, hex>`. The family id names the
//! session entity; only the SHA-256 of the secret part is ever stored.

use sha2::Digest;
use uuid::Uuid;

/// A new secret for `family`: the token to hand out and the hash to store.
pub fn mint(family: Uuid) -> (String, String) {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex::encode(secret);
    let hash = hash(&secret);
    (format!("{family}.{secret}"), hash)
}

/// Splits a presented token into its family and the hash of its secret.
pub fn parse(token: &str) -> Option<(Uuid, String)> {
    let (family, secret) = token.split_once('.')?;
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((Uuid::parse_str(family).ok()?, hash(secret)))
}

fn hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip_and_rejects_garbage() {
        let f = uuid::Uuid::new_v4();
        let (token, hash) = super::mint(f);
        assert_eq!(super::parse(&token), Some((f, hash.clone())));
        assert!(!token.contains(&hash), "the stored hash is not the token");
        assert!(super::parse("nope").is_none());
        assert!(super::parse(&format!("{f}.zz")).is_none());
    }
}
