//! `emporium chaos check`: after a restart, proves the ledger against the server through
//! the public API. It waits for `/health/ready`, resolves unknown checkouts by re-sending
//! them with their `Idempotency-Key` (a replay names the order, a first run creates it:
//! either way every order that can exist is then known), waits a bounded time for every
//! order to settle, and then checks: every acknowledged cart line and order is there;
//! every order is terminal with the outcome its card calls for; stock is conserved per
//! SKU with nothing left reserved; the machine's slots balance, its unit count is
//! explained by the vends, and no vend fulfils two orders. Clean checks append what the
//! unknown adjustments and vends resolved to, so the next round is exact again.

use super::books::{self, SlotBooks, StockBooks, Violation};
use super::driver::{checkout_body, post_keyed, REQUEST_TIMEOUT};
use super::ledger::{self, Card, CheckoutView, Ledger, Record, View};
use super::outcome::{classify, Outcome};
use super::ChaosError;
use crate::loadgen::client::Conn;
use http::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Attempts of a read that got a 5xx or no answer before the check gives up (exit 2).
const READ_ATTEMPTS: usize = 10;
/// Concurrent connections reading orders and carts.
const READERS: usize = 8;
/// Pause between polls.
const POLL: Duration = Duration::from_millis(250);

pub struct CheckArgs<'a> {
    pub addr: &'a str,
    pub token: &'a str,
    pub ledger: &'a Path,
    pub ready: Duration,
    pub settle: Duration,
}

/// What a check found.
pub struct Report {
    pub violations: Vec<Violation>,
    pub summary: String,
}

/// How long the machine-stock projection gets to catch up after a restart.
const MACHINE_STOCK_WAIT: Duration = Duration::from_secs(15);

/// Waits (until `until`) for `sku`'s units at the machine's location to be `-counted`.
async fn machine_stock(
    conn: &mut Conn,
    sku: &str,
    counted: u64,
    until: Instant,
) -> Result<Result<(), Violation>, ChaosError> {
    let due = -i64::try_from(counted).unwrap_or(i64::MAX);
    loop {
        let at_machine = get(conn, &format!("/v1/inventory/{sku}"))
            .await?
            .and_then(|v| {
                v["locations"].as_array().and_then(|a| {
                    a.iter()
                        .find(|l| l["location"] == super::seed::MACHINE)
                        .and_then(|l| l["on_hand"].as_i64())
                })
            })
            .unwrap_or(0);
        if at_machine == due {
            return Ok(Ok(()));
        }
        if Instant::now() >= until {
            return Ok(Err(Violation::MachineStock {
                sku: sku.to_owned(),
                at_machine,
                counted,
            }));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `GET path`: `Some(json)`, `None` on 404; retries 5xx and silence.
async fn get(conn: &mut Conn, path: &str) -> Result<Option<Value>, ChaosError> {
    for _ in 0..READ_ATTEMPTS {
        match classify(conn.send(&Method::GET, path, None).await) {
            Outcome::Acked(_, body) => {
                return serde_json::from_slice(&body)
                    .map(Some)
                    .map_err(|e| ChaosError::Http(format!("GET {path}: {e}")))
            }
            Outcome::Refused(404, _) => return Ok(None),
            Outcome::Refused(_, key) => return Err(ChaosError::Http(format!("GET {path}: {key}"))),
            Outcome::NotSent | Outcome::Unknown => tokio::time::sleep(POLL).await,
        }
    }
    Err(ChaosError::Http(format!("GET {path}: no answer")))
}

/// Paths read, each with its answer (`None`: 404).
type Fetched = Vec<(String, Option<Value>)>;

/// Reads many paths over [`READERS`] connections.
async fn get_all(addr: &str, token: &str, paths: Vec<String>) -> Result<Fetched, ChaosError> {
    use futures::StreamExt;
    let per = paths.len().div_ceil(READERS).max(1);
    let chunks: Vec<Vec<String>> = paths.chunks(per).map(<[String]>::to_vec).collect();
    let results: Vec<Result<Fetched, ChaosError>> = futures::stream::iter(chunks)
        .map(|chunk| async move {
            let mut conn = Conn::new(addr, Some(token.to_owned()), REQUEST_TIMEOUT);
            let mut out = Vec::with_capacity(chunk.len());
            for p in chunk {
                let v = get(&mut conn, &p).await?;
                out.push((p, v));
            }
            Ok(out)
        })
        .buffer_unordered(READERS)
        .collect()
        .await;
    let mut all = Vec::new();
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

/// Waits for `/health/ready` to answer 200.
pub async fn wait_ready(addr: &str, within: Duration) -> Result<(), ChaosError> {
    let deadline = Instant::now() + within;
    let mut conn = Conn::new(addr, None, Duration::from_secs(2));
    while Instant::now() < deadline {
        if let Outcome::Acked(..) = classify(conn.send(&Method::GET, "/health/ready", None).await) {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Err(ChaosError::NotReady(within))
}

fn read_view(path: &Path) -> Result<View, ChaosError> {
    let text = std::fs::read_to_string(path)?;
    let records = ledger::parse(&text).map_err(ChaosError::Ledger)?;
    let view = View::fold(&records).map_err(ChaosError::Ledger)?;
    if !view.seeded {
        return Err(ChaosError::Ledger("the ledger has no seed".into()));
    }
    Ok(view)
}

/// Re-sends an unknown checkout with its key: the order it stands for, if any.
async fn resolve(conn: &mut Conn, c: &CheckoutView) -> Result<Option<Uuid>, ChaosError> {
    let path = format!("/v1/carts/{}/checkout", c.cart);
    for _ in 0..READ_ATTEMPTS {
        match post_keyed(conn, &path, &c.key, &checkout_body(c.card)).await {
            Outcome::Acked(_, body) => {
                let v: Value = serde_json::from_slice(&body)
                    .map_err(|e| ChaosError::Http(format!("{path}: {e}")))?;
                return Ok(v["id"].as_str().and_then(|s| s.parse().ok()));
            }
            // Checked out already: by the order on the cart (only this key ever tried).
            Outcome::Refused(409, key) if key.ends_with("cart_checked_out") => {
                let cart = get(conn, &format!("/v1/carts/{}", c.cart)).await?;
                return Ok(cart.and_then(|v| v["order_id"].as_str().and_then(|s| s.parse().ok())));
            }
            // Empty or gone: no order was ever made for it.
            Outcome::Refused(..) => return Ok(None),
            Outcome::NotSent | Outcome::Unknown => tokio::time::sleep(POLL).await,
        }
    }
    Err(ChaosError::Http(format!("{path}: no answer")))
}

fn is_terminal(order: &Value) -> bool {
    let status = order["status"].as_str().unwrap_or_default();
    match order["kind"].as_str() {
        Some("vending") => matches!(status, "fulfilled" | "cancelled" | "refunded"),
        _ => matches!(status, "paid" | "fulfilled" | "cancelled" | "refunded"),
    }
}

fn items(v: &Value) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    Some((
                        i["sku"].as_str()?.to_owned(),
                        i["quantity"].as_u64()? as u32,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn describe(lines: &[(String, u32)]) -> String {
    let parts: Vec<String> = lines.iter().map(|(s, q)| format!("{s}x{q}")).collect();
    format!("[{}]", parts.join(", "))
}

/// Every order the ledger knows, its kind and its card.
struct Expected {
    id: Uuid,
    card: Card,
    checkout: Option<CheckoutView>,
}

/// Runs the whole check.
pub async fn check(a: CheckArgs<'_>) -> Result<Report, ChaosError> {
    wait_ready(a.addr, a.ready).await?;
    let mut view = read_view(a.ledger)?;
    let ledger = Ledger::open(a.ledger)?;
    let unresolved: Vec<CheckoutView> = view.unresolved().cloned().collect();
    let mut conn = Conn::new(a.addr, Some(a.token.to_owned()), REQUEST_TIMEOUT);
    for c in &unresolved {
        let order = resolve(&mut conn, c).await?;
        ledger.append(&Record::CheckoutSettled {
            key: c.key.clone(),
            order,
        })?;
    }
    if !unresolved.is_empty() {
        ledger.sync()?;
        view = read_view(a.ledger)?;
    }
    let mut expected: Vec<Expected> = view
        .orders()
        .map(|c| Expected {
            id: c.order.expect("orders() have one"),
            card: c.card,
            checkout: Some(c.clone()),
        })
        .collect();
    // Purchases: the card is on the purchase record; the fold keeps only the ids, so
    // re-read them here with their cards.
    let text = std::fs::read_to_string(a.ledger)?;
    for r in ledger::parse(&text).map_err(ChaosError::Ledger)? {
        if let Record::Purchase {
            order: Some(o),
            card,
            ack: true,
            ..
        } = r
        {
            expected.push(Expected {
                id: o,
                card,
                checkout: None,
            });
        }
    }

    let mut violations = Vec::new();
    // Settle: every order terminal, nothing reserved, no app hold left; bounded.
    let deadline = Instant::now() + a.settle;
    let mut orders: BTreeMap<Uuid, Option<Value>> = BTreeMap::new();
    let mut stock: BTreeMap<String, Value> = BTreeMap::new();
    let machine_path = format!("/v1/machines/{}", view.machine);
    let mut machine;
    loop {
        let todo: Vec<String> = expected
            .iter()
            .filter(|e| {
                !orders
                    .get(&e.id)
                    .is_some_and(|o| o.as_ref().is_none_or(is_terminal))
            })
            .map(|e| format!("/v1/orders/{}", e.id))
            .collect();
        for (path, v) in get_all(a.addr, a.token, todo).await? {
            let id: Uuid = path["/v1/orders/".len()..].parse().expect("our own path");
            orders.insert(id, v);
        }
        let inv: Vec<String> = view
            .skus
            .iter()
            .map(|(s, _)| format!("/v1/inventory/{s}"))
            .collect();
        for (path, v) in get_all(a.addr, a.token, inv).await? {
            let sku = path["/v1/inventory/".len()..].to_owned();
            stock.insert(sku, v.unwrap_or(Value::Null));
        }
        machine = get(&mut conn, &machine_path).await?.unwrap_or(Value::Null);
        let settled = orders.values().all(|o| o.as_ref().is_none_or(is_terminal))
            && stock.values().all(|s| s["reserved"].as_i64() == Some(0))
            && machine["app_holds"].as_array().is_some_and(Vec::is_empty);
        if settled || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(POLL).await;
    }

    // Orders: present, terminal, with the outcome the card calls for, and the lines
    // their cart holds.
    let cart_paths: Vec<String> = view
        .carts
        .keys()
        .map(|c| format!("/v1/carts/{c}"))
        .collect();
    let carts: BTreeMap<Uuid, Option<Value>> = get_all(a.addr, a.token, cart_paths)
        .await?
        .into_iter()
        .map(|(p, v)| (p["/v1/carts/".len()..].parse().expect("our own path"), v))
        .collect();
    let mut sold: BTreeMap<String, i64> = BTreeMap::new();
    let mut fulfilled_vends: BTreeMap<String, Uuid> = BTreeMap::new();
    let (mut paid, mut cancelled, mut vending) = (0u64, 0u64, 0u64);
    for e in &expected {
        let Some(Some(o)) = orders.get(&e.id) else {
            violations.push(match &e.checkout {
                Some(c) if !c.ack => Violation::PhantomOrder {
                    order: e.id.to_string(),
                    key: c.key.clone(),
                },
                _ => Violation::OrderMissing {
                    order: e.id.to_string(),
                },
            });
            continue;
        };
        let status = o["status"].as_str().unwrap_or_default().to_owned();
        if !is_terminal(o) {
            violations.push(Violation::OrderNotTerminal {
                order: e.id.to_string(),
                status,
            });
            continue;
        }
        let outcome_ok = match (&e.checkout, e.card) {
            (Some(_), Card::Good) => matches!(status.as_str(), "paid" | "fulfilled"),
            (_, Card::Declined) => status == "cancelled",
            (None, Card::Good) => matches!(status.as_str(), "fulfilled" | "cancelled"),
        };
        if !outcome_ok {
            violations.push(Violation::OrderOutcome {
                order: e.id.to_string(),
                card: format!("{:?}", e.card).to_lowercase(),
                status: status.clone(),
            });
        }
        match status.as_str() {
            "cancelled" => cancelled += 1,
            _ => paid += 1,
        }
        match &e.checkout {
            Some(c) => {
                let found = items(o);
                if let Some(lines) = &c.lines {
                    let mut want = lines.clone();
                    want.sort();
                    if want != found {
                        violations.push(Violation::OrderLines {
                            order: e.id.to_string(),
                            expected: describe(&want),
                            found: describe(&found),
                        });
                    }
                }
                if let Some(Some(cart)) = carts.get(&c.cart) {
                    let held = items(cart);
                    if held != found {
                        violations.push(Violation::OrderLines {
                            order: e.id.to_string(),
                            expected: format!("its cart's {}", describe(&held)),
                            found: describe(&found),
                        });
                    }
                }
                if matches!(status.as_str(), "paid" | "fulfilled") {
                    for (sku, q) in found {
                        *sold.entry(sku).or_default() += i64::from(q);
                    }
                }
            }
            None => {
                vending += 1;
                if status == "fulfilled" {
                    let vend_id = o["vending"]["vend_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let known = vend_id
                        .parse::<Uuid>()
                        .is_ok_and(|v| view.vend_ids.contains(&v));
                    let acked_other = view
                        .app_vends
                        .get(&e.id)
                        .is_some_and(|v| v.to_string() != vend_id);
                    if !known || acked_other || fulfilled_vends.contains_key(&vend_id) {
                        violations.push(Violation::VendSoldTwice {
                            order: e.id.to_string(),
                            vend_id: vend_id.clone(),
                        });
                    }
                    fulfilled_vends.insert(vend_id, e.id);
                }
            }
        }
    }

    // Carts: every acknowledged line at its last acknowledged quantity (or a later
    // unknown one); nothing the ledger never wrote.
    for (cart, lines) in &view.carts {
        let Some(Some(c)) = carts.get(cart) else {
            if lines.values().any(|w| w.iter().any(|(_, ack)| *ack)) {
                violations.push(Violation::CartLine {
                    cart: cart.to_string(),
                    sku: "(the whole cart)".into(),
                    found: 0,
                    allowed: vec![],
                });
            }
            continue;
        };
        let held: BTreeMap<String, u32> = items(c).into_iter().collect();
        let skus: BTreeSet<&String> = lines.keys().chain(held.keys()).collect();
        for sku in skus {
            let allowed = lines
                .get(sku)
                .map(books::allowed_quantities)
                .unwrap_or_else(|| BTreeSet::from([0]));
            let found = held.get(sku).copied().unwrap_or(0);
            if !allowed.contains(&found) {
                violations.push(Violation::CartLine {
                    cart: cart.to_string(),
                    sku: sku.clone(),
                    found,
                    allowed: allowed.into_iter().collect(),
                });
            }
        }
    }

    // Stock, per SKU.
    let mut settle = Vec::new();
    let mut units_sold = 0;
    for (sku, seeded) in &view.skus {
        let adj = view.adjustments.get(sku).cloned().unwrap_or_default();
        let s = &stock[sku];
        let b = StockBooks {
            sku: sku.clone(),
            received: seeded + adj.acked + adj.settled,
            unknown: adj.unknown.iter().map(|(_, d)| *d).collect(),
            on_hand: s["on_hand"].as_i64().unwrap_or(i64::MIN / 4),
            reserved: s["reserved"].as_i64().unwrap_or(-1),
            sold: sold.get(sku).copied().unwrap_or(0),
        };
        units_sold += b.sold;
        let locations = s["locations"].as_array().cloned().unwrap_or_default();
        let sum: i64 = locations.iter().filter_map(|l| l["on_hand"].as_i64()).sum();
        if sum != b.on_hand {
            violations.push(Violation::LocationsDisagree {
                sku: sku.clone(),
                on_hand: b.on_hand,
                sum,
            });
        }
        for l in &locations {
            let reserved = l["reserved"].as_i64().unwrap_or(-1);
            if reserved != 0 {
                violations.push(Violation::Reserved {
                    sku: format!("{sku} at {}", l["location"]),
                    reserved,
                });
            }
        }
        match books::check_stock(&b) {
            Ok(delta) if !adj.unknown.is_empty() => settle.push(Record::AdjustSettled {
                sku: sku.clone(),
                ids: adj.unknown.iter().map(|(id, _)| *id).collect(),
                delta,
            }),
            Ok(_) => {}
            Err(v) => violations.push(v),
        }
    }

    // The machine: slots balance, its count is explained by the vends, no hold left.
    let holds = machine["app_holds"].as_array().map_or(usize::MAX, Vec::len);
    if holds != 0 {
        violations.push(Violation::HoldLeft { holds });
    }
    let level_of = |slot: u32| -> u64 {
        machine["slots"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["slot"].as_u64() == Some(u64::from(slot)))
            })
            .and_then(|s| s["level"].as_u64())
            .unwrap_or(0)
    };
    let sold_of = |slot: u32| -> u64 {
        machine["sales"]["per_slot"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["slot"].as_u64() == Some(u64::from(slot)))
            })
            .and_then(|s| s["units"].as_u64())
            .unwrap_or(0)
    };
    let mut machine_units = 0;
    for (slot, seeded) in &view.slots {
        let v = view.vends.get(slot).cloned().unwrap_or_default();
        let b = SlotBooks {
            slot: *slot,
            seeded: u64::from(*seeded),
            level: level_of(*slot),
            counted: sold_of(*slot),
            acked: v.acked_success + v.settled,
            unknown: v.unknown.len() as u64,
        };
        machine_units += b.counted;
        match books::check_slot(&b) {
            Ok(units) if !v.unknown.is_empty() => settle.push(Record::VendsSettled {
                slot: *slot,
                ids: v.unknown.clone(),
                units,
            }),
            Ok(_) => {}
            Err(e) => violations.push(e),
        }
    }
    // The machine's SKUs: no visit fills them, so each SKU's units at the machine's
    // location are minus what the machine counts sold (once the projection caught up,
    // within one wait for them all).
    let until = Instant::now() + MACHINE_STOCK_WAIT;
    for (slot, _) in &view.slots {
        let sku = machine["slots"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["slot"].as_u64() == Some(u64::from(*slot)))
            })
            .and_then(|s| s["sku"].as_str())
            .unwrap_or_default()
            .to_owned();
        if let Err(v) = machine_stock(&mut conn, &sku, sold_of(*slot), until).await? {
            violations.push(v);
        }
    }
    if violations.is_empty() {
        for r in &settle {
            ledger.append(r)?;
        }
        ledger.sync()?;
    }
    let summary = format!(
        "{} acknowledged writes, {} orders ({paid} paid or fulfilled, {cancelled} cancelled, {vending} vending), {units_sold} units sold, machine sold {machine_units}; resolved {} unknown checkouts, {} open adjustment/vend sets",
        view.acked_writes,
        expected.len(),
        unresolved.len(),
        settle.len(),
    );
    Ok(Report {
        violations,
        summary,
    })
}
