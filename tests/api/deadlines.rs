//! Deadlines and bounded mailboxes at the entity: a 504 means "not applied", and a hot
//! entity sheds load with 503 `overloaded` instead of queueing without bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// Sends until the answer is neither 504 nor 503 `overloaded` (bounded). Safe for any
/// request here, because neither answer applied anything.
async fn until_answered<F, Fut>(what: &str, mut send: F) -> Resp
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Resp>,
{
    let deadline = Deadline::new(Duration::from_secs(20), what.to_string());
    loop {
        let r = send().await;
        let shed = r.status == 504 || (r.status == 503 && r.error_code() == Some("overloaded"));
        if !shed {
            return r;
        }
        deadline.tick(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_adds_to_one_cart_apply_exactly_the_ones_answered_200() {
    let app = Arc::new(
        spawn_app(
            AppOpts::new()
                .env("EMPORIUM_ACTORS__ASK_TIMEOUT_MS", 50)
                .env("EMPORIUM_HTTP__MAX_IN_FLIGHT", 4096),
        )
        .await,
    );
    let product = json!({"name": "Pin", "price_minor": 50, "category": "general"});
    until_answered("the product", || app.upsert_product("pin-01", &product))
        .await
        .expect(201);
    let cart = until_answered("a cart", || {
        send(app.request(reqwest::Method::POST, "/v1/carts"))
    })
    .await
    .expect(201)["id"]
        .as_str()
        .expect("cart id")
        .to_string();

    // Enough connections for every request to be in flight at once.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(600)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let url = app.url(&format!("/v1/carts/{cart}/items"));
    let body = json!({"sku": "pin-01", "quantity": 1});
    let handles: Vec<_> = (0..500)
        .map(|_| {
            let rb = client.post(&url).json(&body);
            tokio::spawn(async move { send(rb).await })
        })
        .collect();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut ok = 0i64;
    for h in handles {
        let r = tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .expect("every request is answered in bounded time")
            .expect("request task");
        match r.status {
            200 => ok += 1,
            504 => r.expect_error(504, "timeout"),
            503 => {
                r.expect_error(503, "overloaded");
                assert!(r.headers.contains_key("retry-after"), "{}", r.text);
            }
            other => panic!("unexpected status {other}: {}", r.text),
        }
        *statuses
            .entry(format!("{} {}", r.status, r.error_code().unwrap_or("")))
            .or_default() += 1;
    }
    eprintln!("outcomes of 500 concurrent adds: {statuses:?}");

    // Timed-out messages still queued drain and stop counting against the bound: the
    // cart takes writes again (bounded retries), and nothing that got a 504 or a 503
    // was applied meanwhile.
    until_answered("a write after the storm", || {
        app.add_item(&cart, "pin-01", 1)
    })
    .await
    .expect(200);
    let path = format!("/v1/carts/{cart}");
    let body = until_answered("the cart", || app.get(&path))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        line_quantity(&body, "pin-01"),
        ok + 1,
        "the quantity is exactly the number of 200s; outcomes: {statuses:?}; cart: {body}"
    );
}
