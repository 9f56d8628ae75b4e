//! CORS from `http.cors.allowed_origins`. An empty list turns CORS handling off entirely
//! (preflights then fall through to the API like any other `OPTIONS`). `"*"` in the list
//! allows every origin. Answers echo the caller's origin (never `*`) with `Vary: Origin`,
//! and expose `X-Request-Id` to scripts.

use super::request_id;
use crate::http::error::ApiError;
use warp::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use warp::reply::Response;

/// Methods a browser may use cross-origin.
pub const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
/// Request headers a browser may send cross-origin.
pub const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, x-request-id";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE_S: &str = "600";

/// The CORS policy of the edge.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Vec<String>,
    any: bool,
}

/// What to do with a request, as far as CORS goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a CORS preflight: pass it on (and decorate the answer).
    PassOn,
    /// A preflight from an allowed origin for an allowed method: answer 200.
    Allow,
    /// A preflight we refuse: answer 403 without any allow-origin header.
    Deny,
}

impl Cors {
    /// The policy, or `None` when the list is empty (CORS off).
    pub fn new(allowed_origins: &[String]) -> Option<Self> {
        if allowed_origins.is_empty() {
            return None;
        }
        let origins: Vec<String> = allowed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        let any = origins.iter().any(|o| o == "*");
        Some(Self { origins, any })
    }

    /// Whether `origin` (the `Origin` header) may call the API.
    pub fn allows(&self, origin: &HeaderValue) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        if origin.is_empty() || origin.eq_ignore_ascii_case("null") {
            return false;
        }
        self.any || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Classifies a request: only `OPTIONS` with both `Origin` and
    /// `Access-Control-Request-Method` is a preflight.
    pub fn decide(&self, method: &Method, headers: &HeaderMap) -> Decision {
        if method != Method::OPTIONS {
            return Decision::PassOn;
        }
        let (Some(origin), Some(wanted)) = (
            headers.get(header::ORIGIN),
            headers.get(header::ACCESS_CONTROL_REQUEST_METHOD),
        ) else {
            return Decision::PassOn;
        };
        let method_ok = wanted.to_str().is_ok_and(|m| {
            ALLOW_METHODS
                .split(", ")
                .any(|allowed| allowed.eq_ignore_ascii_case(m.trim()))
        });
        if method_ok && self.allows(origin) {
            Decision::Allow
        } else {
            Decision::Deny
        }
    }

    /// The answer to a preflight (`decision` is `Allow` or `Deny`).
    pub fn preflight(&self, decision: &Decision, origin: Option<&HeaderValue>) -> Response {
        match (decision, origin) {
            (Decision::Allow, Some(origin)) => {
                let mut resp = Response::new(bytes::Bytes::new().into());
                *resp.status_mut() = StatusCode::OK;
                let h = resp.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOW_METHODS),
                );
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static(ALLOW_HEADERS),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static(MAX_AGE_S),
                );
                h.insert(header::VARY, HeaderValue::from_static("origin"));
                resp
            }
            _ => {
                let mut resp = ApiError::new(
                    StatusCode::FORBIDDEN,
                    "cors_forbidden",
                    "this origin or method is not allowed to call the API cross-origin",
                )
                .into_response();
                resp.headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("origin"));
                resp
            }
        }
    }

    /// Adds the CORS headers of an actual (non-preflight) answer when the origin is
    /// allowed; leaves the answer alone otherwise.
    pub fn decorate(&self, origin: Option<&HeaderValue>, resp: &mut Response) {
        let h = resp.headers_mut();
        h.append(header::VARY, HeaderValue::from_static("origin"));
        let Some(origin) = origin.filter(|o| self.allows(o)) else {
            return;
        };
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(request_id::HEADER),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str]) -> Cors {
        Cors::new(&origins.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn preflight_headers(origin: &str, method: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(
            header::ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_str(method).unwrap(),
        );
        h
    }

    #[test]
    fn empty_list_is_off() {
        assert!(Cors::new(&[]).is_none());
    }

    #[test]
    fn preflights_are_allowed_or_denied_by_origin_and_method() {
        let c = policy(&["https://shop.example", "http://localhost:3000/"]);
        let opt = Method::OPTIONS;
        assert_eq!(
            c.decide(&opt, &preflight_headers("https://shop.example", "POST")),
            Decision::Allow
        );
        assert_eq!(
            c.decide(&opt, &preflight_headers("HTTPS://SHOP.EXAMPLE", "delete")),
            Decision::Allow
        );
        assert_eq!(
            c.decide(&opt, &preflight_headers("http://localhost:3000", "PUT")),
            Decision::Allow
        );
        assert_eq!(
            c.decide(&opt, &preflight_headers("https://evil.example", "GET")),
            Decision::Deny
        );
        assert_eq!(
            c.decide(&opt, &preflight_headers("null", "GET")),
            Decision::Deny
        );
        assert_eq!(
            c.decide(&opt, &preflight_headers("https://shop.example", "TRACE")),
            Decision::Deny
        );
        // Not preflights.
        assert_eq!(
            c.decide(
                &Method::GET,
                &preflight_headers("https://shop.example", "GET")
            ),
            Decision::PassOn
        );
        assert_eq!(c.decide(&opt, &HeaderMap::new()), Decision::PassOn);
    }

    #[test]
    fn wildcard_allows_any_real_origin() {
        let c = policy(&["*"]);
        assert!(c.allows(&HeaderValue::from_static("https://anything.example")));
        assert!(!c.allows(&HeaderValue::from_static("null")));
    }

    #[test]
    fn answers_carry_the_right_headers() {
        let c = policy(&["https://shop.example"]);
        let origin = HeaderValue::from_static("https://shop.example");
        let ok = c.preflight(&Decision::Allow, Some(&origin));
        assert_eq!(ok.status(), StatusCode::OK);
        let h = ok.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://shop.example"
        );
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        for name in [
            "authorization",
            "content-type",
            "idempotency-key",
            "x-request-id",
        ] {
            assert!(allowed.contains(name), "{name} missing from {allowed}");
        }
        assert!(h.contains_key(header::ACCESS_CONTROL_ALLOW_METHODS));

        let denied = c.preflight(
            &Decision::Deny,
            Some(&HeaderValue::from_static("https://evil.example")),
        );
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        assert!(!denied
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));

        let mut resp = Response::new(bytes::Bytes::new().into());
        c.decorate(Some(&origin), &mut resp);
        assert_eq!(
            resp.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://shop.example"
        );
        assert_eq!(
            resp.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-request-id"
        );

        let mut other = Response::new(bytes::Bytes::new().into());
        c.decorate(
            Some(&HeaderValue::from_static("https://evil.example")),
            &mut other,
        );
        assert!(!other
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }
}
