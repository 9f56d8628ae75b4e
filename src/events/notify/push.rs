//! Web Push to browsers' subscriptions: the payload is encrypted for the subscriber with
//! RFC 8291 (`aes128gcm`, RFC 8188) and the request carries a VAPID token (RFC 8292):
//! `Authorization: vapid t=<ES256 JWT for the endpoint's origin>, k=<our public key>`.
//!
//! The payload is JSON `{"id", "title", "body"}` (the message id, the rendered subject and
//! body), at most [`MAX_PAYLOAD`] bytes. A 2xx is sent; 404 and 410 mean the subscription
//! is gone and 400, 401, 403 and 413 that the push service will not take this request
//! again, so each of those is a refusal for good; 429 and 5xx are retried. An endpoint is
//! checked by the private-target guard ([`crate::events::target`]) at save and at every
//! send, each address its name resolves to included (the webhooks' client), unless
//! `notifications.push.allow_private_targets` is on.

use std::path::Path;
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures::future::BoxFuture;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::DecodePrivateKey;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

use super::channel::{Channel, SendError};
use crate::app::config::PushConfig;
use crate::clock::now_ms;
use crate::domain::notification::{ChannelKind, Content};
use crate::domain::preferences::PushSubscription;
use crate::events::target::check_url;

/// The record size announced in the header (one record holds the whole payload).
const RECORD_SIZE: u32 = 4096;
/// Largest plaintext: one 4096-byte record less the header (86 bytes), the tag (16) and
/// the delimiter (1).
pub const MAX_PAYLOAD: usize = 3993;
/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const VAPID_TTL_S: u64 = 12 * 3600;

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not a P-256 private key in PEM (PKCS#8 `PRIVATE KEY` or SEC1 `EC PRIVATE KEY`)")]
    Format(String),
}

/// Reads a VAPID private key from a PEM file.
pub fn load_key(path: &Path) -> Result<SecretKey, KeyError> {
    let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    SecretKey::from_pkcs8_pem(&pem)
        .or_else(|_| SecretKey::from_sec1_pem(&pem))
        .map_err(|_| KeyError::Format(path.display().to_string()))
}

/// A new VAPID key as PKCS#8 PEM, and its public key as the `applicationServerKey` a page
/// subscribes with (base64url of the uncompressed point).
pub fn new_key() -> (String, String) {
    use p256::pkcs8::EncodePrivateKey;
    let key = SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let pem = key
        .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
        .map(|p| p.to_string())
        .unwrap_or_default();
    (pem, public_b64(&key.public_key()))
}

fn public_b64(k: &PublicKey) -> String {
    URL_SAFE_NO_PAD.encode(k.to_encoded_point(false).as_bytes())
}

/// Encrypts `plaintext` for a subscriber (RFC 8291 section 3), with the application
/// server's ephemeral key `as_key` and `salt` given (fresh for every message; fixed only
/// by the RFC's test vector). The answer is the whole `aes128gcm` body: salt, record
/// size, key id (our ephemeral public key) and the one record.
pub fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8],
    auth_secret: &[u8],
    as_key: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, String> {
    if plaintext.len() > MAX_PAYLOAD {
        return Err(format!("the payload is over {MAX_PAYLOAD} bytes"));
    }
    let ua = PublicKey::from_sec1_bytes(ua_public)
        .map_err(|_| "the subscription's p256dh is not a P-256 point".to_owned())?;
    let as_public = as_key.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_key.to_nonzero_scalar(), ua.as_affine());
    // IKM = HKDF(salt = auth_secret, ikm = ECDH, info = "WebPush: info\0" || ua || as).
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(ua_public);
    info.extend_from_slice(as_public.as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth_secret), shared.raw_secret_bytes())
        .expand(&info, &mut ikm)
        .map_err(|e| e.to_string())?;
    // The content key and nonce (RFC 8188 section 2.2, 2.3).
    let hk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    hk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
        .and_then(|_| hk.expand(b"Content-Encoding: nonce\0", &mut nonce))
        .map_err(|e| e.to_string())?;
    let mut record = plaintext.to_vec();
    record.push(2); // the last record's delimiter, no padding
    let sealed = Aes128Gcm::new(&cek.into())
        .encrypt(Nonce::from_slice(&nonce), record.as_slice())
        .map_err(|_| "encryption failed".to_owned())?;
    let mut body = salt.to_vec();
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public.as_bytes().len() as u8);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// The origin of a URL (`scheme://host[:port]`), the VAPID token's audience.
fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// The push channel.
pub struct WebPush {
    client: reqwest::Client,
    key: SigningKey,
    public: String,
    subject: String,
    ttl_s: u32,
    allow_private: bool,
}

impl WebPush {
    pub fn new(c: &PushConfig, timeout: Duration) -> Result<Self, String> {
        let key = load_key(Path::new(&c.vapid_private_key_path)).map_err(|e| e.to_string())?;
        // The webhooks' client: no redirects, and every resolved address through the
        // target guard (a push endpoint is a URL a shopper gave).
        let client = crate::events::webhooks::client::build(c.allow_private_targets, timeout);
        Ok(Self {
            client,
            public: public_b64(&key.public_key()),
            key: SigningKey::from(&key),
            subject: c.subject.clone(),
            ttl_s: c.ttl_s,
            allow_private: c.allow_private_targets,
        })
    }

    /// The public key pages subscribe with (`applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header for `audience`, valid until `exp` (seconds).
    pub fn vapid(&self, audience: &str, exp: u64) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({"aud": audience, "exp": exp, "sub": self.subject});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let sig: Signature = self.key.sign(input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(sig.to_bytes());
        format!("vapid t={input}.{sig}, k={}", self.public)
    }
}

fn refused(detail: String) -> SendError {
    SendError {
        permanent: true,
        detail,
    }
}

impl Channel for WebPush {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Push
    }

    fn send<'a>(
        &'a self,
        id: &'a str,
        recipient: &'a str,
        content: &'a Content,
    ) -> BoxFuture<'a, Result<String, SendError>> {
        Box::pin(async move {
            let sub = PushSubscription::from_recipient(recipient)
                .ok_or_else(|| refused("not a push subscription".into()))?;
            let url = check_url(&sub.endpoint, self.allow_private)
                .map_err(|e| refused(format!("the endpoint: {e}")))?;
            let (ua, auth) = match (
                URL_SAFE_NO_PAD.decode(&sub.p256dh),
                URL_SAFE_NO_PAD.decode(&sub.auth),
            ) {
                (Ok(ua), Ok(auth)) => (ua, auth),
                _ => return Err(refused("the subscription's keys are not base64url".into())),
            };
            let mut body: String = content.body.trim().to_owned();
            let payload = loop {
                let p = serde_json::json!({"id": id, "title": content.subject, "body": body})
                    .to_string();
                if p.len() <= MAX_PAYLOAD || body.is_empty() {
                    break p;
                }
                let keep = body.chars().count().saturating_sub(64);
                body = body.chars().take(keep).collect();
            };
            let eph = SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
            let salt: [u8; 16] = rand::random();
            let sealed = encrypt(payload.as_bytes(), &ua, &auth, &eph, &salt).map_err(refused)?;
            let exp = now_ms() / 1000 + VAPID_TTL_S;
            let r = self
                .client
                .post(url.clone())
                .header("Authorization", self.vapid(&origin(&url), exp))
                .header("Content-Encoding", "aes128gcm")
                .header("Content-Type", "application/octet-stream")
                .header("TTL", self.ttl_s.to_string())
                .header("Urgency", "normal")
                .body(sealed)
                .send()
                .await
                .map_err(|e| SendError {
                    permanent: false,
                    detail: format!("the push service: {e}"),
                })?;
            let status = r.status();
            if status.is_success() {
                return Ok(status.as_u16().to_string());
            }
            let text: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            Err(SendError {
                permanent: matches!(status.as_u16(), 400 | 401 | 403 | 404 | 410 | 413),
                detail: format!("{} {text}", status.as_u16()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// RFC 8291 section 5 (and appendix A): the example's keys, secret and salt give
    /// exactly the example's body.
    #[test]
    fn the_rfc_8291_example_encrypts_to_its_published_body() {
        let as_key =
            SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        assert_eq!(
            public_b64(&as_key.public_key()),
            "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
        );
        let ua = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();
        let body = encrypt(
            b"When I grow up, I want to be a watermelon",
            &ua,
            &auth,
            &as_key,
            &salt,
        )
        .unwrap();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn a_vapid_token_verifies_with_the_key_it_names() {
        use p256::ecdsa::signature::Verifier;
        use p256::ecdsa::VerifyingKey;
        let dir = tempfile::tempdir().unwrap();
        let (pem, public) = new_key();
        let path = dir.path().join("vapid.pem");
        std::fs::write(&path, pem).unwrap();
        let c = PushConfig {
            vapid_private_key_path: path.display().to_string(),
            ..PushConfig::default()
        };
        let push = WebPush::new(&c, Duration::from_secs(1)).unwrap();
        assert_eq!(push.public_key(), public);
        let h = push.vapid("https://push.example", 1_900_000_000);
        let (t, k) = h
            .strip_prefix("vapid t=")
            .and_then(|r| r.split_once(", k="))
            .unwrap();
        assert_eq!(k, public);
        let (input, sig) = t.rsplit_once('.').unwrap();
        let vk = VerifyingKey::from_sec1_bytes(&b64(k)).unwrap();
        let sig = Signature::from_slice(&b64(sig)).unwrap();
        assert!(vk.verify(input.as_bytes(), &sig).is_ok());
        let claims: serde_json::Value =
            serde_json::from_slice(&b64(input.split('.').nth(1).unwrap())).unwrap();
        assert_eq!(claims["aud"], "https://push.example");
        assert_eq!(claims["sub"], "mailto:shop@example.com");
        // Not a key: a clear error naming the file.
        std::fs::write(&path, "not a key").unwrap();
        let e = WebPush::new(&c, Duration::from_secs(1)).err().unwrap();
        assert!(e.contains("vapid.pem"), "{e}");
    }
}
