//! Token lifecycle and credentials: expiry, refresh rotation, reuse
//! detection, logout, forged tokens, login and registration rules, and the
//! profile.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::*;

fn claims(token: &str) -> (Value, Value) {
    let (header, payload, _) = jwt_parts(token);
    (header, payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_token_expired() {
    let app = spawn_app(roomy_opts().env("EMPORIUM_AUTH__ACCESS_TOKEN_TTL_S", 1)).await;
    let id = app.register_ok("late@example.com").await;
    let resp = app.login("late@example.com", PASSWORD).await;
    let (access, refresh) = token_pair(&resp);
    assert_eq!(resp.json["expires_in"], 1, "configured TTL: {}", resp.text);
    let (_, payload) = claims(&access);
    assert_eq!(payload["sub"], id.as_str());
    assert_eq!(
        payload["exp"].as_u64().unwrap() - payload["iat"].as_u64().unwrap(),
        1
    );

    // exp is at most 1 s after issue and there is no leeway.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.me(&access).await.expect_error(401, "token_expired");
    send(app.with_token(Some(&access), reqwest::Method::POST, "/v1/carts"))
        .await
        .expect_error(401, "token_expired");

    // The refresh token outlives the access token.
    let (fresh, _) = token_pair(&app.refresh(&refresh).await);
    assert_ne!(fresh, access);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_issues_a_jwt_and_refresh_rotates_the_pair() {
    let app = spawn_app(roomy_opts()).await;
    let user = app.shopper("rotate@example.com").await;

    let (header, payload) = claims(&user.access);
    assert_eq!(header["alg"], "HS256", "{header}");
    assert!(
        header["kid"].as_str().is_some_and(|k| !k.is_empty()),
        "kid: {header}"
    );
    assert_eq!(payload["sub"], user.id.as_str(), "{payload}");
    assert_eq!(payload["roles"], json!(["shopper"]), "{payload}");
    let (iat, exp) = (
        payload["iat"].as_u64().expect("iat"),
        payload["exp"].as_u64().expect("exp"),
    );
    assert_eq!(exp - iat, 900, "default access token lifetime: {payload}");
    assert!(payload["jti"].as_str().is_some_and(|j| !j.is_empty()));

    let resp = app.refresh(&user.refresh).await;
    let (access1, refresh1) = token_pair(&resp);
    assert_eq!(resp.json["expires_in"], 900);
    assert_ne!(access1, user.access, "a new access token");
    assert_ne!(refresh1, user.refresh, "a new refresh token");
    assert_ne!(claims(&access1).1["jti"], payload["jti"]);
    let me = app.me(&access1).await;
    assert_eq!(me.expect(200)["user_id"], user.id.as_str());

    // The new refresh token rotates again; the chain goes on.
    let (access2, refresh2) = token_pair(&app.refresh(&refresh1).await);
    assert_ne!(refresh2, refresh1);
    app.me(&access2).await.expect(200);

    // Unknown refresh tokens are refused.
    for bogus in ["nope", "", &format!("{}.{}", new_key(), "ab".repeat(32))] {
        app.refresh(bogus)
            .await
            .expect_error_in(&[400, 401], &["invalid_token", "validation"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_refresh_token_revokes_its_family() {
    let app = spawn_app(roomy_opts()).await;
    let user = app.shopper("reuse@example.com").await;
    let r0 = user.refresh.clone();
    let (_, r1) = token_pair(&app.refresh(&r0).await);

    // r0 is used up: presenting it again is theft detection.
    app.refresh(&r0)
        .await
        .expect_error(401, "refresh_token_reused");
    // ...and the newest token of the family is revoked with it.
    app.refresh(&r1).await.expect_error(401, "invalid_token");
    app.refresh(&r0)
        .await
        .expect_error_in(&[401], &["invalid_token", "refresh_token_reused"]);

    // The user can still log in and start a new family.
    let again = app.login_ok(&user.id, &user.email).await;
    token_pair(&app.refresh(&again.refresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_family() {
    let app = spawn_app(roomy_opts()).await;
    let user = app.shopper("bye@example.com").await;

    // Log out right after login.
    let resp = app.logout(&user.refresh).await;
    assert_eq!(resp.status, 204, "logout: {}", resp.text);
    app.refresh(&user.refresh)
        .await
        .expect_error(401, "invalid_token");

    // Log out after a rotation: the whole family goes.
    let session = app.login_ok(&user.id, &user.email).await;
    let (_, r1) = token_pair(&app.refresh(&session.refresh).await);
    let resp = app.logout(&r1).await;
    assert_eq!(resp.status, 204, "logout: {}", resp.text);
    app.refresh(&r1).await.expect_error(401, "invalid_token");
    app.refresh(&session.refresh)
        .await
        .expect_error_in(&[401], &["invalid_token", "refresh_token_reused"]);

    // Another session of the same user is untouched.
    let other = app.login_ok(&user.id, &user.email).await;
    token_pair(&app.refresh(&other.refresh).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_tokens_are_invalid_token() {
    let app = spawn_app(roomy_opts()).await;
    let user = app.shopper("forger@example.com").await;
    let victim = app.shopper("victim@example.com").await;
    let (header, payload, signature) = jwt_parts(&user.access);
    let kid = header["kid"].as_str().expect("kid").to_string();
    let random_sig = b64url(uuid::Uuid::new_v4().as_bytes()).repeat(2);

    let mut admin_payload = payload.clone();
    admin_payload["roles"] = json!(["shopper", "operator", "admin"]);
    let mut victim_payload = payload.clone();
    victim_payload["sub"] = json!(victim.id);
    let mut later_payload = payload.clone();
    later_payload["exp"] = json!(payload["exp"].as_u64().unwrap() + 86_400);
    let segments: Vec<&str> = user.access.split('.').collect();
    let flipped = {
        let mut p: Vec<char> = segments[1].chars().collect();
        let i = p.len() / 2;
        p[i] = if p[i] == 'A' { 'B' } else { 'A' };
        let p: String = p.into_iter().collect();
        format!("{}.{p}.{}", segments[0], segments[2])
    };

    let forged: Vec<(&str, String)> = vec![
        (
            "signed by an unknown key (same kid)",
            jwt_from(&header, &payload, &random_sig),
        ),
        (
            "signed by an unknown key (unknown kid)",
            jwt_from(
                &json!({"alg": "HS256", "typ": "JWT", "kid": "not-a-key"}),
                &payload,
                &random_sig,
            ),
        ),
        (
            "alg=none",
            jwt_from(
                &json!({"alg": "none", "typ": "JWT", "kid": kid}),
                &payload,
                "",
            ),
        ),
        (
            "alg=none without kid",
            jwt_from(&json!({"alg": "none", "typ": "JWT"}), &payload, ""),
        ),
        (
            "alg=HS512",
            jwt_from(
                &json!({"alg": "HS512", "typ": "JWT", "kid": kid}),
                &payload,
                &signature,
            ),
        ),
        (
            "no kid",
            jwt_from(&json!({"alg": "HS256", "typ": "JWT"}), &payload, &signature),
        ),
        (
            "tampered roles",
            jwt_from(&header, &admin_payload, &signature),
        ),
        (
            "tampered sub",
            jwt_from(&header, &victim_payload, &signature),
        ),
        (
            "tampered exp",
            jwt_from(&header, &later_payload, &signature),
        ),
        ("a flipped payload character", flipped),
        ("no signature", format!("{}.{}.", segments[0], segments[1])),
        ("not a JWT", "not-a-jwt".to_string()),
        ("three garbage segments", "a.b.c".to_string()),
    ];
    for (what, token) in &forged {
        let resp = app.me(token).await;
        assert!(
            resp.status == 401 && resp.error_code() == Some("invalid_token"),
            "{what}: want 401 invalid_token, got {} {}",
            resp.status,
            resp.text
        );
        resp.expect_error(401, "invalid_token");
    }

    // A forged admin claim buys nothing on an operator or admin route.
    let escalated = jwt_from(&header, &admin_payload, &signature);
    let body = json!({"name": "Pwned", "price_minor": 1, "category": "general"});
    send(
        app.with_token(Some(&escalated), reqwest::Method::PUT, "/v1/products/pwned")
            .json(&body),
    )
    .await
    .expect_error(401, "invalid_token");
    send(
        app.with_token(
            Some(&escalated),
            reqwest::Method::PUT,
            &format!("/v1/admin/users/{}/roles", user.id),
        )
        .json(&json!({"roles": ["admin"]})),
    )
    .await
    .expect_error(401, "invalid_token");
    app.get("/v1/products/pwned")
        .await
        .expect_error(404, "not_found");

    // The genuine token still works, and is still a shopper's.
    let me = app.me(&user.access).await;
    assert_eq!(me.expect(200)["roles"], json!(["shopper"]));
    assert_eq!(me.json["user_id"], user.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_matches_email_case_insensitively_and_leaks_nothing() {
    let app = spawn_app(roomy_opts()).await;
    let id = app.register_ok("Mixed.Case@Example.COM").await;

    for email in [
        "mixed.case@example.com",
        "MIXED.CASE@EXAMPLE.COM",
        "Mixed.Case@Example.COM",
    ] {
        let (access, _) = token_pair(&app.login(email, PASSWORD).await);
        assert_eq!(claims(&access).1["sub"], id.as_str(), "login as {email}");
    }
    let user = app.login_ok(&id, "mixed.case@example.com").await;
    let me = app.me(&user.access).await;
    let profile = me.expect(200);
    assert_eq!(profile["email"], "mixed.case@example.com", "normalised");
    assert_eq!(profile["roles"], json!(["shopper"]));

    // Unknown email and wrong password look the same.
    let unknown = app.login("nobody@example.com", PASSWORD).await;
    let wrong = app.login("mixed.case@example.com", "wrong password!").await;
    unknown.expect_error(401, "invalid_credentials");
    wrong.expect_error(401, "invalid_credentials");
    assert_eq!(
        unknown.json, wrong.json,
        "the bodies must not tell an unknown email from a wrong password"
    );
    for resp in [&unknown, &wrong] {
        assert!(
            !resp.text.to_lowercase().contains("mixed.case") && !resp.text.contains("nobody"),
            "the error echoes the email: {}",
            resp.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_validates_and_refuses_duplicates() {
    let app = spawn_app(roomy_opts()).await;

    // Bad emails: the message names the email.
    for email in [
        "not-an-email",
        "",
        "@example.com",
        "user@",
        "two@@example.com",
    ] {
        let resp = app.register(email, PASSWORD).await;
        resp.expect_error(400, "validation");
        assert!(
            resp.json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.to_lowercase().contains("email")),
            "register {email:?}: the message should say the email is wrong: {}",
            resp.text
        );
    }
    // Bad passwords: the message names the password.
    let long = "p".repeat(129);
    for (email, password) in [
        ("short@example.com", "nine-char"),
        ("long@example.com", long.as_str()),
        ("same.as.email@example.com", "same.as.email@example.com"),
    ] {
        let resp = app.register(email, password).await;
        resp.expect_error(400, "validation");
        assert!(
            resp.json["error"]["message"]
                .as_str()
                .is_some_and(|m| m.to_lowercase().contains("password")),
            "register with password {password:?}: the message should say the password is wrong: {}",
            resp.text
        );
        // Nothing was registered.
        app.login(email, password)
            .await
            .expect_error(401, "invalid_credentials");
    }
    // Missing fields and bad JSON.
    for body in [
        json!({"email": "x@example.com"}),
        json!({"password": PASSWORD}),
        json!([]),
    ] {
        let resp = app.post_json("/v1/auth/register", &body).await;
        resp.expect_error_in(&[400], &[]);
    }

    // The boundaries are accepted.
    app.register("ten@example.com", "0123456789")
        .await
        .expect(201);
    let max = "q".repeat(128);
    app.register("max@example.com", &max).await.expect(201);
    token_pair(&app.login("max@example.com", &max).await);

    // Duplicates, whatever the case or surrounding spaces.
    app.register_ok("taken@example.com").await;
    for dup in [
        "taken@example.com",
        "TAKEN@Example.com",
        "  taken@example.com  ",
    ] {
        app.register(dup, "another password")
            .await
            .expect_error(409, "email_taken");
    }
    // The original password is still the one that works.
    token_pair(&app.login("taken@example.com", PASSWORD).await);
    app.login("taken@example.com", "another password")
        .await
        .expect_error(401, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_is_read_and_updated() {
    let app = spawn_app(roomy_opts()).await;
    let user = app.shopper("profile@example.com").await;

    let me = app.me(&user.access).await;
    assert_eq!(
        me.expect(200),
        &json!({"user_id": user.id, "email": "profile@example.com", "roles": ["shopper"],
                "name": null, "phone": null}),
    );

    let patch = |body: Value| {
        send(
            app.with_token(Some(&user.access), reqwest::Method::PATCH, "/v1/me")
                .json(&body),
        )
    };
    let resp = patch(json!({"name": "Ada Lovelace", "phone": "+44 (20) 7946-0958"})).await;
    let profile = resp.expect(200).clone();
    assert_eq!(profile["name"], "Ada Lovelace", "{profile}");
    assert_eq!(profile["phone"], "+44 (20) 7946-0958", "{profile}");
    assert_eq!(app.me(&user.access).await.expect(200), &profile);

    // Only the name changes; the phone stays.
    let resp = patch(json!({"name": "Ada King"})).await;
    assert_eq!(resp.expect(200)["phone"], "+44 (20) 7946-0958");

    let long_name = "n".repeat(101);
    for bad in [
        json!({"phone": "call me"}),
        json!({"phone": "1234"}),
        json!({"name": ""}),
        json!({"name": long_name}),
    ] {
        patch(bad.clone()).await.expect_error(400, "validation");
    }
    let me = app.me(&user.access).await;
    assert_eq!(
        me.expect(200)["name"],
        "Ada King",
        "rejected patches changed nothing"
    );
    assert_eq!(me.json["phone"], "+44 (20) 7946-0958");

    send(
        app.request(reqwest::Method::PATCH, "/v1/me")
            .json(&json!({"name": "Anon"})),
    )
    .await
    .expect_error(401, "unauthorized");
    app.get("/v1/me").await.expect_error(401, "unauthorized");
}
