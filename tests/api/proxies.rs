//! Real clients behind real proxies (issue 14): with 127.0.0.1 trusted, the client
//! address comes from `X-Forwarded-For` / `Forwarded` and the rate limits key by it; the
//! same headers from an untrusted peer are ignored; one account's attempts are limited
//! whatever the address.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::*;
use crate::users::*;

async fn login_from(app: &TestApp, xff: &str, email: &str, password: &str) -> Resp {
    send(
        app.request(Method::POST, "/v1/auth/login")
            .header("x-forwarded-for", xff)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

fn limited_app(trusted: &str) -> AppOpts {
    AppOpts::new()
        .config(format!(
            "[http]\ntrusted_proxies = [{trusted}]\n[rate_limit]\nenabled = true\nauth_burst = 2\nauth_per_minute = 1\naccount_burst = 100\naccount_per_minute = 100\n"
        ))
        .env("EMPORIUM_RATE_LIMIT__ENABLED", true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_clients_behind_a_trusted_proxy_get_their_own_buckets() {
    let app = spawn_app(limited_app("\"127.0.0.1/32\"")).await;
    // Client A spends its burst of 2 and is limited.
    for _ in 0..2 {
        login_from(&app, "203.0.113.1", "a@example.com", PASSWORD)
            .await
            .expect_error(401, "invalid_credentials");
    }
    login_from(&app, "203.0.113.1", "a@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    // Client B, behind the same proxy, is not.
    login_from(&app, "203.0.113.2", "b@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
    // A forged left part does not help A: the rightmost untrusted hop counts.
    login_from(&app, "198.51.100.7, 203.0.113.1", "a@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
    // RFC 7239 names client C.
    send(
        app.request(Method::POST, "/v1/auth/login")
            .header("forwarded", "for=\"203.0.113.3:4711\";proto=http")
            .json(&json!({"email": "c@example.com", "password": PASSWORD})),
    )
    .await
    .expect_error(401, "invalid_credentials");

    // The access log has both the peer and the client.
    let deadline = Deadline::new(
        Duration::from_secs(10),
        "an access line with peer and client",
    );
    loop {
        let log = std::fs::read_to_string(app.stdout_log()).unwrap_or_default();
        if log.lines().any(|l| {
            l.contains("emporium::access")
                && l.contains("\"peer\":\"127.0.0.1\"")
                && l.contains("\"client\":\"203.0.113.3\"")
        }) {
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    // Nothing trusted: every request from 127.0.0.1 is one client, whatever it claims.
    let app = spawn_app(limited_app("")).await;
    for xff in ["203.0.113.1", "203.0.113.2"] {
        login_from(&app, xff, "a@example.com", PASSWORD)
            .await
            .expect_error(401, "invalid_credentials");
    }
    login_from(&app, "203.0.113.3", "a@example.com", PASSWORD)
        .await
        .expect_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_accounts_attempts_are_limited_whatever_the_address() {
    let app = spawn_app(
        AppOpts::new()
            .config("[http]\ntrusted_proxies = [\"127.0.0.1\"]\n[rate_limit]\nenabled = true\nauth_burst = 100\nauth_per_minute = 100\naccount_burst = 3\naccount_per_minute = 1\n")
            .env("EMPORIUM_RATE_LIMIT__ENABLED", true),
    )
    .await;
    // Register counts as one attempt on the account.
    app.register_ok("victim@example.com").await;
    for i in 1..=2 {
        login_from(
            &app,
            &format!("203.0.113.{i}"),
            "victim@example.com",
            "wrong password!",
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
    // A third address, another spelling of the email: still the same account.
    login_from(
        &app,
        "203.0.113.9",
        " Victim@Example.COM ",
        "wrong password!",
    )
    .await
    .expect_error(429, "rate_limited");
    // Other accounts, from the same addresses, are not affected.
    login_from(&app, "203.0.113.1", "someone@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_from_a_second_address_that_is_not_trusted_are_ignored() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Only 127.0.0.1 is trusted; 127.0.0.2 claims a new client on every login.
    let app = spawn_app(limited_app("\"127.0.0.1/32\"")).await;
    let addr = crate::hostile::socket_addr(&app);
    let mut statuses = Vec::new();
    for i in 1..=3 {
        let body = r#"{"email":"a@example.com","password":"correct horse battery"}"#;
        let req = format!(
            "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.{i}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut s = crate::connections::connect_from("127.0.0.2", addr).await;
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("answered")
            .unwrap();
        let text = String::from_utf8_lossy(&out).into_owned();
        statuses.push(text.split_whitespace().nth(1).unwrap_or("").to_string());
    }
    assert_eq!(statuses, ["401", "401", "429"], "one bucket for 127.0.0.2");
    // While 127.0.0.1, trusted, still gets a bucket per forwarded client.
    login_from(&app, "203.0.113.1", "a@example.com", PASSWORD)
        .await
        .expect_error(401, "invalid_credentials");
}
