//! Notification preferences and the SMS channel (issue 15, point 4) over the real binary,
//! a real SMTP server and a real HTTP server shaped like Twilio's Messages API on
//! loopback: `GET`/`PATCH /v1/me/preferences` validate and keep each shopper's choices;
//! a receipt goes by SMS to the saved phone and not by email once email is off; a 429 is
//! retried with the same idempotency key and a 400 is dead after one attempt.

use std::time::Duration;

use serde_json::{json, Value};

use crate::domain::GOOD_CARD;
use crate::helpers::*;
use crate::sink::Sink;
use crate::smtp::Smtp;
use crate::users::User;

const SID: &str = "AC0123456789abcdef";
const TOKEN: &str = "twilio-test-token";
const FROM: &str = "+15005550006";

fn opts(smtp: &Smtp, sms: &Sink) -> AppOpts {
    opts_with(smtp, Some(sms), "", "")
}

/// A node with real email, SMS through `sms` (when given), fast polls and retries;
/// `notifications` and `push` are more lines of those tables.
fn opts_with(smtp: &Smtp, sms: Option<&Sink>, notifications: &str, push: &str) -> AppOpts {
    let sms = sms
        .map(|s| {
            format!(
                "[notifications.sms]\nbase_url = \"{}\"\naccount_sid = \"{SID}\"\nfrom = \"{FROM}\"\n",
                s.url.trim_end_matches("/hook")
            )
        })
        .unwrap_or_default();
    AppOpts::new()
        .config(format!(
            r#"
[projections]
poll_ms = 20
[notifications]
poll_ms = 20
retry_initial_ms = 40
{notifications}
[notifications.email]
smtp_url = "{}"
{sms}
[notifications.push]
allow_private_targets = true
{push}
"#,
            smtp.url,
        ))
        .env("EMPORIUM_NOTIFICATIONS__SMS__AUTH_TOKEN", TOKEN)
}

/// Checks out one `sku` as `u`, with their email on the order, and waits until it is paid.
async fn order_as(app: &TestApp, u: &User, sku: &str) -> Value {
    let cart = app.cart_as(Some(&u.access), sku, 1).await;
    let body = json!({
        "email": u.email,
        "payment": {"card_number": GOOD_CARD, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    });
    let r = app
        .with_token(
            Some(&u.access),
            reqwest::Method::POST,
            &format!("/v1/carts/{cart}/checkout"),
        )
        .header("Idempotency-Key", new_key())
        .json(&body);
    let r = send(r).await;
    assert!(matches!(r.status, 201 | 202), "checkout: {}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let order = app.wait_terminal_as(&u.access, &id).await;
    assert_eq!(order["status"], "paid", "{order}");
    order
}

async fn patch_prefs(app: &TestApp, u: &User, body: &Value) -> Resp {
    app.call(
        Some(&u.access),
        "PATCH",
        "/v1/me/preferences",
        Some(&body.to_string()),
    )
    .await
}

/// A valid subscription's keys: an uncompressed P-256 point and a 16-byte secret.
fn keys() -> Value {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    let mut point = vec![4u8];
    point.extend([7u8; 64]);
    json!({"p256dh": URL_SAFE_NO_PAD.encode(point), "auth": URL_SAFE_NO_PAD.encode([9u8; 16])})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_are_each_shoppers_own_and_validated() {
    let (smtp, sms) = (Smtp::start(), Sink::start(&[], 201).await);
    let app = spawn_app(opts(&smtp, &sms)).await;
    let ada = app.shopper("ada@example.com").await;
    let bob = app.shopper("bob@example.com").await;

    let d = app
        .get_as(&ada.access, "/v1/me/preferences")
        .await
        .expect(200)
        .clone();
    assert_eq!(
        d,
        json!({"channels": {"email": true, "sms": true, "push": true},
               "marketing_opt_in": false, "phone": null, "push_subscriptions": []}),
        "the defaults: every channel on, marketing off"
    );
    let anon = app.get("/v1/me/preferences").await;
    assert_eq!(anon.status, 401, "{}", anon.text);

    for (body, why) in [
        (json!({"phone": "5551234567"}), "no +"),
        (json!({"phone": "+1 555 abc"}), "letters"),
        (json!({"channels": {"fax": true}}), "an unknown channel"),
        (json!({"colour": "blue"}), "an unknown field"),
        (
            json!({"push_subscriptions": [{"endpoint": "ftp://push.example/1", "keys": keys()}]}),
            "not http",
        ),
        (
            json!({"push_subscriptions": [{"endpoint": "http://127.0.0.1:9/p",
                   "keys": {"p256dh": "AAAA", "auth": keys()["auth"]}}]}),
            "a short key",
        ),
        (
            json!({"push_subscriptions": (0..9).map(|i| json!({"endpoint": format!("http://127.0.0.1:9/{i}"), "keys": keys()})).collect::<Vec<_>>()}),
            "nine subscriptions",
        ),
    ] {
        let r = patch_prefs(&app, &ada, &body).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text);
        assert_eq!(r.error_code(), Some("validation"), "{why}: {}", r.text);
    }
    // Nothing of the refused changes was kept.
    assert_eq!(
        app.get_as(&ada.access, "/v1/me/preferences")
            .await
            .expect(200),
        &d
    );

    let changed = patch_prefs(
        &app,
        &ada,
        &json!({
            "channels": {"email": false},
            "marketing_opt_in": true,
            "phone": "+1 (555) 123-4567",
            "push_subscriptions": [{"endpoint": "http://127.0.0.1:9/p", "expirationTime": null, "keys": keys()}],
        }),
    )
    .await
    .expect(200)
    .clone();
    assert_eq!(
        changed["channels"],
        json!({"email": false, "sms": true, "push": true})
    );
    assert_eq!(changed["marketing_opt_in"], true);
    assert_eq!(changed["phone"], "+15551234567", "kept in E.164");
    assert_eq!(
        changed["push_subscriptions"],
        json!([{"endpoint": "http://127.0.0.1:9/p"}]),
        "the keys are not echoed"
    );
    assert!(changed["updated_at"].is_string(), "{changed}");
    // An absent field stays; null removes the phone.
    let r = patch_prefs(&app, &ada, &json!({"phone": null}))
        .await
        .expect(200)
        .clone();
    assert_eq!(r["phone"], Value::Null);
    assert_eq!(r["marketing_opt_in"], true);
    assert_eq!(r["channels"]["email"], false);
    // Bob's are his own.
    assert_eq!(
        app.get_as(&bob.access, "/v1/me/preferences")
            .await
            .expect(200),
        &d
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_follow_the_shoppers_channels_and_sms_retries_then_dead_letters() {
    // The provider: too many requests once, then 201 until told otherwise.
    let (smtp, sms) = (Smtp::start(), Sink::start(&[429], 201).await);
    let app = spawn_app(opts(&smtp, &sms)).await;
    app.stocked_product("sms-mug", 990, 100).await;
    let ada = app.shopper("ada.sms@example.com").await;
    let bob = app.shopper("bob.sms@example.com").await;
    patch_prefs(
        &app,
        &ada,
        &json!({"channels": {"email": false}, "phone": "+15551230001"}),
    )
    .await
    .expect(200);

    // Bob keeps the defaults and has no phone: his receipt is an email, and no SMS.
    order_as(&app, &bob, "sms-mug").await;
    smtp.wait_for(&bob.email, 1, 30).await;

    // Ada turned email off and saved a phone: her receipt is an SMS, sent twice (429,
    // then 201) with the same idempotency key, and no email.
    let order = order_as(&app, &ada, "sms-mug").await;
    let id = order["id"].as_str().unwrap();
    let got = sms.wait_for(2, 30).await;
    assert_eq!(got.len(), 2, "Bob got no SMS: {got:?}");
    for r in &got {
        assert_eq!(r.path, format!("/2010-04-01/Accounts/{SID}/Messages.json"));
        use base64::{engine::general_purpose::STANDARD, Engine};
        let basic = format!("Basic {}", STANDARD.encode(format!("{SID}:{TOKEN}")));
        assert_eq!(r.header("authorization"), Some(basic.as_str()));
        assert_eq!(r.form("To").as_deref(), Some("+15551230001"));
        assert_eq!(r.form("From").as_deref(), Some(FROM));
        let text = r.form("Body").unwrap();
        assert!(
            text.contains(&id[..8]) && text.contains("9.90"),
            "the receipt names the order and its total: {text}"
        );
    }
    let key = got[0].header("idempotency-key").unwrap().to_owned();
    assert!(key.starts_with("ntf_"), "{key}");
    assert_eq!(got[1].header("idempotency-key"), Some(key.as_str()));

    let mine = app
        .get_as(&ada.access, "/v1/me/notifications")
        .await
        .expect(200)
        .clone();
    let items = mine["items"].as_array().unwrap();
    let m = items
        .iter()
        .find(|m| m["channel"] == "sms" && m["event_type"] == "order.paid")
        .unwrap_or_else(|| panic!("Ada's SMS is in her history: {mine}"));
    assert_eq!(m["recipient"], "+15551230001");
    assert!(
        items.iter().all(|m| m["channel"] != "email"),
        "email was off: {mine}"
    );
    assert_eq!(m["id"], key.as_str());
    // The attempt that got 201 may still be being recorded.
    let deadline = Deadline::new(Duration::from_secs(30), "the SMS to be recorded sent");
    loop {
        let mine = app.get_as(&ada.access, "/v1/me/notifications").await;
        let sent = mine.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == key.as_str())
            .cloned()
            .unwrap();
        if sent["status"] == "sent" {
            assert_eq!(sent["attempts"].as_array().unwrap().len(), 2, "{sent}");
            break;
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
    assert!(
        smtp.mails().iter().all(|m| !m.to.contains(&ada.email)),
        "no email to Ada"
    );

    // A number the provider refuses for good (400) is dead after one attempt.
    sms.answer_always(400);
    order_as(&app, &ada, "sms-mug").await;
    let deadline = Deadline::new(Duration::from_secs(30), "a refused SMS to be dead");
    loop {
        let r = app
            .admin_get("/v1/admin/notifications?channel=sms&status=dead")
            .await;
        if let Some(m) = r.expect(200)["items"].as_array().unwrap().first() {
            assert_eq!(m["attempts"].as_array().unwrap().len(), 1, "{m}");
            break;
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
    assert_eq!(sms.received().len(), 3);
}

/// A browser's side of a subscription: its P-256 key and auth secret, and the decryption
/// a browser runs on a push message (RFC 8291 section 3, as the receiver).
struct Browser {
    key: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        Browser {
            key: p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng),
            auth: rand::random(),
        }
    }

    fn public(&self) -> Vec<u8> {
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        self.key
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    fn subscription(&self, endpoint: &str) -> Value {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
        json!({"endpoint": endpoint, "expirationTime": null, "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(self.public()),
            "auth": URL_SAFE_NO_PAD.encode(self.auth),
        }})
    }

    fn decrypt(&self, body: &[u8]) -> Vec<u8> {
        use aes_gcm::aead::{Aead, KeyInit};
        let salt = &body[..16];
        let rs = u32::from_be_bytes(body[16..20].try_into().unwrap());
        assert!(rs >= 18, "record size {rs}");
        let idlen = body[20] as usize;
        assert_eq!(idlen, 65, "the key id is the sender's public key");
        let as_public = &body[21..21 + idlen];
        let sealed = &body[21 + idlen..];
        let sender = p256::PublicKey::from_sec1_bytes(as_public).unwrap();
        let shared = p256::ecdh::diffie_hellman(self.key.to_nonzero_scalar(), sender.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public());
        info.extend_from_slice(as_public);
        let mut ikm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .unwrap();
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        hk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        hk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
        let mut plain = aes_gcm::Aes128Gcm::new(&cek.into())
            .decrypt(aes_gcm::Nonce::from_slice(&nonce), sealed)
            .expect("the record decrypts with the subscriber's keys");
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(plain.pop(), Some(2), "the last record's delimiter");
        plain
    }
}

/// Checks a VAPID `Authorization` header: an ES256 JWT for `audience`, signed by the key
/// it names, which is the key the server printed.
fn vapid_verifies(header: &str, audience: &str, public: &str) {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use p256::ecdsa::signature::Verifier;
    let (t, k) = header
        .strip_prefix("vapid t=")
        .and_then(|r| r.split_once(", k="))
        .unwrap_or_else(|| panic!("a vapid header: {header}"));
    assert_eq!(k, public, "the key the server was given");
    let (input, sig) = t.rsplit_once('.').unwrap();
    let vk =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).unwrap()).unwrap();
    let sig = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    assert!(vk.verify(input.as_bytes(), &sig).is_ok(), "the signature");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], audience);
    assert!(claims["exp"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_reaches_each_push_subscription_encrypted_for_it_and_a_gone_one_is_dead() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("vapid.pem");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_emporium"))
        .args(["vapid-key", "--out"])
        .arg(&key_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (live, gone) = (Sink::start(&[], 201).await, Sink::start(&[], 410).await);
    let smtp = Smtp::start();
    let push = format!(
        "vapid_private_key_path = \"{}\"\nttl_s = 600",
        key_path.display()
    );
    let app = spawn_app(opts_with(&smtp, None, "", &push)).await;
    app.stocked_product("push-mug", 1500, 10).await;
    let ada = app.shopper("ada.push@example.com").await;
    let (phone, laptop) = (Browser::new(), Browser::new());
    patch_prefs(
        &app,
        &ada,
        &json!({"push_subscriptions": [phone.subscription(&live.url), laptop.subscription(&gone.url)]}),
    )
    .await
    .expect(200);

    let order = order_as(&app, &ada, "push-mug").await;
    let id = order["id"].as_str().unwrap();
    let got = live.wait_for(1, 30).await;
    let r = &got[0];
    assert_eq!(r.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(r.header("ttl"), Some("600"));
    let audience = live.url.trim_end_matches("/hook");
    vapid_verifies(r.header("authorization").unwrap(), audience, &public);
    let payload: Value = serde_json::from_slice(&phone.decrypt(&r.raw)).unwrap();
    assert_eq!(
        payload["title"],
        format!("Order {} is paid", &id[..8]),
        "{payload}"
    );
    assert!(
        payload["body"].as_str().unwrap().contains("15.00"),
        "{payload}"
    );
    assert!(payload["id"].as_str().unwrap().starts_with("ntf_"));
    // The email still goes: every channel is on by default.
    smtp.wait_for(&ada.email, 1, 30).await;

    // The laptop's subscription is gone (410): dead after one attempt, listed by its
    // endpoint only.
    let deadline = Deadline::new(Duration::from_secs(30), "the gone subscription's message");
    loop {
        let r = app
            .admin_get("/v1/admin/notifications?channel=push&status=dead")
            .await;
        if let Some(m) = r.expect(200)["items"].as_array().unwrap().first() {
            assert_eq!(m["recipient"], gone.url.as_str(), "{m}");
            assert_eq!(m["attempts"].as_array().unwrap().len(), 1, "{m}");
            break;
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
    assert_eq!(gone.received().len(), 1);
    assert_eq!(live.received().len(), 1, "one push per message");

    // Push turned off: the next receipt is an email only.
    patch_prefs(&app, &ada, &json!({"channels": {"push": false}}))
        .await
        .expect(200);
    order_as(&app, &ada, "push-mug").await;
    smtp.wait_for(&ada.email, 2, 30).await;
    // The messages of one event are queued in one batch: once the email is out, a push
    // message would be listed too.
    let pushes = app
        .admin_get("/v1/admin/notifications?channel=push")
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(pushes, 2, "only the first order's two pushes");
    assert_eq!(live.received().len(), 1, "no push while it is off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sms_provider_that_never_answers_does_not_fail_a_checkout() {
    // The provider takes every request and never answers: each send ends at its deadline.
    let (smtp, sms) = (Smtp::start(), Sink::hanging().await);
    let app = spawn_app(opts_with(&smtp, Some(&sms), "timeout_ms = 300", "")).await;
    app.stocked_product("sms-silent", 500, 100).await;
    let ada = app.shopper("ada.silent@example.com").await;
    patch_prefs(&app, &ada, &json!({"phone": "+15551230002"}))
        .await
        .expect(200);
    // Every checkout is paid (order_as asserts it) while the SMS hang.
    for _ in 0..6 {
        order_as(&app, &ada, "sms-silent").await;
    }
    // The emails still go, and the SMS were tried and wait for a retry.
    smtp.wait_for(&ada.email, 6, 30).await;
    sms.wait_for(1, 30).await;
    let deadline = Deadline::new(Duration::from_secs(30), "a timed-out SMS attempt");
    loop {
        let r = app
            .admin_get("/v1/admin/notifications?channel=sms&status=pending")
            .await;
        let items = r.expect(200)["items"].as_array().unwrap().clone();
        if let Some(a) = items
            .iter()
            .find_map(|m| m["attempts"].as_array().and_then(|a| a.first()).cloned())
        {
            assert_eq!(a["ok"], false, "{a}");
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}
