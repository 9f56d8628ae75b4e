//! Events out (issue 15, points 1 and 2) over the real binary: a paid checkout appears
//! in `GET /v1/events` as `order.created`, `cart.checked_out` and `order.paid` with
//! stable ids; the feed projection's offsets survive a kill -9 (the same ids after the
//! restart, nothing lost or doubled); a reset rebuilds the identical feed; the
//! projections route shows the offsets and a lag of 0 once caught up; a drain during
//! projection moves the feed with its partitions (3 real processes) and loses no event.

use std::time::Duration;

use serde_json::Value;

use crate::domain::GOOD_CARD;
use crate::helpers::*;

/// Every event of the feed, paging from the start.
pub(crate) async fn whole_feed(app: &TestApp, query: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    for _ in 0..100 {
        let r = app
            .admin_get(&format!("/v1/events?limit=7{query}&after={after}"))
            .await;
        let page = r.expect(200).clone();
        let items = page["items"].as_array().unwrap().clone();
        let next = page["next_cursor"].as_str().unwrap().to_owned();
        if items.is_empty() && next == after {
            return out;
        }
        out.extend(items);
        after = next;
    }
    panic!("the feed did not end within 100 pages");
}

/// Waits until the feed projection has handled every log entry of every partition.
pub(crate) async fn caught_up(app: &TestApp) -> Value {
    projection_caught_up(app, "feed").await
}

/// Waits until projection `name` runs and has handled every log entry of every
/// partition this node owns; returns its listing.
pub(crate) async fn projection_caught_up(app: &TestApp, name: &str) -> Value {
    let deadline = Deadline::new(
        Duration::from_secs(30),
        format!("the {name} projection to catch up"),
    );
    loop {
        let r = app.admin_get("/v1/admin/projections").await;
        let list = r.expect(200).clone();
        let p = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("the {name} projection is listed"))
            .clone();
        if p["state"] == "running" && p["lag_events"] == 0 {
            return p;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
}

/// Drains node3 (of 3) while adjusting every SKU through node1 and node2, until node3
/// has left the map and nothing moves; returns how many adjustments were sent (acked or
/// not: each is applied or not, so callers check the stock itself).
pub(crate) async fn drain_third_while_adjusting(nodes: &[TestApp], skus: &[String]) -> usize {
    use crate::cluster::status;
    let drained = nodes[2].admin_post("/v1/cluster/leave", None).await;
    assert_eq!(drained.expect(202)["node"], "node3");
    let mut sent = 0;
    let deadline = Deadline::new(Duration::from_secs(60), "node3 to leave the map");
    loop {
        for (i, sku) in skus.iter().enumerate() {
            let _ = nodes[i % 2].adjust(sku, 1).await;
            sent += 1;
        }
        let s = status(&nodes[0]).await;
        let gone = s["members"]
            .as_array()
            .is_some_and(|m| m.len() == 2 && m.iter().all(|x| x["name"] != "node3"));
        if gone && s["moving"].as_array().is_some_and(Vec::is_empty) {
            return sent;
        }
        deadline.tick(Duration::from_millis(20)).await;
    }
}

/// Starts node3 and joins it to node1 and node2 (with the extra environment `env`) while
/// adjusting every SKU through them, until three members are settled; returns how many
/// adjustments were sent (callers check the stock itself).
pub(crate) async fn join_third_while_adjusting(
    nodes: &mut Vec<TestApp>,
    skus: &[String],
    env: &[(&str, &str)],
) -> usize {
    use crate::cluster::{start_node_with, status};
    let seed = nodes[0].cluster_addr().expect("cluster.addr of node1");
    let adjusting = {
        let (a, b) = (nodes[0].address.clone(), nodes[1].address.clone());
        let skus = skus.to_vec();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut sent = 0;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) && sent < 5_000 {
                for (i, sku) in skus.iter().enumerate() {
                    let base = if i % 2 == 0 { &a } else { &b };
                    let _ = client
                        .post(format!("{base}/v1/inventory/{sku}/adjustments"))
                        .bearer_auth(crate::helpers::ADMIN_TOKEN)
                        .json(&serde_json::json!({"delta": 1, "reason": "test"}))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    sent += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        });
        (stop, task)
    };
    nodes.push(start_node_with("node3", &[seed], false, env).await);
    let deadline = Deadline::new(Duration::from_secs(60), "node3 to join and settle");
    loop {
        let s = status(&nodes[0]).await;
        let members = s["members"].as_array().map(Vec::len);
        if members == Some(3) && s["moving"].as_array().is_some_and(Vec::is_empty) {
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }
    adjusting.0.store(true, std::sync::atomic::Ordering::SeqCst);
    adjusting.1.await.expect("the adjusting task")
}

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_checkout_is_in_the_feed_and_survives_a_kill_and_a_reset() {
    let mut app = spawn_app(AppOpts::new()).await;
    app.stocked_product("feed-mug", 1250, 10).await;
    let cart = app.cart_with("feed-mug", 2).await;
    let order = app.checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    let order_id = order["id"].as_str().unwrap();

    // 8 available; down to 4, past the default threshold of 5: one stock.low.
    app.adjust("feed-mug", -4).await.expect(200);
    let feed = caught_up(&app).await;
    let parts = feed["partitions"].as_array().unwrap();
    assert!(!parts.is_empty(), "{feed}");
    assert!(
        parts.iter().any(|p| p["offset"].as_u64().unwrap() > 0),
        "some partition was read: {feed}"
    );

    // The metrics say the same: events counted, and no lag once caught up (the gauge is
    // set by the runner's next pass).
    let deadline = Deadline::new(Duration::from_secs(10), "the projection metrics");
    loop {
        let m = app.get("/metrics").await.text;
        let counted = m.lines().any(|l| {
            l.starts_with("emporium_projection_events_total{projection=\"feed\"}")
                && !l.ends_with(" 0")
        });
        if counted && m.contains("emporium_projection_lag{projection=\"feed\"} 0") {
            break;
        }
        deadline.tick(Duration::from_millis(50)).await;
    }

    let all = whole_feed(&app, "").await;
    let of_order: Vec<&Value> = all
        .iter()
        .filter(|e| e["data"]["order_id"] == order_id)
        .collect();
    let types: Vec<&str> = of_order
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"order.created"), "{types:?}");
    assert!(types.contains(&"order.paid"), "{types:?}");
    assert!(types.contains(&"cart.checked_out"), "{types:?}");
    let paid = of_order.iter().find(|e| e["type"] == "order.paid").unwrap();
    assert_eq!(paid["data"]["total_minor"], 2500);
    assert_eq!(paid["data"]["currency"], order["currency"]);
    assert_eq!(paid["data"]["items"][0]["sku"], "feed-mug");
    assert_eq!(paid["schema_version"], 1);
    assert!(paid["timestamp"].as_str().unwrap().ends_with('Z'));
    // The adjustments (the stocking and the -4) are there too, once each.
    let adjusted = all
        .iter()
        .filter(|e| e["type"] == "stock.adjusted" && e["data"]["sku"] == "feed-mug")
        .count();
    assert_eq!(adjusted, 2);
    let low: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "stock.low" && e["data"]["sku"] == "feed-mug")
        .collect();
    assert_eq!(low.len(), 1, "{low:?}");
    assert_eq!(low[0]["data"]["available"], 4);
    // Every event's `data` is what the OpenAPI document's `webhooks` section says.
    for e in &all {
        let ty = emporium::events::EventType::parse(e["type"].as_str().unwrap()).unwrap();
        let schema = emporium::events::schema::data_schema(ty);
        if let Err(why) = emporium::events::schema::conforms(&schema, &e["data"]) {
            panic!("{e} does not match its documented schema: {why}");
        }
    }
    // Ids are unique: no event is listed twice.
    let mut unique = ids(&all);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "duplicate ids in {all:?}");

    // A type filter keeps only those types, and pages the same way.
    let only_paid = whole_feed(&app, "&types=order.paid").await;
    assert!(!only_paid.is_empty());
    assert!(only_paid.iter().all(|e| e["type"] == "order.paid"));

    // kill -9, restart: the same feed, nothing doubled, and new events keep coming.
    app.kill();
    app.restart().await;
    caught_up(&app).await;
    assert_eq!(
        ids(&whole_feed(&app, "").await),
        ids(&all),
        "the feed after a kill -9"
    );
    let cart2 = app.cart_with("feed-mug", 1).await;
    let order2 = app.checkout_and_wait(&cart2, GOOD_CARD).await;
    caught_up(&app).await;
    let after_restart = whole_feed(&app, "").await;
    assert!(after_restart
        .iter()
        .any(|e| e["type"] == "order.paid" && e["data"]["order_id"] == order2["id"]));

    // A reset rebuilds the identical feed from the logs.
    let r = app
        .admin_post("/v1/admin/projections/feed/reset", None)
        .await;
    assert_eq!(r.expect(202)["state"], "resetting");
    caught_up(&app).await;
    let rebuilt = whole_feed(&app, "").await;
    assert_eq!(rebuilt, after_restart, "a reset rebuilds the same feed");

    // Bad input is a clear 400 or 404, never a 500.
    app.admin_get("/v1/events?after=nope")
        .await
        .expect_error(400, "validation");
    app.admin_get("/v1/events?types=order.nope")
        .await
        .expect_error(400, "validation");
    app.admin_get("/v1/events?limit=0")
        .await
        .expect_error(400, "validation");
    app.admin_post("/v1/admin/projections/nope/reset", None)
        .await
        .expect_error(404, "not_found");
}

/// Every event of the cluster's feed once every node caught up, as each node answers it:
/// the same events, from any node.
async fn cluster_feed(nodes: &[&TestApp]) -> Vec<Value> {
    for n in nodes {
        caught_up(n).await;
    }
    let first = whole_feed(nodes[0], "&types=stock.adjusted").await;
    for n in &nodes[1..] {
        let mut a = ids(&first);
        let mut b = ids(&whole_feed(n, "&types=stock.adjusted").await);
        a.sort();
        b.sort();
        assert_eq!(a, b, "every node answers the same feed");
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_during_projection_moves_the_feed_and_loses_no_event() {
    use crate::cluster::cluster_of;
    let mut nodes = cluster_of(3, false).await;
    let skus: Vec<String> = (0..12).map(|i| format!("FEED-{i}")).collect();
    for (i, sku) in skus.iter().enumerate() {
        nodes[i % 3].stocked_product(sku, 100, 5).await;
    }
    // Projected everywhere first, so node3's partitions carry feed records and offsets
    // into the move; then adjustments through node1 and node2 while node3 drains.
    for n in &nodes {
        caught_up(n).await;
    }
    let sent = drain_third_while_adjusting(&nodes, &skus).await;
    assert!(sent >= 12);
    let events = cluster_feed(&[&nodes[0], &nodes[1]]).await;
    // No event twice across the nodes, and every SKU's stock is exactly the sum of its
    // adjustments in the feed: none lost in the move, none doubled.
    let mut unique = ids(&events);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), events.len(), "an event is listed twice");
    for sku in &skus {
        let feed_sum: i64 = events
            .iter()
            .filter(|e| e["data"]["sku"] == sku.as_str())
            .map(|e| e["data"]["delta"].as_i64().unwrap())
            .sum();
        let on_hand = nodes[0].inventory(sku).await.on_hand;
        assert_eq!(
            feed_sum, on_hand,
            "{sku}: the feed's adjustments against the stock"
        );
    }
    nodes[2].kill();
}

/// Reads server-sent events from `resp` until `done` holds for what was read (bounded).
async fn read_sse(resp: &mut reqwest::Response, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut text = String::new();
    while !done(&text) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for {what} in the stream: {text}"
        );
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => panic!("the stream ended before {what}: {text}"),
            Ok(Err(e)) => panic!("the stream failed before {what}: {e}"),
            Err(_) => panic!("timed out waiting for {what} in the stream: {text}"),
        }
    }
    text
}

/// The `id:` of the last frame in `text` that has one.
fn last_id(text: &str) -> String {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("id:"))
        .expect("a frame with an id")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_streams_live_as_server_sent_events_and_resumes_from_last_event_id() {
    let app = spawn_app(AppOpts::new().env("EMPORIUM_PROJECTIONS__POLL_MS", "20")).await;
    app.stocked_product("sse-mug", 700, 10).await;
    let open = |last: Option<String>| {
        let mut rb = app
            .admin(
                reqwest::Method::GET,
                "/v1/events?types=order.paid,order.created",
            )
            .header("accept", "text/event-stream");
        if let Some(id) = last {
            rb = rb.header("last-event-id", id);
        }
        rb.send()
    };
    let mut live = open(None).await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(live.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));

    // An order paid while the stream is open arrives on it, live.
    let first = app
        .checkout_and_wait(&app.cart_with("sse-mug", 1).await, GOOD_CARD)
        .await;
    let first_id = first["id"].as_str().unwrap().to_owned();
    let text = read_sse(&mut live, "the first order.paid", |t| {
        t.contains("event:order.paid") && t.contains(&first_id) && t.contains("id:")
    })
    .await;
    assert!(text.contains("event:order.created"), "{text}");
    assert!(
        !text.contains("event:stock.adjusted"),
        "the type filter holds: {text}"
    );
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d).expect("each data line is one JSON event"))
        .find(|e| e["type"] == "order.paid")
        .unwrap();
    assert_eq!(data["data"]["order_id"], first_id.as_str());
    let resume_at = last_id(&text);
    drop(live);

    // Reconnecting with Last-Event-ID resumes after what was seen: the next order only.
    let second = app
        .checkout_and_wait(&app.cart_with("sse-mug", 1).await, GOOD_CARD)
        .await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    let mut again = open(Some(resume_at)).await.unwrap();
    let text = read_sse(&mut again, "the second order.paid", |t| {
        t.contains("event:order.paid") && t.contains(&second_id)
    })
    .await;
    assert!(
        !text.contains(&first_id),
        "nothing seen before is sent again: {text}"
    );

    // A bad Last-Event-ID is a clear 400.
    let r = open(Some("nope".into())).await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_node_pages_the_whole_clusters_feed_once_each() {
    let env = [("EMPORIUM_PROJECTIONS__POLL_MS", "20")];
    let nodes = crate::cluster::cluster_with(3, false, &env).await;
    // Twelve SKUs: their partitions (by hash) spread over the three nodes.
    let skus: Vec<String> = (0..12).map(|i| format!("FEED-ALL-{i}")).collect();
    for (i, sku) in skus.iter().enumerate() {
        nodes[i % 3].stocked_product(sku, 100, 5).await;
    }
    for node in &nodes {
        let deadline = Deadline::new(Duration::from_secs(30), "every SKU's event in the feed");
        loop {
            // Pages of 5 from the start: each stock.adjusted once.
            let mut seen = Vec::new();
            let mut after = String::new();
            for _ in 0..20 {
                let r = node
                    .admin_get(&format!(
                        "/v1/events?types=stock.adjusted&limit=5&after={after}"
                    ))
                    .await;
                let page = r.expect(200).clone();
                let items = page["items"].as_array().unwrap().clone();
                let next = page["next_cursor"].as_str().unwrap().to_owned();
                seen.extend(
                    items
                        .iter()
                        .filter(|e| e["data"]["sku"].as_str().unwrap().starts_with("FEED-ALL-"))
                        .map(|e| e["id"].as_str().unwrap().to_owned()),
                );
                if items.is_empty() || next == after {
                    break;
                }
                after = next;
            }
            let unique: std::collections::HashSet<&String> = seen.iter().collect();
            assert_eq!(unique.len(), seen.len(), "no event twice: {seen:?}");
            if seen.len() == skus.len() {
                break;
            }
            deadline.tick(Duration::from_millis(50)).await;
        }
    }
}

/// The `feed` projection's events handled since the nodes started, as `node` answers it:
/// the sum of every node's count (so it doubles only once every node rebuilt its own).
async fn feed_handled(node: &TestApp) -> u64 {
    let r = node.admin_get("/v1/admin/projections").await;
    r.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "feed")
        .and_then(|p| p["events_total"].as_u64())
        .expect("the feed projection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reset_asked_of_one_node_rebuilds_every_nodes_partitions() {
    use crate::cluster::{cluster_with, sku_on, status};
    let env = [("EMPORIUM_PROJECTIONS__POLL_MS", "20")];
    let nodes = cluster_with(3, false, &env).await;
    let st = status(&nodes[0]).await;
    // One SKU in a partition of each node: every node's feed has an event to rebuild.
    for name in ["node1", "node2", "node3"] {
        let sku = sku_on(&st, &format!("RESET-{name}"), name);
        nodes[0].stocked_product(&sku, 100, 5).await;
    }
    let mut before = Vec::new();
    for n in &nodes {
        caught_up(n).await;
        before.push(feed_handled(n).await);
    }
    assert!(before.iter().all(|b| *b > 0), "{before:?}");
    // Any node lists every partition of the cluster, each from its owner.
    let total = st["partitions"].as_u64().unwrap() as usize;
    for n in &nodes {
        let r = n.admin_get("/v1/admin/projections").await;
        let feed = r.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "feed")
            .cloned()
            .unwrap();
        assert_eq!(
            feed["partitions"].as_array().unwrap().len(),
            total,
            "{feed}"
        );
    }
    let r = nodes[2]
        .admin_post("/v1/admin/projections/feed/reset", None)
        .await;
    assert_eq!(r.expect(202)["state"], "resetting");
    // Each node handles its partitions' events again: only then does the sum double.
    for (i, n) in nodes.iter().enumerate() {
        let deadline = Deadline::new(Duration::from_secs(30), format!("node{} to rebuild", i + 1));
        while feed_handled(n).await < before[i] * 2 {
            deadline.tick(Duration::from_millis(50)).await;
        }
    }
    nodes[1]
        .admin_post("/v1/admin/projections/nope/reset", None)
        .await
        .expect_error(404, "not_found");
}
