//! Order lifecycle after checkout: cancel, fulfil, refund and the
//! transitions that are not allowed.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

fn statuses(order: &Value) -> Vec<String> {
    order["history"]
        .as_array()
        .unwrap_or_else(|| panic!("history: {order}"))
        .iter()
        .map(|h| {
            assert!(
                h["at"].as_str().is_some_and(|s| !s.is_empty()),
                "history.at: {h}"
            );
            h["status"].as_str().expect("history.status").to_string()
        })
        .collect()
}

/// Operator action; accepts 200 or 202 and waits until the status is `want`.
async fn operator(app: &TestApp, id: &str, action: &str, want: &str) -> Value {
    let resp = app
        .admin_post(&format!("/v1/orders/{id}/{action}"), None)
        .await;
    assert!(
        matches!(resp.status, 200 | 202),
        "{action}: {} {}",
        resp.status,
        resp.text
    );
    let deadline = Deadline::new(Duration::from_secs(30), format!("order {id} to be {want}"));
    loop {
        let order = app.order(id).await;
        if order["status"] == want {
            return order;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}

async fn paid_order(app: &TestApp, sku: &str, quantity: i64) -> String {
    let cart = app.cart_with(sku, quantity).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    order["id"].as_str().unwrap().to_string()
}

async fn cancel(app: &TestApp, id: &str) -> Resp {
    send(app.request(reqwest::Method::POST, &format!("/v1/orders/{id}/cancel"))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_can_cancel_before_paid() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 3000)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 100),
    )
    .await;
    app.stocked_product("kite-01", 1500, 5).await;
    let cart = app.cart_with("kite-01", 2).await;
    let resp = app
        .checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert_eq!(resp.status, 202, "slow payment: {}", resp.text);
    let id = resp.json["id"].as_str().expect("order id").to_string();
    let deadline = Deadline::new(Duration::from_secs(10), "the reservation");
    while app.inventory("kite-01").await.reserved != 2 {
        deadline.tick(Duration::from_millis(20)).await;
    }

    let resp = cancel(&app, &id).await;
    assert!(
        matches!(resp.status, 200 | 202),
        "cancel: {} {}",
        resp.status,
        resp.text
    );
    let order = app.wait_order_terminal(&id, Duration::from_secs(60)).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["failure"]["code"], "cancelled_by_customer", "{order}");
    assert_eq!(
        statuses(&order).last().map(String::as_str),
        Some("cancelled")
    );
    assert!(!statuses(&order).contains(&"paid".to_string()), "{order}");

    let inv = app.inventory("kite-01").await;
    assert_eq!(
        (inv.on_hand, inv.reserved),
        (5, 0),
        "the reservation is released"
    );
    // A cancelled order stays cancelled.
    app.admin_post(&format!("/v1/orders/{id}/fulfil"), None)
        .await
        .expect_error(409, "invalid_transition");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.order(&id).await["status"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_after_paid_is_an_invalid_transition() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("ball-01", 700, 5).await;
    let id = paid_order(&app, "ball-01", 1).await;

    cancel(&app, &id)
        .await
        .expect_error(409, "invalid_transition");
    let order = app.order(&id).await;
    assert_eq!(order["status"], "paid");
    assert!(order["failure"].is_null(), "{order}");
    assert_eq!(app.inventory("ball-01").await.on_hand, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_order_is_fulfilled_then_refunded() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("boot-01", 8900, 5).await;
    let id = paid_order(&app, "boot-01", 1).await;
    let path = format!("/v1/orders/{id}/fulfil");

    send(app.request(reqwest::Method::POST, &path))
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(app.order(&id).await["status"], "paid");

    let order = operator(&app, &id, "fulfil", "fulfilled").await;
    let history = statuses(&order);
    assert_eq!(
        history.first().map(String::as_str),
        Some("pending"),
        "{order}"
    );
    assert!(
        history.ends_with(&["paid".to_string(), "fulfilled".to_string()]),
        "{order}"
    );

    repeat(&app, &id, "fulfil", "fulfilled").await;
    cancel(&app, &id)
        .await
        .expect_error(409, "invalid_transition");

    let order = operator(&app, &id, "refund", "refunded").await;
    assert_eq!(
        statuses(&order).last().map(String::as_str),
        Some("refunded")
    );
    assert_eq!(order["payment"]["last4"], "4242");

    repeat(&app, &id, "refund", "refunded").await;
    for action in ["fulfil", "cancel"] {
        let rb = app.admin(reqwest::Method::POST, &format!("/v1/orders/{id}/{action}"));
        send(rb).await.expect_error(409, "invalid_transition");
    }
    let order = app.order(&id).await;
    assert_eq!(order["status"], "refunded");
    let history = statuses(&order);
    let once = |s: &str| history.iter().filter(|h| *h == s).count() == 1;
    assert!(
        once("fulfilled") && once("refunded"),
        "no repeated transitions: {order}"
    );
}

/// Repeating the transition an order already made is either an idempotent
/// 200 (nothing changes) or 409 `invalid_transition`; the contract allows both.
async fn repeat(app: &TestApp, id: &str, action: &str, status: &str) {
    let resp = app
        .admin_post(&format!("/v1/orders/{id}/{action}"), None)
        .await;
    if resp.status == 200 {
        assert_eq!(resp.json["status"], status, "{}", resp.text);
    } else {
        resp.expect_error(409, "invalid_transition");
    }
    assert_eq!(app.order(id).await["status"], status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paid_order_is_refunded_through_the_gateway() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("hat-01", 1999, 3).await;
    let id = paid_order(&app, "hat-01", 2).await;
    let paid = app.order(&id).await;

    send(app.request(reqwest::Method::POST, &format!("/v1/orders/{id}/refund")))
        .await
        .expect_error(401, "unauthorized");
    let order = operator(&app, &id, "refund", "refunded").await;
    assert_eq!(order["total_minor"], paid["total_minor"]);
    assert_ne!(
        order["payment"]["status"], paid["payment"]["status"],
        "the payment records the refund: {order}"
    );
    assert!(
        statuses(&order).ends_with(&["paid".to_string(), "refunded".to_string()]),
        "{order}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_order_cannot_be_fulfilled_or_refunded() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("sock-01", 499, 3).await;
    let cart = app.cart_with("sock-01", 1).await;
    let order = app.checkout_and_wait(&cart, DECLINED_CARD).await;
    assert_eq!(order["status"], "cancelled");
    let id = order["id"].as_str().unwrap();

    for action in ["fulfil", "refund"] {
        app.admin_post(&format!("/v1/orders/{id}/{action}"), None)
            .await
            .expect_error(409, "invalid_transition");
    }
    let after = app.order(id).await;
    assert_eq!(after["status"], "cancelled");
    assert_eq!(after["failure"]["code"], "payment_declined");
    let inv = app.inventory("sock-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (3, 0));
}
