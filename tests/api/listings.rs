//! Issue 13, point 4: listings answer for the whole cluster. Three real processes; a
//! shopper's orders, machines and products are spread over every node's partitions,
//! and every node lists all of them, pages them identically, and says which
//! partitions are missing when a node is cut off.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::{
    cluster_of, owner_of, sku_on, start_node, status, wait_settled, wait_status_of,
};
use crate::helpers::TestApp;

const ORDER: u8 = 4;
const MACHINE: u8 = 9;

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// Every page of `path` (which has no query yet) at `limit`, as `(ids, next_cursor)`.
async fn pages(node: &TestApp, token: &str, path: &str, limit: usize) -> Vec<(Vec<String>, Value)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let r = node.get_as(token, &url).await;
        let v = r.expect(200).clone();
        let next = v["next_cursor"].clone();
        out.push((ids(&v["items"]), next.clone()));
        match next.as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
    panic!("{path} did not end within 100 pages");
}

fn partitions_of(status: &Value, node: &str) -> Vec<u64> {
    status["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .enumerate()
        .filter(|(_, o)| o.as_str() == Some(node))
        .map(|(p, _)| p as u64)
        .collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_u64().expect("a partition number"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listings_answer_for_the_whole_cluster_and_name_missing_partitions() {
    let mut nodes = cluster_of(3, true).await;
    let st = status(&nodes[0]).await;

    // One product (and its stock) on each node, all found by one search word.
    let skus: Vec<String> = (1..=3)
        .map(|i| sku_on(&st, &format!("LIST{i}"), &format!("node{i}")))
        .collect();
    for (i, sku) in skus.iter().enumerate() {
        let body = json!({"name": format!("Listed mug {i}"), "price_minor": 500,
            "category": "listing", "tags": []});
        nodes[i].upsert_product(sku, &body).await.expect(201);
        nodes[i].adjust(sku, 100).await.expect(200);
    }

    // A shopper's 30 orders, each placed through the next node.
    let email = "lister@example.com";
    let user_id = nodes[0].register_ok(email).await;
    let shopper = nodes[1].login_ok(&user_id, email).await;
    let mut placed = Vec::new();
    for i in 0..30 {
        let node = &nodes[i % 3];
        let cart = node.cart_as(Some(&shopper.access), &skus[i % 3], 1).await;
        let rb = node
            .with_token(
                Some(&shopper.access),
                reqwest::Method::POST,
                &format!("/v1/carts/{cart}/checkout"),
            )
            .header("Idempotency-Key", crate::domain::new_key())
            .json(&crate::domain::checkout_body(crate::domain::GOOD_CARD));
        let r = crate::helpers::send(rb).await;
        assert!(matches!(r.status, 201 | 202), "checkout {i}: {}", r.text);
        placed.push(r.json["id"].as_str().expect("order id").to_owned());
    }
    let owners: BTreeSet<String> = placed.iter().map(|o| owner_of(&st, ORDER, o)).collect();
    assert_eq!(
        owners.len(),
        3,
        "the orders should span every node: {owners:?}"
    );
    let newest_first: Vec<String> = placed.iter().rev().cloned().collect();

    // Every node lists all 30, newest first, and pages them identically.
    let mut paged = Vec::new();
    for n in &nodes {
        let all = n.get_as(&shopper.access, "/v1/me/orders?limit=100").await;
        let v = all.expect(200);
        assert_eq!(ids(&v["items"]), newest_first, "via {}", n.address);
        assert_eq!(v["next_cursor"], Value::Null);
        assert!(v.get("missing_partitions").is_none(), "{v}");
        paged.push(pages(n, &shopper.access, "/v1/me/orders", 7).await);
    }
    assert_eq!(paged[0].len(), 5, "30 orders in pages of 7: {:?}", paged[0]);
    let flat: Vec<String> = paged[0].iter().flat_map(|(p, _)| p.clone()).collect();
    assert_eq!(flat, newest_first);
    assert_eq!(paged[0], paged[1], "node1 and node2 page differently");
    assert_eq!(paged[0], paged[2], "node1 and node3 page differently");

    // Machines registered through rotating nodes, owned by every node.
    let machines: Vec<String> = (1..=3)
        .map(|i| {
            (0..10_000)
                .map(|k| format!("vm-list{k}"))
                .find(|m| owner_of(&st, MACHINE, m) == format!("node{i}"))
                .expect("a machine id on every node")
        })
        .collect();
    for (i, m) in machines.iter().enumerate() {
        nodes[(i + 1) % 3]
            .admin_put_json(&format!("/v1/machines/{m}"), &json!({"name": m}))
            .await
            .expect(201);
    }
    let mut sorted_machines = machines.clone();
    sorted_machines.sort();
    let mut sorted_skus = skus.clone();
    sorted_skus.sort();
    for n in &nodes {
        let v = n.admin_get("/v1/machines").await.expect(200).clone();
        assert_eq!(
            ids(&v["items"]),
            sorted_machines,
            "machines via {}",
            n.address
        );
        let v = n.get("/v1/products?q=listed").await.expect(200).clone();
        let found: Vec<String> = v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["sku"].as_str().expect("sku").to_owned())
            .collect();
        assert_eq!(found, sorted_skus, "search via {}", n.address);
        let v = n
            .get("/v1/products?category=listing&limit=2")
            .await
            .expect(200)
            .clone();
        assert_eq!(
            v["next_cursor"],
            json!(sorted_skus[1]),
            "category via {}",
            n.address
        );
    }

    // A cursor is a position in the global order: a fourth node joins (partitions move
    // to it), and paging on from the first page's cursor, through the new node, gives
    // the same pages as before the rebalance.
    let seed = nodes[0].cluster_addr().expect("cluster.addr of node1");
    nodes.push(start_node("node4", &[seed], true).await);
    let st = wait_settled(&nodes, 4).await;
    assert!(
        !partitions_of(&st, "node4").is_empty(),
        "node4 took no partition"
    );
    let cursor = paged[0][0].1.as_str().expect("a second page").to_owned();
    let mut rest = Vec::new();
    let mut next = Some(cursor);
    while let Some(c) = next.take() {
        assert!(rest.len() < 10, "paging after the join does not end");
        let r = nodes[3]
            .get_as(
                &shopper.access,
                &format!("/v1/me/orders?limit=7&cursor={c}"),
            )
            .await;
        let v = r.expect(200);
        rest.push((ids(&v["items"]), v["next_cursor"].clone()));
        next = v["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(rest, paged[0][1..], "pages after a rebalance");

    // Cut node3 off: node1's listings miss exactly node3's partitions.
    nodes[2]
        .admin_post("/v1/cluster/fault", Some(&json!({"blackhole": true})))
        .await
        .expect(200);
    wait_status_of(&nodes[0], "node3", "down", Duration::from_secs(15)).await;
    let lost = partitions_of(&st, "node3");
    let r = nodes[0].get_as(&shopper.access, "/v1/me/orders").await;
    r.expect_error(503, "partition_unavailable");
    assert_eq!(u64s(&r.json["error"]["partitions"]), lost, "{}", r.text);

    let r = nodes[0]
        .get_as(&shopper.access, "/v1/me/orders?limit=100&partial=true")
        .await;
    let v = r.expect(200);
    assert_eq!(u64s(&v["missing_partitions"]), lost);
    let reachable: Vec<String> = newest_first
        .iter()
        .filter(|o| owner_of(&st, ORDER, o) != "node3")
        .cloned()
        .collect();
    assert_eq!(ids(&v["items"]), reachable);

    let v = nodes[0]
        .admin_get("/v1/machines?partial=true")
        .await
        .expect(200)
        .clone();
    let reachable: Vec<String> = sorted_machines
        .iter()
        .filter(|m| owner_of(&st, MACHINE, m) != "node3")
        .cloned()
        .collect();
    assert_eq!(ids(&v["items"]), reachable);
    assert_eq!(u64s(&v["missing_partitions"]), lost);
    nodes[0]
        .admin_get("/v1/machines")
        .await
        .expect_error(503, "partition_unavailable");
    let v = nodes[0]
        .get("/v1/products?q=listed&partial=true")
        .await
        .expect(200)
        .clone();
    let found: Vec<&str> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["sku"].as_str())
        .collect();
    let reachable: Vec<&str> = sorted_skus
        .iter()
        .filter(|s| owner_of(&st, 1, s) != "node3")
        .map(String::as_str)
        .collect();
    assert_eq!(found, reachable, "{v}");
    assert_eq!(u64s(&v["missing_partitions"]), lost);

    // The audit trail is a read on the entity's owner: unavailable while it is cut off.
    let on3 = placed
        .iter()
        .find(|o| owner_of(&st, ORDER, o) == "node3")
        .expect("an order on node3");
    let on1 = placed
        .iter()
        .find(|o| owner_of(&st, ORDER, o) == "node1")
        .expect("an order on node1");
    nodes[0]
        .events("order", on3)
        .await
        .expect_error(503, "partition_unavailable");
    assert!(!nodes[0].events("order", on1).await.expect(200)["events"]
        .as_array()
        .expect("events")
        .is_empty());
}
