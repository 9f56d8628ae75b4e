//! Purchases end to end: the demo walk-through, stock accounting, declined
//! and failing cards, out of stock, and idempotent checkout.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_walkthrough_ends_with_a_paid_order() {
    // A long checkout wait so that the answer is the terminal 201.
    let app = spawn_app(
        AppOpts::new()
            .demo()
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 10_000),
    )
    .await;

    // The seeded catalog: about 12 products in 3 categories.
    let mut products = Vec::new();
    let mut path = "/v1/products?limit=100".to_string();
    for _ in 0..20 {
        let resp = app.get(&path).await;
        let page = resp.expect(200);
        products.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/products?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert!(
        (8..=20).contains(&products.len()),
        "demo seeds about 12 products: {products:?}"
    );
    let categories: BTreeSet<String> = products
        .iter()
        .map(|p| p["category"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        categories.len() >= 3,
        "demo seeds 3 categories: {categories:?}"
    );

    let product = &products[0];
    let sku = product["sku"].as_str().expect("sku");
    let before = app.inventory(sku).await;
    assert!(before.available > 0, "demo products have stock: {before:?}");

    let cart = app.create_cart().await;
    let resp = app.add_item(&cart, sku, 1).await;
    let body = resp.expect(200);
    assert_eq!(line_quantity(body, sku), 1);
    assert_eq!(body["total_minor"], product["price_minor"]);

    let resp = app
        .checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    let order = resp.expect(201);
    assert_eq!(order["status"], "paid", "{}", resp.text);
    assert_eq!(order["payment"]["last4"], "4242");
    assert!(order["failure"].is_null(), "{}", resp.text);

    let after = app.inventory(sku).await;
    assert_eq!(after.on_hand, before.on_hand - 1);
    assert_eq!(after.reserved, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchase_decreases_stock_by_exactly_the_quantity_bought() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("mug-01", 1250, 20).await;
    app.stocked_product("tee-01", 900, 7).await;

    let cart = app.create_cart().await;
    app.add_item(&cart, "mug-01", 3).await.expect(200);
    let resp = app.add_item(&cart, "mug-01", 2).await;
    let body = resp.expect(200);
    assert_eq!(body["status"], "open");
    assert_eq!(body["currency"], "USD");
    let items = body["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        1,
        "adding the same sku twice merges the line: {}",
        resp.text
    );
    assert_eq!(items[0]["quantity"], 5);
    assert_eq!(items[0]["unit_price_minor"], 1250);
    assert_eq!(items[0]["line_total_minor"], 6250);
    assert_eq!(body["total_minor"], 6250);

    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(order["cart_id"], cart.as_str());
    assert_eq!(order["total_minor"], 6250);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order_units(&order), vec![("mug-01".to_string(), 5)]);
    assert_eq!(order["payment"]["last4"], "4242");
    let history: Vec<_> = order["history"]
        .as_array()
        .expect("history")
        .iter()
        .collect();
    assert_eq!(
        history.first().map(|h| &h["status"]),
        Some(&json!("pending")),
        "{order}"
    );
    assert_eq!(
        history.last().map(|h| &h["status"]),
        Some(&json!("paid")),
        "{order}"
    );

    let inv = app.inventory("mug-01").await;
    assert_eq!((inv.on_hand, inv.reserved, inv.available), (15, 0, 15));
    let other = app.inventory("tee-01").await;
    assert_eq!(
        (other.on_hand, other.reserved),
        (7, 0),
        "another sku is untouched"
    );

    // The cart is locked and tied to the order.
    let cart_after = app.cart(&cart).await;
    assert_eq!(cart_after["status"], "checked_out");
    assert_eq!(cart_after["order_id"], order["id"]);
    let resp = app.add_item(&cart, "mug-01", 1).await;
    resp.expect_error(409, "cart_checked_out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_lines_can_be_set_and_removed() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("pen-01", 150, 100).await;
    app.stocked_product("ink-01", 400, 100).await;
    let cart = app.create_cart().await;
    app.add_item(&cart, "pen-01", 4).await.expect(200);
    app.add_item(&cart, "ink-01", 1).await.expect(200);

    let resp = app
        .put_json(
            &format!("/v1/carts/{cart}/items/pen-01"),
            &json!({"quantity": 10}),
        )
        .await;
    let body = resp.expect(200);
    assert_eq!(line_quantity(body, "pen-01"), 10);
    assert_eq!(body["total_minor"], 10 * 150 + 400);

    let resp = app
        .put_json(
            &format!("/v1/carts/{cart}/items/pen-01"),
            &json!({"quantity": 0}),
        )
        .await;
    let body = resp.expect(200);
    assert_eq!(
        body["items"].as_array().map(Vec::len),
        Some(1),
        "quantity 0 removes the line"
    );
    assert_eq!(body["total_minor"], 400);

    let resp = app.delete(&format!("/v1/carts/{cart}/items/ink-01")).await;
    let body = resp.expect(200);
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["total_minor"], 0);

    // The version moves forward with every change.
    let v = app.cart(&cart).await["version"].as_i64().expect("version");
    app.add_item(&cart, "ink-01", 2).await.expect(200);
    let v2 = app.cart(&cart).await["version"].as_i64().expect("version");
    assert!(v2 > v, "version must increase: {v} -> {v2}");

    // An empty cart cannot be checked out.
    let empty = app.create_cart().await;
    let resp = app
        .checkout(&empty, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    resp.expect_error(409, "cart_empty");
}

async fn declined_case(card: &str) {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("lamp-01", 4999, 10).await;
    let cart = app.cart_with("lamp-01", 2).await;

    let order = app.checkout_and_wait(&cart, card).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["failure"]["code"], "payment_declined", "{order}");
    assert!(order["failure"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));

    let inv = app.inventory("lamp-01").await;
    assert_eq!(
        (inv.on_hand, inv.reserved),
        (10, 0),
        "stock unchanged after a decline"
    );

    let reopened = app.cart(&cart).await;
    assert_eq!(
        reopened["status"], "open",
        "the cart is reopened: {reopened}"
    );
    assert!(reopened["order_id"].is_null(), "{reopened}");
    assert_eq!(
        line_quantity(&reopened, "lamp-01"),
        2,
        "the cart keeps its lines"
    );

    // The shopper can try again with another card.
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(app.inventory("lamp-01").await.on_hand, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_card_cancels_the_order_and_reopens_the_cart() {
    declined_case(DECLINED_CARD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_funds_cancels_the_order_with_payment_declined() {
    declined_case(INSUFFICIENT_FUNDS_CARD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_error_is_retried_then_fails_with_payment_error() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("desk-01", 25000, 3).await;
    let cart = app.cart_with("desk-01", 1).await;

    let order = app.checkout_and_wait(&cart, PROCESSING_ERROR_CARD).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["failure"]["code"], "payment_error", "{order}");
    let inv = app.inventory("desk-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (3, 0));
    assert_eq!(app.cart(&cart).await["status"], "open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_stock_cancels_the_order_and_releases_nothing_else() {
    // Slow payments keep another order's reservation in place meanwhile.
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 3000)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 100),
    )
    .await;
    app.stocked_product("chair-01", 3000, 5).await;
    app.stocked_product("table-01", 9000, 2).await;

    // Order X holds 1 chair while its payment is slow.
    let cart_x = app.cart_with("chair-01", 1).await;
    let resp = app
        .checkout(&cart_x, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert!(
        matches!(resp.status, 201 | 202),
        "{} {}",
        resp.status,
        resp.text
    );
    let order_x = resp.json["id"].as_str().expect("order id").to_string();
    let deadline = Deadline::new(Duration::from_secs(10), "order X to reserve its chair");
    while app.inventory("chair-01").await.reserved != 1 {
        deadline.tick(Duration::from_millis(20)).await;
    }

    // Order Y wants 2 chairs and 3 tables, but only 2 tables exist.
    let cart_y = app.cart_with("chair-01", 2).await;
    app.add_item(&cart_y, "table-01", 3).await.expect(200);
    let order_y = app.checkout_and_wait(&cart_y, GOOD_CARD).await;
    assert_eq!(order_y["status"], "cancelled", "{order_y}");
    assert_eq!(order_y["failure"]["code"], "out_of_stock", "{order_y}");

    let chairs = app.inventory("chair-01").await;
    let x_now = app.order(&order_x).await;
    if !is_terminal(&x_now) {
        // X still holds its reservation: Y's failure released only its own.
        assert_eq!(
            (chairs.on_hand, chairs.reserved),
            (5, 1),
            "X's reservation is kept"
        );
    }
    let tables = app.inventory("table-01").await;
    assert_eq!((tables.on_hand, tables.reserved), (2, 0));
    assert_eq!(
        app.cart(&cart_y).await["status"],
        "open",
        "the cart is reopened"
    );

    let x = app
        .wait_order_terminal(&order_x, Duration::from_secs(60))
        .await;
    assert_eq!(x["status"], "paid", "{x}");
    let chairs = app.inventory("chair-01").await;
    assert_eq!((chairs.on_hand, chairs.reserved), (4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_checkout_replays_and_rejects_a_different_body() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_CHECKOUT__WAIT_MS", 10_000)).await;
    app.stocked_product("book-01", 2000, 10).await;
    let cart = app.cart_with("book-01", 2).await;
    let key = new_key();
    let body = checkout_body(GOOD_CARD);

    let first = app.checkout(&cart, &key, &body).await;
    let order = first.expect(201).clone();
    assert_eq!(order["status"], "paid", "{}", first.text);

    for _ in 0..2 {
        let replay = app.checkout(&cart, &key, &body).await;
        assert_eq!(
            replay.status, first.status,
            "replay status; body {}",
            replay.text
        );
        assert_eq!(
            replay.json, first.json,
            "a replay returns the identical response"
        );
    }
    assert_eq!(
        app.inventory("book-01").await.on_hand,
        8,
        "charged and committed once"
    );

    let mut other = body.clone();
    other["email"] = json!("someone-else@example.com");
    app.checkout(&cart, &key, &other)
        .await
        .expect_error(409, "idempotency_key_reused");
    let mut other_card = body.clone();
    other_card["payment"]["card_number"] = json!(DECLINED_CARD);
    app.checkout(&cart, &key, &other_card)
        .await
        .expect_error(409, "idempotency_key_reused");

    // A new key on the same, checked-out cart is not a second order.
    app.checkout(&cart, &new_key(), &body)
        .await
        .expect_error(409, "cart_checked_out");
    assert_eq!(app.inventory("book-01").await.on_hand, 8);
    assert_eq!(
        app.order(order["id"].as_str().unwrap()).await["status"],
        "paid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_replay_of_a_running_checkout_returns_the_same_order() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 1500)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 100),
    )
    .await;
    app.stocked_product("vase-01", 3500, 4).await;
    let cart = app.cart_with("vase-01", 1).await;
    let key = new_key();
    let body = checkout_body(GOOD_CARD);

    let first = app.checkout(&cart, &key, &body).await;
    assert_eq!(first.status, 202, "slow payment: {}", first.text);
    let id = first.json["id"].as_str().expect("order id").to_string();
    let replay = app.checkout(&cart, &key, &body).await;
    assert!(matches!(replay.status, 201 | 202), "{}", replay.text);
    assert_eq!(
        replay.json["id"].as_str(),
        Some(id.as_str()),
        "same order, not a second one"
    );

    let order = app.wait_order_terminal(&id, Duration::from_secs(60)).await;
    assert_eq!(order["status"], "paid");
    assert_eq!(app.inventory("vase-01").await.on_hand, 3, "committed once");
}
