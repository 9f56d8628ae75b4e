//! In-process tests of the edge pipeline: `Edge::handle` on a real `App`, no sockets.

use super::*;
use crate::app::config::{Config, Secret};
use http_body_util::BodyExt;
use std::net::Ipv4Addr;

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const OTHER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

struct Fixture {
    app: App,
    edge: Edge,
    _dir: tempfile::TempDir,
}

async fn fixture(tune: impl FnOnce(&mut Config)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.data_dir = dir.path().to_owned();
    cfg.auth.admin_token = Secret("t".into());
    tune(&mut cfg);
    let app = App::build(cfg).await.unwrap();
    app.recover().await;
    let edge = Edge::new(&app, false);
    Fixture {
        app,
        edge,
        _dir: dir,
    }
}

fn req(method: &str, path: &str) -> warp::http::request::Builder {
    Request::builder().method(method).uri(path)
}

async fn send(
    f: &Fixture,
    r: warp::http::request::Builder,
    body: &str,
    peer: IpAddr,
) -> (Response, serde_json::Value) {
    let resp = f.edge.handle(r.body(body.to_owned()).unwrap(), peer).await;
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (Response::from_parts(parts, bytes.into()), json)
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn request_ids_and_security_headers_are_on_every_response() {
    let f = fixture(|_| {}).await;
    let (ok, _) = send(
        &f,
        req("GET", "/health/live").header("x-request-id", "abc-123"),
        "",
        PEER,
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(header(&ok, "x-request-id"), Some("abc-123"));
    assert_eq!(header(&ok, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&ok, "referrer-policy"), Some("no-referrer"));
    assert_eq!(
        header(&ok, "strict-transport-security"),
        None,
        "no HSTS without TLS"
    );

    let (missing, body) = send(
        &f,
        req("GET", "/nope").header("x-request-id", "bad id"),
        "",
        PEER,
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(body["error"]["code"], "not_found");
    let generated = header(&missing, "x-request-id").unwrap();
    assert_eq!(generated.len(), 32);
    assert_eq!(header(&missing, "x-content-type-options"), Some("nosniff"));

    let (other, _) = send(&f, req("GET", "/health/live"), "", PEER).await;
    assert_ne!(header(&other, "x-request-id"), Some(generated));
    f.app.shutdown().await;
}

#[tokio::test]
async fn hsts_only_with_tls() {
    let f = fixture(|_| {}).await;
    let tls_edge = Edge::new(&f.app, true);
    let resp = tls_edge
        .handle(
            req("GET", "/health/live").body(String::new()).unwrap(),
            PEER,
        )
        .await;
    assert_eq!(header(&resp, "strict-transport-security"), Some(HSTS));
    f.app.shutdown().await;
}

#[tokio::test]
async fn auth_routes_are_limited_per_ip_with_retry_after() {
    let f = fixture(|c| {
        c.rate_limit.auth_per_minute = 60;
        c.rate_limit.auth_burst = 2;
    })
    .await;
    let login = || req("POST", "/v1/auth/login").header("content-type", "application/json");
    let body = r#"{"email":"nobody@example.com","password":"wrong-password-1"}"#;
    for _ in 0..2 {
        let (r, _) = send(&f, login(), body, PEER).await;
        assert_ne!(r.status(), 429);
    }
    let (limited, json) = send(&f, login().header("x-request-id", "rl-1"), body, PEER).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(json["error"]["code"], "rate_limited");
    let retry: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(header(&limited, "x-request-id"), Some("rl-1"));
    // Register shares the budget; another IP has its own; probes are exempt.
    let (reg, _) = send(&f, req("POST", "/v1/auth/register"), body, PEER).await;
    assert_eq!(reg.status(), 429);
    let (other, _) = send(&f, login(), body, OTHER).await;
    assert_ne!(other.status(), 429);
    let (live, _) = send(&f, req("GET", "/health/live"), "", PEER).await;
    assert_eq!(live.status(), 200);
    // After the wait, requests conform again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (again, _) = send(&f, login(), body, PEER).await;
    assert_ne!(again.status(), 429);
    f.app.shutdown().await;
}

#[tokio::test]
async fn default_group_is_keyed_by_user_when_the_token_is_valid() {
    let f = fixture(|c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 2;
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let roles = std::collections::BTreeSet::from([crate::domain::user::Role::Shopper]);
    let token = f.app.identity.keys.issue(uuid::Uuid::new_v4(), &roles, now);
    let anon = || req("GET", "/v1/products");
    for _ in 0..2 {
        assert_eq!(send(&f, anon(), "", PEER).await.0.status(), 200);
    }
    assert_eq!(send(&f, anon(), "", PEER).await.0.status(), 429);
    // The same IP with a valid token is a different client...
    let authed = || req("GET", "/v1/products").header("authorization", format!("Bearer {token}"));
    for _ in 0..2 {
        assert_eq!(send(&f, authed(), "", PEER).await.0.status(), 200);
    }
    assert_eq!(send(&f, authed(), "", PEER).await.0.status(), 429);
    // ...and the same user from another IP shares the user's budget.
    assert_eq!(send(&f, authed(), "", OTHER).await.0.status(), 429);
    // An invalid token counts against the IP.
    let forged = req("GET", "/v1/products").header("authorization", "Bearer not.a.jwt");
    assert_eq!(send(&f, forged, "", PEER).await.0.status(), 429);
    f.app.shutdown().await;
}

#[tokio::test]
async fn disabled_rate_limit_never_answers_429() {
    let f = fixture(|c| {
        c.rate_limit.enabled = false;
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 1;
    })
    .await;
    for _ in 0..5 {
        assert_eq!(
            send(&f, req("GET", "/v1/products"), "", PEER)
                .await
                .0
                .status(),
            200
        );
    }
    f.app.shutdown().await;
}

#[tokio::test]
async fn auth_bodies_over_the_auth_limit_are_413_up_front() {
    let f = fixture(|c| c.http.max_auth_body_bytes = 100).await;
    let big = "x".repeat(101);
    let r = req("POST", "/v1/auth/register").header("content-length", "101");
    let (resp, json) = send(&f, r, &big, PEER).await;
    assert_eq!(resp.status(), 413);
    assert_eq!(json["error"]["code"], "payload_too_large");
    assert_eq!(header(&resp, "connection"), Some("close"));
    assert!(header(&resp, "x-request-id").is_some());
    // The same size elsewhere is under the general limit.
    let r = req("POST", "/v1/carts").header("content-length", "101");
    assert_ne!(send(&f, r, &big, PEER).await.0.status(), 413);
    f.app.shutdown().await;
}

#[tokio::test]
async fn cors_preflight_and_actual_requests() {
    let f = fixture(|c| c.http.cors.allowed_origins = vec!["https://shop.example".into()]).await;
    let pre = |origin: &str| {
        req("OPTIONS", "/v1/carts")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
    };
    let (ok, _) = send(&f, pre("https://shop.example"), "", PEER).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        header(&ok, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert!(header(&ok, "access-control-allow-headers")
        .unwrap()
        .contains("idempotency-key"));
    assert!(header(&ok, "x-request-id").is_some());

    let (denied, json) = send(&f, pre("https://evil.example"), "", PEER).await;
    assert_eq!(denied.status(), 403);
    assert_eq!(json["error"]["code"], "cors_forbidden");
    assert_eq!(header(&denied, "access-control-allow-origin"), None);

    let (actual, _) = send(
        &f,
        req("GET", "/v1/products").header("origin", "https://shop.example"),
        "",
        PEER,
    )
    .await;
    assert_eq!(actual.status(), 200);
    assert_eq!(
        header(&actual, "access-control-allow-origin"),
        Some("https://shop.example")
    );
    assert_eq!(
        header(&actual, "access-control-expose-headers"),
        Some("x-request-id")
    );
    let (foreign, _) = send(
        &f,
        req("GET", "/v1/products").header("origin", "https://evil.example"),
        "",
        PEER,
    )
    .await;
    assert_eq!(header(&foreign, "access-control-allow-origin"), None);
    f.app.shutdown().await;
}

#[tokio::test]
async fn without_cors_options_falls_through_to_the_api() {
    let f = fixture(|_| {}).await;
    let r = req("OPTIONS", "/v1/carts")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST");
    let (resp, json) = send(&f, r, "", PEER).await;
    assert!(
        matches!(resp.status().as_u16(), 404 | 405),
        "{}",
        resp.status()
    );
    assert!(json["error"]["code"].is_string());
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    f.app.shutdown().await;
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn one_json_access_line_per_request_with_the_request_id() {
    let f = fixture(|_| {}).await;
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_writer(logs.clone())
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (resp, _) = send(
        &f,
        req("GET", "/v1/products/P-1").header("x-request-id", "log-me-1"),
        "",
        PEER,
    )
    .await;
    assert_eq!(resp.status(), 404);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let user = uuid::Uuid::new_v4();
    let token = f.app.identity.keys.issue(user, &Default::default(), now);
    let (resp2, _) = send(
        &f,
        req("GET", "/health/live").header("authorization", format!("Bearer {token}")),
        "",
        PEER,
    )
    .await;
    let id2 = header(&resp2, "x-request-id").unwrap().to_owned();

    let text = String::from_utf8(logs.0.lock().clone()).unwrap();
    let access: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "emporium::access")
        .collect();
    assert_eq!(access.len(), 2, "{text}");
    let a = &access[0];
    assert_eq!(a["request_id"], "log-me-1");
    assert_eq!(a["span"]["request_id"], "log-me-1");
    assert_eq!(a["method"], "GET");
    assert_eq!(a["route"], "GET /v1/products/{sku}");
    assert_eq!(a["status"], 404);
    assert_eq!(a["level"], "INFO");
    assert!(a["latency_ms"].as_f64().is_some());
    assert!(a.get("user_id").is_none(), "{a}");
    // Health is not rate limited, so the edge did not verify the token: the user id is
    // only there when a handler (or the limiter) authenticated the caller.
    assert_eq!(access[1]["request_id"], id2.as_str());
    f.app.shutdown().await;
}

#[tokio::test]
async fn the_limiter_records_the_verified_user_for_the_access_log() {
    let f = fixture(|_| {}).await;
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(logs.clone())
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let user = uuid::Uuid::new_v4();
    let token = f.app.identity.keys.issue(user, &Default::default(), now);
    send(
        &f,
        req("GET", "/v1/products").header("authorization", format!("Bearer {token}")),
        "",
        PEER,
    )
    .await;
    let text = String::from_utf8(logs.0.lock().clone()).unwrap();
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "emporium::access")
        .unwrap_or_else(|| panic!("no access line in {text}"));
    assert_eq!(line["user_id"], user.to_string().as_str());
    assert_eq!(line["route"], "GET /v1/products");
    f.app.shutdown().await;
}

#[tokio::test]
async fn with_every_hashing_slot_taken_login_and_register_are_503_overloaded() {
    let f = fixture(|c| c.auth.max_concurrent_hashes = 1).await;
    let held = f.edge.hashes.try_acquire().expect("the only slot");
    let body = r#"{"email":"slots@example.com","password":"correct horse battery"}"#;
    for path in ["/v1/auth/login", "/v1/auth/register"] {
        let (resp, json) = send(&f, req("POST", path), body, PEER).await;
        assert_eq!(resp.status(), 503, "{path}: {json}");
        assert_eq!(json["error"]["code"], "overloaded", "{path}: {json}");
        assert_eq!(header(&resp, "retry-after"), Some("1"));
    }
    // Other routes do not need a slot.
    let (resp, _) = send(&f, req("GET", "/v1/products"), "", PEER).await;
    assert_eq!(resp.status(), 200);
    drop(held);
    let (resp, json) = send(&f, req("POST", "/v1/auth/register"), body, PEER).await;
    assert_eq!(resp.status(), 201, "{json}");
    f.app.shutdown().await;
}

#[tokio::test]
async fn a_panic_in_the_pipeline_is_a_500_internal_with_the_edge_headers() {
    let f = fixture(|_| {}).await;
    let (resp, json) = send(
        &f,
        req("GET", "/v1/products")
            .header("x-request-id", "p-1")
            .header(FAULT_HEADER, "panic"),
        "",
        PEER,
    )
    .await;
    assert_eq!(resp.status(), 500, "{json}");
    assert_eq!(json["error"]["code"], "internal");
    assert_eq!(header(&resp, "x-request-id"), Some("p-1"));
    assert_eq!(header(&resp, "x-content-type-options"), Some("nosniff"));
    f.app.shutdown().await;
}
