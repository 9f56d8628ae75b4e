//! The simulated users: each owns one connection and runs operations until the run ends,
//! either as fast as answers come (closed loop) or on a shared schedule of `rate`
//! requests per second (open loop), where latency counts from the scheduled moment.

use super::client::{Conn, Reply};
use super::mix::{pick, total_weight, Mix, Op};
use super::report::Recorder;
use super::setup::create_cart;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The card every checkout pays with: the simulator's always-approved test card.
const CARD: &str = "4242424242424242";

/// What every user shares, read-only but for the counters.
pub struct Plan {
    pub mix: Mix,
    pub addr: String,
    pub path: String,
    pub skus: Vec<String>,
    pub categories: Vec<String>,
    pub carts: Vec<String>,
    pub timeout: Duration,
    pub start: Instant,
    pub end: Instant,
    /// Open loop: the gap between scheduled requests.
    pub interval: Option<Duration>,
    pub ticket: AtomicU64,
    /// Stop after this many operations in all (`--requests`).
    pub limit: Option<u64>,
    /// Operations started, counted against `limit`.
    pub issued: AtomicU64,
    pub ok: AtomicU64,
    pub errors: AtomicU64,
    /// Units per SKU in orders seen `paid`.
    pub paid_units: Vec<AtomicU64>,
}

/// One simulated shopper.
struct User {
    conn: Conn,
    rng: SmallRng,
    /// Boutique: the shopper's own cart and its units per SKU index.
    cart: Option<String>,
    lines: Vec<(usize, u64)>,
}

/// Runs one user to the end of the run; returns its counts.
pub async fn user(plan: Arc<Plan>, seed: u64) -> Recorder {
    let mut u = User {
        conn: Conn::new(&plan.addr, None, plan.timeout),
        rng: SmallRng::seed_from_u64(seed),
        cart: None,
        lines: Vec::new(),
    };
    let mut rec = Recorder::default();
    let weights = plan.mix.weights();
    let total = total_weight(weights);
    loop {
        if let Some(limit) = plan.limit {
            if plan.issued.fetch_add(1, Ordering::Relaxed) >= limit {
                break;
            }
        }
        let intended = match plan.interval {
            Some(gap) => {
                let i = plan.ticket.fetch_add(1, Ordering::Relaxed);
                let at = plan.start + gap.mul_f64(i as f64);
                if at >= plan.end {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                at
            }
            None => {
                let now = Instant::now();
                if now >= plan.end {
                    break;
                }
                now
            }
        };
        let op = pick(weights, u.rng.random_range(0..total));
        let ok = run_op(&plan, &mut u, &mut rec, op, intended).await;
        let counter = if ok { &plan.ok } else { &plan.errors };
        counter.fetch_add(1, Ordering::Relaxed);
    }
    rec
}

/// Runs `op`, recording it (and its steps); whether it succeeded. Single requests are
/// timed from `intended`; the steps of a multi-request op from their own start, and the
/// whole order from `intended`.
async fn run_op(plan: &Plan, u: &mut User, rec: &mut Recorder, op: Op, intended: Instant) -> bool {
    let result = match op {
        Op::Get => {
            let path = plan.path.clone();
            step(u, rec, Op::Get, Method::GET, path, None, intended).await
        }
        Op::Index => {
            let path = "/v1/products?limit=20".to_string();
            step(u, rec, op, Method::GET, path, None, intended).await
        }
        Op::ListCategory => {
            let c = &plan.categories[u.rng.random_range(0..plan.categories.len())];
            let path = format!("/v1/products?category={c}&limit=20");
            step(u, rec, op, Method::GET, path, None, intended).await
        }
        Op::Browse => {
            let sku = &plan.skus[u.rng.random_range(0..plan.skus.len())];
            let path = format!("/v1/products/{sku}");
            step(u, rec, op, Method::GET, path, None, intended).await
        }
        Op::ViewCart => match own_or_shared_cart(plan, u, rec).await {
            Some(id) => {
                let path = format!("/v1/carts/{id}");
                step(u, rec, op, Method::GET, path, None, intended).await
            }
            None => None,
        },
        Op::AddToCart => add_to_cart(plan, u, rec, intended).await,
        Op::Checkout => match add_to_cart(plan, u, rec, Instant::now()).await {
            Some(_) => checkout(plan, u, rec).await,
            None => None,
        },
        Op::Order => {
            u.cart = None;
            u.lines.clear();
            match add_to_cart(plan, u, rec, Instant::now()).await {
                Some(_) => checkout(plan, u, rec).await,
                None => None,
            }
        }
        Op::CreateCart => new_cart(u, rec, intended).await.map(Bytes::from),
    };
    let ok = result.is_some();
    if op == Op::Order {
        if ok {
            rec.ok(Op::Order, intended.elapsed());
        } else {
            // The step that failed holds the error's key; this only counts the order.
            rec.failed(Op::Order);
        }
    }
    ok
}

/// The boutique shopper's cart (made on first use), or a shared pre-made cart.
async fn own_or_shared_cart(plan: &Plan, u: &mut User, rec: &mut Recorder) -> Option<String> {
    if plan.mix != Mix::Boutique && !plan.carts.is_empty() {
        return Some(plan.carts[u.rng.random_range(0..plan.carts.len())].clone());
    }
    if u.cart.is_none() {
        new_cart(u, rec, Instant::now()).await?;
    }
    u.cart.clone()
}

async fn new_cart(u: &mut User, rec: &mut Recorder, since: Instant) -> Option<String> {
    match create_cart(&mut u.conn).await {
        Ok(id) => {
            rec.ok(Op::CreateCart, since.elapsed());
            u.cart = Some(id.clone());
            u.lines.clear();
            Some(id)
        }
        Err(e) => {
            rec.error(Op::CreateCart, e);
            None
        }
    }
}

async fn add_to_cart(
    plan: &Plan,
    u: &mut User,
    rec: &mut Recorder,
    since: Instant,
) -> Option<Bytes> {
    let id = own_or_shared_cart(plan, u, rec).await?;
    let i = u.rng.random_range(0..plan.skus.len());
    let body = format!(r#"{{"sku":"{}","quantity":1}}"#, plan.skus[i]);
    let path = format!("/v1/carts/{id}/items");
    let body = Some(Bytes::from(body));
    let reply = step(u, rec, Op::AddToCart, Method::POST, path, body, since).await?;
    if u.cart.as_deref() == Some(id.as_str()) {
        match u.lines.iter_mut().find(|(s, _)| *s == i) {
            Some((_, n)) => *n += 1,
            None => u.lines.push((i, 1)),
        }
    }
    Some(reply)
}

/// Checks out the user's cart; succeeds only when the order ends `paid`. The next
/// cart op starts a new cart.
async fn checkout(plan: &Plan, u: &mut User, rec: &mut Recorder) -> Option<Bytes> {
    let id = u.cart.take()?;
    let lines = std::mem::take(&mut u.lines);
    let key = uuid::Uuid::new_v4().to_string();
    let body = serde_json::json!({
        "email": "loadgen@example.com",
        "payment": {"card_number": CARD, "exp_month": 12, "exp_year": 2035, "cvc": "123"},
    })
    .to_string();
    let req = u
        .conn
        .builder(&Method::POST, &format!("/v1/carts/{id}/checkout"))
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body)));
    let Ok(req) = req else {
        rec.error(Op::Checkout, "request could not be built".into());
        return None;
    };
    let t = Instant::now();
    let reply = u.conn.send_request(req).await;
    if let Reply::Status(s @ 200..=299, body) = &reply {
        let status = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["status"].as_str().map(str::to_string))
            .unwrap_or_default();
        if status != "paid" {
            // 202 (still running) or 201 with the order failed: not a sale.
            rec.error(Op::Checkout, format!("{s} order {status}, not paid"));
            return None;
        }
    }
    let body = judge(rec, Op::Checkout, reply, t)?;
    for (i, n) in lines {
        plan.paid_units[i].fetch_add(n, Ordering::Relaxed);
    }
    Some(body)
}

/// One request, recorded under `op` with its latency since `since`; the body of a 2xx
/// answer.
async fn step(
    u: &mut User,
    rec: &mut Recorder,
    op: Op,
    method: Method,
    path: String,
    body: Option<Bytes>,
    since: Instant,
) -> Option<Bytes> {
    let reply = u.conn.send(&method, &path, body).await;
    judge(rec, op, reply, since)
}

fn judge(rec: &mut Recorder, op: Op, reply: Reply, started: Instant) -> Option<Bytes> {
    match reply {
        Reply::Status(s, body) if (200..300).contains(&s) => {
            rec.ok(op, started.elapsed());
            Some(body)
        }
        Reply::Status(s, body) => {
            rec.error(op, Reply::error_key(s, &body));
            None
        }
        Reply::Timeout => {
            rec.error(op, "timeout (no answer within --timeout)".into());
            None
        }
        Reply::Io(e) => {
            rec.error(op, format!("io {e}"));
            None
        }
    }
}
