//! Bad input on every route gets its 4xx JSON error, never a 500 or a panic.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// 400, with either code: the contract does not say whether a well-formed
/// JSON document with a field of the wrong type is `invalid_json` or
/// `validation`.
const BAD_TYPE: &[&str] = &["invalid_json", "validation"];

const NOT_A_UUID: &str = "not-a-uuid";

fn big_body() -> Value {
    // > 64 KiB of otherwise valid JSON.
    json!({"name": "x".repeat(70 * 1024), "price_minor": 100, "category": "general",
           "sku": "mug-01", "quantity": 1, "delta": 1, "reason": "x".repeat(70 * 1024)})
}

/// Sends an over-limit body on a connection of its own: a server may answer
/// 413 without reading the body and then close that connection.
async fn too_big(app: &TestApp, method: Method, path: &str, admin: bool) -> Resp {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    let mut rb = client
        .request(method, app.url(path))
        .header("Idempotency-Key", new_key())
        .json(&big_body());
    if admin {
        rb = rb.bearer_auth(ADMIN_TOKEN);
    }
    send(rb).await
}

async fn raw(rb: reqwest::RequestBuilder, text: &str) -> Resp {
    send(
        rb.header("content-type", "application/json")
            .body(text.to_string()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_routes_reject_bad_input() {
    let app = spawn_app(AppOpts::new()).await;
    let good = json!({"name": "Mug", "price_minor": 1200, "category": "kitchen"});

    // Authentication and authorization.
    let resp = app.put_json("/v1/products/mug-01", &good).await;
    resp.expect_error(401, "unauthorized");
    let resp = send(
        app.request(Method::PUT, "/v1/products/mug-01")
            .bearer_auth("wrong")
            .json(&good),
    )
    .await;
    resp.expect_error_in(&[401, 403], &["unauthorized", "forbidden", "invalid_token"]);
    let resp = send(
        app.request(Method::PUT, "/v1/products/mug-01")
            .header("authorization", format!("Basic {ADMIN_TOKEN}"))
            .json(&good),
    )
    .await;
    resp.expect_error_in(&[401, 403], &["unauthorized", "forbidden", "invalid_token"]);
    app.get("/v1/products/mug-01")
        .await
        .expect_error(404, "not_found");

    // Body problems.
    let put = || app.admin(Method::PUT, "/v1/products/mug-01");
    raw(put(), "{").await.expect_error(400, "invalid_json");
    raw(put(), "").await.expect_error(400, "invalid_json");
    raw(put(), "[1,2]").await.expect_error_in(&[400], BAD_TYPE);
    for bad in [
        json!({"name": "Mug", "price_minor": "1200", "category": "kitchen"}),
        json!({"name": 5, "price_minor": 1200, "category": "kitchen"}),
        json!({"name": "Mug", "price_minor": 12.5, "category": "kitchen"}),
        json!({"name": "Mug", "price_minor": 1200, "category": "kitchen", "tags": "a,b"}),
        json!({"price_minor": 1200, "category": "kitchen"}),
        json!({"name": "Mug", "category": "kitchen"}),
    ] {
        app.upsert_product("mug-01", &bad)
            .await
            .expect_error_in(&[400], BAD_TYPE);
    }
    let negative = json!({"name": "Mug", "price_minor": -1, "category": "kitchen"});
    app.upsert_product("mug-01", &negative)
        .await
        .expect_error_in(&[400], BAD_TYPE);
    too_big(&app, Method::PUT, "/v1/products/mug-01", true)
        .await
        .expect_error(413, "payload_too_large");

    // SKU format: [A-Za-z0-9._-]{1,64}.
    let long = "a".repeat(65);
    for sku in [long.as_str(), "bad%20sku", "bad*sku", "caf%C3%A9"] {
        app.upsert_product(sku, &good)
            .await
            .expect_error(400, "validation");
        app.get(&format!("/v1/products/{sku}"))
            .await
            .expect_error_in(&[400, 404], &[]);
    }
    let max = "a".repeat(64);
    app.upsert_product(&max, &good).await.expect(201);

    // Nothing was created by the rejected requests.
    app.get("/v1/products/mug-01")
        .await
        .expect_error(404, "not_found");

    // Archive: operator only, unknown sku.
    app.delete("/v1/products/mug-01")
        .await
        .expect_error(401, "unauthorized");
    app.admin_delete("/v1/products/mug-01")
        .await
        .expect_error(404, "not_found");

    // Listing parameters.
    for query in ["limit=abc", "limit=-1", "limit=1.5"] {
        app.get(&format!("/v1/products?{query}"))
            .await
            .expect_error(400, "validation");
    }
    app.get("/v1/products?cursor=%00%01garbage")
        .await
        .expect_error_in(&[400], &["validation"]);

    assert_still_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_routes_reject_bad_input() {
    let app = spawn_app(AppOpts::new()).await;
    app.create_product("mug-01", 1200, "kitchen").await;
    let path = "/v1/inventory/mug-01/adjustments";

    let body = json!({"delta": 5, "reason": "restock"});
    app.post_json(path, &body)
        .await
        .expect_error(401, "unauthorized");
    let resp = send(
        app.request(Method::POST, path)
            .bearer_auth("nope")
            .json(&body),
    )
    .await;
    resp.expect_error_in(&[401, 403], &["unauthorized", "forbidden", "invalid_token"]);

    let post = || app.admin(Method::POST, path);
    raw(post(), "{\"delta\": ")
        .await
        .expect_error(400, "invalid_json");
    for bad in [
        json!({"delta": "5", "reason": "restock"}),
        json!({"delta": 1.5, "reason": "restock"}),
        json!({"delta": 5}),
        json!({"reason": "restock"}),
        json!({"delta": 5, "reason": 7}),
    ] {
        app.admin_post(path, Some(&bad))
            .await
            .expect_error_in(&[400], BAD_TYPE);
    }
    app.admin_post(path, Some(&json!({"delta": 0, "reason": "nothing"})))
        .await
        .expect_error(400, "validation");
    too_big(&app, Method::POST, path, true)
        .await
        .expect_error(413, "payload_too_large");
    app.admin_post("/v1/inventory/bad*sku/adjustments", Some(&body))
        .await
        .expect_error(400, "validation");
    app.get("/v1/inventory/bad*sku")
        .await
        .expect_error_in(&[400, 404], &[]);

    // None of the rejected adjustments applied.
    let inv = app.inventory("mug-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (0, 0));
    assert_still_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cart_routes_reject_bad_input() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("mug-01", 1200, 50).await;
    let cart = app.create_cart().await;
    let items = format!("/v1/carts/{cart}/items");

    // Malformed and unknown ids.
    app.get(&format!("/v1/carts/{NOT_A_UUID}"))
        .await
        .expect_error(400, "validation");
    let unknown = uuid::Uuid::new_v4();
    app.get(&format!("/v1/carts/{unknown}"))
        .await
        .expect_error(404, "not_found");
    app.add_item(NOT_A_UUID, "mug-01", 1)
        .await
        .expect_error(400, "validation");
    app.add_item(&unknown.to_string(), "mug-01", 1)
        .await
        .expect_error(404, "not_found");

    // Quantities: 1..=100 per call.
    for q in [0, 101] {
        app.add_item(&cart, "mug-01", q)
            .await
            .expect_error(400, "validation");
    }
    // A negative number may fail to deserialize (unsigned) or to validate.
    for q in [-1, -100] {
        app.add_item(&cart, "mug-01", q)
            .await
            .expect_error_in(&[400], BAD_TYPE);
    }
    let post = || app.request(Method::POST, &items);
    raw(post(), "{\"sku\": \"mug-01\", \"quantity\": 1")
        .await
        .expect_error(400, "invalid_json");
    raw(post(), "not json at all")
        .await
        .expect_error(400, "invalid_json");
    for bad in [
        json!({"sku": "mug-01", "quantity": "1"}),
        json!({"sku": "mug-01", "quantity": 1.5}),
        json!({"sku": "mug-01", "quantity": null}),
        json!({"sku": 17, "quantity": 1}),
        json!({"quantity": 1}),
        json!({"sku": "mug-01"}),
    ] {
        app.post_json(&items, &bad)
            .await
            .expect_error_in(&[400], BAD_TYPE);
    }
    app.add_item(&cart, "bad*sku", 1)
        .await
        .expect_error(400, "validation");
    app.add_item(&cart, "no-such-sku", 1)
        .await
        .expect_error_in(&[400, 404], &["not_found", "validation"]);
    too_big(&app, Method::POST, &items, false)
        .await
        .expect_error(413, "payload_too_large");

    // Nothing above changed the cart.
    let body = app.cart(&cart).await;
    assert_eq!(body["items"], json!([]), "{body}");

    // A line holds at most 1000.
    for _ in 0..10 {
        app.add_item(&cart, "mug-01", 100).await.expect(200);
    }
    app.add_item(&cart, "mug-01", 1)
        .await
        .expect_error_in(&[400, 409], &[]);
    assert_eq!(line_quantity(&app.cart(&cart).await, "mug-01"), 1000);

    // Setting a quantity.
    let set = format!("{items}/mug-01");
    for q in [json!(-1), json!(1001), json!("3"), json!(2.5)] {
        let resp = app.put_json(&set, &json!({"quantity": q})).await;
        resp.expect_error_in(&[400], BAD_TYPE);
    }
    app.put_json(&set, &json!({}))
        .await
        .expect_error_in(&[400], BAD_TYPE);
    raw(app.request(Method::PUT, &set), "{{")
        .await
        .expect_error(400, "invalid_json");
    app.put_json(
        &format!("/v1/carts/{NOT_A_UUID}/items/mug-01"),
        &json!({"quantity": 1}),
    )
    .await
    .expect_error(400, "validation");
    app.put_json(&format!("{items}/bad*sku"), &json!({"quantity": 1}))
        .await
        .expect_error(400, "validation");
    too_big(&app, Method::PUT, &set, false)
        .await
        .expect_error(413, "payload_too_large");

    // Removing a line.
    app.delete(&format!("/v1/carts/{NOT_A_UUID}/items/mug-01"))
        .await
        .expect_error(400, "validation");
    app.delete(&format!("/v1/carts/{unknown}/items/mug-01"))
        .await
        .expect_error(404, "not_found");
    app.delete(&format!("{items}/bad*sku"))
        .await
        .expect_error(400, "validation");

    assert_eq!(line_quantity(&app.cart(&cart).await, "mug-01"), 1000);
    assert_still_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_rejects_bad_input() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("mug-01", 1200, 50).await;
    let cart = app.cart_with("mug-01", 1).await;
    let path = format!("/v1/carts/{cart}/checkout");
    let good = checkout_body(GOOD_CARD);

    // Missing or empty Idempotency-Key.
    app.post_json(&path, &good)
        .await
        .expect_error(400, "validation");
    let resp = send(
        app.request(Method::POST, &path)
            .header("Idempotency-Key", "")
            .json(&good),
    )
    .await;
    resp.expect_error(400, "validation");

    // Malformed and unknown carts.
    app.checkout(NOT_A_UUID, &new_key(), &good)
        .await
        .expect_error(400, "validation");
    let unknown = uuid::Uuid::new_v4().to_string();
    app.checkout(&unknown, &new_key(), &good)
        .await
        .expect_error(404, "not_found");

    // Body problems.
    let with_key = || {
        app.request(Method::POST, &path)
            .header("Idempotency-Key", new_key())
    };
    raw(with_key(), "{\"email\": ")
        .await
        .expect_error(400, "invalid_json");
    let mut cases: Vec<Value> = Vec::new();
    let mut push = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        cases.push(b);
    };
    push(&|b| b["payment"]["exp_month"] = json!("12"));
    push(&|b| b["payment"]["exp_year"] = json!(2030.5));
    push(&|b| b["payment"]["cvc"] = json!(123));
    push(&|b| b["payment"]["card_number"] = json!(4242424242424242u64));
    push(&|b| b["payment"] = json!("card"));
    push(&|b| b["email"] = json!(null));
    push(&|b| {
        b.as_object_mut().unwrap().remove("payment");
    });
    for bad in &cases {
        app.checkout(&cart, &new_key(), bad)
            .await
            .expect_error_in(&[400], BAD_TYPE);
    }
    let mut invalid: Vec<Value> = Vec::new();
    for (field, value) in [
        ("exp_month", json!(13)),
        ("exp_month", json!(0)),
        ("cvc", json!("12")),
        ("cvc", json!("12a")),
        ("card_number", json!("4242-not-a-card")),
        ("card_number", json!("")),
    ] {
        let mut b = good.clone();
        b["payment"][field] = value;
        invalid.push(b);
    }
    for bad in &invalid {
        app.checkout(&cart, &new_key(), bad)
            .await
            .expect_error(400, "validation");
    }
    too_big(&app, Method::POST, &path, false)
        .await
        .expect_error(413, "payload_too_large");

    // None of that locked the cart or touched stock.
    assert_eq!(app.cart(&cart).await["status"], "open");
    assert_eq!(app.inventory("mug-01").await.reserved, 0);
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid");
    assert_still_healthy(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_admin_routes_reject_bad_input() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("mug-01", 1200, 50).await;
    let cart = app.cart_with("mug-01", 1).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    let id = order["id"].as_str().unwrap().to_string();
    let unknown = uuid::Uuid::new_v4().to_string();

    app.get(&format!("/v1/orders/{NOT_A_UUID}"))
        .await
        .expect_error(400, "validation");
    app.get(&format!("/v1/orders/{unknown}"))
        .await
        .expect_error(404, "not_found");
    let cancel = |o: &str| format!("/v1/orders/{o}/cancel");
    send(app.request(Method::POST, &cancel(NOT_A_UUID)))
        .await
        .expect_error(400, "validation");
    send(app.request(Method::POST, &cancel(&unknown)))
        .await
        .expect_error(404, "not_found");

    for action in ["fulfil", "refund"] {
        let path = format!("/v1/orders/{id}/{action}");
        send(app.request(Method::POST, &path))
            .await
            .expect_error(401, "unauthorized");
        send(app.request(Method::POST, &path).bearer_auth("wrong-token"))
            .await
            .expect_error_in(&[401, 403], &["unauthorized", "forbidden", "invalid_token"]);
        app.admin_post(&format!("/v1/orders/{NOT_A_UUID}/{action}"), None)
            .await
            .expect_error(400, "validation");
        app.admin_post(&format!("/v1/orders/{unknown}/{action}"), None)
            .await
            .expect_error(404, "not_found");
    }
    assert_eq!(
        app.order(&id).await["status"],
        "paid",
        "rejected calls changed nothing"
    );

    let events = format!("/v1/admin/entities/order/{id}/events");
    app.get(&events).await.expect_error(401, "unauthorized");
    send(app.request(Method::GET, &events).bearer_auth("wrong-token"))
        .await
        .expect_error_in(&[401, 403], &["unauthorized", "forbidden", "invalid_token"]);
    app.events("spaceship", &id)
        .await
        .expect_error_in(&[400, 404], &[]);
    app.events("order", NOT_A_UUID)
        .await
        .expect_error(400, "validation");
    app.events("cart", NOT_A_UUID)
        .await
        .expect_error(400, "validation");
    app.events("sku", "bad*sku")
        .await
        .expect_error(400, "validation");

    // Unknown routes and methods are JSON errors too.
    app.get("/v1/nowhere").await.expect_error_in(&[404], &[]);
    send(app.request(Method::PATCH, &format!("/v1/carts/{cart}")))
        .await
        .expect_error_in(&[404, 405], &[]);
    assert_still_healthy(&app).await;
}

async fn assert_still_healthy(app: &TestApp) {
    app.get("/health/live").await.expect(200);
    app.get("/health/ready").await.expect(200);
}
