//! Standard Webhooks signing: a delivery carries `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; the secret is
//! `whsec_` + base64 of the key bytes. During a rotation the old secret stays valid, so
//! a delivery is signed with both and the header lists both signatures, space-separated,
//! as the specification allows.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a secret could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with whsec_")]
    MissingPrefix,
    #[error("a webhook secret's key is base64")]
    NotBase64,
    #[error("a webhook secret's key is 24 to 64 bytes")]
    BadLength,
}

/// A signing key (the bytes behind `whsec_...`).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A fresh 32-byte key from `rng`.
    pub fn generate(rng: &mut impl rand::RngCore) -> SigningKey {
        let mut k = vec![0u8; 32];
        rng.fill_bytes(&mut k);
        SigningKey(k)
    }

    /// A key from its bytes (as the registry stores them).
    pub fn from_bytes(bytes: Vec<u8>) -> SigningKey {
        SigningKey(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(secret: &str) -> Result<SigningKey, SecretError> {
        let b64 = secret
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let k = STANDARD.decode(b64).map_err(|_| SecretError::NotBase64)?;
        if !(24..=64).contains(&k.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(SigningKey(k))
    }

    /// The secret as shown to the endpoint's owner: `whsec_<base64>`.
    pub fn to_secret(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// One signature: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value for `keys` (the current key first, then any
/// still-valid previous one).
pub fn signature_header(keys: &[&SigningKey], id: &str, timestamp: u64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_the_specification_example() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            key.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_bad_secret_is_a_typed_error() {
        assert_eq!(SigningKey::parse("abc"), Err(SecretError::MissingPrefix));
        assert_eq!(SigningKey::parse("whsec_***"), Err(SecretError::NotBase64));
        assert_eq!(SigningKey::parse("whsec_AAAA"), Err(SecretError::BadLength));
    }

    proptest! {
        /// A generated secret round-trips, and a rotation's header carries the
        /// signature of each key, current first.
        #[test]
        fn secrets_round_trip_and_rotation_signs_with_both(seed in any::<u64>(), ts in any::<u64>(), body in proptest::collection::vec(any::<u8>(), 0..64)) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let (new, old) = (SigningKey::generate(&mut rng), SigningKey::generate(&mut rng));
            prop_assert_eq!(&SigningKey::parse(&new.to_secret()).unwrap(), &new);
            let h = signature_header(&[&new, &old], "evt_1", ts, &body);
            let parts: Vec<&str> = h.split(' ').collect();
            prop_assert_eq!(parts, vec![new.sign("evt_1", ts, &body), old.sign("evt_1", ts, &body)]);
            prop_assert_ne!(new.sign("evt_1", ts, &body), new.sign("evt_2", ts, &body));
        }
    }
}
