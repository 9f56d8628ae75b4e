//! Issue 12, point 6: an `Idempotency-Key` names the order, so it never answers with an
//! order that was not placed, racing twins end on one order, and a key reused after its
//! TTL is a new request.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;
use crate::users::roomy_opts;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_racing_checkouts_with_one_key_end_on_one_order() {
    let app = Arc::new(spawn_app(roomy_opts().env("EMPORIUM_CHECKOUT__WAIT_MS", 15_000)).await);
    app.stocked_product("race-01", 1500, 10).await;
    let token = app.shopper("racer@example.com").await.access;
    let cart = app
        .post_as(Some(&token), "/v1/carts", None)
        .await
        .expect(201)["id"]
        .as_str()
        .expect("cart id")
        .to_string();
    let item = serde_json::json!({"sku": "race-01", "quantity": 3});
    app.post_as(
        Some(&token),
        &format!("/v1/carts/{cart}/items"),
        Some(&item),
    )
    .await
    .expect(200);

    let key = new_key();
    let body = checkout_body(GOOD_CARD);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (app, token, cart, key, body) = (
                app.clone(),
                token.clone(),
                cart.clone(),
                key.clone(),
                body.clone(),
            );
            tokio::spawn(async move {
                let rb = app
                    .with_token(
                        Some(&token),
                        reqwest::Method::POST,
                        &format!("/v1/carts/{cart}/checkout"),
                    )
                    .header("Idempotency-Key", key)
                    .json(&body);
                tokio::time::timeout(Duration::from_secs(60), send(rb))
                    .await
                    .expect("a checkout answered within 60 s")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("checkout task"));
    }
    let first = &answers[0];
    let order_id = first.json["id"].as_str().expect("order id").to_string();
    for a in &answers {
        assert!(matches!(a.status, 201 | 202), "{} {}", a.status, a.text);
        assert_eq!(a.json["id"], order_id.as_str(), "one order id: {}", a.text);
        assert_eq!(a.status, first.status, "one status: {}", a.text);
        assert_ne!(
            a.json["items"],
            serde_json::json!([]),
            "never an empty order"
        );
        assert_eq!(a.json["total_minor"], 4500, "{}", a.text);
    }
    let fresh = answers
        .iter()
        .filter(|a| !a.headers.contains_key("idempotent-replayed"))
        .count();
    assert_eq!(
        fresh, 1,
        "exactly one answer placed the order; the rest replayed"
    );

    // The order is the shopper's: read it with their token (bounded).
    let deadline = Deadline::new(Duration::from_secs(60), "the order to become terminal");
    let order = loop {
        let o = app
            .get_as(&token, &format!("/v1/orders/{order_id}"))
            .await
            .expect(200)
            .clone();
        if is_terminal(&o) {
            break o;
        }
        deadline.tick(Duration::from_millis(50)).await;
    };
    assert_eq!(order["status"], "paid", "{order}");
    let mine = app.get_as(&token, "/v1/me/orders").await;
    let items = mine.expect(200)["items"].as_array().expect("items").clone();
    assert_eq!(items.len(), 1, "exactly one order exists: {}", mine.text);
    assert_eq!(items[0]["id"], order_id.as_str());
    let inv = app.inventory("race-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (7, 0), "stock moved once");

    // Replays after the race answer with the same order, without a new card token.
    let again = app.send_checkout(&token, &cart, &key, &body).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.json, order, "a settled replay renders the order");
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_after_its_ttl_is_a_new_request_for_a_bounded_number_of_generations() {
    // The shortest TTL the config takes (1 s; 0 would expire running sagas' payment
    // keys): every reuse, a little over a second later, comes after its key expired.
    let ttl = std::time::Duration::from_millis(1100);
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_CHECKOUT__IDEMPOTENCY_TTL_S", 1)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 10_000),
    )
    .await;
    app.stocked_product("ttl-01", 700, 5).await;
    let cart = app.cart_with("ttl-01", 1).await;
    let key = new_key();
    let body = checkout_body(DECLINED_CARD);
    // A declined order reopens the cart, so each reuse can place a new order.
    let mut ids = Vec::new();
    for i in 0..8 {
        if i > 0 {
            tokio::time::sleep(ttl).await;
        }
        let r = app.checkout(&cart, &key, &body).await;
        let o = r.expect(201);
        assert_eq!(o["status"], "cancelled", "{}", r.text);
        assert!(
            !r.headers.contains_key("idempotent-replayed"),
            "a new request"
        );
        ids.push(o["id"].as_str().unwrap().to_string());
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        8,
        "each reuse after expiry placed a new order"
    );
    // Past the last generation the key is refused; nothing new is placed.
    tokio::time::sleep(ttl).await;
    app.checkout(&cart, &key, &body)
        .await
        .expect_error(409, "idempotency_key_expired");
    let inv = app.inventory("ttl-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (5, 0));

    // With the default TTL the same reuse is a replay.
    let app = spawn_app(AppOpts::new().env("EMPORIUM_CHECKOUT__WAIT_MS", 10_000)).await;
    app.stocked_product("ttl-02", 700, 5).await;
    let cart = app.cart_with("ttl-02", 1).await;
    let first = app.checkout(&cart, &key, &body).await;
    let again = app.checkout(&cart, &key, &body).await;
    assert_eq!(first.expect(201)["id"], again.expect(201)["id"]);
    assert!(again.headers.contains_key("idempotent-replayed"));
}

impl TestApp {
    async fn send_checkout(
        &self,
        token: &str,
        cart: &str,
        key: &str,
        body: &serde_json::Value,
    ) -> Resp {
        let rb = self
            .with_token(
                Some(token),
                reqwest::Method::POST,
                &format!("/v1/carts/{cart}/checkout"),
            )
            .header("Idempotency-Key", key)
            .json(body);
        send(rb).await
    }
}
