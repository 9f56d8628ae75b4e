//! Domain-level helpers on top of the harness: catalog, inventory, carts,
//! checkout, orders, audit and metrics.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{send, Deadline, Resp, TestApp};

pub const GOOD_CARD: &str = "4242424242424242";
pub const DECLINED_CARD: &str = "4000000000000002";
pub const INSUFFICIENT_FUNDS_CARD: &str = "4000000000009995";
pub const PROCESSING_ERROR_CARD: &str = "4000000000000119";

/// Order statuses at which the checkout saga is done.
pub const TERMINAL: [&str; 4] = ["paid", "cancelled", "refunded", "fulfilled"];

pub fn is_terminal(order: &Value) -> bool {
    order["status"]
        .as_str()
        .is_some_and(|s| TERMINAL.contains(&s))
}

pub fn checkout_body(card: &str) -> Value {
    json!({
        "email": "shopper@example.com",
        "payment": {"card_number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    })
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `{sku, on_hand, reserved, available}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inventory {
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

impl TestApp {
    // ---- catalog and inventory ------------------------------------------

    pub async fn upsert_product(&self, sku: &str, body: &Value) -> Resp {
        self.admin_put_json(&format!("/v1/products/{sku}"), body)
            .await
    }

    /// Creates a product (asserting 201) and returns it.
    pub async fn create_product(&self, sku: &str, price_minor: i64, category: &str) -> Value {
        let body = json!({
            "name": format!("Product {sku}"),
            "description": format!("Test product {sku}"),
            "price_minor": price_minor,
            "category": category,
            "tags": ["test"],
        });
        self.upsert_product(sku, &body).await.expect(201).clone()
    }

    pub async fn adjust(&self, sku: &str, delta: i64) -> Resp {
        let body = json!({"delta": delta, "reason": "test"});
        self.admin_post(&format!("/v1/inventory/{sku}/adjustments"), Some(&body))
            .await
    }

    /// A product with `stock` units on hand.
    pub async fn stocked_product(&self, sku: &str, price_minor: i64, stock: i64) -> Value {
        let product = self.create_product(sku, price_minor, "general").await;
        if stock != 0 {
            self.adjust(sku, stock).await.expect(200);
        }
        product
    }

    pub async fn inventory(&self, sku: &str) -> Inventory {
        let resp = self.get(&format!("/v1/inventory/{sku}")).await;
        let v = resp.expect(200);
        assert_eq!(v["sku"], sku, "inventory sku: {}", resp.text);
        let inv = Inventory {
            on_hand: v["on_hand"].as_i64().expect("on_hand"),
            reserved: v["reserved"].as_i64().expect("reserved"),
            available: v["available"].as_i64().expect("available"),
        };
        assert_eq!(
            inv.available,
            inv.on_hand - inv.reserved,
            "available = on_hand - reserved"
        );
        assert!(
            inv.available >= 0 && inv.reserved >= 0,
            "negative inventory: {inv:?}"
        );
        inv
    }

    // ---- carts and checkout ----------------------------------------------

    pub async fn create_cart(&self) -> String {
        let resp = send(self.request(reqwest::Method::POST, "/v1/carts")).await;
        let cart = resp.expect(201);
        assert_eq!(cart["status"], "open", "new cart: {}", resp.text);
        cart["id"].as_str().expect("cart id").to_string()
    }

    pub async fn cart(&self, id: &str) -> Value {
        self.get(&format!("/v1/carts/{id}"))
            .await
            .expect(200)
            .clone()
    }

    pub async fn add_item(&self, cart: &str, sku: &str, quantity: i64) -> Resp {
        let body = json!({"sku": sku, "quantity": quantity});
        self.post_json(&format!("/v1/carts/{cart}/items"), &body)
            .await
    }

    /// A fresh cart holding `quantity` units of `sku`.
    pub async fn cart_with(&self, sku: &str, quantity: i64) -> String {
        let cart = self.create_cart().await;
        self.add_item(&cart, sku, quantity).await.expect(200);
        cart
    }

    pub async fn checkout(&self, cart: &str, key: &str, body: &Value) -> Resp {
        let rb = self
            .request(reqwest::Method::POST, &format!("/v1/carts/{cart}/checkout"))
            .header("Idempotency-Key", key)
            .json(body);
        send(rb).await
    }

    /// Checks out with a fresh key, accepts 201 or 202, and returns the order
    /// once its saga is terminal.
    pub async fn checkout_and_wait(&self, cart: &str, card: &str) -> Value {
        let resp = self.checkout(cart, &new_key(), &checkout_body(card)).await;
        assert!(
            matches!(resp.status, 201 | 202),
            "checkout: {} {}",
            resp.status,
            resp.text
        );
        let id = resp.json["id"].as_str().expect("order id").to_string();
        if resp.status == 201 {
            assert!(
                is_terminal(&resp.json),
                "201 with a non-terminal order: {}",
                resp.text
            );
            return resp.json;
        }
        self.wait_order_terminal(&id, Duration::from_secs(60)).await
    }

    pub async fn order(&self, id: &str) -> Value {
        self.get(&format!("/v1/orders/{id}"))
            .await
            .expect(200)
            .clone()
    }

    pub async fn wait_order_terminal(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Deadline::new(timeout, format!("order {id} to become terminal"));
        loop {
            let order = self.order(id).await;
            if is_terminal(&order) {
                return order;
            }
            deadline.tick(Duration::from_millis(50)).await;
        }
    }

    // ---- audit and metrics -----------------------------------------------

    pub async fn events(&self, kind: &str, id: &str) -> Resp {
        self.admin_get(&format!("/v1/admin/entities/{kind}/{id}/events"))
            .await
    }

    pub async fn metrics_text(&self) -> String {
        let resp = self.get("/metrics").await;
        assert_eq!(resp.status, 200, "GET /metrics: {}", resp.text);
        resp.text
    }

    pub async fn metrics(&self) -> prometheus_parse::Scrape {
        parse_metrics(&self.metrics_text().await)
    }

    /// `emporium_actors_active{kind=...}`, 0 when absent.
    pub async fn active_actors(&self, kind: &str) -> f64 {
        let text = self.metrics_text().await;
        samples(&text, "emporium_actors_active")
            .into_iter()
            .find(|(labels, _)| labels.get("kind").map(String::as_str) == Some(kind))
            .map_or(0.0, |(_, v)| v)
    }
}

/// The samples of exactly `name` in Prometheus text, with their labels.
///
/// prometheus-parse 0.2 cuts a label set at the first `}`, so it drops or
/// mangles samples whose label values contain one (our route templates do,
/// e.g. `route="GET /v1/carts/{id}"`); this reads quoted values properly.
pub fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || !line.starts_with(name) {
            continue;
        }
        let rest = &line[name.len()..];
        let mut labels = BTreeMap::new();
        let rest = if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let mut end = None;
            loop {
                while chars.next_if(|(_, c)| *c == ',' || *c == ' ').is_some() {}
                match chars.peek() {
                    Some((i, '}')) => {
                        end = Some(i + 1);
                        break;
                    }
                    None => break,
                    _ => {}
                }
                let key: String = chars
                    .by_ref()
                    .map(|(_, c)| c)
                    .take_while(|c| *c != '=')
                    .collect();
                if chars.next().map(|(_, c)| c) != Some('"') {
                    break;
                }
                let mut value = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(other) => value.push(other),
                            None => break,
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key.trim().to_string(), value);
            }
            match end {
                Some(end) => &body[end..],
                None => continue,
            }
        } else {
            rest
        };
        if !rest.starts_with(' ') && !rest.starts_with('\t') {
            continue; // a longer metric name that merely starts with `name`
        }
        if let Some(Ok(v)) = rest.split_whitespace().next().map(str::parse::<f64>) {
            out.push((labels, v));
        }
    }
    out
}

pub fn parse_metrics(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("/metrics parses as Prometheus text")
}

/// The scalar value of the first sample of `metric` whose labels include
/// all of `labels`.
pub fn sample_value(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    use prometheus_parse::Value as V;
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .find_map(|s| match s.value {
            V::Counter(v) | V::Gauge(v) | V::Untyped(v) => Some(v),
            _ => None,
        })
}

/// Sum of the quantities of `order.items`, by sku.
pub fn order_units(order: &Value) -> Vec<(String, i64)> {
    order["items"]
        .as_array()
        .expect("order.items")
        .iter()
        .map(|i| {
            (
                i["sku"].as_str().expect("item sku").to_string(),
                i["quantity"].as_i64().expect("item quantity"),
            )
        })
        .collect()
}

/// The quantity of `sku` in a cart JSON (0 when it has no such line).
pub fn line_quantity(cart: &Value, sku: &str) -> i64 {
    cart["items"]
        .as_array()
        .expect("cart.items")
        .iter()
        .find(|i| i["sku"] == sku)
        .map(|i| i["quantity"].as_i64().expect("quantity"))
        .unwrap_or(0)
}

pub fn file_contains(path: &Path, needle: &[u8]) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
}
