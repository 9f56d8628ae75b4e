//! What a run makes before the clock starts, through the public API: products with
//! stock (operator token), and carts for the cart mixes. Afterwards it reads the stock
//! back so the run can prove nothing was oversold or lost.

use super::client::{Conn, Reply};
use super::mix::Mix;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use http::Method;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What the workers use: SKUs, categories and pre-made carts (empty for mixes that
/// need no setup).
#[derive(Default)]
pub struct Catalog {
    pub skus: Vec<String>,
    pub categories: Vec<String>,
    pub carts: Vec<String>,
    /// `on_hand` of each SKU when the run started.
    pub stock: Vec<i64>,
    pub setup_s: f64,
}

/// Categories the products are spread over (the "set currency" op filters by one).
const CATEGORIES: usize = 4;
/// Lines each cart of the `cart-reads` mix gets, so a read returns a real cart.
const READ_CART_LINES: usize = 3;
/// Requests in flight while setting up.
const SETUP_CONCURRENCY: usize = 32;

pub struct SetupArgs<'a> {
    pub addr: &'a str,
    pub admin_token: &'a str,
    pub mix: Mix,
    pub seed: u64,
    pub products: usize,
    pub stock: i64,
    pub carts: usize,
    pub timeout: Duration,
}

/// Creates products (price 100..=899 minor units), their stock, and carts.
pub async fn prepare(a: SetupArgs<'_>) -> Result<Catalog, String> {
    let started = Instant::now();
    let mut admin = Conn::new(a.addr, Some(a.admin_token.to_string()), a.timeout);
    let categories: Vec<String> = (0..CATEGORIES).map(|i| format!("lg-{i}")).collect();
    let mut skus = Vec::with_capacity(a.products);
    let mut stock = Vec::with_capacity(a.products);
    for i in 0..a.products {
        let sku = format!("LG{}-{i:04}", a.seed);
        let body = serde_json::json!({
            "name": format!("Loadgen item {i}"),
            "description": "made by emporium loadgen",
            "price_minor": 100 + (i as i64 * 37) % 800,
            "category": categories[i % CATEGORIES],
            "tags": ["loadgen"],
        });
        expect_2xx(
            admin
                .send(
                    &Method::PUT,
                    &format!("/v1/products/{sku}"),
                    Some(json(&body)),
                )
                .await,
            "create a product (is --admin-token right?)",
        )?;
        let before = on_hand(&mut admin, &sku).await?;
        if a.stock > before {
            let adj = serde_json::json!({"delta": a.stock - before, "reason": "loadgen stock"});
            expect_2xx(
                admin
                    .send(
                        &Method::POST,
                        &format!("/v1/inventory/{sku}/adjustments"),
                        Some(json(&adj)),
                    )
                    .await,
                "stock a product",
            )?;
        }
        stock.push(on_hand(&mut admin, &sku).await?);
        skus.push(sku);
    }
    let carts = match a.mix {
        Mix::CartWrites | Mix::CartReads => {
            let lines = if a.mix == Mix::CartReads {
                READ_CART_LINES.min(skus.len())
            } else {
                0
            };
            make_carts(a.addr, a.carts, &skus, lines, a.timeout).await?
        }
        _ => Vec::new(),
    };
    Ok(Catalog {
        skus,
        categories,
        carts,
        stock,
        setup_s: started.elapsed().as_secs_f64(),
    })
}

async fn make_carts(
    addr: &str,
    n: usize,
    skus: &[String],
    lines: usize,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let per = n.div_ceil(SETUP_CONCURRENCY).max(1);
    let chunks: Vec<usize> = (0..n).step_by(per).map(|s| per.min(n - s)).collect();
    let made: Vec<Result<Vec<String>, String>> = stream::iter(chunks)
        .map(|count| async move {
            let mut conn = Conn::new(addr, None, timeout);
            let mut ids = Vec::with_capacity(count);
            for c in 0..count {
                let id = create_cart(&mut conn).await?;
                for l in 0..lines {
                    let sku = &skus[(c + l) % skus.len()];
                    let body = format!(r#"{{"sku":"{sku}","quantity":1}}"#);
                    expect_2xx(
                        conn.send(
                            &Method::POST,
                            &format!("/v1/carts/{id}/items"),
                            Some(Bytes::from(body)),
                        )
                        .await,
                        "add a line to a cart",
                    )?;
                }
                ids.push(id);
            }
            Ok(ids)
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut all = Vec::with_capacity(n);
    for m in made {
        all.extend(m?);
    }
    Ok(all)
}

/// `POST /v1/carts` as a guest; the new cart's id.
pub async fn create_cart(conn: &mut Conn) -> Result<String, String> {
    let body = expect_2xx(
        conn.send(&Method::POST, "/v1/carts", None).await,
        "create a cart",
    )?;
    cart_id(&body).ok_or_else(|| "create a cart: no id in the answer".to_string())
}

/// The `id` of a cart answer.
pub fn cart_id(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["id"].as_str().map(str::to_string)
}

async fn on_hand(conn: &mut Conn, sku: &str) -> Result<i64, String> {
    Ok(inventory(conn, sku).await?.0)
}

/// `(on_hand, reserved)` of a SKU.
pub async fn inventory(conn: &mut Conn, sku: &str) -> Result<(i64, i64), String> {
    let reply = conn
        .send(&Method::GET, &format!("/v1/inventory/{sku}"), None)
        .await;
    if let Reply::Status(404, _) = reply {
        return Ok((0, 0));
    }
    let body = expect_2xx(reply, "read stock")?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("read stock: {e}"))?;
    Ok((
        v["on_hand"].as_i64().unwrap_or_default(),
        v["reserved"].as_i64().unwrap_or_default(),
    ))
}

fn json(v: &serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

fn expect_2xx(reply: Reply, what: &str) -> Result<Bytes, String> {
    match reply {
        Reply::Status(s, body) if (200..300).contains(&s) => Ok(body),
        Reply::Status(s, body) => Err(format!("{what}: {}", Reply::error_key(s, &body))),
        Reply::Timeout => Err(format!("{what}: timed out")),
        Reply::Io(e) => Err(format!("{what}: {e}")),
    }
}

/// Stock after the run, against what paid orders took.
#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct StockCheck {
    /// Units in orders the run saw end `paid`.
    pub units_paid: i64,
    /// How far `on_hand` fell over the run, over all SKUs.
    pub on_hand_drop: i64,
    /// Units still reserved when the check gave up waiting for them to settle.
    pub reserved_left: i64,
    /// Units sold that were not there: a SKU whose `on_hand` went below zero.
    pub oversold: i64,
}

impl StockCheck {
    /// Whether the books balance: every paid unit left the shelf exactly once.
    pub fn balanced(&self) -> bool {
        self.oversold == 0 && self.reserved_left == 0 && self.on_hand_drop == self.units_paid
    }
}

/// Waits (bounded) for reservations to settle, then compares stock with `paid`.
pub async fn check_stock(
    addr: &str,
    catalog: &Catalog,
    paid: &[u64],
    timeout: Duration,
) -> Result<StockCheck, String> {
    let mut conn = Conn::new(addr, None, timeout);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut check = StockCheck::default();
        for (i, sku) in catalog.skus.iter().enumerate() {
            let (on_hand, reserved) = inventory(&mut conn, sku).await?;
            check.units_paid += paid[i] as i64;
            check.on_hand_drop += catalog.stock[i] - on_hand;
            check.reserved_left += reserved;
            check.oversold += (-on_hand).max(0);
        }
        if check.reserved_left == 0 || Instant::now() >= deadline {
            return Ok(check);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_balances_only_when_every_paid_unit_left_once() {
        let ok = StockCheck {
            units_paid: 10,
            on_hand_drop: 10,
            ..Default::default()
        };
        assert!(ok.balanced());
        let lost = StockCheck {
            on_hand_drop: 9,
            ..ok
        };
        assert!(!lost.balanced());
        let oversold = StockCheck { oversold: 1, ..ok };
        assert!(!oversold.balanced());
        assert_eq!(
            cart_id(br#"{"id":"abc","lines":[]}"#).as_deref(),
            Some("abc")
        );
    }
}
