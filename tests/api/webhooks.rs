//! Webhooks (issue 15, point 3) over the real binary and real HTTP sinks on loopback:
//! a paid order reaches an endpoint as a signed `order.paid`; 500 three times then 200
//! gives four requests with one `webhook-id`; 410 goes to the dead-letter queue after one
//! attempt and replay delivers it; a kill -9 between the commit and the delivery still
//! delivers after the restart with the same id; an endpoint that never answers leaves
//! every checkout successful; the registry's routes validate what they take.

use std::time::Duration;

use serde_json::{json, Value};

use crate::domain::GOOD_CARD;
use crate::helpers::*;
use crate::sink::{verifies, Sink};

/// A node whose webhooks may call loopback, with retries fast enough for a test.
fn opts() -> AppOpts {
    AppOpts::new()
        .env("EMPORIUM_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true")
        .env("EMPORIUM_WEBHOOKS__RETRY_INITIAL_MS", "40")
        .env("EMPORIUM_WEBHOOKS__POLL_MS", "20")
        .env("EMPORIUM_PROJECTIONS__POLL_MS", "20")
}

async fn register(app: &TestApp, url: &str, events: Value) -> Value {
    let r = app
        .admin_post("/v1/webhooks", Some(&json!({"url": url, "events": events})))
        .await;
    let e = r.expect(201).clone();
    assert_eq!(e["enabled"], true, "{e}");
    assert!(e["secret"].as_str().unwrap().starts_with("whsec_"), "{e}");
    e
}

async fn paid_order(app: &TestApp, sku: &str) -> Value {
    let cart = app.cart_with(sku, 2).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    order
}

async fn dead_letters(app: &TestApp) -> Vec<Value> {
    app.admin_get("/v1/admin/dlq").await.expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_retried_with_one_id_and_dead_lettered_then_replayed() {
    let app = spawn_app(opts()).await;
    app.stocked_product("hook-mug", 1250, 20).await;
    let flaky = Sink::start(&[500, 500, 500], 200).await;
    let gone = Sink::start(&[410], 200).await;
    let a = register(&app, &flaky.url, json!(["order.paid"])).await;
    let b = register(&app, &gone.url, json!(["order.paid", "order.cancelled"])).await;
    let order = paid_order(&app, "hook-mug").await;
    let order_id = order["id"].as_str().unwrap();

    // 500, 500, 500, 200: four requests of one event, one id, each signed.
    let got = flaky.wait_for(4, 30).await;
    assert_eq!(got.len(), 4, "nothing after the 200");
    assert!(got.iter().all(|r| r.id == got[0].id), "{got:?}");
    let secret = a["secret"].as_str().unwrap();
    assert!(got.iter().all(|r| verifies(r, secret)), "{got:?}");
    assert!(!verifies(&got[0], b["secret"].as_str().unwrap()));
    let body = got[3].json();
    assert_eq!(body["id"], got[0].id);
    assert_eq!(body["type"], "order.paid");
    assert_eq!(body["data"]["order_id"], order_id);
    assert_eq!(body["data"]["total_minor"], 2500);
    assert_eq!(body["data"]["status"], "paid");
    assert_eq!(body["data"]["items"][0]["sku"], "hook-mug");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));

    // Its deliveries show the four attempts.
    let id_a = a["id"].as_str().unwrap();
    let deadline = Deadline::new(Duration::from_secs(10), "the delivered record");
    let delivered = loop {
        let list = app
            .admin_get(&format!("/v1/webhooks/{id_a}/deliveries"))
            .await
            .expect(200)
            .clone();
        let items = list["items"].as_array().unwrap().clone();
        if items.first().is_some_and(|d| d["status"] == "delivered") {
            break items[0].clone();
        }
        deadline.tick(Duration::from_millis(25)).await;
    };
    let statuses: Vec<u64> = delivered["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 500, 200], "{delivered}");
    assert_eq!(delivered["event_id"], got[0].id);

    // 410: one attempt, then the dead-letter queue.
    gone.wait_for(1, 30).await;
    let deadline = Deadline::new(Duration::from_secs(10), "the dead letter");
    let dead = loop {
        let items = dead_letters(&app).await;
        if let Some(d) = items.iter().find(|d| d["endpoint_id"] == b["id"]) {
            break d.clone();
        }
        deadline.tick(Duration::from_millis(25)).await;
    };
    assert_eq!(dead["attempts"], 1, "{dead}");
    assert_eq!(dead["last_status"], 410, "{dead}");
    assert_eq!(dead["type"], "order.paid");
    assert_eq!(dead["event_id"], got[0].id, "the same event, the same id");
    assert_eq!(gone.received().len(), 1, "no retry after a 410");

    // Replay: delivered once more, with the same id, and the queue is empty again.
    let r = app
        .admin_post(
            &format!("/v1/admin/dlq/{}/replay", dead["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(r.expect(202)["replayed"], 1);
    let again = gone.wait_for(2, 30).await;
    assert_eq!(again[1].id, again[0].id);
    assert!(verifies(&again[1], b["secret"].as_str().unwrap()));
    let deadline = Deadline::new(Duration::from_secs(10), "the dead-letter queue to empty");
    while !dead_letters(&app).await.is_empty() {
        deadline.tick(Duration::from_millis(25)).await;
    }
    // A replay of what is no longer dead is 404.
    app.admin_post(
        &format!("/v1/admin/dlq/{}/replay", dead["id"].as_str().unwrap()),
        None,
    )
    .await
    .expect_error(404, "not_found");

    let m = app.get("/metrics").await.text;
    for outcome in ["delivered", "retried", "dead_lettered"] {
        assert!(
            m.contains(&format!(
                "emporium_webhook_deliveries_total{{outcome=\"{outcome}\"}}"
            )),
            "{outcome} counted"
        );
    }
    assert!(m.contains("emporium_webhook_delivery_seconds"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_commit_and_delivery_still_delivers_with_the_same_id() {
    let mut app = spawn_app(opts()).await;
    app.stocked_product("hook-kill", 900, 10).await;
    let sink = Sink::start(&[], 503).await;
    let e = register(&app, &sink.url, json!(["*"])).await;
    let order = paid_order(&app, "hook-kill").await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    // The paid event was queued and tried (and refused) at least once, then the node dies.
    let deadline = Deadline::new(Duration::from_secs(30), "an attempt of order.paid");
    let first_id = loop {
        if let Some(r) = sink
            .received()
            .into_iter()
            .find(|r| r.json()["type"] == "order.paid")
        {
            break r.id;
        }
        deadline.tick(Duration::from_millis(25)).await;
    };
    app.kill();
    sink.answer_always(200);
    app.restart().await;
    let deadline = Deadline::new(
        Duration::from_secs(30),
        "order.paid delivered after the restart",
    );
    let id = e["id"].as_str().unwrap();
    loop {
        let list = app
            .admin_get(&format!("/v1/webhooks/{id}/deliveries?limit=200"))
            .await
            .expect(200)
            .clone();
        let paid = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["type"] == "order.paid")
            .cloned();
        if paid.as_ref().is_some_and(|d| d["status"] == "delivered") {
            assert_eq!(paid.unwrap()["event_id"], first_id.as_str());
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
    let got = sink.received();
    // Every body, of every type subscribed with "*", is what the OpenAPI document's
    // `webhooks` section says it is.
    for r in &got {
        let body = r.json();
        let ty = emporium::events::EventType::parse(body["type"].as_str().unwrap()).unwrap();
        let schema = emporium::events::schema::body_schema(ty);
        if let Err(e) = emporium::events::schema::conforms(&schema, &body) {
            panic!("{body} does not match its documented schema: {e}");
        }
    }
    let paid: Vec<_> = got
        .iter()
        .filter(|r| {
            r.json()["type"] == "order.paid" && r.json()["data"]["order_id"] == order_id.as_str()
        })
        .collect();
    assert!(
        paid.len() >= 2,
        "tried before the kill and delivered after: {paid:?}"
    );
    assert!(
        paid.iter().all(|r| r.id == first_id),
        "one id across the restart"
    );
    assert!(verifies(
        paid.last().unwrap(),
        e["secret"].as_str().unwrap()
    ));

    // A reset of the webhooks projection rebuilds its queue from the logs, and what was
    // delivered is not queued or sent again.
    let deadline = Deadline::new(Duration::from_secs(30), "every queued delivery done");
    loop {
        let list = app
            .admin_get(&format!("/v1/webhooks/{id}/deliveries?limit=200"))
            .await
            .expect(200)
            .clone();
        let items = list["items"].as_array().unwrap();
        if !items.is_empty() && items.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
    let before = sink.received().len();
    app.admin_post("/v1/admin/projections/webhooks/reset", None)
        .await
        .expect(202);
    crate::events_feed::projection_caught_up(&app, "webhooks").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.received().len(),
        before,
        "nothing delivered is sent again after a reset"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_never_answers_does_not_fail_a_checkout() {
    let app = spawn_app(opts().env("EMPORIUM_WEBHOOKS__TIMEOUT_MS", "500")).await;
    app.stocked_product("hook-dead", 100, 1000).await;
    let sink = Sink::hanging().await;
    register(&app, &sink.url, json!(["*"])).await;
    // 200 checkouts, 4 at a time, while every delivery to the endpoint hangs until its
    // timeout; each must succeed (the latency comparison is a benchmark, not a test).
    futures::future::join_all((0..4).map(|_| shopper(&app, 50))).await;
    // The endpoint was called (and timed out) meanwhile.
    assert!(!sink.wait_for(1, 30).await.is_empty());
}

async fn shopper(app: &TestApp, n: usize) {
    for _ in 0..n {
        let cart = app.cart_with("hook-dead", 1).await;
        let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
        assert_eq!(order["status"], "paid", "{order}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_validates_and_rotates() {
    let app = spawn_app(AppOpts::new()).await;
    // Private targets are refused by default; so are other schemes and unknown types.
    for (body, what) in [
        (
            json!({"url": "http://127.0.0.1:9/x", "events": ["*"]}),
            "loopback",
        ),
        (
            json!({"url": "http://10.1.2.3/x", "events": ["*"]}),
            "private",
        ),
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            "scheme",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["order.nope"]}),
            "type",
        ),
        (
            json!({"url": "https://example.com/x", "events": []}),
            "no types",
        ),
        (
            json!({"url": "https://example.com/x", "events": ["*", "order.paid"]}),
            "* and more",
        ),
        (
            json!({"url": "https://u:p@example.com/x", "events": ["*"]}),
            "credentials",
        ),
    ] {
        let r = app.admin_post("/v1/webhooks", Some(&body)).await;
        assert_eq!(r.status, 400, "{what}: {}", r.text);
        assert_eq!(r.error_code(), Some("validation"), "{what}");
    }
    app.post_json(
        "/v1/webhooks",
        &json!({"url": "https://example.com/x", "events": ["*"]}),
    )
    .await
    .expect_error(401, "unauthorized");

    let e = register(&app, "https://example.com/hooks", json!(["order.paid"])).await;
    let id = e["id"].as_str().unwrap();
    let list = app.admin_get("/v1/webhooks").await.expect(200).clone();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(
        list["items"][0].get("secret").is_none(),
        "secrets are not listed"
    );

    let r = send(
        app.admin(reqwest::Method::PATCH, &format!("/v1/webhooks/{id}"))
            .json(&json!({"enabled": false, "events": ["order.paid", "order.refunded"]})),
    )
    .await;
    let patched = r.expect(200);
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["events"], json!(["order.paid", "order.refunded"]));

    let rotated = app
        .admin_post(&format!("/v1/webhooks/{id}/secret"), None)
        .await
        .expect(200)
        .clone();
    assert_ne!(rotated["secret"], e["secret"]);
    assert!(
        rotated["previous_secret_valid_until"].is_string(),
        "{rotated}"
    );

    app.admin_delete(&format!("/v1/webhooks/{id}"))
        .await
        .expect(204);
    app.admin_get(&format!("/v1/webhooks/{id}"))
        .await
        .expect_error(404, "not_found");
    app.admin_get("/v1/webhooks/not-a-uuid")
        .await
        .expect_error(400, "validation");
    app.admin_post("/v1/admin/dlq/replay", None)
        .await
        .expect_error(400, "validation");
}

const CLUSTER_ENV: [(&str, &str); 4] = [
    ("EMPORIUM_WEBHOOKS__ALLOW_PRIVATE_TARGETS", "true"),
    ("EMPORIUM_WEBHOOKS__RETRY_INITIAL_MS", "40"),
    ("EMPORIUM_WEBHOOKS__POLL_MS", "20"),
    ("EMPORIUM_PROJECTIONS__POLL_MS", "20"),
];

/// `n` nodes with a sink registered for `stock.adjusted` and 12 stocked SKUs spread over
/// them, once the first delivery arrived.
async fn delivering(n: usize, prefix: &str) -> (Vec<TestApp>, Sink, Vec<String>) {
    let nodes = crate::cluster::cluster_with(n, false, &CLUSTER_ENV).await;
    let sink = Sink::start(&[], 200).await;
    register(&nodes[0], &sink.url, json!(["stock.adjusted"])).await;
    let skus: Vec<String> = (0..12).map(|i| format!("{prefix}-{i}")).collect();
    for (i, sku) in skus.iter().enumerate() {
        nodes[i % n].stocked_product(sku, 100, 5).await;
    }
    sink.wait_for(1, 30).await;
    (nodes, sink, skus)
}

/// Every applied adjustment is delivered at least once: deduplicated by webhook-id (as a
/// receiver must), the deltas of each SKU sum to its stock.
async fn every_adjustment_delivered(node: &TestApp, sink: &Sink, skus: &[String]) {
    let mut on_hand = std::collections::HashMap::new();
    for sku in skus {
        on_hand.insert(sku.clone(), node.inventory(sku).await.on_hand);
    }
    let deadline = Deadline::new(Duration::from_secs(60), "every adjustment delivered");
    loop {
        let mut seen = std::collections::HashSet::new();
        let mut sums: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        for r in sink.received() {
            if !seen.insert(r.id.clone()) {
                continue;
            }
            let b = r.json();
            *sums
                .entry(b["data"]["sku"].as_str().unwrap().to_owned())
                .or_default() += b["data"]["delta"].as_i64().unwrap();
        }
        if skus.iter().all(|s| sums.get(s) == on_hand.get(s)) {
            break;
        }
        if deadline.expired() {
            panic!("delivered deltas {sums:?} against the stock {on_hand:?}");
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_during_delivery_loses_no_event() {
    // Deliveries are under way on every node; node3 drains while adjustments go on
    // through node1 and node2.
    let (nodes, sink, skus) = delivering(3, "HOOK-DRAIN").await;
    crate::events_feed::drain_third_while_adjusting(&nodes, &skus).await;
    every_adjustment_delivered(&nodes[0], &sink, &skus).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_during_delivery_loses_no_event() {
    // Deliveries are under way on two nodes; node3 joins and takes partitions over while
    // adjustments go on through node1 and node2.
    let (mut nodes, sink, mut skus) = delivering(2, "HOOK-JOIN").await;
    let sent =
        crate::events_feed::join_third_while_adjusting(&mut nodes, &skus, &CLUSTER_ENV).await;
    assert!(sent > 0);
    // One more SKU, in a partition node3 owns now: node3 delivers its partitions' events.
    let st = crate::cluster::status(&nodes[0]).await;
    let on3 = crate::cluster::sku_on(&st, "HOOK-JOIN-N3", "node3");
    nodes[0].stocked_product(&on3, 100, 5).await;
    skus.push(on3);
    every_adjustment_delivered(&nodes[0], &sink, &skus).await;
    let m = nodes[2].get("/metrics").await.text;
    assert!(
        m.lines()
            .any(|l| l.starts_with("emporium_webhook_deliveries_total") && !l.ends_with(" 0")),
        "node3 delivered nothing:\n{}",
        m.lines()
            .filter(|l| l.contains("webhook"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_node_lists_the_whole_clusters_dead_letters_and_deliveries() {
    let nodes = crate::cluster::cluster_with(3, false, &CLUSTER_ENV).await;
    // Every delivery is refused for good (410): each lands in its partition's DLQ.
    let sink = Sink::start(&[], 410).await;
    let hook = register(&nodes[0], &sink.url, json!(["stock.adjusted"])).await;
    let hook_id = hook["id"].as_str().unwrap();
    // Twelve SKUs, each in a partition of its own hash: spread over the three nodes.
    for i in 0..12 {
        nodes[i % 3]
            .stocked_product(&format!("HOOK-DEAD-{i}"), 100, 5)
            .await;
    }
    sink.wait_for(12, 60).await;
    for node in &nodes {
        // Pages of 5 of the DLQ, from this node: all twelve, once each.
        let deadline = Deadline::new(Duration::from_secs(30), "twelve dead letters");
        loop {
            let mut seen = Vec::new();
            let mut after = String::new();
            for _ in 0..10 {
                let r = node
                    .admin_get(&format!("/v1/admin/dlq?limit=5&after={after}"))
                    .await;
                let page = r.expect(200).clone();
                seen.extend(
                    page["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["event_id"].as_str().unwrap().to_owned()),
                );
                match page["next_cursor"].as_str() {
                    Some(c) => after = c.to_owned(),
                    None => break,
                }
            }
            let unique: std::collections::HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "no dead letter twice: {seen:?}");
            let deliveries = node
                .admin_get(&format!("/v1/webhooks/{hook_id}/deliveries?limit=200"))
                .await;
            let n = deliveries.expect(200)["items"].as_array().unwrap().len();
            if seen.len() == 12 && n == 12 {
                break;
            }
            deadline.tick(Duration::from_millis(50)).await;
        }
    }
    // Every dead letter replayed from node3, whichever node owns it: each is queued again
    // by its owner and refused again (a 13th to 24th request); then all of them at once,
    // from node2, adds twelve more.
    let page = nodes[0].admin_get("/v1/admin/dlq?limit=200").await;
    let ids: Vec<String> = page.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 12);
    for id in &ids {
        let r = nodes[2]
            .admin_post(&format!("/v1/admin/dlq/{id}/replay"), None)
            .await;
        assert_eq!(r.expect(202)["replayed"], 1, "{id}");
    }
    sink.wait_for(24, 60).await;
    let deadline = Deadline::new(Duration::from_secs(30), "the replays to be dead again");
    loop {
        let r = nodes[1]
            .admin_post(&format!("/v1/admin/dlq/replay?endpoint={hook_id}"), None)
            .await;
        let n = r.expect(202)["replayed"].as_u64().unwrap();
        if n == 12 {
            break;
        }
        // Some replays were still in flight (not dead again yet): they were not counted.
        assert!(n < 12, "{n}");
        deadline.tick(Duration::from_millis(100)).await;
    }
    sink.wait_for(36, 60).await;
    // An id of the right shape that names no dead letter: its owner says so.
    let none = format!("5.{}", "00".repeat(25));
    nodes[2]
        .admin_post(&format!("/v1/admin/dlq/{none}/replay"), None)
        .await
        .expect_error(404, "not_found");
}
