//! The load of a chaos round, over the public HTTP API only: shoppers that fill a cart
//! with sequential line writes and check it out (good and declined cards), an operator
//! adjusting inventory, and app purchases from the simulated machine. Every write's
//! outcome goes to the ledger the moment it is known: acknowledged, or unknown (an error
//! or no answer). Refused writes (4xx) changed nothing and are only counted; a request
//! that could not even be dialled is retried.

use super::ledger::{Card, Ledger, Line, Record};
use super::outcome::{classify, Outcome};
use super::Counters;
use crate::loadgen::client::Conn;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// The deadline of every request the load sends.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a task waits before trying again after a failure.
const BACKOFF: Duration = Duration::from_millis(150);
/// Line writes per cart before its checkout: 1..=this.
const MAX_WRITES_PER_CART: usize = 4;
/// A shopper's pause after each write: keeps the ledger (and every round's full
/// re-check of it) to a few hundred writes per round.
const THINK: Duration = Duration::from_millis(20);
/// Every this often the operator adjusts a SKU.
const ADJUST_EVERY: Duration = Duration::from_millis(80);
/// Every this often an app purchase is made at the machine.
const PURCHASE_EVERY: Duration = Duration::from_millis(300);

/// What every task shares.
pub struct Shared {
    pub addr: String,
    pub admin_token: String,
    pub skus: Vec<String>,
    pub machine: String,
    pub slots: Vec<u32>,
    pub ledger: Arc<Ledger>,
    pub counters: Arc<Counters>,
    /// Set when the load should stop sending new writes.
    pub stop: Arc<AtomicBool>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn record(&self, r: Record) {
        self.counters.note(&r);
        if let Err(e) = self.ledger.append(&r) {
            // A ledger that cannot be written makes the run meaningless: stop it.
            eprintln!("chaos load: cannot write the ledger: {e}");
            std::process::exit(2);
        }
    }
}

/// The JSON body of a checkout with `card`; the checker re-sends exactly this.
pub fn checkout_body(card: Card) -> serde_json::Value {
    serde_json::json!({"email": "chaos@example.com", "payment": card.payment()})
}

/// The JSON body of an app purchase from `slot` with `card`.
pub fn purchase_body(slot: u32, card: Card) -> serde_json::Value {
    serde_json::json!({"slot": slot, "email": "chaos@example.com", "payment": card.payment()})
}

fn pick_card(rng: &mut StdRng) -> Card {
    if rng.random_bool(0.25) {
        Card::Declined
    } else {
        Card::Good
    }
}

/// Sends `body` to `path` with an `Idempotency-Key`.
pub async fn post_keyed(
    conn: &mut Conn,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> Outcome {
    let req = conn
        .builder(&Method::POST, path)
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body.to_string())));
    match req {
        Ok(req) => classify(conn.send_request(req).await),
        Err(_) => Outcome::NotSent,
    }
}

/// One shopper: cart after cart, each written sequentially and then checked out.
pub async fn shopper(sh: Arc<Shared>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = Conn::new(&sh.addr, None, REQUEST_TIMEOUT);
    while !sh.stopped() {
        let cart = match classify(conn.send(&Method::POST, "/v1/carts", None).await) {
            Outcome::Acked(_, body) => {
                match crate::loadgen::setup::cart_id(&body).and_then(|s| s.parse::<Uuid>().ok()) {
                    Some(c) => c,
                    None => {
                        sh.counters.errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(BACKOFF).await;
                        continue;
                    }
                }
            }
            _ => {
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let mut lines: BTreeMap<String, u32> = BTreeMap::new();
        let mut exact = true;
        let writes = rng.random_range(1..=MAX_WRITES_PER_CART);
        let mut w = 0;
        while w < writes && !sh.stopped() {
            tokio::time::sleep(THINK).await;
            let sku = sh.skus[rng.random_range(0..sh.skus.len())].clone();
            let qty = rng.random_range(0..=3u32);
            let path = format!("/v1/carts/{cart}/items/{sku}");
            let body = Bytes::from(format!(r#"{{"quantity":{qty}}}"#));
            match classify(conn.send(&Method::PUT, &path, Some(body)).await) {
                Outcome::Acked(..) => {
                    sh.record(Record::CartLine {
                        cart,
                        sku: sku.clone(),
                        qty,
                        ack: true,
                    });
                    if qty == 0 {
                        lines.remove(&sku);
                    } else {
                        lines.insert(sku, qty);
                    }
                    w += 1;
                }
                Outcome::Refused(..) => w += 1,
                Outcome::NotSent => tokio::time::sleep(BACKOFF).await,
                Outcome::Unknown => {
                    sh.record(Record::CartLine {
                        cart,
                        sku,
                        qty,
                        ack: false,
                    });
                    exact = false;
                    w += 1;
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
        if sh.stopped() || (exact && lines.is_empty()) {
            continue;
        }
        tokio::time::sleep(THINK).await;
        checkout(&sh, &mut conn, &mut rng, cart, exact.then_some(lines)).await;
    }
}

async fn checkout(
    sh: &Shared,
    conn: &mut Conn,
    rng: &mut StdRng,
    cart: Uuid,
    lines: Option<BTreeMap<String, u32>>,
) {
    let card = pick_card(rng);
    let key = format!("chaos-{}", Uuid::from_u128(rng.random()));
    let body = checkout_body(card);
    let lines: Option<Vec<Line>> = lines.map(|l| l.into_iter().collect());
    let path = format!("/v1/carts/{cart}/checkout");
    loop {
        match post_keyed(conn, &path, &key, &body).await {
            Outcome::Acked(_, answer) => {
                let order = serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|v| v["id"].as_str().and_then(|s| s.parse().ok()));
                if order.is_none() {
                    sh.counters.errors.fetch_add(1, Ordering::Relaxed);
                }
                sh.record(Record::Checkout {
                    cart,
                    key,
                    card,
                    order,
                    lines,
                    ack: order.is_some(),
                });
                return;
            }
            Outcome::Refused(..) => return,
            Outcome::NotSent if !sh.stopped() => tokio::time::sleep(BACKOFF).await,
            Outcome::NotSent => return,
            Outcome::Unknown => {
                sh.record(Record::Checkout {
                    cart,
                    key,
                    card,
                    order: None,
                    lines,
                    ack: false,
                });
                tokio::time::sleep(BACKOFF).await;
                return;
            }
        }
    }
}

/// The operator: small inventory adjustments at `main` or the store, mostly deliveries,
/// some shrinkage. After an
/// unknown one it waits for the server to answer again, so unknowns stay few.
pub async fn adjuster(sh: Arc<Shared>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = Conn::new(&sh.addr, Some(sh.admin_token.clone()), REQUEST_TIMEOUT);
    while !sh.stopped() {
        tokio::time::sleep(ADJUST_EVERY).await;
        let sku = sh.skus[rng.random_range(0..sh.skus.len())].clone();
        let delta: i64 = if rng.random_bool(0.2) {
            -rng.random_range(1..=3)
        } else {
            rng.random_range(1..=9)
        };
        let id = Uuid::from_u128(rng.random());
        let location = if rng.random_bool(0.5) {
            super::seed::STORE
        } else {
            "main"
        };
        let body = serde_json::json!({"delta": delta, "reason": format!("chaos {id}"), "location": location});
        let path = format!("/v1/inventory/{sku}/adjustments");
        loop {
            match classify(
                conn.send(&Method::POST, &path, Some(Bytes::from(body.to_string())))
                    .await,
            ) {
                Outcome::Acked(..) => sh.record(Record::Adjust {
                    id,
                    sku,
                    delta,
                    ack: true,
                }),
                Outcome::Refused(..) => {}
                Outcome::NotSent if !sh.stopped() => {
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
                Outcome::NotSent => {}
                Outcome::Unknown => {
                    sh.record(Record::Adjust {
                        id,
                        sku,
                        delta,
                        ack: false,
                    });
                    wait_answering(&sh, &mut conn).await;
                }
            }
            break;
        }
    }
}

/// Waits (while not stopped) until the server answers `/health/ready` with 200.
async fn wait_answering(sh: &Shared, conn: &mut Conn) {
    while !sh.stopped() {
        if let Outcome::Acked(..) = classify(conn.send(&Method::GET, "/health/ready", None).await) {
            return;
        }
        tokio::time::sleep(BACKOFF).await;
    }
}

/// App purchases at the machine, good and declined cards.
pub async fn purchaser(sh: Arc<Shared>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut conn = Conn::new(&sh.addr, None, REQUEST_TIMEOUT);
    let path = format!("/v1/machines/{}/purchase", sh.machine);
    while !sh.stopped() {
        tokio::time::sleep(PURCHASE_EVERY).await;
        let slot = sh.slots[rng.random_range(0..sh.slots.len())];
        let card = pick_card(&mut rng);
        let key = format!("chaos-vend-{}", Uuid::from_u128(rng.random()));
        match post_keyed(&mut conn, &path, &key, &purchase_body(slot, card)).await {
            Outcome::Acked(_, answer) => {
                let order = serde_json::from_slice::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|v| v["id"].as_str().and_then(|s| s.parse().ok()));
                sh.record(Record::Purchase {
                    key,
                    slot,
                    card,
                    order,
                    ack: order.is_some(),
                });
            }
            // 409 machine_offline while the machine reconnects, among others.
            Outcome::Refused(..) | Outcome::NotSent => {}
            Outcome::Unknown => sh.record(Record::Purchase {
                key,
                slot,
                card,
                order: None,
                ack: false,
            }),
        }
    }
}
