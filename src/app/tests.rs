//! In-process tests of the whole app over real HTTP, for what needs the `cfg(test)`
//! fault hook (an actor that panics) or direct access to the store.

use super::config::Config;
use super::App;
use crate::domain::cart::Cart;
use crate::domain::EntityKind;
use serde_json::{json, Value};
use std::time::Duration;

struct Running {
    app: App,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(tune: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.store.data_dir = dir.path().to_owned();
    cfg.auth.admin_token = super::config::Secret("t".into());
    cfg.rate_limit.enabled = false;
    cfg.supervision.backoff_initial_ms = 10;
    tune(&mut cfg);
    let app = App::build(cfg).await.unwrap();
    app.recover().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = app.clone();
    tokio::spawn(
        async move { crate::http::serve(&served, listener, std::future::pending()).await },
    );
    Running {
        app,
        base,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    async fn cart_with_item(&self) -> String {
        let c: Value = self
            .http
            .post(format!("{}/v1/carts", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = c["id"].as_str().unwrap().to_owned();
        let r = self
            .http
            .post(format!("{}/v1/carts/{id}/items", self.base))
            .json(&json!({"sku": "P1", "quantity": 3}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        id
    }
    async fn product(&self) {
        let r = self
            .http
            .put(format!("{}/v1/products/P1", self.base))
            .bearer_auth("t")
            .json(&json!({"name": "Thing", "price_minor": 500, "category": "misc"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
    /// Polls until the cart answers 200 (bounded).
    async fn cart_eventually(&self, id: &str) -> Value {
        for _ in 0..100 {
            let (s, v) = self.get(&format!("/v1/carts/{id}")).await;
            if s == 200 {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("cart {id} did not come back within 2 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_cart_restarts_with_its_state_and_others_are_unaffected() {
    let t = start(|_| {}).await;
    t.product().await;
    let victim = t.cart_with_item().await;
    let bystander = t.cart_with_item().await;
    t.app.router.inject_panic::<Cart>(&victim).await.unwrap();
    let v = t.cart_eventually(&victim).await;
    assert_eq!(
        v["items"][0]["quantity"], 3,
        "state was rebuilt from the journal"
    );
    assert_eq!(v["version"], 2);
    let (s, b) = t.get(&format!("/v1/carts/{bystander}")).await;
    assert_eq!((s, b["items"][0]["quantity"].clone()), (200, json!(3)));
    // The restarted actor accepts writes again.
    let r = t
        .http
        .post(format!("{}/v1/carts/{victim}/items", t.base))
        .json(&json!({"sku": "P1", "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = t.app.metrics.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("emporium_actor_restarts_total{kind=\"cart\"}")),
        "restart metric missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_past_its_restart_limit_is_quarantined_with_503() {
    let t = start(|c| {
        c.supervision.max_restarts = 2;
        c.supervision.quarantine_ms = 60_000;
    })
    .await;
    t.product().await;
    let victim = t.cart_with_item().await;
    let mut quarantined = None;
    for _ in 0..10 {
        let _ = t.app.router.inject_panic::<Cart>(&victim).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = t
            .http
            .get(format!("{}/v1/carts/{victim}", t.base))
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            assert!(r.headers().contains_key("retry-after"));
            quarantined = Some(r.json::<Value>().await.unwrap());
            break;
        }
    }
    let body = quarantined.expect("the cart was quarantined after repeated panics");
    assert_eq!(body["error"]["code"], "entity_quarantined");
    let other = t.cart_with_item().await;
    assert_eq!(t.get(&format!("/v1/carts/{other}")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_decode_makes_only_its_entity_unavailable() {
    let t = start(|_| {}).await;
    t.product().await;
    let bad = t.cart_with_item().await;
    let good = t.cart_with_item().await;
    // Simulate on-disk damage, then make the actor reload from the journal.
    t.app
        .store
        .journal()
        .put_raw_event(EntityKind::Cart, &bad, 2, &[1, 0xff, 0xff, 0xff])
        .unwrap();
    t.app.router.inject_panic::<Cart>(&bad).await.unwrap();
    let mut status = 0;
    let mut body = Value::Null;
    for _ in 0..50 {
        (status, body) = t.get(&format!("/v1/carts/{bad}")).await;
        // `entity_restarting` may answer first, while the panicking actor goes down.
        if status == 503 && body["error"]["code"] == "entity_quarantined" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "entity_quarantined");
    assert_eq!(t.get(&format!("/v1/carts/{good}")).await.0, 200);
    assert!(t
        .app
        .metrics
        .render()
        .contains("emporium_journal_decode_errors_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_activations_of_one_id_end_on_one_actor() {
    let t = start(|_| {}).await;
    let id = uuid::Uuid::new_v4().to_string();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let router = t.app.router.clone();
            let id = id.clone();
            tokio::spawn(async move {
                router
                    .command::<Cart>(
                        &id,
                        crate::domain::cart::CartCommand::Create { owner: None },
                    )
                    .await
            })
        })
        .collect();
    let mut created_events = 0;
    for task in tasks {
        created_events += task.await.unwrap().unwrap().events.len();
    }
    assert_eq!(
        created_events, 1,
        "exactly one Create was applied, by one actor"
    );
    assert_eq!(t.app.router.runtime::<Cart>().registry.active_count(), 1);
    assert_eq!(
        t.app
            .store
            .journal()
            .events::<Cart>(&id, 0, 10)
            .unwrap()
            .len(),
        1
    );
}

/// Issue 12: a checkout that fails with a 503 before its order is placed stores nothing;
/// a retry with the same key places the order, and no answer is a 201 with an empty order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_that_failed_with_503_is_placed_by_its_retry_never_faked() {
    use crate::domain::order::Order;
    use crate::domain::order_idempotency::keyed_order_id;
    let t = start(|c| {
        c.supervision.max_restarts = 2;
        c.supervision.quarantine_ms = 1_500;
        c.checkout.wait_ms = 10_000;
    })
    .await;
    t.product().await;
    let r = t
        .http
        .post(format!("{}/v1/inventory/P1/adjustments", t.base))
        .bearer_auth("t")
        .json(&json!({"delta": 10, "reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cart = t.cart_with_item().await;
    let key = "retry-after-503";
    // The order the key names: quarantine it, so its placement fails with a 503.
    let order_id = keyed_order_id(&format!("cart:{cart}"), key, 0).to_string();
    let mut quarantined = false;
    for _ in 0..20 {
        let _ = t.app.router.inject_panic::<Order>(&order_id).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        if let Err(crate::router::RouteError::Unavailable {
            kind: crate::router::UnavailableKind::EntityQuarantined,
            ..
        }) = t.app.router.get::<Order>(&order_id).await
        {
            quarantined = true;
            break;
        }
    }
    assert!(quarantined, "the keyed order was quarantined");
    let checkout = || async {
        let r = t
            .http
            .post(format!("{}/v1/carts/{cart}/checkout", t.base))
            .header("Idempotency-Key", key)
            .json(&json!({
                "email": "a@example.com",
                "payment": {"card_number": "4242424242424242", "exp_month": 12,
                            "exp_year": 2030, "cvc": "123"}
            }))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, body) = checkout().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "entity_quarantined");
    // Retries (bounded): 503 until the quarantine ends, then the order is placed.
    let mut answer = None;
    for _ in 0..100 {
        let (status, body) = checkout().await;
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        answer = Some((status, body));
        break;
    }
    let (status, body) = answer.expect("the retry was answered within 5 s");
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], order_id.as_str());
    assert_eq!(body["status"], "paid", "{body}");
    assert_eq!(body["items"][0]["quantity"], 3, "{body}");
    assert_eq!(body["total_minor"], 1500, "{body}");
    let (_, inv) = t.get("/v1/inventory/P1").await;
    assert_eq!(
        (inv["on_hand"].clone(), inv["reserved"].clone()),
        (json!(7), json!(0))
    );
    // And a further replay answers the same order.
    let (status, again) = checkout().await;
    assert_eq!((status, &again), (201, &body));
}

/// The edge never answers 2xx for an order that is not placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unplaced_order_is_never_answered_with_a_2xx() {
    let t = start(|c| c.checkout.wait_ms = 50).await;
    let err = crate::http::idempotency::answer(&t.app, uuid::Uuid::new_v4(), true)
        .await
        .expect_err("an unplaced order has no answer");
    assert_eq!(err.status.as_u16(), 503);
}
