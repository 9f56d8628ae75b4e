//! A reservation whose order never confirms releases itself after its TTL.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_reservation_is_released_when_its_ttl_expires() {
    let app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_CHECKOUT__RESERVATION_TTL_MS", 800)
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 4000)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 200),
    )
    .await;
    app.stocked_product("clock-01", 6000, 5).await;
    let cart = app.cart_with("clock-01", 1).await;

    let resp = app
        .checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert_eq!(
        resp.status, 202,
        "the payment is slow, so the saga is still running: {}",
        resp.text
    );
    let id = resp.json["id"].as_str().expect("order id").to_string();
    assert!(!is_terminal(&resp.json), "{}", resp.text);

    // Reserved while the payment is slow…
    let deadline = Deadline::new(Duration::from_secs(5), "the unit to be reserved");
    loop {
        let inv = app.inventory("clock-01").await;
        if inv.reserved == 1 {
            assert_eq!(inv.on_hand, 5);
            break;
        }
        deadline.tick(Duration::from_millis(20)).await;
    }

    // …then released by the TTL, before the order completes.
    let deadline = Deadline::new(Duration::from_secs(10), "the reservation to expire");
    loop {
        let inv = app.inventory("clock-01").await;
        if inv.reserved == 0 {
            assert_eq!(
                inv.on_hand, 5,
                "an expired reservation is released, not committed"
            );
            break;
        }
        deadline.tick(Duration::from_millis(20)).await;
    }
    let order = app.order(&id).await;
    assert_ne!(
        order["status"], "paid",
        "the order had not completed when its reservation expired"
    );

    // The order then fails with `expired` and stock is unchanged.
    let order = app.wait_order_terminal(&id, Duration::from_secs(30)).await;
    assert_eq!(order["status"], "cancelled", "{order}");
    assert_eq!(order["failure"]["code"], "expired", "{order}");
    let inv = app.inventory("clock-01").await;
    assert_eq!((inv.on_hand, inv.reserved, inv.available), (5, 0, 5));
    let cart = app.cart(&cart).await;
    assert_eq!(cart["status"], "open", "the cart is reopened: {cart}");

    // The released unit can be sold again (a short wait, the payment is slow).
    let cart2 = app.cart_with("clock-01", 5).await;
    let resp = app
        .checkout(&cart2, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert!(matches!(resp.status, 201 | 202), "{}", resp.text);
    let deadline = Deadline::new(Duration::from_secs(5), "all 5 units to be reserved");
    while app.inventory("clock-01").await.reserved != 5 {
        deadline.tick(Duration::from_millis(20)).await;
    }
}
