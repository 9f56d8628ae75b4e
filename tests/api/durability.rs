//! Fail-stop storage and decoding that cannot be made to allocate: a failed fdatasync
//! stops every later acknowledgement and the node exits non-zero; a stored record with a
//! 2^40 length prefix quarantines its own entity only.

use std::time::Duration;

use crate::helpers::*;
use emporium::domain::EntityKind;
use emporium::store::{codec, Store, StoreOptions};

const SKU: &str = "durable-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fdatasync_stops_every_later_ack_and_the_node_exits_nonzero() {
    let mut app = spawn_app(AppOpts::new().env("EMPORIUM_HTTP__SHUTDOWN_GRACE_MS", 1500)).await;
    app.stocked_product(SKU, 100, 1000).await;
    let mut acked = Vec::new();
    for q in 1..=10 {
        let cart = app.create_cart().await;
        app.add_item(&cart, SKU, q).await.expect(200);
        acked.push((cart, q));
    }
    let probe = app.create_cart().await;

    // The next cycle's fdatasync fails.
    std::fs::write(app.data_dir().join("sled").join("fail-next-fdatasync"), b"").unwrap();
    let failed = app.add_item(&probe, SKU, 1).await;
    assert!(
        failed.status >= 500,
        "the write in the failing cycle is not acknowledged: {} {}",
        failed.status,
        failed.text
    );

    // Poisoned: readiness, metrics and every later write say so, while the node drains.
    let ready = app.get("/health/ready").await;
    ready.expect_error(503, "store_failed");
    let failed_gauge = sample_value(&app.metrics().await, "emporium_store_failed", &[]);
    assert_eq!(failed_gauge, Some(1.0), "emporium_store_failed is 1");
    for q in 1..=5 {
        let r = app.add_item(&acked[0].0, SKU, 20 + q).await;
        r.expect_error(503, "store_failed");
        let c = send(app.request(reqwest::Method::POST, "/v1/carts")).await;
        c.expect_error(503, "store_failed");
    }
    assert!(
        app.logs().contains("the store failed"),
        "an error line says why"
    );

    // It exits non-zero after its grace, by itself.
    let status = app.wait_exit(Duration::from_secs(20)).await;
    assert!(!status.success(), "exit status {status:?} must be non-zero");

    // Restarted, every write acknowledged before the fault is there, unchanged by the
    // refused writes after it.
    app.restart().await;
    for (cart, q) in &acked {
        assert_eq!(line_quantity(&app.cart(cart).await, SKU), *q, "cart {cart}");
    }
    // And the node writes again.
    app.add_item(&probe, SKU, 2).await.expect(200);
}

/// bincode's varint marker for a u64 (0xFD) followed by 2^40: as the length of a string.
fn huge_length_prefix_record() -> Vec<u8> {
    // EventRecord { at: 0, event: CartEvent::QuantitySet { sku: <2^40 bytes>, .. } }
    let mut bytes = vec![codec::FORMAT_VERSION, 0, 2, 0xFD];
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_with_a_huge_length_prefix_quarantines_only_its_entity() {
    let mut app = spawn_app(AppOpts::new()).await;
    app.stocked_product(SKU, 100, 1000).await;
    let good: Vec<String> = futures::future::join_all((0..5).map(|_| app.cart_with(SKU, 2))).await;
    let bad = app.cart_with(SKU, 3).await;
    let status = app.sigterm(Duration::from_secs(15)).await;
    assert!(status.success(), "clean stop: {status:?}");

    // Write the corrupt record straight into the store, after the cart's two events.
    {
        let store = Store::open(
            &app.data_dir(),
            &StoreOptions {
                cache_capacity_bytes: 16 << 20,
                group_commit_max_batch: 16,
                group_commit_queue: 16,
                partitions: 64,
            },
        )
        .expect("open the stopped node's store");
        store
            .journal()
            .put_raw_event(EntityKind::Cart, &bad, 3, &huge_length_prefix_record())
            .unwrap();
        store.durable().await.unwrap();
    }
    // The writer thread lets go of sled once its last handle is gone.
    tokio::time::sleep(Duration::from_millis(300)).await;

    app.restart().await;
    for cart in &good {
        assert_eq!(line_quantity(&app.cart(cart).await, SKU), 2, "cart {cart}");
        app.add_item(cart, SKU, 4).await.expect(200);
    }
    let r = app.get(&format!("/v1/carts/{bad}")).await;
    r.expect_error(503, "entity_quarantined");
    assert!(
        r.headers.contains_key("retry-after"),
        "503 carries Retry-After"
    );
    // The node is up and ready throughout.
    app.get("/health/ready").await.expect(200);
}
