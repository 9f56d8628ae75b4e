//! Multi-process cluster tests: the real binary started N times, each with its own data
//! dir, HTTP, gRPC and cluster ports (all bound to port 0 on loopback), joined over
//! ractor_cluster. Every wait is bounded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::domain::{checkout_body, new_key, GOOD_CARD};
use crate::helpers::{spawn_app, AppOpts, Deadline, TestApp};

pub(crate) const COOKIE: &str = "test-cluster-cookie-0123456789";
const JWT: &str = "test-cluster-jwt-secret-0123456789abcdef";

const PRODUCT: u8 = 1;
const CART: u8 = 2;
const SKU: u8 = 3;

/// A sku name whose product and stock both live on `node`.
pub(crate) fn sku_on(status: &Value, prefix: &str, node: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}-{i}"))
        .find(|s| owner_of(status, PRODUCT, s) == node && owner_of(status, SKU, s) == node)
        .expect("some sku lands on every node")
}

pub(crate) fn node_config(name: &str, seeds: &[String], fault: bool) -> String {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
    format!(
        r#"
[auth]
jwt_keys = [{{ kid = "t1", secret = "{JWT}" }}]
allow_guest_checkout = true

[cluster]
enabled = true
node_name = "{name}"
listen_addr = "127.0.0.1:0"
seeds = [{seeds}]
heartbeat_interval_ms = 200
# Roomier than the default (1500), so heartbeats of nodes starved by the other tests'
# processes do not flap; detection is measured by scripts/bench-cluster.sh.
failure_timeout_ms = 2500
fault_injection = {fault}
"#,
        seeds = seeds.join(", ")
    )
}

pub(crate) async fn start_node(name: &str, seeds: &[String], fault: bool) -> TestApp {
    start_node_with(name, seeds, fault, &[]).await
}

/// A node with extra environment (`EMPORIUM_...` overrides of the node's config).
pub(crate) async fn start_node_with(
    name: &str,
    seeds: &[String],
    fault: bool,
    env: &[(&str, &str)],
) -> TestApp {
    let mut opts = AppOpts::new()
        .config(node_config(name, seeds, fault))
        .env("EMPORIUM_CLUSTER_COOKIE", COOKIE);
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    spawn_app(opts).await
}

/// `n` nodes: node1 founds the cluster, the others join through it, one at a time.
pub(crate) async fn cluster_of(n: usize, fault: bool) -> Vec<TestApp> {
    cluster_with(n, fault, &[]).await
}

/// [`cluster_of`], every node with the extra environment `env`.
pub(crate) async fn cluster_with(n: usize, fault: bool, env: &[(&str, &str)]) -> Vec<TestApp> {
    let first = start_node_with("node1", &[], fault, env).await;
    let seed = first.cluster_addr().expect("cluster.addr of node1");
    let mut nodes = vec![first];
    for i in 2..=n {
        nodes.push(
            start_node_with(&format!("node{i}"), std::slice::from_ref(&seed), fault, env).await,
        );
        wait_settled(&nodes, i).await;
    }
    nodes
}

pub(crate) async fn status(node: &TestApp) -> Value {
    node.admin_get("/v1/cluster").await.expect(200).clone()
}

/// Until every node sees `members` live members, one epoch, quorum and no handoff.
pub(crate) async fn wait_settled(nodes: &[TestApp], members: usize) -> Value {
    let deadline = Deadline::new(Duration::from_secs(60), "the cluster to settle");
    loop {
        let mut all = Vec::new();
        for n in nodes {
            all.push(status(n).await);
        }
        let ok = all.iter().all(|s| {
            s["members"].as_array().map(Vec::len) == Some(members)
                && s["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().all(|x| x["status"] == "alive"))
                && s["moving"].as_array().is_some_and(Vec::is_empty)
                && s["quorum"] == true
                && s["epoch"] == all[0]["epoch"]
        });
        if ok {
            return all.remove(0);
        }
        deadline.tick(Duration::from_millis(100)).await;
    }
}

/// The pinned partition hash (FNV-1a over `kind byte ++ id`), as in `cluster::partition_of`.
fn partition_of(kind: u8, id: &str, partitions: u64) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::iter::once(kind).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % partitions) as usize
}

pub(crate) fn owner_of(status: &Value, kind: u8, id: &str) -> String {
    let parts = status["partitions"].as_u64().expect("partitions");
    status["owners"][partition_of(kind, id, parts)]
        .as_str()
        .expect("owner")
        .to_owned()
}

fn name_of(i: usize) -> String {
    format!("node{}", i + 1)
}

fn quantity_of(cart: &Value, sku: &str) -> i64 {
    cart["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["sku"] == sku)
        .and_then(|i| i["quantity"].as_i64())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_forward_reads_writes_and_checkouts() {
    let nodes = cluster_of(3, false).await;
    let st = status(&nodes[0]).await;
    let counts: Vec<u64> = st["partitions_per_node"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 64);
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{st}"
    );

    // Stock on SKUs spread over the nodes, each created through some node.
    let skus: Vec<String> = (0..6).map(|i| format!("CL-SKU-{i}")).collect();
    for (i, sku) in skus.iter().enumerate() {
        nodes[i % 3].stocked_product(sku, 500, 100).await;
    }
    let owners: BTreeMap<&str, String> = skus
        .iter()
        .map(|s| (s.as_str(), owner_of(&st, SKU, s)))
        .collect();

    // 1,000 carts written through one node and read back through another.
    let written: Vec<(String, String, i64)> = futures::stream::iter(0..1000usize)
        .map(|i| {
            let nodes = &nodes;
            let skus = &skus;
            async move {
                let cart = nodes[i % 3].create_cart().await;
                let sku = &skus[i % skus.len()];
                let q = (i % 3) as i64 + 1;
                nodes[(i + 1) % 3].add_item(&cart, sku, q).await.expect(200);
                (cart, sku.clone(), q)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut owners_seen = BTreeMap::new();
    for (i, (cart, sku, q)) in written.iter().enumerate() {
        let c = nodes[(i + 2) % 3].cart(cart).await;
        assert_eq!(quantity_of(&c, sku), *q, "cart {cart}: {c}");
        *owners_seen.entry(owner_of(&st, CART, cart)).or_insert(0) += 1;
    }
    assert_eq!(
        owners_seen.len(),
        3,
        "carts live on every node: {owners_seen:?}"
    );

    // A checkout through node1 of SKUs owned by the other nodes.
    let remote: Vec<&String> = skus
        .iter()
        .filter(|s| owners[s.as_str()] != name_of(0))
        .take(2)
        .collect();
    assert_eq!(remote.len(), 2, "need SKUs owned elsewhere: {owners:?}");
    let cart = nodes[1].create_cart().await;
    nodes[2].add_item(&cart, remote[0], 3).await.expect(200);
    nodes[2].add_item(&cart, remote[1], 2).await.expect(200);
    let order = nodes[0].checkout_and_wait(&cart, GOOD_CARD).await;
    assert_eq!(order["status"], "paid", "{order}");
    // Stock is conserved: what was sold left on_hand, nothing stays reserved, and every
    // node reads the same numbers.
    for (sku, sold) in [(remote[0], 3), (remote[1], 2)] {
        for n in &nodes {
            let inv = n.inventory(sku).await;
            assert_eq!(inv.reserved, 0, "{sku} via {}", n.address);
            assert_eq!(inv.on_hand, 100 - sold, "{sku} via {}", n.address);
        }
    }
}

/// `n` carts, each with `1 + i % 3` units of `sku`, created through rotating nodes;
/// returns `(cart, quantity)`.
async fn carts_with(nodes: &[TestApp], sku: &str, n: usize) -> Vec<(String, i64)> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let cart = nodes[i % nodes.len()].create_cart().await;
            let q = (i % 3) as i64 + 1;
            nodes[(i + 1) % nodes.len()]
                .add_item(&cart, sku, q)
                .await
                .expect(200);
            (cart, q)
        })
        .buffer_unordered(8)
        .collect()
        .await
}

pub(crate) async fn wait_status_of(
    node: &TestApp,
    member: &str,
    want: &str,
    within: Duration,
) -> Duration {
    let t = Instant::now();
    let deadline = Deadline::new(within, format!("{member} to be {want}"));
    loop {
        let s = status(node).await;
        let seen = s["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == member && m["status"] == want);
        if seen {
            return t.elapsed();
        }
        deadline.tick(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_is_detected_its_partitions_answer_503_and_come_back_intact() {
    let mut nodes = cluster_of(3, false).await;
    let st = status(&nodes[0]).await;
    // The product lives on node1, so carts elsewhere do not depend on node3.
    let sku = sku_on(&st, "KILL", "node1");
    nodes[0].stocked_product(&sku, 300, 0).await;
    let carts = carts_with(&nodes, &sku, 60).await;
    let on3 = carts
        .iter()
        .filter(|(c, _)| owner_of(&st, CART, c) == "node3")
        .count();
    assert!(on3 > 0 && on3 < carts.len(), "carts on node3: {on3}");

    nodes[2].kill();
    let detected = wait_status_of(&nodes[0], "node3", "down", Duration::from_secs(15)).await;
    eprintln!(
        "node3 marked down {} ms after SIGKILL",
        detected.as_millis()
    );
    wait_status_of(&nodes[1], "node3", "down", Duration::from_secs(15)).await;

    // Fault isolation: node3's partitions answer 503 partition_unavailable; every
    // other cart keeps being read and written.
    for (i, (cart, q)) in carts.iter().enumerate() {
        let via = &nodes[i % 2];
        let r = via.get(&format!("/v1/carts/{cart}")).await;
        if owner_of(&st, CART, cart) == "node3" {
            r.expect_error(503, "partition_unavailable");
            assert!(r.headers.get("retry-after").is_some(), "{}", r.text);
        } else {
            assert_eq!(quantity_of(r.expect(200), &sku), *q);
            via.add_item(cart, &sku, 1).await.expect(200);
        }
    }

    // Back from its own sled: every acknowledged write is there.
    nodes[2].restart().await;
    wait_settled(&nodes, 3).await;
    for (i, (cart, q)) in carts.iter().enumerate() {
        let extra = i64::from(owner_of(&st, CART, cart) != "node3");
        let c = nodes[(i + 1) % 3].cart(cart).await;
        assert_eq!(quantity_of(&c, &sku), q + extra, "cart {cart}: {c}");
    }
}

/// Per-entity seq continuity: the audit route reads the owner's journal (issue 13), so
/// every node must answer the same events, with seqs 1..=n and no gap or repeat.
async fn assert_single_journal(nodes: &[TestApp], kind: &str, id: &str) {
    let mut answers = Vec::new();
    for n in nodes {
        let r = n.events(kind, id).await;
        let seqs: Vec<u64> = r.expect(200)["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["seq"].as_u64())
            .collect();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert!(
            !seqs.is_empty(),
            "{kind}/{id} has no events via {}",
            n.address
        );
        assert_eq!(seqs, expected, "{kind}/{id} via {}", n.address);
        answers.push(r.json["events"].clone());
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "{kind}/{id}: the nodes answer different journals: {answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_isolated_node_stops_writing_and_nothing_is_written_twice() {
    let nodes = cluster_of(3, true).await;
    let st = status(&nodes[0]).await;
    // One product on the majority side, one on the node that will be cut off.
    let sku = sku_on(&st, "SPLIT", "node1");
    let sku3 = sku_on(&st, "SPLIT3", "node3");
    nodes[0].stocked_product(&sku, 300, 50).await;
    nodes[0].stocked_product(&sku3, 300, 50).await;
    let carts = carts_with(&nodes, &sku, 30).await;

    // Black-hole node3's cluster traffic, like a network partition.
    nodes[2]
        .admin_post("/v1/cluster/fault", Some(&json!({"blackhole": true})))
        .await
        .expect(200);
    wait_status_of(&nodes[0], "node3", "down", Duration::from_secs(15)).await;
    let deadline = Deadline::new(Duration::from_secs(15), "node3 to lose quorum");
    while status(&nodes[2]).await["quorum"] != false {
        deadline.tick(Duration::from_millis(25)).await;
    }

    let mut majority_writes = 0;
    for (cart, _) in &carts {
        let owner = owner_of(&st, CART, cart);
        // The isolated node refuses writes to what it owns.
        let r = nodes[2].add_item(cart, &sku3, 1).await;
        if owner == "node3" {
            r.expect_error(503, "no_quorum");
        } else {
            r.expect_error(503, "partition_unavailable");
        }
        // The majority keeps serving its own partitions, and reports node3's as
        // unavailable rather than taking them over.
        let r = nodes[0].add_item(cart, &sku, 1).await;
        if owner == "node3" {
            r.expect_error(503, "partition_unavailable");
        } else {
            r.expect(200);
            majority_writes += 1;
        }
    }
    assert!(majority_writes > 0);

    // Heal: node3 rejoins, and every entity was written by one node only.
    nodes[2]
        .admin_post("/v1/cluster/fault", Some(&json!({"blackhole": false})))
        .await
        .expect(200);
    wait_settled(&nodes, 3).await;
    for (i, (cart, q)) in carts.iter().enumerate() {
        let extra = i64::from(owner_of(&st, CART, cart) != "node3");
        let c = nodes[i % 3].cart(cart).await;
        assert_eq!(quantity_of(&c, &sku), q + extra, "cart {cart}: {c}");
        assert_eq!(quantity_of(&c, &sku3), 0, "cart {cart}: {c}");
        assert_single_journal(&nodes, "cart", cart).await;
    }
    // Stock conservation across the split: a checkout after the heal sells exactly once.
    let cart = nodes[2].cart_with(&sku, 4).await;
    let resp = nodes[1]
        .checkout(&cart, &new_key(), &checkout_body(GOOD_CARD))
        .await;
    assert!(matches!(resp.status, 201 | 202), "{}", resp.text);
    let id = resp.json["id"].as_str().unwrap().to_owned();
    let order = nodes[1]
        .wait_order_terminal(&id, Duration::from_secs(30))
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    for n in &nodes {
        let inv = n.inventory(&sku).await;
        assert_eq!((inv.on_hand, inv.reserved), (46, 0), "via {}", n.address);
    }
    assert_single_journal(&nodes, "sku", &sku).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_machine_on_one_node_sells_through_its_actor_on_another() {
    use crate::machine_client::{connect, heartbeat, register_machine, wait_order};
    const MACHINE: u8 = 9;
    let nodes = cluster_of(3, false).await;
    let st = status(&nodes[0]).await;
    // Its actor lives on node2; it dials node1; the shopper buys through node3.
    let id = (0..10_000)
        .map(|i| format!("vm-x{i}"))
        .find(|m| owner_of(&st, MACHINE, m) == "node2")
        .unwrap();
    let secret = register_machine(&nodes[2], &id, 2, 5).await;
    let mut s = connect(&nodes[0].grpc_address, &id, &secret, 0)
        .await
        .expect("session on node1");
    s.send(1, heartbeat()).await;
    s.wait_ack(1).await;
    let mut seq = 1;
    let buyer = {
        let url = nodes[2].url(&format!("/v1/machines/{id}/purchase"));
        let client = nodes[2].client.clone();
        tokio::spawn(async move {
            let r = client
                .post(url)
                .header("Idempotency-Key", new_key())
                .json(&json!({"slot": 1, "email": "buyer@example.com",
                    "payment": {"card_number": GOOD_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}}))
                .send()
                .await
                .unwrap();
            crate::helpers::read(r).await
        })
    };
    let (order_id, slot) = crate::vending::vend_for_dispense(&mut s, &mut seq, true).await;
    assert_eq!(slot, 1);
    let placed = buyer.await.unwrap();
    assert!(matches!(placed.status, 201 | 202), "{}", placed.text);
    let o = wait_order(&nodes[1], &order_id, "the order to be fulfilled", |o| {
        o["status"] == "fulfilled"
    })
    .await;
    assert_eq!(o["payment"]["status"], "captured", "{o}");
    let m = nodes[0]
        .admin_get(&format!("/v1/machines/{id}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(m["sales"]["units"], 1, "{m}");
}

/// Sends a request until it gets an answer that is not 503 (at most 40 tries, 100 ms
/// apart), as a client honouring `Retry-After` would.
async fn retrying(
    client: &reqwest::Client,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> crate::helpers::Resp {
    let mut last = None;
    for _ in 0..40 {
        let r = crate::helpers::read(build(client).send().await.expect("request")).await;
        if r.status != 503 {
            return r;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.expect("tried")
}

/// A client that keeps creating carts, adding items and checking out (every fifth
/// cart) through rotating nodes, retrying on 503, until stopped.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<LoadResult>,
}

#[derive(Default)]
struct LoadResult {
    /// `(cart, quantity)` of every acknowledged add.
    acked: Vec<(String, i64)>,
    /// `(order, quantity)` of every accepted checkout.
    orders: Vec<(String, i64)>,
    failures: Vec<String>,
}

impl Load {
    fn start(addrs: Vec<String>, sku: String) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            let mut out = LoadResult::default();
            let mut i = 0usize;
            while !flag.load(Ordering::Acquire) && i < 5000 {
                let a = &addrs[i % addrs.len()];
                let r = retrying(&client, |c| c.post(format!("{a}/v1/carts"))).await;
                if r.status != 201 {
                    out.failures
                        .push(format!("create: {} {}", r.status, r.text));
                    break;
                }
                let cart = r.json["id"].as_str().unwrap().to_owned();
                let b = &addrs[(i + 1) % addrs.len()];
                let q = (i % 3) as i64 + 1;
                let r = retrying(&client, |c| {
                    c.post(format!("{b}/v1/carts/{cart}/items"))
                        .json(&json!({"sku": sku, "quantity": q}))
                })
                .await;
                if r.status != 200 {
                    out.failures.push(format!("add: {} {}", r.status, r.text));
                    break;
                }
                out.acked.push((cart.clone(), q));
                if i % 5 == 0 {
                    // Retries carry the same key; the key names the order, which
                    // lives in its own partition, so any node would do.
                    let key = new_key();
                    let r = retrying(&client, |c| {
                        c.post(format!("{b}/v1/carts/{cart}/checkout"))
                            .header("Idempotency-Key", &key)
                            .json(&checkout_body(GOOD_CARD))
                    })
                    .await;
                    if !matches!(r.status, 201 | 202) {
                        out.failures
                            .push(format!("checkout: {} {}", r.status, r.text));
                        break;
                    }
                    out.orders
                        .push((r.json["id"].as_str().unwrap().to_owned(), q));
                }
                i += 1;
            }
            out
        });
        Self { stop, task }
    }

    async fn finish(self) -> LoadResult {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        let out = self.task.await.unwrap();
        assert!(
            out.failures.is_empty(),
            "client operations failed: {:?}",
            out.failures
        );
        assert!(out.acked.len() > 10, "the load ran: {}", out.acked.len());
        out
    }
}

/// After a membership change under load: balanced within one, every acknowledged write
/// present (read through `reader`), every order paid, stock conserved.
async fn check_after(
    settled: &Value,
    members: usize,
    reader: &TestApp,
    sku: &str,
    stock: i64,
    out: &LoadResult,
) {
    let counts: Vec<u64> = settled["partitions_per_node"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(counts.len(), members, "{settled}");
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{settled}"
    );
    for (cart, q) in &out.acked {
        let c = reader.cart(cart).await;
        assert_eq!(quantity_of(&c, sku), *q, "cart {cart}: {c}");
    }
    let mut sold = 0;
    for (id, q) in &out.orders {
        let o = reader
            .wait_order_terminal(id, Duration::from_secs(30))
            .await;
        assert_eq!(o["status"], "paid", "{o}");
        sold += q;
    }
    let inv = reader.inventory(sku).await;
    assert_eq!((inv.on_hand, inv.reserved), (stock - sold, 0));
}

/// Handoffs recorded in `emporium_cluster_handoff_seconds` across `nodes`.
async fn handoffs_exported(nodes: &[TestApp]) -> f64 {
    let mut n = 0.0;
    for node in nodes {
        let text = node.metrics_text().await;
        n += crate::domain::samples(&text, "emporium_cluster_handoff_seconds_count")
            .into_iter()
            .map(|(_, v)| v)
            .sum::<f64>();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fourth_node_joins_under_load_without_losing_a_write() {
    let mut nodes = cluster_of(3, false).await;
    let st = status(&nodes[0]).await;
    let sku = sku_on(&st, "JOIN", "node1");
    nodes[0].stocked_product(&sku, 100, 1000).await;
    let load = Load::start(
        nodes.iter().map(|n| n.address.clone()).collect(),
        sku.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seed = nodes[0].cluster_addr().unwrap();
    nodes.push(start_node("node4", &[seed], false).await);
    let settled = wait_settled(&nodes, 4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = load.finish().await;
    check_after(&settled, 4, &nodes[3], &sku, 1000, &out).await;
    let n = handoffs_exported(&nodes[..3]).await;
    assert!(n >= 16.0, "handoffs exported: {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_drains_under_load_without_losing_a_write() {
    let mut nodes = cluster_of(3, false).await;
    let st = status(&nodes[0]).await;
    let sku = sku_on(&st, "DRAIN", "node3");
    nodes[0].stocked_product(&sku, 100, 1000).await;
    let load = Load::start(
        nodes.iter().map(|n| n.address.clone()).collect(),
        sku.clone(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let drained = nodes[2].admin_post("/v1/cluster/leave", None).await;
    assert_eq!(drained.expect(202)["node"], "node3");
    // node3 hands everything off, then leaves the map.
    let deadline = Deadline::new(Duration::from_secs(60), "node3 to leave the map");
    let settled = loop {
        let s = status(&nodes[0]).await;
        let gone = s["members"]
            .as_array()
            .is_some_and(|m| m.len() == 2 && m.iter().all(|x| x["name"] != "node3"));
        if gone && s["moving"].as_array().is_some_and(Vec::is_empty) {
            break s;
        }
        deadline.tick(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = load.finish().await;
    check_after(&settled, 2, &nodes[0], &sku, 1000, &out).await;
    let n = handoffs_exported(&nodes[2..]).await;
    assert!(n >= 21.0, "handoffs exported by node3: {n}");
    // What node3 held is gone from its store: the journal moved with its partitions.
    // (The audit route reads the owner's journal, so node3's own store is opened once
    // node3 has exited.)
    let moved: Vec<String> = out
        .acked
        .iter()
        .take(50)
        .map(|(cart, _)| cart.clone())
        .filter(|cart| owner_of(&st, CART, cart) == "node3")
        .collect();
    assert!(!moved.is_empty(), "no acked cart was on node3");
    for cart in &moved {
        assert_single_journal(&nodes[..2], "cart", cart).await;
    }
    let status = nodes[2].sigterm(Duration::from_secs(30)).await;
    assert!(status.success(), "node3 exited with {status}");
    let store = emporium::store::Store::open(
        &nodes[2].data_dir(),
        &emporium::store::StoreOptions {
            cache_capacity_bytes: 8 << 20,
            group_commit_max_batch: 64,
            group_commit_queue: 64,
            partitions: 64,
        },
    )
    .expect("open node3's store");
    for cart in &moved {
        let held = store
            .journal()
            .exists(emporium::domain::EntityKind::Cart, cart)
            .expect("read node3's journal");
        assert!(!held, "node3 still holds {cart}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_node_is_removed_by_force_and_its_partitions_restart_empty() {
    let mut nodes = cluster_of(3, false).await;
    let st = status(&nodes[0]).await;
    let sku = sku_on(&st, "LOST", "node1");
    nodes[0].stocked_product(&sku, 100, 0).await;
    let carts = carts_with(&nodes, &sku, 30).await;
    let body = json!({"node": "node3", "force": true});
    // Only a node that is down can be removed, and only with force.
    nodes[0]
        .admin_post("/v1/cluster/remove", Some(&body))
        .await
        .expect_error(409, "node_not_down");
    nodes[2].kill();
    wait_status_of(&nodes[0], "node3", "down", Duration::from_secs(15)).await;
    nodes[0]
        .admin_post("/v1/cluster/remove", Some(&json!({"node": "node3"})))
        .await
        .expect_error(400, "validation");
    let r = nodes[0].admin_post("/v1/cluster/remove", Some(&body)).await;
    assert!(r.expect(200)["warning"].as_str().unwrap().contains("lost"));
    let settled = wait_settled(&nodes[..2], 2).await;
    assert_eq!(
        settled["owners"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| *o == "node3")
            .count(),
        0
    );
    // node3's carts are gone (their partitions restart empty once the fence passes);
    // every other cart is intact.
    for (i, (cart, q)) in carts.iter().enumerate() {
        let via = &nodes[i % 2];
        let deadline = Deadline::new(Duration::from_secs(15), "the fence to pass");
        loop {
            let r = via.get(&format!("/v1/carts/{cart}")).await;
            if r.status == 503 {
                deadline.tick(Duration::from_millis(100)).await;
                continue;
            }
            if owner_of(&st, CART, cart) == "node3" {
                r.expect_error(404, "not_found");
            } else {
                assert_eq!(quantity_of(r.expect(200), &sku), *q);
            }
            break;
        }
    }
}
