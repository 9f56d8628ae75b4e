//! The production HTTP edge: rate limits, request ids and the access log,
//! security headers, CORS and body limits on the auth routes.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::*;

/// `Retry-After` as whole seconds, asserting it is there and at least 1.
#[track_caller]
fn retry_after(resp: &Resp) -> u64 {
    let v = resp
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("{} without Retry-After: {}", resp.status, resp.text));
    let secs: u64 = v
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("Retry-After is not whole seconds: {v:?}"));
    assert!(secs >= 1, "Retry-After ≥ 1: {secs}");
    secs
}

fn request_id(resp: &Resp) -> String {
    resp.headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no X-Request-Id on a {}: {}", resp.status, resp.text))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_burst_is_rate_limited_then_recovers() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_RATE_LIMIT__ENABLED", true)
            .env("EMPORIUM_RATE_LIMIT__AUTH_BURST", 3)
            .env("EMPORIUM_RATE_LIMIT__AUTH_PER_MINUTE", 60),
    )
    .await;
    // Registering takes one of the three.
    app.register_ok("burst@example.com").await;

    let logins = (0..10).map(|_| app.login("burst@example.com", PASSWORD));
    let resps = futures::future::join_all(logins).await;
    let ok = resps.iter().filter(|r| r.status == 200).count();
    let limited: Vec<&Resp> = resps.iter().filter(|r| r.status == 429).collect();
    for r in &resps {
        assert!(
            matches!(r.status, 200 | 429),
            "a login in the burst: {} {}",
            r.status,
            r.text
        );
        request_id(r);
    }
    assert!(
        ok >= 2,
        "the burst allowance lets the first ones through: {ok} of 10"
    );
    assert!(
        !limited.is_empty(),
        "10 logins against a burst of 3 were not limited"
    );
    let mut wait = 0;
    for r in &limited {
        r.expect_error(429, "rate_limited");
        wait = wait.max(retry_after(r));
    }
    assert!(
        wait <= 5,
        "60 per minute refills a login every second, yet Retry-After is {wait}"
    );

    // Other route groups are not affected by the auth limit.
    app.get("/v1/products").await.expect(200);

    // After Retry-After seconds, logging in works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    token_pair(&app.login("burst@example.com", PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_general_limit_is_per_ip_for_anonymous_and_per_user_otherwise() {
    let app = spawn_app(
        roomy_opts()
            .env("EMPORIUM_RATE_LIMIT__ENABLED", true)
            .env("EMPORIUM_RATE_LIMIT__BURST", 20)
            .env("EMPORIUM_RATE_LIMIT__PER_SECOND", 1),
    )
    .await;
    // Register and log in, waiting out a 429 should the readiness polls of
    // the harness have used up the IP's bucket.
    let email = "own-bucket@example.com";
    let deadline = Deadline::new(Duration::from_secs(60), "registering outside the limit");
    loop {
        let resp = app.register(email, PASSWORD).await;
        if resp.status != 429 {
            resp.expect(201);
            break;
        }
        deadline.tick(Duration::from_secs(retry_after(&resp))).await;
    }
    let deadline = Deadline::new(Duration::from_secs(60), "logging in outside the limit");
    let access = loop {
        let resp = app.login(email, PASSWORD).await;
        if resp.status != 429 {
            break token_pair(&resp).0;
        }
        deadline.tick(Duration::from_secs(retry_after(&resp))).await;
    };

    let gets = (0..40).map(|_| app.get("/v1/products"));
    let resps = futures::future::join_all(gets).await;
    let limited: Vec<&Resp> = resps.iter().filter(|r| r.status == 429).collect();
    assert!(
        resps.iter().all(|r| matches!(r.status, 200 | 429)),
        "statuses: {:?}",
        resps.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        !limited.is_empty(),
        "40 anonymous requests against a burst of 20"
    );
    for r in &limited {
        r.expect_error(429, "rate_limited");
        retry_after(r);
    }
    // The user has a bucket of their own.
    app.get_as(&access, "/v1/products").await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_request_id_and_the_access_log_line_carries_it() {
    let app = spawn_app(roomy_opts()).await;
    let user = app.shopper("traced@example.com").await;
    let cart = app.cart_as(Some(&user.access), "", 0).await;

    // Generated ids on every kind of response.
    let resps = vec![
        app.get("/health/live").await,
        app.get("/metrics").await,
        app.get("/openapi.json").await,
        app.get("/v1/nowhere").await,
        app.get("/v1/products/no-such-sku").await,
        app.get("/v1/me").await,
        app.me("not-a-jwt").await,
        app.post_json("/v1/carts/not-a-uuid/items", &json!({}))
            .await,
        app.login("nobody@example.com", PASSWORD).await,
        send(app.request(Method::PATCH, &format!("/v1/carts/{cart}"))).await,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for r in &resps {
        let id = request_id(r);
        assert!(
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()),
            "generated X-Request-Id {id:?}"
        );
        assert!(seen.insert(id.clone()), "X-Request-Id {id} given twice");
    }

    // A client id is echoed, on success and on errors.
    let rid = format!("it-{}", new_key());
    let resp = send(
        app.with_token(
            Some(&user.access),
            Method::GET,
            &format!("/v1/carts/{cart}"),
        )
        .header("X-Request-Id", &rid),
    )
    .await;
    resp.expect(200);
    assert_eq!(request_id(&resp), rid);
    let rid_404 = format!("it-404-{}", new_key());
    let resp = send(
        app.request(Method::GET, "/v1/nowhere")
            .header("X-Request-Id", &rid_404),
    )
    .await;
    assert_eq!(resp.status, 404);
    assert_eq!(request_id(&resp), rid_404);

    // An unusable id is replaced.
    let long = "x".repeat(129);
    let resp = send(
        app.request(Method::GET, "/health/live")
            .header("X-Request-Id", &long),
    )
    .await;
    let id = request_id(&resp);
    assert!(id != long && !id.is_empty(), "a 129-char id is not echoed");

    // Exactly one access-log line per request, with the same id.
    let line = access_line(&app, &rid).await;
    let f = |k: &str| field(&line, k).map(scalar);
    assert_eq!(f("request_id").as_deref(), Some(rid.as_str()), "{line}");
    assert_eq!(f("method").as_deref(), Some("GET"), "{line}");
    assert_eq!(f("route").as_deref(), Some("GET /v1/carts/{id}"), "{line}");
    assert_eq!(f("status").as_deref(), Some("200"), "{line}");
    assert_eq!(f("user_id").as_deref(), Some(user.id.as_str()), "{line}");
    assert!(
        field(&line, "latency_ms").is_some_and(|v| v.is_number()),
        "latency_ms: {line}"
    );
    if let Some(level) = line.get("level") {
        assert_eq!(
            level.as_str().map(str::to_ascii_uppercase).as_deref(),
            Some("INFO")
        );
    }
    let line = access_line(&app, &rid_404).await;
    assert_eq!(
        field(&line, "status").map(scalar).as_deref(),
        Some("404"),
        "{line}"
    );
    assert!(field(&line, "user_id").is_none_or(Value::is_null), "{line}");
}

/// A field of a JSON log line, at the top, in `fields`, or in a span.
fn field<'a>(line: &'a Value, key: &str) -> Option<&'a Value> {
    line.get(key)
        .or_else(|| line.get("fields").and_then(|f| f.get(key)))
        .or_else(|| line.get("span").and_then(|s| s.get(key)))
        .or_else(|| {
            line.get("spans")
                .and_then(Value::as_array)
                .and_then(|spans| spans.iter().rev().find_map(|s| s.get(key)))
        })
}

fn scalar(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Waits (bounded) for the one `emporium::access` line of request `rid` in
/// the child's stdout.
async fn access_line(app: &TestApp, rid: &str) -> Value {
    let deadline = Deadline::new(
        Duration::from_secs(10),
        format!("the access-log line of {rid} on stdout"),
    );
    loop {
        let text = std::fs::read_to_string(app.stdout_log()).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter(|l| l.contains(rid))
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "emporium::access")
            .filter(|v| field(v, "request_id").map(scalar).as_deref() == Some(rid))
            .collect();
        assert!(
            lines.len() <= 1,
            "more than one access-log line for {rid}: {lines:?}"
        );
        if let Some(line) = lines.into_iter().next() {
            return line;
        }
        if deadline.expired() {
            panic!(
                "no JSON access-log line (target emporium::access) with request_id {rid} on stdout:\n{}",
                text.lines().rev().take(20).collect::<Vec<_>>().join("\n")
            );
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_auth_body_limits() {
    let app = spawn_app(AppOpts::new()).await;
    let resps = vec![
        app.get("/health/live").await,
        app.get("/v1/nowhere").await,
        app.get("/v1/me").await,
        app.login("nobody@example.com", PASSWORD).await,
    ];
    for r in &resps {
        let h = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            h("x-content-type-options"),
            Some("nosniff"),
            "on a {}",
            r.status
        );
        assert_eq!(
            h("referrer-policy"),
            Some("no-referrer"),
            "on a {}",
            r.status
        );
        assert_eq!(h("strict-transport-security"), None, "HSTS without TLS");
    }

    // Without configured origins there is no CORS.
    let resp = preflight(&app, "https://shop.example", "GET", "/v1/products").await;
    assert!(
        resp.headers.get("access-control-allow-origin").is_none(),
        "CORS is off by default: {:?}",
        resp.headers
    );

    // /v1/auth/* takes at most 4096 bytes; other routes 64 KiB.
    let big = |n: usize| json!({"email": "big@example.com", "password": "p".repeat(n)}).to_string();
    for route in ["login", "register", "refresh", "logout"] {
        let resp = raw_post(&app, &format!("/v1/auth/{route}"), big(5000)).await;
        resp.expect_error(413, "payload_too_large");
        request_id(&resp);
    }
    let resp = raw_post(&app, "/v1/auth/login", big(4000)).await;
    assert!(
        matches!(resp.status, 400 | 401),
        "a 4 KB login body is under the limit: {} {}",
        resp.status,
        resp.text
    );
    let cart = app.create_cart().await;
    let padded = json!({"sku": "x", "quantity": 1, "pad": "p".repeat(5000)}).to_string();
    let resp = raw_post(&app, &format!("/v1/carts/{cart}/items"), padded).await;
    assert_ne!(
        resp.status, 413,
        "the auth limit applies to /v1/auth/* only: {}",
        resp.text
    );
    app.get("/health/live").await.expect(200);
}

/// A POST on a connection of its own: the server may close it after a 413.
async fn raw_post(app: &TestApp, path: &str, body: String) -> Resp {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    send(
        client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
}

async fn preflight(app: &TestApp, origin: &str, method: &str, path: &str) -> Resp {
    send(
        app.request(Method::OPTIONS, path)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origins_only() {
    let app = spawn_app(AppOpts::new().env(
        "EMPORIUM_HTTP__CORS__ALLOWED_ORIGINS",
        r#"["https://shop.example"]"#,
    ))
    .await;
    let allow_origin = |r: &Resp| {
        r.headers
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };

    for (method, path) in [
        ("GET", "/v1/products"),
        ("POST", "/v1/carts"),
        ("PATCH", "/v1/me"),
    ] {
        let resp = preflight(&app, "https://shop.example", method, path).await;
        assert_eq!(
            resp.status, 200,
            "preflight {method} {path}: {:?}",
            resp.headers
        );
        assert_eq!(
            allow_origin(&resp).as_deref(),
            Some("https://shop.example"),
            "preflight {method} {path}: {:?}",
            resp.headers
        );
        let methods = resp
            .headers
            .get("access-control-allow-methods")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_uppercase();
        assert!(
            methods.contains(method),
            "allow-methods {methods:?} for {method}"
        );
        let headers = resp
            .headers
            .get("access-control-allow-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "allow-headers {headers:?}"
        );
    }
    // The actual request from the allowed origin.
    let resp = send(
        app.request(Method::GET, "/v1/products")
            .header("Origin", "https://shop.example"),
    )
    .await;
    resp.expect(200);
    assert_eq!(allow_origin(&resp).as_deref(), Some("https://shop.example"));

    // Any other origin gets no allowance.
    let resp = preflight(&app, "https://evil.example", "GET", "/v1/products").await;
    assert!(
        resp.status == 403 || allow_origin(&resp).is_none(),
        "preflight from another origin: {} {:?}",
        resp.status,
        resp.headers
    );
    assert!(
        !matches!(
            allow_origin(&resp).as_deref(),
            Some("*" | "https://evil.example")
        ),
        "{:?}",
        resp.headers
    );
    let resp = send(
        app.request(Method::GET, "/v1/products")
            .header("Origin", "https://evil.example"),
    )
    .await;
    assert!(
        !matches!(
            allow_origin(&resp).as_deref(),
            Some("*" | "https://evil.example")
        ),
        "{:?}",
        resp.headers
    );
}
