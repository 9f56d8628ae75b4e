//! Idle actors stop after the idle timeout and come back transparently.

use std::time::Duration;

use crate::helpers::*;

/// Touches the cart and reads the cart gauge, a few times, until it shows
/// an active actor.
async fn gauge_after_touch(app: &TestApp, cart: &str) -> f64 {
    let mut value = 0.0;
    for _ in 0..5 {
        app.cart(cart).await;
        value = app.active_actors("cart").await;
        if value >= 1.0 {
            break;
        }
    }
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_cart_passivates_and_reactivates_transparently() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_ACTORS__IDLE_TIMEOUT_MS", 300)).await;
    app.stocked_product("yarn-01", 350, 100).await;
    let cart = app.create_cart().await;
    app.add_item(&cart, "yarn-01", 3).await.expect(200);
    let before = app.cart(&cart).await;

    let active = gauge_after_touch(&app, &cart).await;
    assert!(
        active >= 1.0,
        "emporium_actors_active{{kind=\"cart\"}} ≥ 1 while in use, got {active}"
    );

    // The gauge drops once the cart has been idle for the timeout.
    let deadline = Deadline::new(Duration::from_secs(10), "the cart actor to passivate");
    loop {
        let now = app.active_actors("cart").await;
        if now < active && now == 0.0 {
            break;
        }
        deadline.tick(Duration::from_millis(100)).await;
    }

    // Reactivation is transparent: same state, gauge back up.
    let after = app.cart(&cart).await;
    assert_eq!(after, before, "the reactivated cart has the same contents");
    let again = gauge_after_touch(&app, &cart).await;
    assert!(
        again >= 1.0,
        "the gauge goes back up on reactivation, got {again}"
    );

    // And it keeps working from the recovered state.
    let resp = app.add_item(&cart, "yarn-01", 2).await;
    let body = resp.expect(200);
    assert_eq!(line_quantity(body, "yarn-01"), 5);
    assert_eq!(body["total_minor"], 5 * 350);
    assert!(
        body["version"].as_i64() > before["version"].as_i64(),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_kinds_passivate_and_a_purchase_still_works_afterwards() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_ACTORS__IDLE_TIMEOUT_MS", 300)).await;
    app.stocked_product("wool-01", 900, 10).await;
    let cart = app.cart_with("wool-01", 2).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid");
    let id = order["id"].as_str().unwrap().to_string();

    // Every kind has been active; all of them go idle.
    let deadline = Deadline::new(Duration::from_secs(10), "every actor kind to passivate");
    loop {
        let scrape = app.metrics().await;
        let active: Vec<(&str, f64)> = ["product", "cart", "sku", "order"]
            .into_iter()
            .map(|k| {
                (
                    k,
                    sample_value(&scrape, "emporium_actors_active", &[("kind", k)]).unwrap_or(0.0),
                )
            })
            .collect();
        if active.iter().all(|(_, v)| *v == 0.0) {
            break;
        }
        if deadline.expired() {
            panic!("actors still active after the idle timeout: {active:?}");
        }
        deadline.tick(Duration::from_millis(100)).await;
    }

    // Everything comes back from the journal.
    assert_eq!(app.order(&id).await, order, "the order is unchanged");
    let inv = app.inventory("wool-01").await;
    assert_eq!((inv.on_hand, inv.reserved), (8, 0));
    let cart2 = app.cart_with("wool-01", 1).await;
    assert_eq!(
        app.checkout_and_wait(&cart2, GOOD_CARD).await["status"],
        "paid"
    );
    assert_eq!(app.inventory("wool-01").await.on_hand, 7);
}
