//! Request extraction: bounded JSON bodies, ids, the operator token, and the
//! idempotency key. Each yields `Result<_, ApiError>` so handlers answer with the
//! exact error instead of a generic rejection.

use super::error::ApiError;
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

pub fn uuid(what: &str, s: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s).map_err(|_| {
        ApiError::validation(format!(
            "{what} must be a UUID, got {:?}",
            s.chars().take(64).collect::<String>()
        ))
    })
}

pub fn sku(s: &str) -> Result<Sku, ApiError> {
    let decoded = percent_decode(s);
    Sku::parse(&decoded).map_err(ApiError::validation)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The caller is the operator: `Authorization: Bearer <admin token>`.
pub fn operator(
    token: std::sync::Arc<String>,
) -> impl Filter<Extract = (Result<(), ApiError>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization").map(move |h: Option<String>| {
        let Some(h) = h else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this route needs Authorization: Bearer <operator token>",
            ));
        };
        let given = h.strip_prefix("Bearer ").unwrap_or("").trim();
        if constant_time_eq(given.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the bearer token is not valid",
            ))
        }
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    // Compare digests so neither length nor content leaks through timing.
    let (x, y) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
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
    fn sku_paths_are_percent_decoded_and_validated() {
        assert_eq!(sku("A-1").unwrap().as_str(), "A-1");
        assert!(sku("a%20b").is_err());
        assert!(sku("%").is_err());
        assert!(uuid("cart id", "nope").is_err());
    }
}
