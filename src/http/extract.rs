//! Request extraction: bounded JSON bodies, ids, the operator token, and the
//! idempotency key. Each yields `Result<_, ApiError>` so handlers answer with the
//! exact error instead of a generic rejection.

use super::error::ApiError;
use crate::auth::{AuthError, Principal};
use crate::domain::Sku;
use bytes::{Buf, BufMut, BytesMut};
use futures::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use warp::http::StatusCode;
use warp::Filter;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body exceeds {limit} bytes"),
    )
}

/// Reads the body (at most `limit` bytes, whatever Content-Length claims) as raw bytes.
pub fn body_bytes(
    limit: u64,
) -> impl Filter<Extract = (Result<bytes::Bytes, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .then(move |len: Option<u64>, stream| read_limited(len, stream, limit))
}

async fn read_limited<S, B>(
    len: Option<u64>,
    stream: S,
    limit: u64,
) -> Result<bytes::Bytes, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    if len.is_some_and(|l| l > limit) {
        return Err(too_large(limit));
    }
    let mut buf = BytesMut::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid_json(format!("could not read the body: {e}")))?;
        if buf.len() as u64 + chunk.remaining() as u64 > limit {
            return Err(too_large(limit));
        }
        buf.put(chunk);
    }
    Ok(buf.freeze())
}

/// Parses JSON, telling malformed JSON (`invalid_json`) from well-formed JSON of the
/// wrong shape (`validation`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json(
            "the request body is empty; a JSON object is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::validation(e.to_string()),
        _ => ApiError::invalid_json(e.to_string()),
    })
}

/// A `limit` query parameter: `default` when absent or empty, else an integer from 1 to
/// `max`, or a 400 saying so.
pub fn page_limit(v: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match v {
        None | Some("") => Ok(default),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(format!(
                "limit must be an integer from 1 to {max}"
            ))),
        },
    }
}

pub fn uuid(what: &str, s: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s).map_err(|_| {
        ApiError::validation(format!(
            "{what} must be a UUID, got {:?}",
            s.chars().take(64).collect::<String>()
        ))
    })
}

pub fn sku(s: &str) -> Result<Sku, ApiError> {
    let decoded = percent_decode(s)?;
    Sku::parse(&decoded).map_err(ApiError::validation)
}

/// Decodes a raw path segment. A `%` not followed by two hex digits stays as it is (and
/// then fails the SKU pattern); bytes that do not decode to UTF-8 are a `validation`
/// error. The segment is handled as bytes throughout, so a `%` next to a multi-byte
/// character cannot split it.
fn percent_decode(s: &str) -> Result<String, ApiError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::validation("the path segment is not UTF-8 once percent-decoded"))
}

/// The caller, from the `Authorization` header. A header that is present but not a
/// valid credential is an error (401), never silently anonymous.
pub fn principal(
    identity: std::sync::Arc<crate::auth::Identity>,
) -> impl Filter<Extract = (Result<Principal, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization").map(move |h: Option<String>| {
        let p = identity.authenticate(h.as_deref()).map_err(|e| match e {
            AuthError::Expired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the access token has expired; refresh it",
            ),
            AuthError::Invalid => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the bearer token is not valid",
            ),
        })?;
        if let Some(id) = p.user_id() {
            super::context::set_user(&id.to_string());
        } else if p == Principal::Bootstrap {
            super::context::set_user(crate::auth::BOOTSTRAP_ADMIN);
        }
        Ok(p)
    })
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this route needs Authorization: Bearer <token>",
    )
}

/// Operators and admins.
pub fn staff(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Anonymous => Err(unauthorized()),
        p if p.is_staff() => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs the operator or admin role",
        )),
    }
}

/// Admins only.
pub fn admin(p: &Principal) -> Result<(), ApiError> {
    match p {
        Principal::Anonymous => Err(unauthorized()),
        p if p.is_admin() => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs the admin role",
        )),
    }
}

/// A signed-in user (not anonymous, not the bootstrap token).
pub fn user(p: &Principal) -> Result<uuid::Uuid, ApiError> {
    match p {
        Principal::User { id, .. } => Ok(*id),
        Principal::Anonymous => Err(unauthorized()),
        Principal::Bootstrap => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs a user token, not the bootstrap token",
        )),
    }
}

/// What a caller wants to do with a cart or order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Whether `p` may use an entity owned by `owner` (`None`: a guest's). Staff may read
/// anything; only admins may change someone else's. Others get 404 so ids do not leak.
pub fn may_use(
    p: &Principal,
    owner: Option<uuid::Uuid>,
    allow_guest: bool,
    access: Access,
) -> bool {
    if p.is_admin() || (access == Access::Read && p.is_staff()) {
        return true;
    }
    match owner {
        Some(o) => p.user_id() == Some(o),
        None => allow_guest,
    }
}

/// A plausible email address, normalised (trimmed, lower case).
pub fn email(raw: &str) -> Result<String, ApiError> {
    let e = raw.trim().to_lowercase();
    let ok = match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && e.len() <= 254
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.chars().any(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if ok {
        Ok(e)
    } else {
        Err(ApiError::validation("email is not a valid address"))
    }
}

/// The `Idempotency-Key` header: required, 1 to 255 visible ASCII characters.
pub fn idempotency_key(
) -> impl Filter<Extract = (Result<String, ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("idempotency-key").map(|k: Option<String>| match k {
        None => Err(ApiError::validation(
            "the Idempotency-Key header is required",
        )),
        Some(k) if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(ApiError::validation(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ))
        }
        Some(k) => Ok(k),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_are_classified() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Q {
            quantity: u32,
        }
        assert_eq!(parse_json::<Q>(b"{").unwrap_err().code, "invalid_json");
        assert_eq!(parse_json::<Q>(b"").unwrap_err().code, "invalid_json");
        assert_eq!(
            parse_json::<Q>(br#"{"quantity":"x"}"#).unwrap_err().code,
            "validation"
        );
        assert_eq!(
            parse_json::<Q>(br#"{"quantity":-1}"#).unwrap_err().code,
            "validation"
        );
        assert_eq!(parse_json::<Q>(br#"{}"#).unwrap_err().code, "validation");
        assert_eq!(parse_json::<Q>(br#"{"quantity":2}"#).unwrap().quantity, 2);
    }

    #[test]
    fn email_rules() {
        assert_eq!(email(" A@B.co ").unwrap(), "a@b.co");
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@.com", "a@b@c.de",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sku_paths_are_percent_decoded_and_validated() {
        assert_eq!(sku("A-1").unwrap().as_str(), "A-1");
        assert!(sku("a%20b").is_err());
        assert!(sku("%").is_err());
        assert_eq!(sku("A%2D1").unwrap().as_str(), "A-1");
        // A `%` escape next to a multi-byte character once sliced inside it and panicked.
        for raw in ["%aé", "%a<é>", "%é", "a%", "%%", "%ff", "%c3", "é%2"] {
            assert_eq!(sku(raw).unwrap_err().code, "validation", "{raw}");
        }
        assert!(uuid("cart id", "nope").is_err());
    }
}
