//! Identity helpers for the issue 3 tests: registering and logging in users,
//! granting roles with the bootstrap token, calling routes with a bearer
//! token, and taking JWTs apart (base64url without extra dependencies).

use serde_json::{json, Value};

use crate::helpers::{send, AppOpts, Resp, TestApp};

/// A password that passes the rules (10..=128 chars, not the email).
pub const PASSWORD: &str = "correct horse battery";

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

/// Options with the auth rate limits raised far above what a test sends,
/// for tests that register and log in many times.
pub fn roomy_opts() -> AppOpts {
    AppOpts::new()
        .env("EMPORIUM_RATE_LIMIT__AUTH_BURST", 100_000)
        .env("EMPORIUM_RATE_LIMIT__AUTH_PER_MINUTE", 1_000_000)
        .env("EMPORIUM_RATE_LIMIT__BURST", 100_000)
        .env("EMPORIUM_RATE_LIMIT__PER_SECOND", 100_000)
}

impl TestApp {
    /// A request with `Authorization: Bearer <token>` when `token` is given.
    pub fn with_token(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let rb = self.request(method, path);
        match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// Sends `method path` with an optional token and an optional raw JSON body.
    pub async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Resp {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.with_token(token, method, path);
        if path.ends_with("/checkout") || path.ends_with("/purchase") {
            rb = rb.header("Idempotency-Key", crate::helpers::new_key());
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        send(rb).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Resp {
        send(self.with_token(Some(token), reqwest::Method::GET, path)).await
    }

    pub async fn post_as(&self, token: Option<&str>, path: &str, body: Option<&Value>) -> Resp {
        let rb = self.with_token(token, reqwest::Method::POST, path);
        send(match body {
            Some(b) => rb.json(b),
            None => rb,
        })
        .await
    }

    pub async fn register(&self, email: &str, password: &str) -> Resp {
        self.post_json(
            "/v1/auth/register",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post_json(
            "/v1/auth/login",
            &json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Resp {
        self.post_json("/v1/auth/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn logout(&self, refresh_token: &str) -> Resp {
        self.post_json("/v1/auth/logout", &json!({"refresh_token": refresh_token}))
            .await
    }

    pub async fn me(&self, token: &str) -> Resp {
        self.get_as(token, "/v1/me").await
    }

    /// Registers `email` (asserting 201) and returns the user id.
    pub async fn register_ok(&self, email: &str) -> String {
        let resp = self.register(email, PASSWORD).await;
        let v = resp.expect(201);
        v["user_id"]
            .as_str()
            .unwrap_or_else(|| panic!("register: no user_id: {}", resp.text))
            .to_string()
    }

    /// Logs in (asserting 200 and the token pair shape).
    pub async fn login_ok(&self, id: &str, email: &str) -> User {
        let resp = self.login(email, PASSWORD).await;
        let (access, refresh) = token_pair(&resp);
        User {
            id: id.to_string(),
            email: email.to_string(),
            access,
            refresh,
        }
    }

    /// Sets a user's roles with the bootstrap admin token.
    pub async fn set_roles(&self, user_id: &str, roles: &[&str]) -> Resp {
        self.admin_put_json(
            &format!("/v1/admin/users/{user_id}/roles"),
            &json!({ "roles": roles }),
        )
        .await
    }

    /// Registers a user, grants `roles` (unless just shopper) with the
    /// bootstrap token, then logs in so the token carries them.
    pub async fn user_with_roles(&self, email: &str, roles: &[&str]) -> User {
        let id = self.register_ok(email).await;
        if roles != ["shopper"] {
            let resp = self.set_roles(&id, roles).await;
            let profile = resp.expect(200);
            assert_eq!(
                profile["roles"],
                json!(roles),
                "granted roles: {}",
                resp.text
            );
        }
        self.login_ok(&id, email).await
    }

    pub async fn shopper(&self, email: &str) -> User {
        self.user_with_roles(email, &["shopper"]).await
    }

    /// A cart created with `token` (asserting 201), holding `quantity` of `sku`.
    pub async fn cart_as(&self, token: Option<&str>, sku: &str, quantity: i64) -> String {
        let resp = self.post_as(token, "/v1/carts", None).await;
        let id = resp.expect(201)["id"]
            .as_str()
            .unwrap_or_else(|| panic!("cart id: {}", resp.text))
            .to_string();
        if quantity > 0 {
            let body = json!({"sku": sku, "quantity": quantity});
            self.post_as(token, &format!("/v1/carts/{id}/items"), Some(&body))
                .await
                .expect(200);
        }
        id
    }

    /// Checks out `cart` with `token` and waits (bounded) for a terminal order.
    pub async fn checkout_as(&self, token: Option<&str>, cart: &str) -> Value {
        let rb = self
            .with_token(
                token,
                reqwest::Method::POST,
                &format!("/v1/carts/{cart}/checkout"),
            )
            .header("Idempotency-Key", crate::helpers::new_key())
            .json(&crate::helpers::checkout_body(crate::helpers::GOOD_CARD));
        let resp = send(rb).await;
        assert!(
            matches!(resp.status, 201 | 202),
            "checkout: {} {}",
            resp.status,
            resp.text
        );
        let id = resp.json["id"].as_str().expect("order id").to_string();
        self.wait_terminal_as(crate::helpers::ADMIN_TOKEN, &id)
            .await
    }

    /// Polls (bounded) `GET /v1/orders/{id}` with `token` until the order is terminal.
    pub async fn wait_terminal_as(&self, token: &str, id: &str) -> Value {
        let deadline = crate::helpers::Deadline::new(
            std::time::Duration::from_secs(60),
            format!("order {id} to become terminal"),
        );
        loop {
            let resp = self.get_as(token, &format!("/v1/orders/{id}")).await;
            let order = resp.expect(200);
            if crate::helpers::is_terminal(order) {
                return order.clone();
            }
            deadline.tick(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// Asserts a login/refresh answer and returns `(access, refresh)`.
#[track_caller]
pub fn token_pair(resp: &Resp) -> (String, String) {
    let v = resp.expect(200);
    assert_eq!(v["token_type"], "Bearer", "token_type: {}", resp.text);
    assert!(
        v["expires_in"].as_u64().is_some_and(|s| s > 0),
        "expires_in: {}",
        resp.text
    );
    let access = v["access_token"].as_str().expect("access_token");
    let refresh = v["refresh_token"].as_str().expect("refresh_token");
    assert!(!access.is_empty() && !refresh.is_empty(), "{}", resp.text);
    (access.to_string(), refresh.to_string())
}

// ---- base64url and JWTs ----------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Decodes base64url (padding optional); `None` on a bad character.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&x| x == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

/// A JWT's header and payload as JSON, and its signature segment.
pub fn jwt_parts(token: &str) -> (Value, Value, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three segments: {token}");
    let decode = |s: &str| -> Value {
        let bytes = b64url_decode(s).unwrap_or_else(|| panic!("base64url segment: {s}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JSON segment {s}: {e}"))
    };
    (decode(parts[0]), decode(parts[1]), parts[2].to_string())
}

/// `base64url(header).base64url(payload).signature`.
pub fn jwt_from(header: &Value, payload: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes()),
        signature
    )
}

#[test]
fn base64url_round_trips() {
    assert_eq!(b64url(b""), "");
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
    for len in 0..40u8 {
        let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        assert_eq!(b64url_decode(&b64url(&bytes)).as_deref(), Some(&bytes[..]));
    }
    assert_eq!(b64url_decode("Zm9v").as_deref(), Some(&b"foo"[..]));
    assert!(b64url_decode("Zm9v*").is_none());
}
