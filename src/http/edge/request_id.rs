//! Request ids: the client's `X-Request-Id` when it is 1..=128 visible ASCII characters,
//! otherwise a fresh random one. The id is echoed on every response and carried by the
//! request's tracing span and task-local context.

use warp::http::HeaderValue;

/// The header, lower-case as `http` wants it.
pub const HEADER: &str = "x-request-id";

/// The longest client-supplied id we accept.
pub const MAX_LEN: usize = 128;

/// The client's id, if it is acceptable: 1..=128 bytes, each a visible ASCII character
/// (`!` through `~`; no spaces, no control characters, no UTF-8).
pub fn accept(value: Option<&HeaderValue>) -> Option<String> {
    let bytes = value?.as_bytes();
    let ok = (1..=MAX_LEN).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic);
    // Every byte is ASCII, so the conversion cannot fail.
    ok.then(|| String::from_utf8_lossy(bytes).into_owned())
}

/// A new random id (a UUID v4 without hyphens: 32 lower-case hex digits).
pub fn generate() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The client's id if acceptable, else a generated one.
pub fn resolve(value: Option<&HeaderValue>) -> String {
    accept(value).unwrap_or_else(generate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &[u8]) -> HeaderValue {
        HeaderValue::from_bytes(s).unwrap()
    }

    #[test]
    fn accepts_visible_ascii_up_to_128() {
        assert_eq!(
            accept(Some(&hv(b"abc-123_X.y:z/~!"))).as_deref(),
            Some("abc-123_X.y:z/~!")
        );
        assert_eq!(accept(Some(&hv(b"a"))).as_deref(), Some("a"));
        let max = "x".repeat(MAX_LEN);
        assert_eq!(accept(Some(&hv(max.as_bytes()))), Some(max));
    }

    #[test]
    fn rejects_empty_long_spaces_controls_and_non_ascii() {
        assert_eq!(accept(None), None);
        assert_eq!(accept(Some(&hv(b""))), None);
        assert_eq!(accept(Some(&hv("x".repeat(MAX_LEN + 1).as_bytes()))), None);
        assert_eq!(accept(Some(&hv(b"has space"))), None);
        assert_eq!(accept(Some(&hv(b"tab\there"))), None);
        assert_eq!(accept(Some(&hv("caf\u{e9}".as_bytes()))), None);
        assert_eq!(accept(Some(&hv(b"\x80\xff"))), None);
    }

    #[test]
    fn generated_ids_are_unique_valid_and_used_as_fallback() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(accept(Some(&hv(a.as_bytes()))), Some(a));
        let r = resolve(Some(&hv(b"bad id")));
        assert_eq!(r.len(), 32);
        assert_eq!(resolve(Some(&hv(b"mine"))), "mine");
    }
}
