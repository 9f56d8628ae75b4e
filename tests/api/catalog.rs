//! Catalog and inventory: product CRUD, listing, archiving, stock
//! adjustments and the audit trail.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_are_created_then_updated() {
    let app = spawn_app(AppOpts::new()).await;
    let body = json!({
        "name": "Electric Kettle",
        "description": "Boils water fast",
        "price_minor": 3999,
        "category": "kitchen",
        "tags": ["steel", "electric"],
    });
    let resp = app.upsert_product("kettle-01", &body).await;
    let created = resp.expect(201).clone();
    assert_eq!(
        created,
        json!({
            "sku": "kettle-01", "name": "Electric Kettle", "description": "Boils water fast",
            "price_minor": 3999, "currency": "USD", "category": "kitchen",
            "tags": ["steel", "electric"], "archived": false,
            "rating_average": null, "rating_count": 0, "images": [],
        })
    );
    assert_eq!(
        app.get("/v1/products/kettle-01").await.expect(200),
        &created
    );

    let update = json!({"name": "Kettle 2", "price_minor": 4500, "category": "kitchen"});
    let resp = app.upsert_product("kettle-01", &update).await;
    let updated = resp.expect(200).clone();
    assert_eq!(updated["sku"], "kettle-01");
    assert_eq!(updated["name"], "Kettle 2");
    assert_eq!(updated["price_minor"], 4500);
    assert_eq!(updated["archived"], false);
    assert_eq!(
        app.get("/v1/products/kettle-01").await.expect(200),
        &updated
    );

    // Optional fields may be left out.
    let minimal = json!({"name": "Spoon", "price_minor": 150, "category": "kitchen"});
    let spoon = app
        .upsert_product("spoon-01", &minimal)
        .await
        .expect(201)
        .clone();
    assert_eq!(spoon["tags"], json!([]), "{spoon}");

    // A new price applies to items added afterwards.
    app.adjust("kettle-01", 5).await.expect(200);
    let cart = app.cart_with("kettle-01", 2).await;
    assert_eq!(app.cart(&cart).await["total_minor"], 9000);
}

async fn seed_catalog(app: &TestApp) {
    for (sku, name, description, category, tags) in [
        (
            "kettle-01",
            "Electric Kettle",
            "Boils water fast",
            "kitchen",
            json!(["steel", "electric"]),
        ),
        (
            "pan-01",
            "Frying Pan",
            "Nonstick cast iron",
            "kitchen",
            json!(["iron"]),
        ),
        (
            "drill-01",
            "Cordless Drill",
            "Brushless motor",
            "tools",
            json!(["electric", "power"]),
        ),
        ("saw-01", "Hand Saw", "Cuts wood", "tools", json!(["wood"])),
        (
            "tent-01",
            "Dome Tent",
            "Sleeps two people",
            "outdoor",
            json!(["camping"]),
        ),
    ] {
        let body = json!({"name": name, "description": description, "price_minor": 1000,
                          "category": category, "tags": tags});
        app.upsert_product(sku, &body).await.expect(201);
    }
}

async fn list(app: &TestApp, query: &str) -> (BTreeSet<String>, Value) {
    let resp = app.get(&format!("/v1/products?{query}")).await;
    let page = resp.expect(200).clone();
    let skus = page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {}", resp.text))
        .iter()
        .map(|p| p["sku"].as_str().expect("sku").to_string())
        .collect();
    (skus, page)
}

fn set(skus: &[&str]) -> BTreeSet<String> {
    skus.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_by_words_and_category_and_pages_with_a_cursor() {
    let app = spawn_app(AppOpts::new()).await;
    seed_catalog(&app).await;

    let (all, page) = list(&app, "").await;
    assert_eq!(
        all,
        set(&["kettle-01", "pan-01", "drill-01", "saw-01", "tent-01"])
    );
    assert!(page["next_cursor"].is_null(), "{page}");

    assert_eq!(
        list(&app, "category=tools").await.0,
        set(&["drill-01", "saw-01"])
    );
    assert_eq!(list(&app, "category=garden").await.0, set(&[]));
    assert_eq!(
        list(&app, "q=Kettle").await.0,
        set(&["kettle-01"]),
        "a word of the name"
    );
    assert_eq!(
        list(&app, "q=nonstick").await.0,
        set(&["pan-01"]),
        "a word of the description"
    );
    assert_eq!(list(&app, "q=camping").await.0, set(&["tent-01"]), "a tag");
    assert_eq!(
        list(&app, "q=electric").await.0,
        set(&["kettle-01", "drill-01"])
    );
    assert_eq!(
        list(&app, "q=electric&category=tools").await.0,
        set(&["drill-01"])
    );
    assert_eq!(list(&app, "q=zeppelin").await.0, set(&[]));

    // Paging with limit=2 visits every product exactly once.
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "paging does not terminate");
        let (skus, page) = list(&app, &query).await;
        assert!(skus.len() <= 2, "limit is respected: {page}");
        seen.extend(skus);
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "no product twice: {seen:?}");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);
    assert!(pages >= 3, "5 products at 2 a page take 3 pages");

    // The cursor combines with filters.
    let (first, page) = list(&app, "category=kitchen&limit=1").await;
    assert_eq!(first.len(), 1);
    let cursor = page["next_cursor"].as_str().expect("a second kitchen page");
    let (second, _) = list(&app, &format!("category=kitchen&limit=1&cursor={cursor}")).await;
    assert_eq!(
        first.union(&second).cloned().collect::<BTreeSet<_>>(),
        set(&["kettle-01", "pan-01"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_makes_a_product_unpurchasable() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("lamp-01", 2500, 10).await;
    app.delete("/v1/products/lamp-01")
        .await
        .expect_error(401, "unauthorized");
    let resp = app.admin_delete("/v1/products/lamp-01").await;
    assert!(
        matches!(resp.status, 200 | 204),
        "archive: {} {}",
        resp.status,
        resp.text
    );
    let product = app.get("/v1/products/lamp-01").await.expect(200).clone();
    assert_eq!(product["archived"], true, "{product}");

    let fresh = app.create_cart().await;
    app.add_item(&fresh, "lamp-01", 1)
        .await
        .expect_error(409, "product_archived");
    assert_eq!(line_quantity(&app.cart(&fresh).await, "lamp-01"), 0);

    // Stock stays where it was.
    let inv = app.inventory("lamp-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (10, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_adjustments_never_go_below_zero() {
    let app = spawn_app(AppOpts::new()).await;
    app.create_product("bolt-01", 25, "tools").await;
    let inv = app.inventory("bolt-01").await;
    assert_eq!((inv.on_hand, inv.reserved, inv.available), (0, 0, 0));

    let resp = app.adjust("bolt-01", 10).await;
    assert_eq!(
        resp.expect(200),
        &json!({"sku": "bolt-01", "on_hand": 10, "reserved": 0, "available": 10,
            "locations": [{"location": "main", "on_hand": 10, "reserved": 0, "available": 10}]})
    );
    let resp = app.adjust("bolt-01", -3).await;
    assert_eq!(resp.expect(200)["on_hand"], 7);
    app.adjust("bolt-01", -8).await.expect_error_in(&[409], &[]);
    let inv = app.inventory("bolt-01").await;
    assert_eq!(
        (inv.on_hand, inv.available),
        (7, 7),
        "a rejected adjustment changes nothing"
    );
    let resp = app.adjust("bolt-01", -7).await;
    assert_eq!(resp.expect(200)["available"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_adjustment_cannot_take_on_hand_below_reserved() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 3000)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 100),
    )
    .await;
    app.stocked_product("nut-01", 10, 5).await;
    let cart = app.cart_with("nut-01", 2).await;
    let resp = app
        .checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert_eq!(resp.status, 202, "slow payment: {}", resp.text);
    let order = resp.json["id"].as_str().expect("order id").to_string();
    let deadline = Deadline::new(Duration::from_secs(10), "the reservation");
    while app.inventory("nut-01").await.reserved != 2 {
        deadline.tick(Duration::from_millis(20)).await;
    }

    app.adjust("nut-01", -4).await.expect_error_in(&[409], &[]);
    let resp = app.adjust("nut-01", -3).await;
    let body = resp.expect(200);
    assert_eq!(
        (body["on_hand"].as_i64(), body["reserved"].as_i64()),
        (Some(2), Some(2)),
        "{body}"
    );
    assert_eq!(body["available"], 0);

    let order = app
        .wait_order_terminal(&order, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    let inv = app.inventory("nut-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (0, 0));
}

fn check_events(resp: &Resp, at_least: usize) -> Vec<Value> {
    let events = resp.expect(200)["events"]
        .as_array()
        .expect("events")
        .clone();
    assert!(
        events.len() >= at_least,
        "expected ≥ {at_least} events: {}",
        resp.text
    );
    let mut last = None;
    for e in &events {
        let seq = e["seq"].as_u64().unwrap_or_else(|| panic!("seq: {e}"));
        assert!(
            last.is_none_or(|l| seq > l),
            "seq strictly increasing: {}",
            resp.text
        );
        last = Some(seq);
        assert!(e["at"].as_str().is_some_and(|s| !s.is_empty()), "at: {e}");
        assert!(
            e["type"].as_str().is_some_and(|s| !s.is_empty()),
            "type: {e}"
        );
        assert!(e.get("data").is_some(), "data: {e}");
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_route_shows_each_entity_journal() {
    let app = spawn_app(AppOpts::new()).await;
    app.stocked_product("cup-01", 800, 10).await;
    app.upsert_product(
        "cup-01",
        &json!({"name": "Cup", "price_minor": 850, "category": "kitchen"}),
    )
    .await
    .expect(200);
    app.adjust("cup-01", 5).await.expect(200);

    check_events(&app.events("product", "cup-01").await, 2);
    check_events(&app.events("sku", "cup-01").await, 2);

    let cart = app.cart_with("cup-01", 2).await;
    app.add_item(&cart, "cup-01", 1).await.expect(200);
    app.put_json(
        &format!("/v1/carts/{cart}/items/cup-01"),
        &json!({"quantity": 4}),
    )
    .await
    .expect(200);
    let before = check_events(&app.events("cart", &cart).await, 3);

    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid");
    let id = order["id"].as_str().unwrap();
    let resp = app.events("order", id).await;
    check_events(&resp, 4);
    assert!(
        !resp.text.contains(GOOD_CARD),
        "full card numbers never appear in the journal"
    );
    let after = check_events(&app.events("cart", &cart).await, before.len() + 1);
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "the journal is append-only"
    );
    let sku = app.events("sku", "cup-01").await;
    check_events(&sku, 4);
    assert!(!sku.text.contains(GOOD_CARD));

    // An entity that never existed.
    let unknown = uuid::Uuid::new_v4().to_string();
    let resp = app.events("cart", &unknown).await;
    match resp.status {
        200 => assert_eq!(resp.json["events"], json!([])),
        _ => resp.expect_error(404, "not_found"),
    }
}
