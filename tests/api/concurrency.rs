//! No unit of stock is ever sold twice, and racing requests on one id end
//! up on one actor.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{stream, StreamExt};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_checkouts_for_ten_units_sell_exactly_ten() {
    let app = Arc::new(spawn_app(AppOpts::new()).await);
    app.stocked_product("gpu-01", 49900, 10).await;

    // 200 carts with 1 unit each (prepared with bounded concurrency).
    let carts: Vec<String> = stream::iter(0..200)
        .map(|_| {
            let app = app.clone();
            async move { app.cart_with("gpu-01", 1).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(carts.len(), 200);

    // 200 checkouts at once, each with its own idempotency key.
    let handles: Vec<_> = carts
        .iter()
        .cloned()
        .map(|cart| {
            let app = app.clone();
            tokio::spawn(async move {
                app.checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
                    .await
            })
        })
        .collect();
    let mut order_ids = Vec::new();
    for h in handles {
        let resp = h.await.expect("checkout task");
        assert!(
            matches!(resp.status, 201 | 202),
            "checkout: {} {}",
            resp.status,
            resp.text
        );
        order_ids.push(resp.json["id"].as_str().expect("order id").to_string());
    }
    let mut unique = order_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 200, "one order per cart");

    // Every order reaches a terminal state.
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for id in &order_ids {
        let order = app.wait_order_terminal(id, Duration::from_secs(60)).await;
        let key = match order["status"].as_str().unwrap() {
            "paid" => "paid".to_string(),
            "cancelled" => format!(
                "cancelled:{}",
                order["failure"]["code"].as_str().unwrap_or("?")
            ),
            other => other.to_string(),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("paid".to_string(), 10),
        ("cancelled:out_of_stock".to_string(), 190),
    ]
    .into();
    assert_eq!(outcomes, expected);

    let inv = app.inventory("gpu-01").await;
    assert_eq!((inv.on_hand, inv.reserved, inv.available), (0, 0, 0));

    // The paid carts are checked out; the others reopened.
    let mut checked_out = 0;
    for cart in &carts {
        if app.cart(cart).await["status"] == "checked_out" {
            checked_out += 1;
        }
    }
    assert_eq!(checked_out, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_to_one_cart_are_all_applied() {
    // A short idle timeout so that the writes also race to re-activate it.
    let app =
        Arc::new(spawn_app(AppOpts::new().env("EMPORIUM_ACTORS__IDLE_TIMEOUT_MS", 300)).await);
    app.stocked_product("pin-01", 50, 1000).await;
    let cart = app.cart_with("pin-01", 1).await;

    let deadline = Deadline::new(Duration::from_secs(10), "the cart actor to passivate");
    while app.active_actors("cart").await > 0.0 {
        deadline.tick(Duration::from_millis(100)).await;
    }

    for round in 0..2 {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let app = app.clone();
                let cart = cart.clone();
                tokio::spawn(async move { app.add_item(&cart, "pin-01", 1).await })
            })
            .collect();
        for h in handles {
            h.await.expect("add task").expect(200);
        }
        let body = app.cart(&cart).await;
        assert_eq!(
            line_quantity(&body, "pin-01"),
            1 + 50 * (round + 1),
            "{body}"
        );
        assert_eq!(body["total_minor"], 50 * (1 + 50 * (round + 1)));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
}
