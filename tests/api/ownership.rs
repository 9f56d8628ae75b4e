//! Ownership of carts and orders, guest carts and claiming, the shopper's
//! order list, and the audit trail of operator and admin actions.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::users::*;

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("id: {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_and_orders_belong_to_their_shopper() {
    let app = spawn_app(roomy_opts()).await;
    app.stocked_product("own-01", 900, 50).await;
    let a = app.shopper("owner-a@example.com").await;
    let b = app.shopper("other-b@example.com").await;
    let op = app.user_with_roles("op@example.com", &["operator"]).await;
    let (ta, tb) = (Some(a.access.as_str()), Some(b.access.as_str()));

    let cart = app.cart_as(ta, "own-01", 2).await;
    let path = format!("/v1/carts/{cart}");
    let item = json!({"sku": "own-01", "quantity": 1});

    // Another shopper and anonymous callers see nothing.
    for token in [tb, None] {
        let hidden = |resp: Resp| resp.expect_error(404, "not_found");
        hidden(app.call(token, "GET", &path, None).await);
        hidden(
            app.post_as(token, &format!("{path}/items"), Some(&item))
                .await,
        );
        hidden(
            app.call(
                token,
                "PUT",
                &format!("{path}/items/own-01"),
                Some(r#"{"quantity":9}"#),
            )
            .await,
        );
        hidden(
            app.call(token, "DELETE", &format!("{path}/items/own-01"), None)
                .await,
        );
        hidden(
            send(
                app.with_token(token, reqwest::Method::POST, &format!("{path}/checkout"))
                    .header("Idempotency-Key", new_key())
                    .json(&checkout_body(GOOD_CARD)),
            )
            .await,
        );
    }
    app.post_as(tb, &format!("{path}/claim"), None)
        .await
        .expect_error(404, "not_found");
    app.post_as(None, &format!("{path}/claim"), None)
        .await
        .expect_error(401, "unauthorized");

    // Staff may read it; the owner sees it unchanged.
    let seen_by_op = app.get_as(&op.access, &path).await.expect(200).clone();
    let seen_by_a = app.get_as(&a.access, &path).await.expect(200).clone();
    assert_eq!(seen_by_op, seen_by_a);
    assert_eq!(line_quantity(&seen_by_a, "own-01"), 2, "{seen_by_a}");
    assert_eq!(seen_by_a["status"], "open");

    // The order belongs to the cart's owner.
    let order = app.checkout_as(ta, &cart).await;
    assert_eq!(order["status"], "paid", "{order}");
    let order_path = format!("/v1/orders/{}", id_of(&order));
    for token in [tb, None] {
        app.call(token, "GET", &order_path, None)
            .await
            .expect_error(404, "not_found");
        app.call(token, "POST", &format!("{order_path}/cancel"), None)
            .await
            .expect_error(404, "not_found");
    }
    let by_a = app.get_as(&a.access, &order_path).await.expect(200).clone();
    assert_eq!(by_a["id"], order["id"]);
    assert_eq!(by_a["status"], "paid");
    assert_eq!(app.get_as(&op.access, &order_path).await.expect(200), &by_a);
    assert_eq!(app.admin_get(&order_path).await.expect(200), &by_a);

    // B's own cart is B's.
    let cart_b = app.cart_as(tb, "own-01", 1).await;
    app.get_as(&a.access, &format!("/v1/carts/{cart_b}"))
        .await
        .expect_error(404, "not_found");
    app.get_as(&b.access, &format!("/v1/carts/{cart_b}"))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_carts_are_usable_by_id_and_claimable() {
    let app = spawn_app(roomy_opts()).await;
    app.stocked_product("guest-01", 500, 20).await;
    let a = app.shopper("claimer@example.com").await;
    let b = app.shopper("bystander@example.com").await;

    let cart = app.cart_as(None, "guest-01", 1).await;
    let path = format!("/v1/carts/{cart}");
    // Anyone holding the id may use it.
    app.get(&path).await.expect(200);
    app.post_as(
        Some(&b.access),
        &format!("{path}/items"),
        Some(&json!({"sku": "guest-01", "quantity": 1})),
    )
    .await
    .expect(200);
    let resp = app.add_item(&cart, "guest-01", 1).await;
    assert_eq!(line_quantity(resp.expect(200), "guest-01"), 3);
    // Claiming needs a user.
    app.post_as(None, &format!("{path}/claim"), None)
        .await
        .expect_error(401, "unauthorized");
    app.get(&path).await.expect(200);

    let resp = app
        .post_as(Some(&a.access), &format!("{path}/claim"), None)
        .await;
    let claimed = resp.expect(200);
    assert_eq!(claimed["id"], cart.as_str(), "{}", resp.text);
    assert_eq!(
        line_quantity(claimed, "guest-01"),
        3,
        "the lines survive the claim"
    );

    // Now it is A's: hidden from anonymous callers and from B.
    app.get(&path).await.expect_error(404, "not_found");
    app.add_item(&cart, "guest-01", 1)
        .await
        .expect_error(404, "not_found");
    app.get_as(&b.access, &path)
        .await
        .expect_error(404, "not_found");
    app.post_as(Some(&b.access), &format!("{path}/claim"), None)
        .await
        .expect_error(404, "not_found");
    let mine = app.get_as(&a.access, &path).await;
    assert_eq!(line_quantity(mine.expect(200), "guest-01"), 3);

    // A checks it out; the order is A's.
    let order = app.checkout_as(Some(&a.access), &cart).await;
    assert_eq!(order["status"], "paid", "{order}");
    let mine = app.get_as(&a.access, "/v1/me/orders").await;
    let ids: Vec<&Value> = mine.expect(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert_eq!(ids, vec![&order["id"]], "{}", mine.text);
    app.get(&format!("/v1/orders/{}", id_of(&order)))
        .await
        .expect_error(404, "not_found");

    // A guest cart checked out anonymously still works by id.
    let guest = app.cart_as(None, "guest-01", 1).await;
    let resp = app
        .checkout(&guest, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert!(matches!(resp.status, 201 | 202), "{}", resp.text);
    app.wait_order_terminal(&id_of(&resp.json), std::time::Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_checkout_can_be_switched_off() {
    let app = spawn_app(roomy_opts().env("EMPORIUM_AUTH__ALLOW_GUEST_CHECKOUT", "false")).await;
    app.post_as(None, "/v1/carts", None)
        .await
        .expect_error(401, "unauthorized");
    let a = app.shopper("no-guests@example.com").await;
    app.post_as(Some(&a.access), "/v1/carts", None)
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_orders_are_mine_newest_first_with_a_cursor() {
    let app = spawn_app(roomy_opts()).await;
    app.stocked_product("list-01", 300, 50).await;
    let a = app.shopper("lister@example.com").await;
    let b = app.shopper("neighbour@example.com").await;

    let mut placed = Vec::new();
    for q in 1..=3 {
        let cart = app.cart_as(Some(&a.access), "list-01", q).await;
        placed.push(id_of(&app.checkout_as(Some(&a.access), &cart).await));
        // Someone else's and a guest order in between.
        let cart = app.cart_as(Some(&b.access), "list-01", 1).await;
        app.checkout_as(Some(&b.access), &cart).await;
    }
    let guest = app.cart_as(None, "list-01", 1).await;
    app.checkout_as(None, &guest).await;
    placed.reverse(); // newest first

    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap_or_else(|| panic!("items: {v}"))
            .iter()
            .map(id_of)
            .collect()
    };
    let all = app.get_as(&a.access, "/v1/me/orders").await;
    assert_eq!(ids(all.expect(200)), placed, "A's orders, newest first");
    for item in all.json["items"].as_array().unwrap() {
        assert!(item["status"].as_str().is_some(), "order JSON: {item}");
    }
    let bs = app.get_as(&b.access, "/v1/me/orders").await;
    assert_eq!(ids(bs.expect(200)).len(), 3, "B's own three: {}", bs.text);
    assert!(ids(&bs.json).iter().all(|id| !placed.contains(id)));

    // limit=1 pages through the same list.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/me/orders?limit=1&cursor={c}"),
            None => "/v1/me/orders?limit=1".to_string(),
        };
        let page = app.get_as(&a.access, &path).await;
        let items = ids(page.expect(200));
        assert!(items.len() <= 1, "limit=1: {}", page.text);
        paged.extend(items);
        match page.json["next_cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
            _ => break,
        }
    }
    assert_eq!(paged, placed, "paging with limit=1");
    assert!(
        cursor.is_some(),
        "a first page of one out of three has a next_cursor"
    );
}

/// The audit route's events of an entity, read by `token`.
async fn events_as(app: &TestApp, token: &str, kind: &str, id: &str) -> Vec<Value> {
    let resp = app
        .get_as(token, &format!("/v1/admin/entities/{kind}/{id}/events"))
        .await;
    resp.expect(200)["events"]
        .as_array()
        .unwrap_or_else(|| panic!("events: {}", resp.text))
        .clone()
}

fn by_actor<'a>(events: &'a [Value], actor: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["data"]["by"] == actor).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_actions_are_audited_with_their_user_id() {
    let app = spawn_app(roomy_opts()).await;
    let op = app
        .user_with_roles("auditor@example.com", &["operator"])
        .await;
    let a = app.shopper("buyer@example.com").await;

    // The bootstrap token is audited as such.
    app.create_product("audit-00", 100, "general").await;
    let events = events_as(&app, &op.access, "product", "audit-00").await;
    assert_eq!(by_actor(&events, "bootstrap-admin").len(), 1, "{events:?}");

    let body = json!({"name": "Audited", "price_minor": 250, "category": "general"});
    send(
        app.with_token(
            Some(&op.access),
            reqwest::Method::PUT,
            "/v1/products/audit-01",
        )
        .json(&body),
    )
    .await
    .expect(201);
    let resp = app
        .call(
            Some(&op.access),
            "POST",
            "/v1/inventory/audit-01/adjustments",
            Some(r#"{"delta":5,"reason":"count"}"#),
        )
        .await;
    resp.expect(200);

    let events = events_as(&app, &op.access, "product", "audit-01").await;
    assert_eq!(
        by_actor(&events, &op.id).len(),
        1,
        "the upsert records the operator's user id: {events:?}"
    );
    let events = events_as(&app, &op.access, "sku", "audit-01").await;
    assert_eq!(
        by_actor(&events, &op.id).len(),
        1,
        "the adjustment records the operator's user id: {events:?}"
    );

    // Fulfil and refund of A's order by the operator.
    let cart = app.cart_as(Some(&a.access), "audit-01", 1).await;
    let order = id_of(&app.checkout_as(Some(&a.access), &cart).await);
    for action in ["fulfil", "refund"] {
        let resp = app
            .call(
                Some(&op.access),
                "POST",
                &format!("/v1/orders/{order}/{action}"),
                None,
            )
            .await;
        assert!(matches!(resp.status, 200 | 202), "{action}: {}", resp.text);
    }
    let refunded = app.wait_terminal_as(&op.access, &order).await;
    let deadline = Deadline::new(std::time::Duration::from_secs(30), "the refund");
    let mut status = refunded["status"].clone();
    while status != "refunded" {
        deadline.tick(std::time::Duration::from_millis(50)).await;
        status = app
            .get_as(&op.access, &format!("/v1/orders/{order}"))
            .await
            .json["status"]
            .clone();
    }
    let events = events_as(&app, &op.access, "order", &order).await;
    assert!(
        by_actor(&events, &op.id).len() >= 2,
        "fulfil and refund record the operator's user id: {events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_changes_are_audited_and_apply_to_new_tokens() {
    let app = spawn_app(roomy_opts()).await;
    let admin = app.user_with_roles("boss@example.com", &["admin"]).await;
    let c = app.shopper("promoted@example.com").await;

    // Granted by the bootstrap token.
    let events = events_as(&app, &admin.access, "user", &admin.id).await;
    assert_eq!(by_actor(&events, "bootstrap-admin").len(), 1, "{events:?}");

    let resp = app
        .call(
            Some(&admin.access),
            "PUT",
            &format!("/v1/admin/users/{}/roles", c.id),
            Some(r#"{"roles":["operator","shopper"]}"#),
        )
        .await;
    let profile = resp.expect(200);
    let mut roles: Vec<&str> = profile["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["operator", "shopper"], "{}", resp.text);

    let events = events_as(&app, &admin.access, "user", &c.id).await;
    let changes = by_actor(&events, &admin.id);
    assert_eq!(
        changes.len(),
        1,
        "the role change names the admin: {events:?}"
    );
    assert!(
        changes[0].to_string().contains("operator"),
        "the event carries the new roles: {}",
        changes[0]
    );
    // New tokens carry the new roles and open operator routes.
    let again = app.login_ok(&c.id, &c.email).await;
    let mut roles: Vec<String> =
        serde_json::from_value(jwt_parts(&again.access).1["roles"].clone()).expect("roles claim");
    roles.sort_unstable();
    assert_eq!(roles, ["operator", "shopper"]);
    let body = json!({"name": "By C", "price_minor": 100, "category": "general"});
    send(
        app.with_token(
            Some(&again.access),
            reqwest::Method::PUT,
            "/v1/products/by-c",
        )
        .json(&body),
    )
    .await
    .expect(201);

    // Bad requests.
    let path = format!("/v1/admin/users/{}/roles", c.id);
    app.call(
        Some(&admin.access),
        "PUT",
        &path,
        Some(r#"{"roles":["superuser"]}"#),
    )
    .await
    .expect_error_in(&[400], &[]);
    let path = format!("/v1/admin/users/{}/roles", new_key());
    app.call(
        Some(&admin.access),
        "PUT",
        &path,
        Some(r#"{"roles":["operator"]}"#),
    )
    .await
    .expect_error_in(&[404], &[]);

    // The audit trail is readable by operators: it must not carry secrets.
    let raw = app
        .get_as(
            &admin.access,
            &format!("/v1/admin/entities/user/{}/events", c.id),
        )
        .await;
    assert!(
        !raw.text.contains("$argon2") && !raw.text.contains(PASSWORD),
        "the audit route must not expose password hashes: {}",
        raw.text
    );
}
