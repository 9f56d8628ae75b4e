//! Promotions and coupons over the real binary: a cart priced with automatic promotions
//! and coupons, each refusal with its code, the order keeping its totals and discounts,
//! and a usage limit that holds exactly under 500 racing checkouts.

use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};
use serde_json::{json, Value};

use crate::helpers::*;

async fn define(app: &TestApp, id: &str, body: Value) -> Value {
    let resp = app
        .admin_put_json(&format!("/v1/promotions/{id}"), &body)
        .await;
    resp.expect(201).clone()
}

async fn apply(app: &TestApp, cart: &str, code: &str) -> Resp {
    app.post_json(
        &format!("/v1/carts/{cart}/coupons"),
        &json!({ "code": code }),
    )
    .await
}

fn discounts_of(v: &Value) -> Vec<(String, i64)> {
    v["discounts"]
        .as_array()
        .expect("discounts")
        .iter()
        .map(|d| {
            (
                d["promotion_id"].as_str().unwrap().to_owned(),
                d["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn promotion(app: &TestApp, id: &str) -> Value {
    app.admin_get(&format!("/v1/promotions/{id}"))
        .await
        .expect(200)
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cart_is_priced_with_its_promotions_and_the_order_keeps_the_totals() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("mug-01", 1250, 50).await;
    app.stocked_product("tea-01", 400, 50).await;
    // Automatic: 100 off a cart of at least 2000.
    define(
        &app,
        "auto-100",
        json!({"name": "100 off big carts", "action": {"type": "amount_off", "amount_minor": 100},
               "conditions": {"min_subtotal_minor": 2000}}),
    )
    .await;
    let ten = define(
        &app,
        "ten",
        json!({"name": "Ten percent", "campaign": "spring", "code": "ten",
               "action": {"type": "percent_off", "percent": 10}, "usage_limit": 100}),
    )
    .await;
    assert_eq!(
        (ten["code"].as_str(), ten["redemptions"].as_i64()),
        (Some("TEN"), Some(0))
    );
    assert_eq!(ten["status"], "active");

    let cart = app.cart_with("mug-01", 2).await;
    let c = app.cart(&cart).await;
    assert_eq!(discounts_of(&c), [("auto-100".to_owned(), 100)]);
    assert_eq!(
        (c["subtotal_minor"].as_i64(), c["total_minor"].as_i64()),
        (Some(2500), Some(2400))
    );

    let c = apply(&app, &cart, "Ten").await.expect(200).clone();
    assert_eq!(
        discounts_of(&c),
        [("auto-100".to_owned(), 100), ("ten".to_owned(), 250)]
    );
    assert_eq!(c["discount_minor"], 350);
    assert_eq!(c["total_minor"], 2150);
    assert_eq!(c["items"][0]["discount_minor"], 350);
    assert_eq!(c["coupons"], json!([{"code": "TEN", "status": "applied"}]));

    // Each refusal says why, and changes nothing.
    let past = "2020-01-01T00:00:00Z";
    define(
        &app,
        "old",
        json!({"name": "Old", "code": "OLD", "action": {"type": "percent_off", "percent": 50},
               "starts_at": "2019-01-01T00:00:00Z", "ends_at": past}),
    )
    .await;
    apply(&app, &cart, "OLD")
        .await
        .expect_error(409, "coupon_expired");
    define(
        &app,
        "tea-only",
        json!({"name": "Tea", "code": "TEA", "action": {"type": "percent_off", "percent": 50},
               "conditions": {"skus": ["tea-01"]}}),
    )
    .await;
    apply(&app, &cart, "TEA")
        .await
        .expect_error(409, "coupon_not_applicable");
    apply(&app, &cart, "NOSUCH")
        .await
        .expect_error(404, "not_found");
    apply(&app, &cart, "not a code")
        .await
        .expect_error(400, "validation");
    let dup = app
        .admin_put_json(
            "/v1/promotions/dup",
            &json!({"name": "Dup", "code": "TEN", "action": {"type": "percent_off", "percent": 5}}),
        )
        .await;
    dup.expect_error(409, "conflict");
    app.admin_put_json(
        "/v1/promotions/bad",
        &json!({"name": "Bad", "action": {"type": "percent_off", "percent": 101}}),
    )
    .await
    .expect_error(400, "validation");
    assert_eq!(app.cart(&cart).await["total_minor"], 2150);

    // The order keeps the same three totals and its discounts.
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(
        (
            order["subtotal_minor"].as_i64(),
            order["discount_minor"].as_i64(),
            order["total_minor"].as_i64()
        ),
        (Some(2500), Some(350), Some(2150))
    );
    assert_eq!(
        discounts_of(&order),
        [("auto-100".to_owned(), 100), ("ten".to_owned(), 250)]
    );
    let ten = promotion(&app, "ten").await;
    assert_eq!(
        (ten["redemptions"].as_i64(), ten["reserved"].as_i64()),
        (Some(1), Some(0))
    );

    // Ending a promotion shows on every cart that holds its code.
    let other = app.cart_with("mug-01", 2).await;
    apply(&app, &other, "TEN").await.expect(200);
    let ended = app.admin_delete("/v1/promotions/ten").await;
    assert_eq!(ended.expect(200)["status"], "ended");
    let deadline = Deadline::new(
        Duration::from_secs(10),
        "the cart to see the promotion ended",
    );
    loop {
        let c = app.cart(&other).await;
        if c["coupons"][0]["status"] == "expired" {
            assert_eq!(c["total_minor"], 2400);
            break;
        }
        deadline.tick(Duration::from_millis(100)).await;
    }
    // A checkout with a coupon that no longer applies is cancelled with its code, and
    // the cart reopens.
    let order = app.checkout_and_wait(&other, GOOD_CARD).await;
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["failure"]["code"], "coupon_expired", "{order}");
    assert_eq!(app.cart(&other).await["status"], "open");
    let list = app.admin_get("/v1/promotions").await;
    let ids: Vec<&str> = list.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["auto-100", "old", "tea-only", "ten"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_limit_holds_and_a_declined_order_gives_its_redemption_back() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("tea-01", 400, 50).await;
    define(
        &app,
        "once",
        json!({"name": "Once each", "code": "ONCE", "action": {"type": "amount_off", "amount_minor": 50},
               "per_customer_limit": 1, "usage_limit": 1}),
    )
    .await;
    let ada = app.shopper("ada@example.com").await;
    let cart = app.cart_as(Some(&ada.access), "tea-01", 1).await;
    let path = format!("/v1/carts/{cart}/coupons");
    app.call(Some(&ada.access), "POST", &path, Some(r#"{"code":"ONCE"}"#))
        .await
        .expect(200);
    // Declined: the redemption it reserved is released, so the coupon is usable again.
    let body = checkout_body(DECLINED_CARD).to_string();
    let placed = app
        .call(
            Some(&ada.access),
            "POST",
            &format!("/v1/carts/{cart}/checkout"),
            Some(&body),
        )
        .await;
    let id = placed.json["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", placed.text))
        .to_owned();
    let declined = app.wait_terminal_as(&ada.access, &id).await;
    assert_eq!(
        declined["failure"]["code"], "payment_declined",
        "{declined}"
    );
    let p = promotion(&app, "once").await;
    assert_eq!(
        (p["redemptions"].as_i64(), p["reserved"].as_i64()),
        (Some(0), Some(0))
    );
    let paid = app.checkout_as(Some(&ada.access), &cart).await;
    assert_eq!(paid["status"], "paid", "{paid}");
    assert_eq!(paid["discount_minor"], 50);
    assert_eq!(promotion(&app, "once").await["redemptions"], 1);
    // The same shopper again: over her limit (and over the total, checked after).
    let again = app.cart_as(Some(&ada.access), "tea-01", 1).await;
    app.call(
        Some(&ada.access),
        "POST",
        &format!("/v1/carts/{again}/coupons"),
        Some(r#"{"code":"ONCE"}"#),
    )
    .await
    .expect_error(409, "coupon_exhausted");
    let p = app
        .admin_put_json(
            "/v1/promotions/once",
            &json!({"name": "Once each", "code": "ONCE", "action": {"type": "amount_off", "amount_minor": 50},
                    "per_customer_limit": 1, "usage_limit": 5}),
        )
        .await;
    assert_eq!(p.expect(200)["redemptions"], 1);
    app.call(
        Some(&ada.access),
        "POST",
        &format!("/v1/carts/{again}/coupons"),
        Some(r#"{"code":"ONCE"}"#),
    )
    .await
    .expect_error(409, "coupon_limit_per_customer");
    // Someone else may.
    let bob = app.shopper("bob@example.com").await;
    let theirs = app.cart_as(Some(&bob.access), "tea-01", 1).await;
    app.call(
        Some(&bob.access),
        "POST",
        &format!("/v1/carts/{theirs}/coupons"),
        Some(r#"{"code":"ONCE"}"#),
    )
    .await
    .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_checkouts_on_a_ten_use_coupon_redeem_it_exactly_ten_times() {
    let app = Arc::new(spawn_app(AppOpts::new()).await);
    app.stocked_product("tea-01", 1000, 1000).await;
    define(
        &app,
        "ten-uses",
        json!({"name": "Ten uses", "code": "RUSH", "usage_limit": 10,
               "action": {"type": "percent_off", "percent": 10}}),
    )
    .await;
    let carts: Vec<String> = stream::iter(0..500)
        .map(|_| {
            let app = app.clone();
            async move {
                let cart = app.cart_with("tea-01", 1).await;
                let c = apply(&app, &cart, "RUSH").await;
                assert_eq!(c.expect(200)["total_minor"], 900);
                cart
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    // 500 checkouts at once; the first 25 with a card that is declined.
    let handles: Vec<_> = carts
        .iter()
        .enumerate()
        .map(|(i, cart)| {
            let (app, cart) = (app.clone(), cart.clone());
            let card = if i < 25 { DECLINED_CARD } else { GOOD_CARD };
            tokio::spawn(async move { app.checkout(&cart, &new_key(), &checkout_body(card)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for h in handles {
        let r = h.await.expect("checkout task");
        assert!(
            matches!(r.status, 201 | 202),
            "checkout: {} {}",
            r.status,
            r.text
        );
        ids.push(r.json["id"].as_str().expect("order id").to_owned());
    }
    let orders: Vec<Value> = stream::iter(ids)
        .map(|id| {
            let app = app.clone();
            async move { app.wait_order_terminal(&id, Duration::from_secs(120)).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let paid: Vec<&Value> = orders.iter().filter(|o| o["status"] == "paid").collect();
    for o in &paid {
        assert_eq!(discounts_of(o), [("ten-uses".to_owned(), 100)], "{o}");
        assert_eq!(o["total_minor"], 900);
    }
    for o in orders.iter().filter(|o| o["status"] != "paid") {
        let code = o["failure"]["code"].as_str().unwrap_or_default();
        assert!(
            ["coupon_exhausted", "payment_declined"].contains(&code),
            "unexpected end: {o}"
        );
    }
    assert!(
        paid.len() <= 10,
        "{} orders carry a ten-use coupon",
        paid.len()
    );
    let p = promotion(&app, "ten-uses").await;
    assert_eq!(p["redemptions"].as_u64(), Some(paid.len() as u64));
    assert_eq!(
        p["reserved"], 0,
        "a settled order still holds a reservation"
    );

    // Declined orders released theirs: checking out again the carts that found the coupon
    // taken brings the count to exactly ten, and no further.
    let mut redeemed = paid.len();
    for o in orders
        .iter()
        .filter(|o| o["failure"]["code"] == "coupon_exhausted")
    {
        let cart = o["cart_id"].as_str().unwrap();
        let again = app.checkout_and_wait(cart, GOOD_CARD).await;
        match again["status"].as_str() {
            Some("paid") => redeemed += 1,
            _ => assert_eq!(again["failure"]["code"], "coupon_exhausted", "{again}"),
        }
        if redeemed == 10 {
            break;
        }
    }
    assert_eq!(redeemed, 10);
    let p = promotion(&app, "ten-uses").await;
    assert_eq!(
        (p["redemptions"].as_i64(), p["reserved"].as_i64()),
        (Some(10), Some(0))
    );
    let late = app.cart_with("tea-01", 1).await;
    apply(&app, &late, "RUSH")
        .await
        .expect_error(409, "coupon_exhausted");
}
