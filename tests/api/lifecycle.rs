//! Process lifecycle: graceful SIGTERM, restarts, demo seeding, the
//! generated admin token, logs, and secrets at rest.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_zero_and_state_survives_a_restart() {
    let mut app = spawn_app(AppOpts::new()).await;
    app.stocked_product("oak-01", 1200, 30).await;
    let cart = app.cart_with("oak-01", 4).await;
    let open_cart = app.cart_with("oak-01", 2).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid");
    let id = order["id"].as_str().unwrap().to_string();
    let open_before = app.cart(&open_cart).await;

    let status = app.sigterm(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "SIGTERM exits 0, got {status}\n{}",
        app.logs()
    );

    app.restart().await;
    assert_eq!(
        app.order(&id).await,
        order,
        "the order survives the restart"
    );
    assert_eq!(
        app.cart(&open_cart).await,
        open_before,
        "the open cart survives"
    );
    let inv = app.inventory("oak-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (26, 0));
    assert_eq!(
        app.get("/v1/products/oak-01").await.expect(200)["price_minor"],
        1200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight() {
    let mut app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 700)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 5000),
    )
    .await;
    app.stocked_product("elm-01", 900, 5).await;
    let cart = app.cart_with("elm-01", 1).await;

    let request = app
        .request(reqwest::Method::POST, &format!("/v1/carts/{cart}/checkout"))
        .header("Idempotency-Key", new_key())
        .json(&checkout_body(GOOD_CARD));
    let in_flight = tokio::spawn(async move { request.send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let status = app.sigterm(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "SIGTERM exits 0, got {status}\n{}",
        app.logs()
    );
    let resp = in_flight
        .await
        .expect("request task")
        .expect("the in-flight request gets its response");
    let resp = read(resp).await;
    assert!(
        matches!(resp.status, 201 | 202 | 503),
        "in flight: {} {}",
        resp.status,
        resp.text
    );

    // Whatever state the saga was in, it finishes after a restart.
    app.restart().await;
    let order_id = match resp.json["id"].as_str() {
        Some(id) => Some(id.to_string()),
        None => app.cart(&cart).await["order_id"].as_str().map(String::from),
    };
    if let Some(id) = order_id {
        let order = app.wait_order_terminal(&id, Duration::from_secs(30)).await;
        let sold = if order["status"] == "paid" { 1 } else { 0 };
        let inv = app.inventory("elm-01").await;
        assert_eq!((inv.on_hand + sold, inv.reserved), (5, 0), "{order}");
    } else {
        let deadline = Deadline::new(Duration::from_secs(30), "reserved to return to 0");
        while app.inventory("elm-01").await.reserved != 0 {
            deadline.tick(Duration::from_millis(100)).await;
        }
        assert_eq!(app.inventory("elm-01").await.on_hand, 5);
    }
}

fn by_sku(page: &serde_json::Value) -> std::collections::BTreeMap<String, serde_json::Value> {
    let items = page["items"].as_array().expect("items");
    items
        .iter()
        .map(|p| (p["sku"].as_str().unwrap().to_string(), p.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_seeds_only_an_empty_store() {
    let mut app = spawn_app(AppOpts::new().demo()).await;
    let first = app.get("/v1/products?limit=100").await.expect(200).clone();
    let items = first["items"].as_array().expect("items").clone();
    assert!(!items.is_empty(), "the demo catalog is seeded");
    let sku = items[0]["sku"].as_str().unwrap().to_string();
    let stock = app.inventory(&sku).await.on_hand;
    app.adjust(&sku, -1).await.expect(200);

    assert!(app.sigterm(Duration::from_secs(10)).await.success());
    app.restart().await;
    let again = app.get("/v1/products?limit=100").await.expect(200).clone();
    assert_eq!(by_sku(&again), by_sku(&first), "no second seeding");
    assert_eq!(
        app.inventory(&sku).await.on_hand,
        stock - 1,
        "stock is not re-seeded"
    );

    // A store with data of its own is not seeded either.
    let mut own = spawn_app(AppOpts::new()).await;
    own.create_product("mine-01", 100, "mine").await;
    own.opts.demo = true;
    own.restart().await;
    let list = own.get("/v1/products?limit=100").await.expect(200).clone();
    let skus: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sku"].clone())
        .collect();
    assert_eq!(
        skus,
        vec![json!("mine-01")],
        "a non-empty store is left alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_token_is_generated_when_none_is_configured() {
    let mut app = spawn_app(AppOpts::new().no_admin_token()).await;
    let path = app.data_dir().join("admin.token");
    let token = std::fs::read_to_string(&path).expect("<data-dir>/admin.token is written");
    let token = token.trim().to_string();
    assert!(token.len() >= 16, "a token of some strength: {token:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "admin.token is mode 0600");
    }

    let body = json!({"name": "Mug", "price_minor": 1200, "category": "kitchen"});
    let put = |t: &str| {
        app.request(reqwest::Method::PUT, "/v1/products/mug-01")
            .bearer_auth(t)
            .json(&body)
    };
    send(put(ADMIN_TOKEN))
        .await
        .expect_error_in(&[401, 403], &["unauthorized", "forbidden", "invalid_token"]);
    send(put(&token)).await.expect(201);
    assert!(
        app.logs().contains("admin.token"),
        "the token's path is logged"
    );

    // The same token is kept across restarts.
    app.restart().await;
    let again = std::fs::read_to_string(&path).unwrap();
    assert_eq!(again.trim(), token);
    let body = json!({"name": "Mug", "price_minor": 1300, "category": "kitchen"});
    let rb = app
        .request(reqwest::Method::PUT, "/v1/products/mug-01")
        .bearer_auth(&token)
        .json(&body);
    send(rb).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_are_never_stored_or_logged_and_logs_are_json() {
    let mut app = spawn_app(AppOpts::new()).await;
    app.stocked_product("safe-01", 5000, 10).await;
    for card in [GOOD_CARD, DECLINED_CARD, INSUFFICIENT_FUNDS_CARD] {
        let cart = app.cart_with("safe-01", 1).await;
        app.checkout_and_wait(&cart, card).await;
    }
    let status = app.sigterm(Duration::from_secs(10)).await;
    assert!(status.success(), "{status}");

    let mut files = app.log_files();
    let mut stack = vec![app.data_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for card in [GOOD_CARD, DECLINED_CARD, INSUFFICIENT_FUNDS_CARD] {
        for file in &files {
            assert!(
                !file_contains(file, card.as_bytes()),
                "full card number found in {file:?}"
            );
        }
    }

    // --log-format json: every non-empty log line is a JSON object.
    let logs = app.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("----- "))
        .collect();
    assert!(!lines.is_empty(), "the server logs something");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }
}
