//! The crash test: SIGKILL the server mid-load, restart it on the same data
//! directory, and check that every acknowledged write survived, that every
//! order finished on its own, and that stock is conserved.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;

const SKUS: [&str; 2] = ["crash-a", "crash-b"];
const STOCK: i64 = 100_000;
const WORKERS: usize = 16;

type Lines = BTreeMap<String, i64>;

/// What one worker did to one cart, from the client's point of view.
#[derive(Debug, Default)]
struct CartLog {
    id: String,
    /// Line quantities as the server last acknowledged them.
    acked: Lines,
    /// A write that was sent but not acknowledged (it may or may not have
    /// applied): `(sku, quantity added)`. Nothing is sent to the cart after it.
    unacked_add: Option<(String, i64)>,
    checkout: Checkout,
}

#[derive(Debug, Default)]
enum Checkout {
    #[default]
    NotTried,
    /// 201 or 202: the order exists and carries these lines.
    Acked { order_id: String, running: bool },
    /// Sent but not acknowledged: an order may or may not exist.
    Unacked,
}

fn lines_of(v: &Value) -> Lines {
    v["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["sku"].as_str().unwrap_or("?").to_string(),
                        i["quantity"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Like `send`, but a transport error (the server was killed) is `None`.
async fn try_send(rb: reqwest::RequestBuilder) -> Option<Resp> {
    let resp = rb.send().await.ok()?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.ok()?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Some(Resp {
        status,
        headers,
        text,
        json,
    })
}

async fn worker(
    w: usize,
    client: reqwest::Client,
    base: String,
    stop: Arc<AtomicBool>,
) -> Vec<CartLog> {
    let mut logs = Vec::new();
    for n in 0..10_000usize {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // A failed create leaves nothing to check: its id is unknown.
        let Some(resp) = try_send(client.post(format!("{base}/v1/carts"))).await else {
            continue;
        };
        if resp.status != 201 {
            continue;
        }
        let id = resp.json["id"]
            .as_str()
            .expect("cart id in a 201")
            .to_string();
        let mut log = CartLog {
            id,
            ..Default::default()
        };

        let mut all_acked = true;
        for k in 0..1 + (n + w) % 3 {
            let sku = SKUS[(w + k) % SKUS.len()];
            let quantity = 1 + ((n + k) % 3) as i64;
            let body = json!({"sku": sku, "quantity": quantity});
            let rb = client
                .post(format!("{base}/v1/carts/{}/items", log.id))
                .json(&body);
            match try_send(rb).await {
                Some(r) if r.status == 200 => log.acked = lines_of(&r.json),
                // Any other answer (a 503, a reset) may still have applied.
                _ => {
                    log.unacked_add = Some((sku.to_string(), quantity));
                    all_acked = false;
                    break;
                }
            }
        }

        // Most carts are checked out; some with a declined card; some left open.
        if all_acked && n % 5 != 4 {
            let card = if n % 4 == 3 { DECLINED_CARD } else { GOOD_CARD };
            let rb = client
                .post(format!("{base}/v1/carts/{}/checkout", log.id))
                .header("Idempotency-Key", new_key())
                .json(&checkout_body(card));
            log.checkout = match try_send(rb).await {
                Some(r) if matches!(r.status, 201 | 202) => {
                    // A 202 may show the order before it has copied the
                    // cart's lines; the lines are checked again at the end.
                    let lines = lines_of(&r.json);
                    assert!(
                        lines == log.acked || (r.status == 202 && lines.is_empty()),
                        "order lines = cart lines {:?}: {}",
                        log.acked,
                        r.text
                    );
                    Checkout::Acked {
                        order_id: r.json["id"].as_str().expect("order id").to_string(),
                        running: r.status == 202,
                    }
                }
                _ => Checkout::Unacked,
            };
        }
        logs.push(log);
    }
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_orders_finish_on_their_own() {
    // Slow-ish payments and a short checkout wait: many sagas are mid-flight
    // (202) when the process dies.
    let mut app = spawn_app(
        AppOpts::new()
            .env("EMPORIUM_PAYMENT__LATENCY_MS", 100)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 50),
    )
    .await;
    for sku in SKUS {
        app.stocked_product(sku, 100, STOCK).await;
    }

    // ---- load, then SIGKILL mid-load -------------------------------------
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            tokio::spawn(worker(
                w,
                app.client.clone(),
                app.address.clone(),
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.kill();
    stop.store(true, Ordering::SeqCst);
    let mut logs = Vec::new();
    for w in workers {
        let done = tokio::time::timeout(Duration::from_secs(60), w).await;
        logs.extend(
            done.expect("worker finishes after the kill")
                .expect("worker task"),
        );
    }
    let acked_orders: Vec<&str> = logs
        .iter()
        .filter_map(|l| match &l.checkout {
            Checkout::Acked { order_id, .. } => Some(order_id.as_str()),
            _ => None,
        })
        .collect();
    let running = logs
        .iter()
        .filter(|l| matches!(l.checkout, Checkout::Acked { running: true, .. }))
        .count();
    let unacked = logs
        .iter()
        .filter(|l| l.unacked_add.is_some() || matches!(l.checkout, Checkout::Unacked));
    eprintln!(
        "crash test: {} carts, {} acknowledged checkouts ({running} still running: 202), \
         {} carts with an unacknowledged write",
        logs.len(),
        acked_orders.len(),
        unacked.count()
    );
    assert!(logs.len() >= WORKERS, "the load did run before the kill");
    assert!(
        !acked_orders.is_empty(),
        "some checkouts were acknowledged before the kill"
    );

    // ---- restart; touch only inventory until sagas have settled ----------
    app.restart().await;
    let deadline = Deadline::new(
        Duration::from_secs(60),
        "reserved to settle at 0 on its own",
    );
    let mut zero_since: Option<std::time::Instant> = None;
    loop {
        let mut reserved = 0;
        for sku in SKUS {
            reserved += app.inventory(sku).await.reserved;
        }
        match (reserved, zero_since) {
            (0, Some(t)) if t.elapsed() >= Duration::from_secs(2) => break,
            (0, None) => zero_since = Some(std::time::Instant::now()),
            (0, Some(_)) => {}
            _ => zero_since = None,
        }
        deadline.tick(Duration::from_millis(100)).await;
    }

    // ---- carts: every acknowledged write is present ----------------------
    let mut orders: BTreeSet<String> = acked_orders.iter().map(|s| s.to_string()).collect();
    let mut carts: Vec<(CartLog, Option<String>)> = Vec::new();
    for log in logs {
        let resp = app.get(&format!("/v1/carts/{}", log.id)).await;
        assert_eq!(
            resp.status, 200,
            "acknowledged cart {} is lost: {}",
            log.id, resp.text
        );
        let cart = resp.json;
        let lines = lines_of(&cart);
        let mut skus: BTreeSet<&String> = log.acked.keys().collect();
        if let Some((sku, _)) = &log.unacked_add {
            skus.insert(sku);
        }
        assert!(
            lines.keys().all(|s| skus.contains(s)),
            "unexpected line in {cart} (log {log:?})"
        );
        for sku in skus {
            let acked = log.acked.get(sku).copied().unwrap_or(0);
            let got = lines.get(sku).copied().unwrap_or(0);
            let maybe = match &log.unacked_add {
                Some((s, q)) if s == sku => Some(acked + q),
                _ => None,
            };
            assert!(
                got == acked || Some(got) == maybe,
                "cart {} sku {sku}: acknowledged {acked} (or {maybe:?}), found {got}",
                log.id
            );
        }
        let mut discovered = None;
        if cart["status"] == "checked_out" {
            let id = cart["order_id"]
                .as_str()
                .unwrap_or_else(|| panic!("checked out without order: {cart}"));
            assert!(
                !matches!(log.checkout, Checkout::NotTried),
                "never checked out: {cart}"
            );
            orders.insert(id.to_string());
            discovered = Some(id.to_string());
        }
        carts.push((log, discovered));
    }

    // ---- orders: all terminal without having been touched -----------------
    let mut not_terminal = Vec::new();
    for id in &orders {
        let resp = app.get(&format!("/v1/orders/{id}")).await;
        assert_eq!(resp.status, 200, "order {id} is lost: {}", resp.text);
        let order = resp.json;
        if !is_terminal(&order) {
            not_terminal.push(order);
        }
    }
    assert!(
        not_terminal.is_empty(),
        "{} orders were not terminal after the restart although reserved had settled: {not_terminal:?}",
        not_terminal.len()
    );
    let mut sold: BTreeMap<String, i64> = BTreeMap::new();
    let mut paid = BTreeSet::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for id in &orders {
        let order = app.wait_order_terminal(id, Duration::from_secs(30)).await;
        let status = order["status"].as_str().unwrap().to_string();
        let code = order["failure"]["code"].as_str().unwrap_or("").to_string();
        *outcomes.entry(format!("{status} {code}")).or_default() += 1;
        if status == "paid" {
            paid.insert(id.clone());
            for (sku, q) in lines_of(&order) {
                *sold.entry(sku).or_default() += q;
            }
        }
    }
    eprintln!("crash test: outcomes after restart: {outcomes:?}");

    // A cart's state agrees with its order's outcome (the cart is reopened
    // by the saga's last compensation step, so allow it a moment).
    for (log, discovered) in &carts {
        let order_id = match &log.checkout {
            Checkout::Acked { order_id, .. } => Some(order_id.as_str()),
            _ => discovered.as_deref(),
        };
        let Some(order_id) = order_id else {
            let cart = app.cart(&log.id).await;
            assert_eq!(cart["status"], "open", "{cart}");
            continue;
        };
        let order = app.order(order_id).await;
        assert_eq!(
            lines_of(&order),
            log.acked,
            "order {order_id} has the cart's acknowledged lines"
        );
        let want = if paid.contains(order_id) {
            "checked_out"
        } else {
            "open"
        };
        let deadline = Deadline::new(
            Duration::from_secs(10),
            format!("cart {} to be {want}", log.id),
        );
        let cart = loop {
            let cart = app.cart(&log.id).await;
            if cart["status"] == want || deadline.expired() {
                break cart;
            }
            deadline.tick(Duration::from_millis(50)).await;
        };
        assert_eq!(cart["status"], want, "order {order}: {cart}");
        if want == "checked_out" {
            assert_eq!(cart["order_id"], order_id);
        } else {
            assert!(
                cart["order_id"].is_null(),
                "a reopened cart has no order: {cart}"
            );
        }
    }

    // ---- stock is conserved ----------------------------------------------
    for sku in SKUS {
        let inv = app.inventory(sku).await;
        let units_sold = sold.get(sku).copied().unwrap_or(0);
        assert_eq!(
            inv.on_hand + units_sold,
            STOCK,
            "{sku}: on_hand {} + sold {units_sold} = received {STOCK}",
            inv.on_hand
        );
        assert_eq!(inv.reserved, 0, "{sku}: nothing stays reserved");
    }
}
