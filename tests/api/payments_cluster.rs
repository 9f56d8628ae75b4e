//! Issue 13, points 2 and 3, over real processes: an order's payment is an entity of the
//! order's partition (it moves with a handoff, and the saga's payment steps run under the
//! partition's gate), and an `Idempotency-Key` retried through any node reaches the same
//! single writer. Every wait is bounded.

use std::time::Duration;

use emporium::domain::EntityKind;
use emporium::store::partition::partition_of;
use emporium::store::{Store, StoreOptions};
use serde_json::{json, Value};

use crate::cluster::{node_config, status, wait_settled, COOKIE};
use crate::domain::{checkout_body, new_key, sample_value, GOOD_CARD};
use crate::helpers::{send, spawn_app, AppOpts, Deadline, Resp, TestApp};

/// A node with `latency_ms` of simulated gateway latency; keyed requests answer 202
/// after 100 ms rather than wait for the saga.
async fn start(name: &str, seeds: &[String], latency_ms: u64) -> TestApp {
    spawn_app(
        AppOpts::new()
            .config(node_config(name, seeds, false))
            .env("EMPORIUM_CLUSTER_COOKIE", COOKIE)
            .env("EMPORIUM_PAYMENT__LATENCY_MS", latency_ms)
            .env("EMPORIUM_CHECKOUT__WAIT_MS", 100),
    )
    .await
}

async fn cluster(n: usize, latency_ms: u64) -> Vec<TestApp> {
    let first = start("node1", &[], latency_ms).await;
    let seed = first.cluster_addr().expect("cluster.addr of node1");
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(start(&format!("node{i}"), std::slice::from_ref(&seed), latency_ms).await);
        wait_settled(&nodes, i).await;
    }
    nodes
}

/// The index of the node that owns `(kind, id)` in the map `st`.
fn owner(st: &Value, kind: EntityKind, id: &str) -> usize {
    let parts = st["partitions"].as_u64().expect("partitions") as u32;
    let name = st["owners"][partition_of(kind, id, parts) as usize]
        .as_str()
        .expect("owner");
    name.strip_prefix("node")
        .and_then(|n| n.parse::<usize>().ok())
        .expect("nodeN")
        - 1
}

/// Polls an order through `node` until it is settled, tolerating the 503s of a
/// partition in handoff (as a client honouring `Retry-After` would).
async fn settled_order(node: &TestApp, id: &str) -> Value {
    let deadline = Deadline::new(Duration::from_secs(60), format!("order {id} to settle"));
    loop {
        let r = node.admin_get(&format!("/v1/orders/{id}")).await;
        if r.status == 200 && crate::domain::is_terminal(&r.json) {
            return r.json;
        }
        assert!(matches!(r.status, 200 | 503), "{} {}", r.status, r.text);
        deadline.tick(Duration::from_millis(100)).await;
    }
}

/// The types of the events of `(kind, id)` on `node` (empty if it holds none).
async fn event_types(node: &TestApp, kind: &str, id: &str) -> Vec<String> {
    let r = node.events(kind, id).await;
    if r.status == 404 {
        return vec![];
    }
    r.expect(200)["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect()
}

fn count(types: &[String], ty: &str) -> usize {
    types.iter().filter(|t| *t == ty).count()
}

/// Whether the stopped node's store holds any event of each `(kind, id)` (the store is
/// opened once: it stays locked while its writer thread lives).
fn holds(node: &TestApp, entities: &[(EntityKind, &str)]) -> Vec<bool> {
    let store = Store::open(
        &node.data_dir(),
        &StoreOptions {
            cache_capacity_bytes: 8 << 20,
            group_commit_max_batch: 64,
            group_commit_queue: 64,
            partitions: 64,
        },
    )
    .expect("open the stopped node's store");
    entities
        .iter()
        .map(|(kind, id)| store.journal().exists(*kind, id).expect("read the journal"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkout_in_flight_while_its_partition_moves_is_captured_once_on_the_new_owner() {
    let mut nodes = cluster(3, 3000).await;
    nodes[0].stocked_product("PAY-MOVE", 900, 10).await;
    let cart = nodes[1].cart_with("PAY-MOVE", 2).await;
    let placed = nodes[1]
        .checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    // Each payment call takes 3 s: the saga is in flight.
    assert_eq!(placed.status, 202, "{}", placed.text);
    let order = placed.json["id"].as_str().expect("order id").to_owned();
    let before = status(&nodes[0]).await;
    let old = owner(&before, EntityKind::Order, &order);

    // The order's owner drains: every partition it owns moves while the payment runs.
    nodes[old]
        .admin_post("/v1/cluster/leave", None)
        .await
        .expect(202);
    let deadline = Deadline::new(Duration::from_secs(90), "the owner to leave the map");
    let after = loop {
        let s = status(&nodes[(old + 1) % 3]).await;
        let gone = s["members"].as_array().is_some_and(|m| {
            m.len() == 2 && m.iter().all(|x| x["name"] != format!("node{}", old + 1))
        });
        if gone && s["moving"].as_array().is_some_and(Vec::is_empty) {
            break s;
        }
        deadline.tick(Duration::from_millis(100)).await;
    };
    let new = owner(&after, EntityKind::Order, &order);
    assert_ne!(new, old, "the order moved");
    assert_eq!(
        owner(&after, EntityKind::Payment, &order),
        new,
        "its payment is placed with it"
    );

    let o = settled_order(&nodes[new], &order).await;
    assert_eq!(o["status"], "paid", "{o}");
    assert_eq!(o["payment"]["status"], "captured", "{o}");
    // A saga step met the frozen gate on the old owner and was deferred to the new one.
    let deferred = sample_value(
        &nodes[old].metrics().await,
        "emporium_saga_steps_deferred_total",
        &[],
    );
    assert!(
        deferred.is_some_and(|n| n >= 1.0),
        "a step was deferred at the gate: {deferred:?}"
    );
    // The ledger is the payment's events: one hold, one capture.
    let ledger = event_types(&nodes[new], "payment", &order).await;
    assert_eq!(count(&ledger, "Authorized"), 1, "{ledger:?}");
    assert_eq!(count(&ledger, "Captured"), 1, "{ledger:?}");

    // Stopped, each node's own data: only the new owner holds the order and its payment.
    for n in nodes.iter_mut() {
        let exit = n.sigterm(Duration::from_secs(20)).await;
        assert!(exit.success(), "clean shutdown: {exit:?}");
    }
    for (i, n) in nodes.iter().enumerate() {
        let has = holds(
            n,
            &[(EntityKind::Payment, &order), (EntityKind::Order, &order)],
        );
        assert_eq!(
            has,
            [i == new, i == new],
            "node{} holds (the payment, the order)",
            i + 1
        );
    }
}

fn replayed(r: &Resp) -> bool {
    r.headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

/// A keyed request to `node`.
async fn keyed(node: &TestApp, path: &str, key: &str, body: &Value) -> Resp {
    let rb = node
        .request(reqwest::Method::POST, path)
        .header("Idempotency-Key", key)
        .json(body);
    tokio::time::timeout(Duration::from_secs(30), send(rb))
        .await
        .expect("answered within 30 s")
}

/// The payment's event types, from whichever node answers for it.
async fn ledger_of(nodes: &[TestApp], order: &str) -> Vec<String> {
    for n in nodes {
        let types = event_types(n, "payment", order).await;
        if !types.is_empty() {
            return types;
        }
    }
    vec![]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_through_another_node_reaches_the_same_order_and_charges_once() {
    use crate::machine_client::{connect, heartbeat, register_machine, wait_order};
    let nodes = cluster(3, 0).await;

    // A vending purchase sent to node1 and, as a client that timed out would, retried
    // with the same key and body to node2 while the first is still in flight.
    let machine = "vm-idem-1";
    let secret = register_machine(&nodes[2], machine, 2, 5).await;
    let mut s = connect(&nodes[0].grpc_address, machine, &secret, 0)
        .await
        .expect("session");
    s.send(1, heartbeat()).await;
    s.wait_ack(1).await;
    let mut seq = 1;
    let key = new_key();
    let body = json!({"slot": 1, "email": "retry@example.com",
        "payment": {"card_number": GOOD_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}});
    let path = format!("/v1/machines/{machine}/purchase");
    let (first, retry) = tokio::join!(
        keyed(&nodes[0], &path, &key, &body),
        keyed(&nodes[1], &path, &key, &body)
    );
    let (order, slot) = crate::vending::vend_for_dispense(&mut s, &mut seq, true).await;
    assert_eq!(slot, 1);
    for r in [&first, &retry] {
        assert!(matches!(r.status, 201 | 202), "{} {}", r.status, r.text);
        assert_eq!(r.json["id"], order.as_str(), "one order: {}", r.text);
    }
    assert_eq!(
        [replayed(&first), replayed(&retry)]
            .iter()
            .filter(|r| !**r)
            .count(),
        1,
        "one placed, one replayed"
    );
    let o = wait_order(&nodes[2], &order, "the purchase to be fulfilled", |o| {
        o["status"] == "fulfilled"
    })
    .await;
    assert_eq!(o["payment"]["status"], "captured", "{o}");
    // Once settled, a third try through node3 replays it too.
    let third = keyed(&nodes[2], &path, &key, &body).await;
    assert_eq!(third.json["id"], order.as_str(), "{}", third.text);
    assert!(replayed(&third), "{:?}", third.headers);
    let ledger = ledger_of(&nodes, &order).await;
    assert_eq!(
        count(&ledger, "Authorized"),
        1,
        "one authorization: {ledger:?}"
    );
    let mut order_events = vec![];
    for n in &nodes {
        order_events = event_types(n, "order", &order).await;
        if !order_events.is_empty() {
            break;
        }
    }
    assert_eq!(
        count(&order_events, "DispenseSent"),
        1,
        "one dispense: {order_events:?}"
    );
    let m = nodes[1]
        .admin_get(&format!("/v1/machines/{machine}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(m["sales"]["units"], 1, "{m}");

    // A cart checkout through node1, retried through node2 and node3: the first
    // response, replayed.
    nodes[0].stocked_product("PAY-RETRY", 700, 10).await;
    let cart = nodes[1].cart_with("PAY-RETRY", 3).await;
    let key = new_key();
    let body = checkout_body(GOOD_CARD);
    let path = format!("/v1/carts/{cart}/checkout");
    let first = keyed(&nodes[0], &path, &key, &body).await;
    assert!(matches!(first.status, 201 | 202), "{}", first.text);
    assert!(!replayed(&first));
    let order = first.json["id"].as_str().expect("order id").to_owned();
    let o = settled_order(&nodes[0], &order).await;
    assert_eq!(o["status"], "paid", "{o}");
    for n in &nodes[1..] {
        let again = keyed(n, &path, &key, &body).await;
        assert_eq!(again.status, 201, "{}", again.text);
        assert!(replayed(&again), "{:?}", again.headers);
        assert_eq!(again.json["id"], order.as_str());
        assert_eq!(again.json["total_minor"], 2100, "{}", again.text);
    }
    let ledger = ledger_of(&nodes, &order).await;
    assert_eq!(count(&ledger, "Authorized"), 1, "{ledger:?}");
    assert_eq!(count(&ledger, "Captured"), 1, "{ledger:?}");
}
